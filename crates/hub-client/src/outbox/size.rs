//! Message sizes: no message the outbox sends is longer than the hub's
//! limit. Merging progress keeps the newest values within it
//! ([`merge_bounded`]); a message still too long is cut ([`fit`]).

use crate::wire::{encode_producer, ProducerBody, ProgressFields};

/// The lowest message size limit the outbox accepts from a hub: every
/// message can be cut to fit it (a terminal message keeps its state and
/// the start of its text).
pub const MIN_MESSAGE_LIMIT: usize = 4096;

/// Characters a terminal message's text is cut to when the whole message
/// would not fit the hub's size limit.
const SHORT_TEXT: usize = 256;

/// The longest the message can be on the wire (request id and seq at
/// their widest).
pub(super) fn encoded_len(body: &ProducerBody, namespace: &str, operation_id: &str) -> usize {
    encode_producer(body, u64::MAX, namespace, operation_id, u64::MAX).len()
}

fn progress_len(f: &ProgressFields, namespace: &str, operation_id: &str) -> usize {
    // `progress` is added when missing (`with_known_progress`): count it.
    let extra = if f.progress.is_none() && f.current.is_none() {
        32
    } else {
        0
    };
    encoded_len(
        &ProducerBody::ProgressUpdate(f.clone()),
        namespace,
        operation_id,
    ) + extra
}

/// Merge `later` into `target` without passing `limit`: when both together
/// would be too long for one message, the newest values win and older
/// text fields (step, message, details) are kept only while they fit.
pub fn merge_bounded(
    target: &mut ProgressFields,
    later: ProgressFields,
    limit: usize,
    namespace: &str,
    operation_id: &str,
) {
    let text = later.step.is_some() || later.message.is_some() || later.details.is_some();
    if !text {
        // Numbers only: the transmit check is the final bound.
        target.merge(later);
        return;
    }
    let mut merged = target.clone();
    merged.merge(later.clone());
    if progress_len(&merged, namespace, operation_id) <= limit {
        *target = merged;
        return;
    }
    let old = std::mem::take(target);
    let mut newest = later;
    if newest.progress.is_none() {
        newest.progress = old.progress;
    }
    if newest.current.is_none() {
        newest.current = old.current;
    }
    let fits = |f: &ProgressFields| progress_len(f, namespace, operation_id) <= limit;
    if newest.step.is_none() && old.step.is_some() {
        let mut c = newest.clone();
        c.step = old.step;
        if fits(&c) {
            newest = c;
        }
    }
    if newest.message.is_none() && old.message.is_some() {
        let mut c = newest.clone();
        c.message = old.message;
        if fits(&c) {
            newest = c;
        }
    }
    if newest.details.is_none() && old.details.is_some() {
        let mut c = newest.clone();
        c.details = old.details;
        if fits(&c) {
            newest = c;
        }
    }
    *target = newest;
}

/// Cut `body` until it fits `limit` bytes on the wire; returns what was
/// cut, if anything. Progress loses its details, then message, then step;
/// a start its metadata; a terminal message its details, then its text is
/// cut to 256 characters (its state always goes through).
pub fn fit(
    body: &mut ProducerBody,
    limit: usize,
    namespace: &str,
    operation_id: &str,
) -> Option<String> {
    let over = |b: &ProducerBody| encoded_len(b, namespace, operation_id) > limit;
    if !over(body) {
        return None;
    }
    let mut cut: Vec<&str> = Vec::new();
    macro_rules! step {
        ($name:literal, $apply:expr) => {
            if over(body) {
                #[allow(clippy::redundant_closure_call)]
                if ($apply)(&mut *body) {
                    cut.push($name);
                }
            }
        };
    }
    step!("details", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.details.take().is_some(),
        ProducerBody::OperationCompleted { details }
        | ProducerBody::OperationFailed { details, .. } => details.take().is_some(),
        _ => false,
    });
    step!("message", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.message.take().is_some(),
        _ => false,
    });
    step!("step", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.step.take().is_some(),
        _ => false,
    });
    step!("metadata", |b: &mut ProducerBody| match b {
        ProducerBody::OperationStarted(s) => s.metadata.take().is_some(),
        _ => false,
    });
    step!("text", |b: &mut ProducerBody| match b {
        ProducerBody::OperationFailed { error, .. } => {
            *error = hub_proto::fields::clip(error, SHORT_TEXT);
            true
        }
        ProducerBody::OperationCanceled { reason: Some(r) } => {
            *r = hub_proto::fields::clip(r, SHORT_TEXT);
            true
        }
        _ => false,
    });
    Some(format!(
        "cut to fit the hub's {limit}-byte message limit (dropped: {})",
        cut.join(", ")
    ))
}
