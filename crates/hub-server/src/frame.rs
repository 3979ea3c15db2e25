//! One WebSocket text frame of queued messages: what a connection's queue
//! drains into, counted once in the send metrics whoever writes it (the
//! connection's task or the fan-out's direct write).
//!
//! Several messages go in one frame separated by `\n`; a single message is
//! sent as its shared bytes with a frame header in front (server frames are
//! unmasked, so the bytes are the same for every viewer and are not copied).

use crate::metrics::{Metrics, SERVER_TYPES};
use hub_core::outqueue::OutItem;
use std::io::IoSlice;
use std::sync::Arc;

/// The longest header of an unmasked server frame.
pub const MAX_HEADER: usize = 10;

/// The header of an unmasked, final text frame carrying `len` bytes.
pub fn text_header(len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut h = [0u8; MAX_HEADER];
    h[0] = 0x81; // FIN + text
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

/// One message as a whole frame (header and text), built once per event and
/// shared by every viewer's direct write.
pub fn single(text: &str) -> Arc<[u8]> {
    let (h, n) = text_header(text.len());
    let mut frame = Vec::with_capacity(n + text.len());
    frame.extend_from_slice(&h[..n]);
    frame.extend_from_slice(text.as_bytes());
    frame.into()
}

/// A socket written without blocking (the hub's [`crate::sock::Wire`]).
pub trait TryWrite {
    /// Writes what the socket takes now: the count, or `WouldBlock`.
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize>;
    /// The same for several buffers in order.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize>;
}

/// What a frame carries.
enum Text {
    /// One message: its shared bytes, and its whole frame if it was built.
    One(Arc<str>, Option<Arc<[u8]>>),
    /// Several messages joined by `\n`.
    Joined(String),
}

/// The largest frame a batch joins messages into (a single larger message
/// still goes alone). Well under the 1 MiB that common WebSocket clients
/// accept by default (Python's `websockets`), so a viewer catching up on a
/// long replay gets several frames it can read instead of one it must
/// refuse; large enough that a viewer behind still gets hundreds of
/// messages per frame.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Whether a message goes in a frame of its own: the answer to `subscribe`
/// and the snapshot that follows it. A subscription's first two reads are
/// then one message each, as a client that forgot to split frames on `\n`
/// expects; the contract allows either, and events still share frames.
fn stands_alone(item: &OutItem) -> bool {
    const SUBSCRIBED: usize = type_index("subscribed");
    const SNAPSHOT: usize = type_index("operation_list");
    let i = Metrics::sent_index(item);
    i == SUBSCRIBED || i == SNAPSHOT
}

/// The index of a type in [`SERVER_TYPES`] (at compile time).
const fn type_index(name: &str) -> usize {
    let mut i = 0;
    while i < SERVER_TYPES.len() {
        if const_eq(SERVER_TYPES[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("not a server message type")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The text of one outgoing frame, already counted as sent.
pub struct Batch {
    text: Text,
    /// The oldest hub-receive stamp of a live event in the frame, if any.
    oldest: Option<u64>,
}

impl Batch {
    /// Takes the items from the front of `items` into one frame of at most
    /// [`MAX_FRAME_BYTES`] (always at least one item, however large),
    /// leaving the rest in `items` for the next frame, and counts the
    /// messages, the frame and its bytes. None when `items` is empty.
    pub fn take(items: &mut Vec<OutItem>, m: &Metrics) -> Option<Batch> {
        if items.is_empty() {
            return None;
        }
        let mut size = 0usize;
        let mut fit = 0;
        for (n, item) in items.iter().enumerate() {
            let alone = stands_alone(item);
            size += item.bytes.len() + usize::from(n > 0);
            if n > 0 && (alone || size > MAX_FRAME_BYTES) {
                break;
            }
            fit += 1;
            if alone {
                break;
            }
        }
        let fit = fit.max(1);
        if fit < items.len() {
            let rest = items.split_off(fit);
            let mut head = std::mem::replace(items, rest);
            return Batch::take_all(&mut head, m);
        }
        Batch::take_all(items, m)
    }

    fn take_all(items: &mut Vec<OutItem>, m: &Metrics) -> Option<Batch> {
        m.messages_sent.inc_by(items.len() as u64);
        m.messages_per_frame.observe(items.len() as f64);
        let mut by_type = [0u64; SERVER_TYPES.len()];
        // The oldest live event of the frame (stamps grow with time).
        let mut oldest = u64::MAX;
        for item in items.iter() {
            by_type[Metrics::sent_index(item)] += 1;
            if item.stamp != 0 && item.counted {
                oldest = oldest.min(item.stamp);
            }
        }
        let text = if items.len() == 1 {
            let item = items.pop().expect("one item");
            Text::One(item.bytes, item.wire)
        } else {
            // Exactly the frame's length: a `String` whose capacity equals
            // its length becomes a message's bytes without another copy.
            let size = items.iter().map(|i| i.bytes.len() + 1).sum::<usize>() - 1;
            let mut joined = String::with_capacity(size);
            for (i, item) in items.drain(..).enumerate() {
                if i > 0 {
                    joined.push('\n');
                }
                joined.push_str(&item.bytes);
            }
            Text::Joined(joined)
        };
        let batch = Batch {
            text,
            oldest: (oldest != u64::MAX).then_some(oldest),
        };
        m.frames_sent.inc();
        m.bytes_sent.inc_by(batch.as_str().len() as u64);
        m.add_sent(&by_type);
        Some(batch)
    }

    /// The frame's text.
    pub fn as_str(&self) -> &str {
        match &self.text {
            Text::One(s, _) => s,
            Text::Joined(s) => s,
        }
    }

    /// The frame's text as an owned string (copied only for a single message).
    pub fn into_string(self) -> String {
        match self.text {
            Text::One(s, _) => s.to_string(),
            Text::Joined(s) => s,
        }
    }

    /// What to record once the frame is written.
    pub fn receipt(&self) -> Receipt {
        Receipt(self.oldest)
    }

    /// Writes the frame (header and text) to `to` without blocking; returns
    /// the write's result and the bytes it did not take (a copy), to be
    /// written later in order.
    pub fn try_write_to(&self, to: &impl TryWrite) -> (std::io::Result<usize>, Vec<u8>) {
        let result = self.try_write_some(to);
        let (head, text) = self.rest(*result.as_ref().unwrap_or(&0));
        let mut rest = Vec::with_capacity(head.len() + text.len());
        rest.extend_from_slice(&head);
        rest.extend_from_slice(text);
        (result, rest)
    }

    /// Writes what `to` takes of the frame without blocking; returns how
    /// many bytes it took. What is left stays here ([`Batch::rest`]).
    pub fn try_write_some(&self, to: &impl TryWrite) -> std::io::Result<usize> {
        if let Text::One(_, Some(frame)) = &self.text {
            return to.try_write(frame);
        }
        let text = self.as_str().as_bytes();
        let (h, n) = text_header(text.len());
        to.try_write_vectored(&[IoSlice::new(&h[..n]), IoSlice::new(text)])
    }

    /// The frame's bytes from `done` on, borrowed where they are: what is
    /// left of its header (a few bytes) and of its text. A big frame
    /// waiting for a slow reader is then never copied.
    pub fn rest(&self, done: usize) -> (Vec<u8>, &[u8]) {
        if let Text::One(_, Some(frame)) = &self.text {
            return (Vec::new(), &frame[done.min(frame.len())..]);
        }
        let text = self.as_str().as_bytes();
        let (h, n) = text_header(text.len());
        if done < n {
            (h[done..n].to_vec(), text)
        } else {
            (Vec::new(), &text[(done - n).min(text.len())..])
        }
    }
}

/// Records a written frame's end-to-end latency (of its oldest live event).
#[must_use = "record it once the frame is written"]
pub struct Receipt(Option<u64>);

impl Receipt {
    /// Observes the latency now, if the frame carried a live event.
    pub fn record(self, m: &Metrics) {
        if self.0.is_some() {
            self.record_at(m, crate::clock::stamp());
        }
    }

    /// Observes the latency at `now` (a [`crate::clock::stamp`] just read).
    pub fn record_at(self, m: &Metrics, now: u64) {
        if let Some(stamp) = self.0 {
            m.e2e_seconds
                .observe(now.saturating_sub(stamp) as f64 / 1e9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> OutItem {
        OutItem::message(text.into())
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(&text_header(0).0[..text_header(0).1], &[0x81, 0]);
        assert_eq!(&text_header(125).0[..2], &[0x81, 125]);
        assert_eq!(&text_header(126).0[..4], &[0x81, 126, 0, 126]);
        assert_eq!(text_header(65_535).1, 4);
        assert_eq!(
            &text_header(65_536).0[..10],
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn the_subscribe_answer_and_the_snapshot_go_in_frames_of_their_own() {
        let m = Metrics::new();
        let mut items = vec![
            item(r#"{"type":"heartbeat"}"#),
            item(r#"{"type":"subscribed"}"#),
            item(r#"{"type":"operation_list"}"#),
            item(r#"{"type":"progress_update","a":1}"#),
            item(r#"{"type":"progress_update","a":2}"#),
        ];
        let mut frames = Vec::new();
        while let Some(b) = Batch::take(&mut items, &m) {
            frames.push(b.as_str().split('\n').count());
        }
        assert_eq!(frames, vec![1, 1, 1, 2]);
    }

    #[test]
    fn a_batch_stops_at_the_frame_limit_and_leaves_the_rest_in_order() {
        let m = Metrics::new();
        let big = "x".repeat(100 * 1024);
        let mut items: Vec<OutItem> = (0..7).map(|i| item(&format!("{i}{big}"))).collect();
        let mut frames = Vec::new();
        while let Some(b) = Batch::take(&mut items, &m) {
            assert!(b.as_str().len() <= MAX_FRAME_BYTES, "{}", b.as_str().len());
            frames.push(
                b.as_str()
                    .split('\n')
                    .map(|t| t.as_bytes()[0])
                    .collect::<Vec<_>>(),
            );
        }
        // Two ~100 KiB messages per frame, every one once, in order.
        assert_eq!(
            frames,
            vec![
                vec![b'0', b'1'],
                vec![b'2', b'3'],
                vec![b'4', b'5'],
                vec![b'6']
            ]
        );
        // A message larger than the limit still goes, alone.
        let huge = "y".repeat(MAX_FRAME_BYTES + 1);
        let mut items = vec![item(&huge), item("{}")];
        assert_eq!(
            Batch::take(&mut items, &m).unwrap().as_str().len(),
            huge.len()
        );
        assert_eq!(Batch::take(&mut items, &m).unwrap().as_str(), "{}");
        assert!(items.is_empty());
    }

    #[test]
    fn a_batch_joins_messages_with_newlines_and_counts_them() {
        let m = Metrics::new();
        let mut items = vec![item("{\"a\":1}"), item("{\"b\":2}")];
        let b = Batch::take(&mut items, &m).expect("two items");
        assert!(items.is_empty());
        assert_eq!(b.as_str(), "{\"a\":1}\n{\"b\":2}");
        assert_eq!(m.messages_sent.get(), 2);
        assert_eq!(m.frames_sent.get(), 1);
        assert!(Batch::take(&mut items, &m).is_none());
    }

    /// A socket that takes `n` bytes (or fails with `WouldBlock` if None)
    /// and records which call was used.
    struct Takes(Option<usize>, std::cell::Cell<&'static str>);

    impl TryWrite for Takes {
        fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.set("write");
            self.0
                .map(|n| n.min(buf.len()))
                .ok_or_else(|| std::io::ErrorKind::WouldBlock.into())
        }
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            self.1.set("writev");
            let len = bufs.iter().map(|b| b.len()).sum::<usize>();
            self.0
                .map(|n| n.min(len))
                .ok_or_else(|| std::io::ErrorKind::WouldBlock.into())
        }
    }

    #[test]
    fn what_a_short_write_leaves_is_the_rest_of_the_frame() {
        let m = Metrics::new();
        let text = "x".repeat(300);
        let whole = single(&text).to_vec();
        assert_eq!(whole.len(), 4 + 300);
        assert_eq!(&whole[..4], &[0x81, 126, 1, 44]);
        // Built on the spot (two buffers) or shared (one write): the same bytes.
        for (item, call) in [
            (item(&text), "writev"),
            (item(&text).with_wire(single(&text)), "write"),
        ] {
            let b = Batch::take(&mut vec![item], &m).expect("one item");
            for cut in [0, 1, 3, 4, 5, 303, 304] {
                let to = Takes(Some(cut), std::cell::Cell::new(""));
                let (r, rest) = b.try_write_to(&to);
                assert_eq!(r.unwrap(), cut);
                assert_eq!(rest, whole[cut..], "cut at {cut}");
                assert_eq!(to.1.get(), call);
            }
            let (r, rest) = b.try_write_to(&Takes(None, std::cell::Cell::new("")));
            assert!(r.is_err());
            assert_eq!(rest, whole);
        }
    }

    #[test]
    fn a_joined_frame_is_written_with_its_header() {
        let m = Metrics::new();
        let mut items = vec![item("a"), item("bc")];
        let b = Batch::take(&mut items, &m).expect("two items");
        let (r, rest) = b.try_write_to(&Takes(Some(1), std::cell::Cell::new("")));
        assert_eq!(r.unwrap(), 1);
        assert_eq!(rest, [4, b'a', b'\n', b'b', b'c']);
    }
}
