//! Message sizes: no message the outbox sends is longer than the hub's
//! limit. Merging progress keeps the newest values within it
//! ([`merge_bounded`]); a message still too long is cut ([`fit`]).

use crate::wire::{encode_producer, ProducerBody, ProgressFields};

/// The lowest message size limit the outbox accepts from a hub (a lower
/// `data.limit` is taken as this): messages cut by [`fit`] are well
/// under it unless their ids and names are at their longest (a
/// 256-character name of 4-byte characters alone is 1 KiB).
pub const MIN_MESSAGE_LIMIT: usize = 1024;

/// Characters a terminal message's text is cut to when even its longest
/// cut that fits is shorter (the message goes out anyway: its state must).
const SHORT_TEXT: usize = 256;

/// The fewest characters a text is shortened to before it is dropped
/// instead (a progress message) or cut to [`SHORT_TEXT`] (an end's text).
const MIN_KEPT: usize = 16;

/// The longest the message can be on the wire (request id and seq at
/// their widest).
pub(super) fn encoded_len(body: &ProducerBody, namespace: &str, operation_id: &str) -> usize {
    encode_producer(body, u64::MAX, namespace, operation_id, u64::MAX).len()
}

/// Counts bytes written (sizes without building the text).
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The wire size of each field of an update, `"key":value,` included
/// (0 when absent), in the order progress, current, step, message, details.
fn field_lens(f: &ProgressFields) -> [usize; 5] {
    fn one<T: serde::Serialize>(key: &str, v: &Option<T>) -> usize {
        v.as_ref().map_or(0, |v| key.len() + 4 + json_len(v))
    }
    [
        one("progress", &f.progress),
        one("current", &f.current),
        one("step", &f.step),
        one("message", &f.message),
        one("details", &f.details),
    ]
}

/// The wire size of an update with these field sizes: the empty update's
/// own size (with `progress`, added when missing by
/// `with_known_progress`) plus its fields.
fn update_len(base: usize, lens: &[usize; 5]) -> usize {
    let numbers = if lens[0] == 0 && lens[1] == 0 { 32 } else { 0 };
    base + numbers + lens.iter().sum::<usize>()
}

/// Merge `later` into `target` without passing `limit`: when both together
/// would be too long for one message, the newest values win and older
/// text fields (step, message, details) are kept only while they fit.
/// Sizes are counted field by field, without building any text.
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
    let base = encoded_len(
        &ProducerBody::ProgressUpdate(ProgressFields::default()),
        namespace,
        operation_id,
    );
    let old = field_lens(target);
    let new = field_lens(&later);
    // What the plain merge would hold: the later field where it has one.
    let mut lens: [usize; 5] = std::array::from_fn(|i| if new[i] > 0 { new[i] } else { old[i] });
    if update_len(base, &lens) > limit {
        // The newest values win; older text stays only while it fits
        // (numbers always do).
        for i in 2..5 {
            if new[i] == 0 {
                lens[i] = 0;
            }
        }
        for i in 2..5 {
            if new[i] == 0 && old[i] > 0 {
                lens[i] = old[i];
                if update_len(base, &lens) > limit {
                    lens[i] = 0;
                    match i {
                        2 => target.step = None,
                        3 => target.message = None,
                        _ => target.details = None,
                    }
                }
            }
        }
    }
    target.merge(later);
}

/// Cut `body` until it fits `limit` bytes on the wire; returns what was
/// cut, if anything. Progress loses its details, then its message is
/// shortened to what fits; when not even 16 characters of it would, its
/// step goes and the message is shortened again, or dropped last; a start
/// loses its metadata; a terminal message its details, then its text is
/// shortened to what fits, or to 256 characters (its state always goes
/// through). What was cut is said: "details dropped", "message
/// shortened", ...
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
    step!("details dropped", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.details.take().is_some(),
        ProducerBody::OperationCompleted { details }
        | ProducerBody::OperationFailed { details, .. } => details.take().is_some(),
        _ => false,
    });
    if over(body) && shorten(body, progress_message, &over) {
        cut.push("message shortened");
    }
    // No room for even a short message: the step goes first, then the
    // message is tried again.
    step!("step dropped", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.step.take().is_some(),
        _ => false,
    });
    if over(body) && shorten(body, progress_message, &over) {
        cut.push("message shortened");
    }
    step!("message dropped", |b: &mut ProducerBody| match b {
        ProducerBody::ProgressUpdate(f) => f.message.take().is_some(),
        _ => false,
    });
    step!("metadata dropped", |b: &mut ProducerBody| match b {
        ProducerBody::OperationStarted(s) => s.metadata.take().is_some(),
        _ => false,
    });
    if over(body) && shorten(body, end_text, &over) {
        cut.push("text shortened");
    }
    step!(
        "text cut to 256 characters",
        |b: &mut ProducerBody| match end_text(b) {
            Some(t) => {
                let short = hub_proto::fields::clip(t, SHORT_TEXT);
                let changed = short != *t;
                *t = short;
                changed
            }
            None => false,
        }
    );
    Some(format!(
        "cut to fit the hub's {limit}-byte message limit ({})",
        cut.join(", ")
    ))
}

/// A progress update's message.
fn progress_message(b: &mut ProducerBody) -> Option<&mut String> {
    match b {
        ProducerBody::ProgressUpdate(f) => f.message.as_mut(),
        _ => None,
    }
}

/// A terminal message's text (a failure's error, a cancel's reason).
fn end_text(b: &mut ProducerBody) -> Option<&mut String> {
    match b {
        ProducerBody::OperationFailed { error, .. } => Some(error),
        ProducerBody::OperationCanceled { reason } => reason.as_mut(),
        _ => None,
    }
}

