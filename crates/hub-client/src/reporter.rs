//! The producer API: what jobs call. Every call returns immediately; the
//! driver delivers in the background, through disconnects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hub_proto::decode::MAX_NAME_LEN;
use hub_proto::fields::{clip, MAX_TEXT_LEN};
use serde_json::Value;
use tokio::sync::watch;

use crate::client::{Client, OpSignal};
use crate::config::ClientConfig;
use crate::error::{ClientError, ReportError};
use crate::outbox::{OpKey, Refusal};
use crate::stats::ConnectionStats;
use crate::wire::{ProducerBody, ProgressFields, StartFields};

/// Reports operations to the hub. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reporter {
    client: Client,
}

impl Reporter {
    /// Connect a new client (in the background) and return its reporter.
    pub fn connect(config: ClientConfig) -> Result<Reporter, ClientError> {
        Ok(Client::connect(config)?.reporter())
    }

    pub(crate) fn from_client(client: Client) -> Self {
        Reporter { client }
    }

    /// The underlying client (state, stats, subscriber on the same socket).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Describe a new operation; [`StartBuilder::begin`] queues it.
    pub fn start(&self, name: impl Into<String>) -> StartBuilder {
        StartBuilder {
            reporter: self.clone(),
            namespace: self.client.shared.config.namespace.clone(),
            id: None,
            fields: StartFields {
                name: name.into(),
                ..Default::default()
            },
        }
    }

    /// Report on an operation started by someone else (another process, a
    /// previous run): its next sequence number is learnt from the hub.
    /// Returns [`ReportError::Invalid`] for an id the protocol does not allow.
    pub fn attach(
        &self,
        namespace: &str,
        operation_id: &str,
    ) -> Result<OperationHandle, ReportError> {
        validate_id(operation_id)?;
        let key = self
            .client
            .shared
            .inner
            .lock()
            .outbox
            .attach(namespace, operation_id);
        Ok(self.handle(key, namespace, operation_id))
    }

    fn handle(&self, key: OpKey, namespace: &str, id: &str) -> OperationHandle {
        let mut inner = self.client.shared.inner.lock();
        let rx = inner
            .signals
            .entry(key)
            .or_insert_with(|| watch::channel(OpSignal::default()).0)
            .subscribe();
        drop(inner);
        OperationHandle {
            reporter: self.clone(),
            key,
            id: id.to_owned(),
            namespace: namespace.to_owned(),
            signal: rx,
            finished: AtomicBool::new(false),
            detached: AtomicBool::new(false),
        }
    }

    /// Wait until everything queued was acked by the hub (at most `timeout`).
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.client.flush(timeout).await
    }

    /// [`Reporter::flush`] for synchronous code.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        self.client.flush_blocking(timeout)
    }

    /// Connection health and counters.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.client.connection_stats()
    }
}

/// Builder returned by [`Reporter::start`].
#[derive(Debug)]
#[must_use = "call .begin() to queue the operation"]
pub struct StartBuilder {
    reporter: Reporter,
    namespace: String,
    id: Option<String>,
    fields: StartFields,
}

impl StartBuilder {
    /// Grouping kind (used by the hub for ETA history).
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.fields.kind = Some(kind.into());
        self
    }

    /// Total units of work (`current` updates are then converted to percent).
    pub fn total(mut self, total: f64) -> Self {
        self.fields.total = Some(total);
        self
    }

    /// Parent operation.
    pub fn parent(mut self, parent_id: impl Into<String>) -> Self {
        self.fields.parent_id = Some(parent_id.into());
        self
    }

    /// Weight within the parent.
    pub fn weight(mut self, weight: f64) -> Self {
        self.fields.weight = Some(weight);
        self
    }

    /// Free metadata (must be a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.fields.metadata = Some(metadata);
        self
    }

    /// Namespace (default: the client's).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Choose the operation id (default: a fresh time-ordered random id).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Queue `operation_started` and return the handle. Fails only on
    /// invalid arguments or a full queue, never on the network.
    pub fn begin(self) -> Result<OperationHandle, ReportError> {
        let chosen = self.id.is_some();
        let id = self.id.unwrap_or_else(crate::id::new_operation_id);
        validate_id(&id)?;
        validate_start(&self.fields)?;
        let size = crate::wire::encode_producer(
            &ProducerBody::OperationStarted(self.fields.clone()),
            u64::MAX,
            &self.namespace,
            &id,
            1,
        )
        .len();
        check_size(&self.reporter.client, size)?;
        let key = {
            let mut inner = self.reporter.client.shared.inner.lock();
            if inner.closed {
                return Err(ReportError::Closed);
            }
            if chosen {
                inner
                    .outbox
                    .start_chosen(&self.namespace, &id, self.fields)?
            } else {
                inner.outbox.start(&self.namespace, &id, self.fields)?
            }
        };
        let handle = self.reporter.handle(key, &self.namespace, &id);
        self.reporter.client.wake();
        Ok(handle)
    }
}

