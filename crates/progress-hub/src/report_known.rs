//! What `report progress` repeats when it is given no value: the protocol
//! wants `progress` or `current` in every update, and a fresh `report`
//! process has reported none, so an update with only `--step`,
//! `--message` or `--details` first learns the operation's progress from
//! the hub.
//!
//! It asks over the reporter's own connection (same URL, TLS and token):
//! a `subscribe` filtered to the one operation, whose snapshot carries its
//! state (reporter tokens may subscribe). The value repeated is the one
//! the hub held at that moment: a concurrent reporter's newer value may
//! be repeated back over, like any two reporters racing.

use std::time::Duration;

use anyhow::{bail, Context};
use hub_client::{Filter, OperationState, ProgressFields, Reporter, Update};

/// Fills in `fields`' progress with the hub's current value for
/// `operation_id` when it carries neither `progress` nor `current`;
/// gives up after `timeout` or when the hub refuses.
pub async fn with_hub_progress(
    reporter: &Reporter,
    namespace: &str,
    operation_id: &str,
    fields: ProgressFields,
    timeout: Duration,
) -> anyhow::Result<ProgressFields> {
    if fields.progress.is_some() || fields.current.is_some() {
        return Ok(fields);
    }
    let state = tokio::time::timeout(timeout, state_on_hub(reporter, namespace, operation_id))
        .await
        .with_context(|| {
            format!(
                "no answer from {} in {timeout:?} about operation {operation_id}'s progress",
                crate::cmd_report::where_things_stand(reporter)
            )
        })??;
    Ok(repeat_progress(fields, &state))
}

/// The operation's state, from a snapshot of a subscription to it alone.
pub(crate) async fn state_on_hub(
    reporter: &Reporter,
    namespace: &str,
    operation_id: &str,
) -> anyhow::Result<OperationState> {
    let subscriber = reporter.client().subscriber();
    let mut sub = subscriber.subscribe(namespace, Filter::operations(operation_id));
    let gave_up = crate::cmd_report::hub_gave_up(reporter.client());
    tokio::pin!(gave_up);
    loop {
        let update = tokio::select! {
            u = sub.recv() => u,
            () = &mut gave_up => bail!("the hub at {} refused the connection ({})",
                reporter.connection_stats().url,
                reporter.connection_stats().last_error.unwrap_or_default()),
        };
        match update {
            Some(Update::Snapshot { operations, .. }) => {
                return operations
                    .into_iter()
                    .find(|o| o.operation_id == operation_id)
                    .with_context(|| {
                        format!(
                            "operation {operation_id} is not on the hub in namespace {namespace} \
                             (never started, or finished and no longer kept)"
                        )
                    });
            }
            Some(Update::Refused { code, message }) => {
                bail!("the hub refused to tell operation {operation_id}'s progress: {code}: {message}")
            }
            Some(_) => {}
            None => bail!("the connection to the hub closed"),
        }
    }
}

/// `fields` with the operation's current values: its percentage (0 when
/// it reported none since its start) and its units when it has some. The
/// hub takes a given percentage as it is rather than deriving one from
/// the units, so a percentage reported after the units stays.
pub fn repeat_progress(mut fields: ProgressFields, state: &OperationState) -> ProgressFields {
    fields.progress = Some(state.progress.unwrap_or(0.0));
    fields.current = state.current;
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(progress: Option<f64>, current: Option<f64>, total: Option<f64>) -> OperationState {
        serde_json::from_value(serde_json::json!({
            "operation_id": "x", "state": "running",
            "progress": progress, "current": current, "total": total,
        }))
        .unwrap()
    }

    fn message_only() -> ProgressFields {
        ProgressFields {
            message: Some("hello".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_hubs_value_is_repeated() {
        let f = repeat_progress(message_only(), &state(Some(42.0), None, None));
        assert_eq!((f.progress, f.current), (Some(42.0), None));
        assert_eq!(f.message.as_deref(), Some("hello"));
        let f = repeat_progress(message_only(), &state(Some(75.0), Some(5.0), Some(10.0)));
        assert_eq!((f.progress, f.current), (Some(75.0), Some(5.0)));
        let f = repeat_progress(message_only(), &state(None, None, None));
        assert_eq!((f.progress, f.current), (Some(0.0), None));
    }
}