/// Cuts the text `slot` points at to the most characters (ending in `…`,
/// at least [`MIN_KEPT`]) with which `body` is no longer `over`; leaves it
/// as it was and returns false when no such cut exists.
fn shorten(
    body: &mut ProducerBody,
    slot: fn(&mut ProducerBody) -> Option<&mut String>,
    over: &impl Fn(&ProducerBody) -> bool,
) -> bool {
    let Some(whole) = slot(body).map(std::mem::take) else {
        return false;
    };
    let cut_to = |b: &mut ProducerBody, n: usize| {
        if let Some(t) = slot(b) {
            *t = hub_proto::fields::clip(&whole, n);
        }
    };
    let chars = whole.chars().count();
    cut_to(body, MIN_KEPT);
    if chars <= MIN_KEPT || over(body) {
        cut_to(body, chars);
        return false;
    }
    // `fits` fits and `too_long` does not (the whole text did not).
    let (mut fits, mut too_long) = (MIN_KEPT, chars);
    while too_long - fits > 1 {
        let mid = fits + (too_long - fits) / 2;
        cut_to(body, mid);
        if over(body) {
            too_long = mid;
        } else {
            fits = mid;
        }
    }
    cut_to(body, fits);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_long_message_is_shortened_to_what_fits_not_dropped() {
        let mut body = ProducerBody::ProgressUpdate(ProgressFields {
            progress: Some(10.0),
            message: Some("é".repeat(2000)),
            details: Some(json!({"d": "x".repeat(500)})),
            ..Default::default()
        });
        let note = fit(&mut body, 1024, "default", "op-1").unwrap();
        assert_eq!(
            note,
            "cut to fit the hub's 1024-byte message limit (details dropped, message shortened)"
        );
        let len = encoded_len(&body, "default", "op-1");
        assert!(len <= 1024 && len > 1024 - 4, "as much as fits: {len}");
        let ProducerBody::ProgressUpdate(f) = &body else {
            unreachable!()
        };
        assert!(f.message.as_ref().unwrap().ends_with('…'));
        assert_eq!(f.progress, Some(10.0));
    }

    #[test]
    fn an_ends_text_keeps_what_fits_and_a_message_that_cannot_goes() {
        let mut body = ProducerBody::OperationFailed {
            error: "\"'".repeat(1500),
            details: None,
        };
        let note = fit(&mut body, 1024, "default", "op-1").unwrap();
        assert!(note.ends_with("(text shortened)"), "{note}");
        let ProducerBody::OperationFailed { error, .. } = &body else {
            unreachable!()
        };
        assert!(error.chars().count() > 256, "more than the old fixed cut");
        assert!(encoded_len(&body, "default", "op-1") <= 1024);

        // A step that leaves no room for 16 characters of message goes,
        // and the message is shortened to what fits without it.
        let mut body = ProducerBody::ProgressUpdate(ProgressFields {
            progress: Some(20.0),
            step: Some("😀".repeat(240)),
            message: Some("m".repeat(3000)),
            ..Default::default()
        });
        let note = fit(&mut body, 1024, "default", "op-1").unwrap();
        assert!(
            note.ends_with("(step dropped, message shortened)"),
            "{note}"
        );
        let ProducerBody::ProgressUpdate(f) = &body else {
            unreachable!()
        };
        assert!(encoded_len(&body, "default", "op-1") <= 1024);
        assert!(f.step.is_none());
        assert!(f.message.as_ref().unwrap().chars().count() > 800, "{f:?}");
    }

    proptest! {
        /// Whatever is cut, what is left fits, and a shortened text is a
        /// prefix of the original.
        #[test]
        fn what_fit_leaves_fits(
            message in "(.|\n|\"){0,1500}",
            error in "(.|\"){0,1500}",
            limit in 1024usize..3000,
        ) {
            let mut update = ProducerBody::ProgressUpdate(ProgressFields {
                progress: Some(5.0),
                message: Some(message.clone()),
                ..Default::default()
            });
            fit(&mut update, limit, "ns", "op");
            prop_assert!(encoded_len(&update, "ns", "op") <= limit);
            let ProducerBody::ProgressUpdate(f) = &update else { unreachable!() };
            if let Some(m) = &f.message {
                let kept = m.strip_suffix('…').unwrap_or(m);
                prop_assert!(message.starts_with(kept));
            }
            let mut end = ProducerBody::OperationFailed { error: error.clone(), details: None };
            fit(&mut end, limit, "ns", "op");
            prop_assert!(encoded_len(&end, "ns", "op") <= limit);
        }

        /// Sizes counted field by field are the encoded message's own.
        #[test]
        fn field_sizes_add_up_to_the_message(
            progress in prop::option::of(0.0f64..=100.0),
            current in prop::option::of(0.0f64..1e12),
            step in prop::option::of(".{0,40}"),
            message in prop::option::of("(.|\n|\"|\\\\){0,80}"),
            details in prop::option::of(".{0,40}"),
        ) {
            let f = ProgressFields {
                progress,
                current,
                step,
                message,
                details: details.map(|d| json!({"d": d, "n": [1, 2.5]})),
            };
            let base = encoded_len(&ProducerBody::ProgressUpdate(ProgressFields::default()), "ns", "op");
            let lens = field_lens(&f);
            let numbers = if f.progress.is_none() && f.current.is_none() { 32 } else { 0 };
            prop_assert_eq!(
                update_len(base, &lens),
                encoded_len(&ProducerBody::ProgressUpdate(f), "ns", "op") + numbers
            );
        }
    }
}