/// One reported operation. Progress calls merge into a single pending
/// update (sent at most every `progress_interval`); terminal calls are
/// queued and never dropped. Dropping an unfinished handle reports it
/// failed, unless [`OperationHandle::detach`] was called.
#[derive(Debug)]
pub struct OperationHandle {
    reporter: Reporter,
    key: OpKey,
    id: String,
    namespace: String,
    signal: watch::Receiver<OpSignal>,
    finished: AtomicBool,
    detached: AtomicBool,
}

impl OperationHandle {
    /// The operation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Merge a progress update (all fields optional). Errors only when the
    /// operation already finished.
    pub fn update(&self, fields: ProgressFields) -> Result<(), ReportError> {
        if fields.is_empty() {
            return Ok(());
        }
        let fields = sanitize(fields);
        if fields.step.is_some() || fields.message.is_some() || fields.details.is_some() {
            // Text and details can be large: refuse what the hub would refuse.
            let size = serde_json::to_string(&fields).map_or(0, |t| t.len());
            check_size(&self.reporter.client, size + self.id.len() + 128)?;
        }
        let newly = {
            let mut inner = self.reporter.client.shared.inner.lock();
            if inner.closed {
                return Err(ReportError::Closed);
            }
            inner
                .outbox
                .progress(self.key, fields)
                .map_err(|e| self.why(e))?
        };
        if newly {
            self.reporter.client.wake();
        }
        Ok(())
    }

    /// Percentage done (0..=100; clamped, NaN ignored).
    pub fn progress(&self, percent: f64) -> &Self {
        let _ = self.update(ProgressFields {
            progress: Some(percent),
            ..Default::default()
        });
        self
    }

    /// Units done (the hub derives the percentage from `total`).
    pub fn current(&self, units: f64) -> &Self {
        let _ = self.update(ProgressFields {
            current: Some(units),
            ..Default::default()
        });
        self
    }

    /// Name of the current step.
    pub fn step(&self, step: impl Into<String>) -> &Self {
        let _ = self.update(ProgressFields {
            step: Some(step.into()),
            ..Default::default()
        });
        self
    }

    /// A human message.
    pub fn message(&self, message: impl Into<String>) -> &Self {
        let _ = self.update(ProgressFields {
            message: Some(message.into()),
            ..Default::default()
        });
        self
    }

    /// Free details (a JSON object).
    pub fn details(&self, details: Value) -> &Self {
        let _ = self.update(ProgressFields {
            details: Some(details),
            ..Default::default()
        });
        self
    }

    fn finish(&self, body: ProducerBody) -> Result<(), ReportError> {
        // Never refused for its size: a message too long for the hub is cut
        // when it is sent (details first), and `refusal()` says so.
        let body = clip_terminal(body);
        {
            let mut inner = self.reporter.client.shared.inner.lock();
            if inner.closed {
                return Err(ReportError::Closed);
            }
            inner
                .outbox
                .finish(self.key, body)
                .map_err(|e| self.why(e))?;
        }
        self.finished.store(true, Ordering::Relaxed);
        self.reporter.client.wake();
        Ok(())
    }

    /// `Finished` of an operation the hub dropped is its refusal.
    fn why(&self, e: ReportError) -> ReportError {
        let signal = self.signal.borrow();
        match (e, &signal.rejected) {
            (ReportError::Finished, Some(code)) if signal.dropped => {
                ReportError::Refused(code.clone())
            }
            (e, _) => e,
        }
    }

    /// Report success.
    pub fn complete(&self) -> Result<(), ReportError> {
        self.finish(ProducerBody::OperationCompleted { details: None })
    }

    /// Report success with details.
    pub fn complete_with(&self, details: Value) -> Result<(), ReportError> {
        self.finish(ProducerBody::OperationCompleted {
            details: Some(details),
        })
    }

    /// Report failure.
    pub fn fail(&self, error: impl std::fmt::Display) -> Result<(), ReportError> {
        self.finish(ProducerBody::OperationFailed {
            error: error.to_string(),
            details: None,
        })
    }

    /// Report failure with details.
    pub fn fail_with(
        &self,
        error: impl std::fmt::Display,
        details: Value,
    ) -> Result<(), ReportError> {
        self.finish(ProducerBody::OperationFailed {
            error: error.to_string(),
            details: Some(details),
        })
    }

    /// Report that the operation stopped because it was canceled.
    pub fn canceled(&self, reason: Option<&str>) -> Result<(), ReportError> {
        self.finish(ProducerBody::OperationCanceled {
            reason: reason.map(str::to_owned),
        })
    }

    /// Whether someone asked (through the hub) to cancel this operation.
    pub fn should_cancel(&self) -> bool {
        self.signal.borrow().cancel_requested
    }

