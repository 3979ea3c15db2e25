//! The driver: hub-client's [`Subscriber`] (reconnects with backoff,
//! resumes from the last `(epoch, offset)`, de-duplicates, keeps the exact
//! state map) adapted into the view model's [`Update`]s, plus the UI's
//! requests (cancel, reconnect now, shutdown). No protocol logic lives here.

use crate::op::OpState;
use crate::update::{ConnStatus, OpEvent, SystemStatus, Update};
use hub_client::machine::{ConnState, Reason, StateChange};
use hub_client::{ClientConfig, ClientError, Filter, Subscriber, Subscription};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// What the driver connects to.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `ws://` or `wss://` URL of the hub's `/ws`.
    pub url: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Namespace to subscribe to.
    pub namespace: String,
    /// Extra trusted root certificates (PEM) for `wss://`.
    pub tls_root_pem: Option<Vec<u8>>,
}

/// Requests from the UI to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Send `cancel` for this operation.
    Cancel(String),
    /// Reconnect now (also leaves the failed state).
    Reconnect,
    /// Close the connection and stop.
    Shutdown,
}

/// The running driver.
#[derive(Debug)]
pub struct DriverHandle {
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
}

impl DriverHandle {
    /// Sends a request (ignored once the driver stopped).
    pub fn request(&self, r: Request) {
        let _ = self.requests.send(r);
    }