    /// Who asked to cancel (the canceller's token subject), if known.
    pub fn cancel_requested_by(&self) -> Option<String> {
        self.signal.borrow().requested_by.clone()
    }

    /// Resolves when a cancel is requested (never, if none is).
    pub async fn cancelled(&self) {
        let mut rx = self.signal.clone();
        if rx.wait_for(|s| s.cancel_requested).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The error code if the hub refused this operation for good (e.g.
    /// `OPERATION_FINISHED`, `FORBIDDEN`: its queued messages were dropped,
    /// later calls return [`ReportError::Refused`]), or refused its end
    /// (`BAD_MESSAGE`: on the hub it is still running; report the end
    /// again). [`Reporter::flush`] returns false after either.
    pub fn rejection(&self) -> Option<String> {
        self.signal.borrow().rejected.clone()
    }

    /// The latest of this operation's messages the hub refused for good,
    /// with its code and the hub's sentence: also a single refused update
    /// (e.g. `BAD_MESSAGE`) after which the operation goes on, which
    /// [`OperationHandle::rejection`] does not show.
    pub fn refusal(&self) -> Option<Refusal> {
        self.reporter
            .client
            .shared
            .inner
            .lock()
            .outbox
            .refusal(self.key)
            .cloned()
    }

    /// Keep the operation running on the hub after this handle is dropped
    /// (e.g. a command-line `report start`); returns its id.
    pub fn detach(self) -> String {
        self.detached.store(true, Ordering::Relaxed);
        self.id.clone()
    }
}

impl Drop for OperationHandle {
    fn drop(&mut self) {
        if self.finished.load(Ordering::Relaxed) || self.detached.load(Ordering::Relaxed) {
            return;
        }
        if !self
            .reporter
            .client
            .shared
            .inner
            .lock()
            .outbox
            .is_running(self.key)
        {
            return;
        }
        let _ = self.finish(ProducerBody::OperationFailed {
            error: "the operation handle was dropped before the operation finished".into(),
            details: None,
        });
    }
}

/// Free text cut to the hub's own limits (as the hub would cut it), so a
/// long error costs neither a round trip nor a refusal.
fn clip_terminal(body: ProducerBody) -> ProducerBody {
    match body {
        ProducerBody::OperationFailed { error, details } => ProducerBody::OperationFailed {
            error: clip(&error, MAX_TEXT_LEN),
            details,
        },
        ProducerBody::OperationCanceled { reason } => ProducerBody::OperationCanceled {
            reason: reason.map(|r| clip(&r, MAX_TEXT_LEN)),
        },
        other => other,
    }
}

fn sanitize(mut f: ProgressFields) -> ProgressFields {
    f.step = f.step.map(|s| clip(&s, MAX_NAME_LEN));
    f.message = f.message.map(|m| clip(&m, MAX_TEXT_LEN));
    f.progress = f
        .progress
        .filter(|p| p.is_finite())
        .map(|p| p.clamp(0.0, 100.0));
    f.current = f.current.filter(|c| c.is_finite()).map(|c| c.max(0.0));
    if f.details.as_ref().is_some_and(|d| !d.is_object()) {
        f.details = f.details.map(|d| serde_json::json!({ "value": d }));
    }
    f
}

fn check_size(client: &Client, size: usize) -> Result<(), ReportError> {
    let max = client.shared.config.max_message_bytes;
    if size > max {
        return Err(ReportError::Invalid(format!(
            "the message would be {size} bytes, more than the hub accepts ({max})"
        )));
    }
    Ok(())
}

/// Operation ids: 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn validate_id(id: &str) -> Result<(), ReportError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReportError::Invalid(format!(
            "operation id {id:?} must be 1..=128 characters of [A-Za-z0-9._:-]"
        )))
    }
}

fn validate_start(f: &StartFields) -> Result<(), ReportError> {
    let n = f.name.chars().count();
    if n == 0 || n > 256 {
        return Err(ReportError::Invalid(format!(
            "the name must have 1..=256 characters, not {n}"
        )));
    }
    if f.total.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err(ReportError::Invalid(
            "total must be a positive number".into(),
        ));
    }
    if f.weight.is_some_and(|w| !w.is_finite()) {
        return Err(ReportError::Invalid(
            "weight must be a finite number".into(),
        ));
    }
    if f.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(ReportError::Invalid(
            "metadata must be a JSON object".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("render.frame-12:a_b").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("has space").is_err());
        assert!(validate_id(&"x".repeat(129)).is_err());
        assert!(validate_id(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn progress_values_are_sanitized() {
        let f = sanitize(ProgressFields {
            progress: Some(140.0),
            current: Some(f64::NAN),
            details: Some(serde_json::json!(3)),
            ..Default::default()
        });
        assert_eq!(f.progress, Some(100.0));
        assert_eq!(f.current, None);
        assert_eq!(f.details, Some(serde_json::json!({"value": 3})));
    }
}