    /// Asks the driver to close and waits (at most one second) for it.
    pub async fn shutdown(self) {
        let _ = self.requests.send(Request::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}

/// Starts the driver on the current tokio runtime; it reports to `updates`
/// and stops when told to or when `updates` is closed. Fails only on a bad
/// URL or TLS setup, never because the hub is away.
pub fn spawn(
    config: DriverConfig,
    updates: mpsc::Sender<Update>,
) -> Result<DriverHandle, ClientError> {
    let mut client = ClientConfig::new(config.url);
    if let Some(t) = config.token {
        client = client.token(t);
    }
    if let Some(pem) = config.tls_root_pem {
        client = client.tls_root_pem(pem);
    }
    let subscriber = Subscriber::connect(client)?;
    let sub = subscriber.subscribe_latest(config.namespace.clone(), Filter::all());
    let (tx, rx) = mpsc::unbounded_channel();
    let adapter = Adapter {
        subscriber,
        namespace: config.namespace,
        updates,
        position: None,
    };
    let task = tokio::spawn(adapter.run(sub, rx));
    Ok(DriverHandle { requests: tx, task })
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Adapter {
    subscriber: Subscriber,
    namespace: String,
    updates: mpsc::Sender<Update>,
    /// The last position delivered to the model (to count recovered updates).
    position: Option<(String, u64)>,
}

impl Adapter {
    async fn run(mut self, mut sub: Subscription, mut requests: mpsc::UnboundedReceiver<Request>) {
        let first = self.connection(self.subscriber.client().state());
        if self.updates.send(first).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                u = sub.recv() => {
                    let Some(u) = u else { break };
                    let mapped = self.map(u, &sub);
                    for m in mapped {
                        if self.updates.send(m).await.is_err() {
                            self.subscriber.client().close();
                            return;
                        }
                    }
                }
                r = requests.recv() => match r {
                    Some(Request::Cancel(op)) => self.subscriber.cancel(self.namespace.clone(), op),
                    Some(Request::Reconnect) => self.subscriber.client().reconnect_now(),
                    Some(Request::Shutdown) | None => break,
                },
            }
        }
        self.subscriber.client().close();
    }

    fn map(&mut self, u: hub_client::Update, sub: &Subscription) -> Vec<Update> {
        use hub_client::Update as U;
        match u {
            U::Connection(change) => vec![self.connection(change)],
            U::Subscribed {
                epoch,
                offset,
                recovered,
            } => {
                let resumed_from = match &self.position {
                    Some((e, o)) if recovered && *e == epoch => Some(*o),
                    _ => None,
                };
                if recovered && resumed_from.is_none() {
                    self.position = Some((epoch.clone(), 0));
                }
                vec![Update::Subscribed {
                    epoch,
                    offset,
                    recovered,
                    resumed_from,
                }]
            }
            U::Event(e) => {
                if let Some((_, o)) = &mut self.position {
                    *o = e.offset;
                }
                let reason = e
                    .raw
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let state = convert(e.state);
                vec![Update::Event(Box::new(OpEvent {
                    kind: e.kind,
                    offset: e.offset,
                    timestamp: e.timestamp,
                    state,
                    reason,
                }))]
            }
            U::Snapshot {
                epoch,
                offset,
                operations,
            } => {
                self.position = Some((epoch.clone(), offset));
                vec![Update::Snapshot {
                    epoch,
                    offset,
                    operations: operations.into_iter().map(convert).collect(),
                }]
            }
            U::Lagged(_) => {
                // Updates were dropped; the subscription's map is exact:
                // reload from it, and re-read the connection state.
                let (epoch, offset) = match sub.position() {
                    Some(p) => (p.epoch, p.offset),
                    None => (String::new(), 0),
                };
                self.position = Some((epoch.clone(), offset));
                vec![
                    self.connection(self.subscriber.client().state()),
                    Update::Snapshot {
                        epoch,
                        offset,
                        operations: sub.operations().into_values().map(convert).collect(),
                    },
                ]
            }
            U::Refused { code, message } => vec![Update::SubscriptionRefused {
                code,
                message,
                reason: None,
                retry_at: None,
            }],
            U::RefusedForNow {
                code,
                message,
                reason,
                retry_after_ms,
            } => vec![Update::SubscriptionRefused {
                code,
                message,
                reason,
                retry_at: Some(wall_ms() + retry_after_ms),
            }],
            U::MessageTooLarge { size, limit } => vec![Update::MessageTooLarge { size, limit }],
            U::SystemStatus { data, is_stale, .. } => {
                vec![Update::SystemStatus(system_status(&data, is_stale))]
            }
            U::CancelResult {
                operation_id,
                result,
            } => vec![cancel_result(operation_id, result)],
        }
    }

    fn connection(&self, c: StateChange) -> Update {
        Update::Connection(match c.state {
            ConnState::Connected => ConnStatus::Connected,
            ConnState::Connecting => ConnStatus::Connecting { attempt: c.attempt },
            ConnState::Reconnecting => ConnStatus::Reconnecting {
                attempt: c.attempt,
                next_retry_at: wall_ms() + c.next_delay_ms.unwrap_or(0),
                cause: self.cause(c.reason),
            },
            ConnState::Failed => ConnStatus::Failed {
                reason: match c.reason {
                    Reason::AuthRejected => self.auth_refusal(),
                    Reason::PolicyViolation => "closed by the hub (policy)".to_owned(),
                    Reason::RetriesExhausted => "gave up retrying".to_owned(),
                    other => format!("{other:?}"),
                },
            },
            ConnState::Disconnected => ConnStatus::Disconnected,
        })
    }

    /// Why the hub refused the credentials, by the code it gave (the
    /// upgrade's 401 body, or the error before a 4001 close): no token, an
    /// expired one, or one refused.
    fn auth_refusal(&self) -> String {
        let code = self.subscriber.client().connection_stats().last_error_code;
        match code.as_deref() {
            Some("AUTH_REQUIRED") => "no token given (AUTH_REQUIRED): pass --token".to_owned(),
            Some("TOKEN_EXPIRED") => "token expired (TOKEN_EXPIRED)".to_owned(),
            Some("AUTH_FAILED") => "token rejected (AUTH_FAILED)".to_owned(),
            _ => "token rejected".to_owned(),
        }
    }

    fn cause(&self, reason: Reason) -> Option<String> {
        Some(match reason {
            Reason::ConnectFailed(Some(s)) => format!("HTTP {s}"),
            Reason::ConnectFailed(None) => {
                let e = self.subscriber.client().connection_stats().last_error?;
                if e.contains("refused") {
                    "connection refused".to_owned()
                } else {
                    e
                }
            }
            Reason::ConnectTimeout => "connect timeout".into(),
            Reason::HeartbeatTimeout => "no heartbeat".into(),
            Reason::Closed(Some(1012)) => "hub restarting".into(),
            Reason::Closed(Some(1013)) => "too slow, resuming".into(),
            Reason::Closed(Some(1001)) => "idle".into(),
            Reason::Closed(Some(c)) => format!("closed {c}"),
            Reason::Closed(None) => "connection lost".into(),
            _ => return None,
        })
    }
}

/// The status bar's figures from `system_status.data` (absent or
/// mistyped figures are unknown).
pub fn system_status(data: &Value, is_stale: bool) -> SystemStatus {
    SystemStatus {
        events_per_second: data.get("events_per_second").and_then(Value::as_f64),
        deliveries_per_second: data.get("deliveries_per_second").and_then(Value::as_f64),
        connections: data.get("connections").and_then(Value::as_u64),
        is_stale,
        finished_retention_ms: data.get("finished_retention_ms").and_then(Value::as_u64),
    }
}

/// The hub's answer to a `cancel` → the model's accept or refuse.
pub fn cancel_result(
    operation_id: String,
    result: Result<(), hub_client::wire::ErrorMessage>,
) -> Update {
    match result {
        Ok(()) => Update::CancelAccepted { operation_id },
        Err(e) => Update::CancelRefused {
            operation_id,
            code: e.code,
            message: e.message,
        },
    }
}

/// hub-client's lenient state → the model's.
pub fn convert(s: hub_client::OperationState) -> OpState {
    OpState {
        operation_id: s.operation_id,
        name: s.name.unwrap_or_default(),
        kind: s.kind,
        state: s.state,
        progress: s.progress,
        current: s.current,
        total: s.total,
        step: s.step,
        message: s.message,
        details: s.details,
        error: s.error,
        parent_id: s.parent_id,
        started_at: s.started_at.unwrap_or_default(),
        updated_at: s.updated_at.unwrap_or_default(),
        finished_at: s.finished_at,
        rate: s.rate,
        eta_seconds: s.eta_seconds,
        cancel_requested: s.cancel_requested.unwrap_or_default(),
        last_offset: s.last_offset.unwrap_or_default(),
        metadata: s.metadata.filter(|m| !m.is_null()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn system_status_gives_the_status_bar_its_figures() {
        let data = json!({"events_per_second": 12.5, "deliveries_per_second": 40.0,
            "connections": 3, "cpu_percent": 1.0, "finished_retention_ms": 60_000});
        assert_eq!(
            system_status(&data, true),
            SystemStatus {
                events_per_second: Some(12.5),
                deliveries_per_second: Some(40.0),
                connections: Some(3),
                is_stale: true,
                finished_retention_ms: Some(60_000),
            }
        );
        let unknown = json!({"events_per_second": null});
        assert_eq!(system_status(&unknown, false), SystemStatus::default());
    }

    #[test]
    fn cancel_answers_become_accept_or_refuse() {
        assert_eq!(
            cancel_result("a".into(), Ok(())),
            Update::CancelAccepted {
                operation_id: "a".into()
            }
        );
        let err: hub_client::wire::ErrorMessage = serde_json::from_value(json!({
            "code": "OPERATION_FINISHED", "message": "already finished"
        }))
        .unwrap();
        assert_eq!(
            cancel_result("a".into(), Err(err)),
            Update::CancelRefused {
                operation_id: "a".into(),
                code: "OPERATION_FINISHED".into(),
                message: "already finished".into(),
            }
        );
    }

    #[test]
    fn snapshot_states_keep_their_metadata() {
        let s: hub_client::OperationState = serde_json::from_value(json!({
            "operation_id": "a", "state": "running", "metadata": {"owner": "ci"}
        }))
        .unwrap();
        assert_eq!(convert(s).metadata, Some(json!({"owner": "ci"})));
        let bare: hub_client::OperationState =
            serde_json::from_value(json!({"operation_id": "a", "state": "running"})).unwrap();
        assert_eq!(convert(bare).metadata, None);
    }
}
