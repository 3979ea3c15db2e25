//! A viewer connection's bounded outgoing queue, with conflation when the
//! viewer falls behind.
//!
//! The hub encodes each message once and pushes the shared bytes into the
//! [`OutQueue`] of every interested viewer; the connection's writer drains
//! everything queued into one frame. The queue owns two policies:
//!
//! - **Conflation.** Only while the counted bytes queued exceed
//!   [`OutQueueConfig::conflate_after_bytes`] (a viewer that keeps up sees
//!   every event), a new *conflatable* item (a progress update) for operation
//!   key `K` supersedes the queued item for `K`, provided that item is the
//!   latest queued item for `K` and is itself conflatable. Lifecycle items
//!   (started, completed, failed, ...) carry the same key but are not
//!   conflatable: they are never dropped or replaced, and they block the
//!   replacement of progress queued before them.
//!
//!   The superseded item is removed and the new one is appended at the end
//!   (not written into the old slot). So the drained sequence is always a
//!   **subsequence of the pushed sequence**: events stay in offset order per
//!   namespace, and a viewer (or an SSE `Last-Event-ID`) that resumes from
//!   the last offset it received can never skip an event that was still
//!   queued behind a newer one. What a viewer misses is only progress
//!   superseded by a later event of the same operation (each event carries
//!   the full operation state).
//! - **Slow limit.** A counted push that would bring the counted bytes over
//!   [`OutQueueConfig::slow_limit_bytes`] returns [`PushOutcome::Slow`] and
//!   is *not* queued. The queue then stays slow: every later push also
//!   returns `Slow` and queues nothing, so the viewer never receives an event
//!   after a gap. The caller sends `SLOW_CLIENT` and closes the connection
//!   (close code 1013); the viewer resumes from the last offset it received
//!   and gets the rest by replay or snapshot. Nothing is lost silently.
//!
//! Items pushed with `counted: false` (the replay or snapshot sent at
//! subscribe time) are never counted in [`OutQueue::bytes`], never trigger
//! `Slow` or conflation themselves, but can be superseded like any other
//! conflatable item.
//!
//! `push` is O(1) amortised: a `VecDeque` of slots (a superseded item leaves
//! a tombstone, compacted away once tombstones outnumber live items) and a
//! `HashMap` from key to the slot of its latest queued item, cleared on drain.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Default [`OutQueueConfig::conflate_after_bytes`]: 64 KiB.
pub const DEFAULT_CONFLATE_AFTER_BYTES: usize = 64 * 1024;
/// Default [`OutQueueConfig::slow_limit_bytes`]: 1 MiB (as Centrifugo).
pub const DEFAULT_SLOW_LIMIT_BYTES: usize = 1024 * 1024;

/// The key of an operation in a viewer's queue: `namespace + "\0" + operation_id`.
pub fn op_key(namespace: &str, operation_id: &str) -> Arc<str> {
    let mut key = String::with_capacity(namespace.len() + 1 + operation_id.len());
    key.push_str(namespace);
    key.push('\u{0}');
    key.push_str(operation_id);
    key.into()
}

/// What the queue holds: the encoded message plus what conflation and limits need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutItem {
    /// The encoded JSON message, shared by all viewers.
    pub bytes: Arc<str>,
    /// The operation this message is about ([`op_key`]), or None for messages
    /// about no operation (heartbeat, status, snapshot, replies).
    pub key: Option<Arc<str>>,
    /// Whether a later conflatable item with the same key may supersede this
    /// one (true only for progress updates; lifecycle events are false). An
    /// item without a key is never conflated, whatever this says.
    pub conflatable: bool,
    /// The event's namespace offset (the SSE transport uses it), None for non-events.
    pub offset: Option<u64>,
    /// False for replay items pushed at subscribe time (not counted against the limits).
    pub counted: bool,
    /// An opaque stamp of when the hub received what caused this item (the
    /// server's monotonic clock; 0 when none). The queue never reads it; the
    /// writer uses it for the end-to-end latency metric.
    pub stamp: u64,
    /// An opaque tag set once by whoever encoded the message, so that each
    /// viewer's writer need not read the bytes again (the server: the
    /// message type's index for its per-type counters). The queue never
    /// reads it; [`OutItem::UNTAGGED`] when not set.
    pub tag: u8,
    /// The message as the transport sends it on its own (the server: a
    /// WebSocket frame), built once by whoever encoded it so that every
    /// viewer's socket is written the same shared bytes. The queue never
    /// reads it.
    pub wire: Option<Arc<[u8]>>,
}

impl OutItem {
    /// The [`OutItem::tag`] of an item nobody tagged.
    pub const UNTAGGED: u8 = u8::MAX;

    /// A live progress update for `key`: counted and conflatable.
    pub fn progress(bytes: Arc<str>, key: Arc<str>, offset: u64) -> Self {
        OutItem {
            bytes,
            key: Some(key),
            conflatable: true,
            offset: Some(offset),
            counted: true,
            stamp: 0,
            tag: OutItem::UNTAGGED,
            wire: None,
        }
    }

    /// A live lifecycle event for `key` (started, completed, failed,
    /// canceled, stalled, resumed): counted, never conflated, and blocks the
    /// conflation of progress queued before it.
    pub fn lifecycle(bytes: Arc<str>, key: Arc<str>, offset: u64) -> Self {
        OutItem {
            bytes,
            key: Some(key),
            conflatable: false,
            offset: Some(offset),
            counted: true,
            stamp: 0,
            tag: OutItem::UNTAGGED,
            wire: None,
        }
    }

    /// Any other message (heartbeat, status, error, reply, snapshot): counted, never conflated.
    pub fn message(bytes: Arc<str>) -> Self {
        OutItem {
            bytes,
            key: None,
            conflatable: false,
            offset: None,
            counted: true,
            stamp: 0,
            tag: OutItem::UNTAGGED,
            wire: None,
        }
    }

    /// The same item marked as replay (not counted against the limits).
    pub fn uncounted(mut self) -> Self {
        self.counted = false;
        self
    }

    /// The same item with its transport bytes (see [`OutItem::wire`]).
    pub fn with_wire(mut self, wire: Arc<[u8]>) -> Self {
        self.wire = Some(wire);
        self
    }

    /// The same item with a tag (see [`OutItem::tag`]).
    pub fn with_tag(mut self, tag: u8) -> Self {
        self.tag = tag;
        self
    }

    /// The same item with a receive stamp (see [`OutItem::stamp`]).
    pub fn with_stamp(mut self, stamp: u64) -> Self {
        self.stamp = stamp;
        self
    }

    /// The same item with an offset (e.g. a snapshot message that carries one).
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    fn counted_len(&self) -> usize {
        if self.counted {
            self.bytes.len()
        } else {
            0
        }
    }
}

/// The least backlog of replays and snapshots a queue takes before
/// [`OutQueue::backlog_full`] (see there).
pub const BACKLOG_FLOOR_BYTES: usize = 16 << 20;

/// Limits of one viewer's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutQueueConfig {
    /// Conflate progress updates only while more counted bytes than this are
    /// queued. Default [`DEFAULT_CONFLATE_AFTER_BYTES`] (64 KiB).
    pub conflate_after_bytes: usize,
    /// A push that would queue more counted bytes than this makes the viewer
    /// slow. Default [`DEFAULT_SLOW_LIMIT_BYTES`] (1 MiB).
    pub slow_limit_bytes: usize,
}

impl Default for OutQueueConfig {
    fn default() -> Self {
        OutQueueConfig {
            conflate_after_bytes: DEFAULT_CONFLATE_AFTER_BYTES,
            slow_limit_bytes: DEFAULT_SLOW_LIMIT_BYTES,
        }
    }
}

/// What [`OutQueue::push`] did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Appended.
    Queued,
    /// Appended, and an older queued item with the same key was dropped.
    Conflated,
    /// Not queued: the viewer is over the limit (now or earlier). The caller
    /// sends `SLOW_CLIENT` and closes; the viewer resumes from its last offset.
    Slow,
}

/// Where the latest queued item of a key sits.
#[derive(Clone, Copy, Debug)]
struct Latest {
    slot: usize,
    conflatable: bool,
}

/// A viewer connection's outgoing queue (see the module docs).
#[derive(Debug)]
pub struct OutQueue {
    cfg: OutQueueConfig,
    /// Queued items in push order; None marks a superseded item.
    slots: VecDeque<Option<OutItem>>,
    /// Key -> slot of its latest queued item. Only keys of queued items,
    /// and only kept while `tracking`: a viewer that keeps up (the common
    /// case) never hashes a key.
    latest: HashMap<Arc<str>, Latest>,
    /// Whether `latest` is maintained: from the first push that finds the
    /// queue over `conflate_after_bytes` until the next drain.
    tracking: bool,
    live: usize,
    bytes: usize,
    /// Bytes of uncounted items (replays, snapshots) queued.
    backlog: usize,
    conflated_total: u64,
    slow: bool,
}

impl Default for OutQueue {
    fn default() -> Self {
        Self::new(OutQueueConfig::default())
    }
}

impl OutQueue {
    /// An empty queue with these limits.
    pub fn new(cfg: OutQueueConfig) -> Self {
        OutQueue {
            cfg,
            slots: VecDeque::new(),
            latest: HashMap::new(),
            tracking: false,
            live: 0,
            bytes: 0,
            backlog: 0,
            conflated_total: 0,
            slow: false,
        }
    }

    /// The limits this queue was built with.
    pub fn config(&self) -> OutQueueConfig {
        self.cfg
    }

    /// Queue an item, conflating or refusing it as the module docs describe.
    ///
    /// ```
    /// use hub_core::outqueue::{op_key, OutItem, OutQueue, OutQueueConfig, PushOutcome};
    /// let mut q = OutQueue::new(OutQueueConfig { conflate_after_bytes: 0, slow_limit_bytes: 1 << 20 });
    /// let k = op_key("default", "job-1");
    /// assert_eq!(q.push(OutItem::progress("{\"p\":1}".into(), k.clone(), 1)), PushOutcome::Queued);
    /// assert_eq!(q.push(OutItem::progress("{\"p\":2}".into(), k.clone(), 2)), PushOutcome::Conflated);
    /// let out = q.drain();
    /// assert_eq!(out.len(), 1);
    /// assert_eq!(out[0].offset, Some(2));
    /// ```
    pub fn push(&mut self, item: OutItem) -> PushOutcome {
        if self.slow {
            return PushOutcome::Slow;
        }
        if !self.tracking && self.bytes > self.cfg.conflate_after_bytes {
            // Behind for the first time since the last drain: index the
            // queue once, then keep the index up to date.
            self.tracking = true;
            self.rebuild_latest();
        }
        let superseded = match &item.key {
            Some(key)
                if item.counted
                    && item.conflatable
                    && self.bytes > self.cfg.conflate_after_bytes =>
            {
                self.latest
                    .get(key)
                    .filter(|latest| latest.conflatable)
                    .map(|latest| latest.slot)
            }
            _ => None,
        };
        let freed = superseded.map_or(0, |slot| {
            self.slots[slot].as_ref().map_or(0, OutItem::counted_len)
        });
        // An empty queue takes any one item: a viewer with nothing waiting
        // is not behind, however large the event (a producer may send up to
        // `max_message_size`, and an event carries its fields twice).
        if item.counted
            && self.bytes > freed
            && self.bytes - freed + item.bytes.len() > self.cfg.slow_limit_bytes
        {
            self.slow = true;
            return PushOutcome::Slow;
        }
        if let Some(slot) = superseded {
            if let Some(old) = self.slots[slot].as_ref().filter(|i| !i.counted) {
                self.backlog -= old.bytes.len();
            }
            self.slots[slot] = None;
            self.live -= 1;
            self.bytes -= freed;
            self.conflated_total += 1;
        }
        self.bytes += item.counted_len();
        if !item.counted {
            self.backlog += item.bytes.len();
        }
        if let Some(key) = item.key.as_ref().filter(|_| self.tracking) {
            let latest = Latest {
                slot: self.slots.len(),
                conflatable: item.conflatable,
            };
            self.latest.insert(key.clone(), latest);
        }
        self.slots.push_back(Some(item));
        self.live += 1;
        if superseded.is_some() {
            self.maybe_compact();
            PushOutcome::Conflated
        } else {
            PushOutcome::Queued
        }
    }

    /// Takes everything queued, in order.
    pub fn drain(&mut self) -> Vec<OutItem> {
        let mut out = Vec::with_capacity(self.live);
        self.drain_into(&mut out);
        out
    }

    /// Appends everything queued, in order, to `out` (reusing its allocation).
    pub fn drain_into(&mut self, out: &mut Vec<OutItem>) {
        out.reserve(self.live);
        out.extend(self.slots.drain(..).flatten());
        self.latest.clear();
        self.tracking = false;
        self.live = 0;
        self.bytes = 0;
        self.backlog = 0;
    }

    /// Number of items queued.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Counted bytes queued (replay items excluded).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of uncounted items (replays and snapshots) queued and not yet
    /// taken by the writer. They do not count against the limits, so that a
    /// viewer can catch up however far behind it resumes; a caller bounds
    /// them by queueing no other replay or snapshot while
    /// [`OutQueue::backlog_full`] (a peer that subscribes again and again
    /// without reading).
    pub fn backlog_bytes(&self) -> usize {
        self.backlog
    }

    /// Whether [`OutQueue::backlog_bytes`] is past what one more replay or
    /// snapshot may be queued behind: `max(16 MiB, 4 x slow_limit_bytes)`.
    pub fn backlog_full(&self) -> bool {
        self.backlog > BACKLOG_FLOOR_BYTES.max(self.cfg.slow_limit_bytes.saturating_mul(4))
    }

    /// How many items conflation has dropped over the queue's life.
    pub fn conflated_total(&self) -> u64 {
        self.conflated_total
    }

    /// Whether a push has been refused as slow; from then on every push is.
    pub fn is_slow(&self) -> bool {
        self.slow
    }

    /// Drops tombstones once they outnumber live items, keeping memory
    /// proportional to what is queued; O(len), so O(1) amortised per push.
    fn maybe_compact(&mut self) {
        let tombstones = self.slots.len() - self.live;
        if tombstones <= self.live.max(32) {
            return;
        }
        self.slots.retain(Option::is_some);
        self.rebuild_latest();
    }

    /// Indexes every queued item's key (the latest slot wins).
    fn rebuild_latest(&mut self) {
        self.latest.clear();
        for (slot, item) in self.slots.iter().enumerate() {
            if let Some(OutItem {
                key: Some(key),
                conflatable,
                ..
            }) = item
            {
                let latest = Latest {
                    slot,
                    conflatable: *conflatable,
                };
                self.latest.insert(key.clone(), latest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(conflate_after_bytes: usize, slow_limit_bytes: usize) -> OutQueueConfig {
        OutQueueConfig {
            conflate_after_bytes,
            slow_limit_bytes,
        }
    }

    fn key(n: u8) -> Arc<str> {
        op_key("ns", &format!("op{n}"))
    }

    fn progress(n: u8, offset: u64, len: usize) -> OutItem {
        OutItem::progress("p".repeat(len).into(), key(n), offset)
    }

    fn lifecycle(n: u8, offset: u64, len: usize) -> OutItem {
        OutItem::lifecycle("l".repeat(len).into(), key(n), offset)
    }

    fn offsets(items: &[OutItem]) -> Vec<Option<u64>> {
        items.iter().map(|i| i.offset).collect()
    }

    impl OutQueue {
        /// Internal invariants, checked after every step of the tests.
        fn check(&self) {
            let live: Vec<&OutItem> = self.slots.iter().flatten().collect();
            assert_eq!(live.len(), self.live);
            assert_eq!(
                self.bytes,
                live.iter().map(|i| i.counted_len()).sum::<usize>()
            );
            assert_eq!(
                self.backlog,
                live.iter()
                    .filter(|i| !i.counted)
                    .map(|i| i.bytes.len())
                    .sum::<usize>()
            );
            assert!(self.latest.len() <= self.live);
            if !self.tracking {
                assert!(self.latest.is_empty());
            }
            assert!(self.slots.len() - self.live <= self.live.max(32) + 1);
            for (k, l) in &self.latest {
                let item = self.slots[l.slot]
                    .as_ref()
                    .expect("latest points at a live item");
                assert_eq!(item.key.as_ref(), Some(k));
                assert_eq!(item.conflatable, l.conflatable);
                let later = self.slots.iter().skip(l.slot + 1).flatten();
                assert!(later.filter(|i| i.key.as_ref() == Some(k)).count() == 0);
            }
        }
    }

    #[test]
    fn op_key_separates_namespace_and_id() {
        assert_eq!(&*op_key("a", "b"), "a\u{0}b");
        assert_ne!(op_key("a", "bc"), op_key("ab", "c"));
    }

    #[test]
    fn no_conflation_while_keeping_up() {
        let mut q = OutQueue::new(cfg(100, 1000));
        for o in 1..=10 {
            assert_eq!(q.push(progress(1, o, 10)), PushOutcome::Queued);
        }
        // 100 bytes queued: not over the threshold yet.
        assert_eq!(q.bytes(), 100);
        assert_eq!(q.push(progress(1, 11, 10)), PushOutcome::Queued);
        // 110 > 100: now the latest progress of op1 is superseded.
        assert_eq!(q.push(progress(1, 12, 10)), PushOutcome::Conflated);
        assert_eq!(q.len(), 11);
        assert_eq!(q.conflated_total(), 1);
        let out = q.drain();
        assert_eq!(out.last().unwrap().offset, Some(12));
        assert!(!out.iter().any(|i| i.offset == Some(11)));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    /// Replays and snapshots are not counted against the limits, but their
    /// bytes are tracked until the writer takes them, and past
    /// max(16 MiB, 4 x the slow limit) the backlog is full.
    #[test]
    fn the_uncounted_backlog_is_tracked_until_drained() {
        let mut q = OutQueue::new(cfg(0, 1 << 20));
        let big = || OutItem::message("s".repeat(6 << 20).into()).uncounted();
        q.push(progress(1, 1, 10));
        assert_eq!(q.push(big()), PushOutcome::Queued);
        assert_eq!(q.push(big()), PushOutcome::Queued);
        assert_eq!((q.bytes(), q.backlog_bytes()), (10, 12 << 20));
        assert!(!q.backlog_full());
        q.push(big());
        assert!(q.backlog_full(), "18 MiB > 16 MiB");
        q.check();
        q.drain();
        assert_eq!(q.backlog_bytes(), 0);
        assert!(!q.backlog_full());
        let mut q = OutQueue::new(cfg(0, 8 << 20));
        for _ in 0..5 {
            q.push(big());
        }
        assert!(!q.backlog_full(), "30 MiB <= 4 x 8 MiB");
    }

    #[test]
    fn conflation_appends_and_keeps_others_in_order() {
        let mut q = OutQueue::new(cfg(0, 1 << 20));
        q.push(progress(1, 1, 5));
        q.push(progress(2, 2, 5));
        q.push(OutItem::message("hb".into()));
        assert_eq!(q.push(progress(1, 3, 7)), PushOutcome::Conflated);
        assert_eq!(q.bytes(), 5 + 2 + 7);
        let out = q.drain();
        assert_eq!(offsets(&out), vec![Some(2), None, Some(3)]);
        assert_eq!(out[2].bytes.len(), 7);
    }

    #[test]
    fn lifecycle_blocks_and_is_never_replaced() {
        let mut q = OutQueue::new(cfg(0, 1 << 20));
        q.push(progress(1, 1, 5));
        q.push(lifecycle(1, 2, 5));
        // The latest item for op1 is a lifecycle event: append, drop nothing.
        assert_eq!(q.push(progress(1, 3, 5)), PushOutcome::Queued);
        assert_eq!(q.push(progress(1, 4, 5)), PushOutcome::Conflated);
        assert_eq!(q.push(lifecycle(1, 5, 5)), PushOutcome::Queued);
        assert_eq!(q.push(lifecycle(1, 6, 5)), PushOutcome::Queued);
        q.check();
        let out = q.drain();
        assert_eq!(
            offsets(&out),
            vec![Some(1), Some(2), Some(4), Some(5), Some(6)]
        );
    }

    #[test]
    fn replay_items_neither_count_nor_conflate() {
        let mut q = OutQueue::new(cfg(0, 10));
        // Far over both limits, but uncounted.
        for o in 1..=50 {
            assert_eq!(q.push(progress(1, o, 100).uncounted()), PushOutcome::Queued);
        }
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.len(), 50);
        // A live item still only needs its own bytes under the slow limit;
        // nothing counted is queued, so no conflation either.
        assert_eq!(q.push(progress(1, 51, 4)), PushOutcome::Queued);
        assert_eq!(q.push(progress(1, 52, 4)), PushOutcome::Conflated);
        assert_eq!(q.bytes(), 4);
        assert_eq!(q.len(), 51);
        q.check();
    }

    #[test]
    fn slow_is_sticky_and_loses_nothing_queued() {
        let mut q = OutQueue::new(cfg(1000, 20));
        assert_eq!(q.push(lifecycle(1, 1, 10)), PushOutcome::Queued);
        assert_eq!(q.push(lifecycle(2, 2, 10)), PushOutcome::Queued);
        assert_eq!(q.push(OutItem::message("x".into())), PushOutcome::Slow);
        assert!(q.is_slow());
        // Even small or uncounted items are refused now: no event after a gap.
        assert_eq!(
            q.push(OutItem::message("".into()).uncounted()),
            PushOutcome::Slow
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.bytes(), 20);
        assert_eq!(offsets(&q.drain()), vec![Some(1), Some(2)]);
        assert_eq!(q.push(lifecycle(1, 3, 1)), PushOutcome::Slow);
    }

    #[test]
    fn an_empty_queue_takes_one_item_larger_than_the_limit() {
        let mut q = OutQueue::new(cfg(1000, 20));
        assert_eq!(q.push(lifecycle(1, 1, 50)), PushOutcome::Queued);
        // Behind now: the next one is too much.
        assert_eq!(q.push(lifecycle(2, 2, 1)), PushOutcome::Slow);
        let mut q = OutQueue::new(cfg(1000, 20));
        assert_eq!(q.push(lifecycle(1, 1, 50)), PushOutcome::Queued);
        q.drain();
        assert_eq!(
            q.push(lifecycle(2, 2, 50)),
            PushOutcome::Queued,
            "drained: not behind"
        );
    }

    #[test]
    fn conflation_can_avoid_slow() {
        let mut q = OutQueue::new(cfg(0, 20));
        q.push(progress(1, 1, 10));
        q.push(progress(2, 2, 10));
        // Replacing op1's 10 bytes with 10 bytes stays at the limit.
        assert_eq!(q.push(progress(1, 3, 10)), PushOutcome::Conflated);
        // Growing it does not fit: refused, queue unchanged.
        assert_eq!(q.push(progress(1, 4, 11)), PushOutcome::Slow);
        assert_eq!(offsets(&q.drain()), vec![Some(2), Some(3)]);
    }

    #[test]
    fn tombstones_stay_bounded() {
        let mut q = OutQueue::new(cfg(0, usize::MAX));
        let mut offset = 0;
        for round in 0..10_000u64 {
            for n in 0..4u8 {
                offset += 1;
                q.push(progress(n, offset, 8));
            }
            if round % 100 == 0 {
                q.push(lifecycle(9, offset, 3));
            }
            assert!(q.slots.len() <= 2 * q.len() + 33);
        }
        q.check();
        let out = q.drain();
        let tail: Vec<_> = out
            .iter()
            .rev()
            .take(4)
            .map(|i| i.offset.unwrap())
            .collect();
        assert_eq!(tail, vec![offset, offset - 1, offset - 2, offset - 3]);
        assert!(q.latest.is_empty());
    }

    #[test]
    fn drain_into_reuses_the_vec() {
        let mut q = OutQueue::default();
        assert_eq!(q.config(), OutQueueConfig::default());
        let mut out = Vec::with_capacity(8);
        q.push(progress(1, 1, 3));
        q.push(lifecycle(1, 2, 3));
        q.drain_into(&mut out);
        q.push(progress(1, 3, 3));
        q.drain_into(&mut out);
        assert_eq!(offsets(&out), vec![Some(1), Some(2), Some(3)]);
        assert!(q.is_empty());
    }

    /// An op for the property tests: (kind, key index, length, counted), or a drain.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u8, u8, usize, bool),
        Drain,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            12 => (0u8..4, 0u8..4, 0usize..40, prop::bool::weighted(0.85))
                .prop_map(|(t, k, l, c)| Op::Push(t, k, l, c)),
            1 => Just(Op::Drain),
        ];
        prop::collection::vec(op, 0..120)
    }

    /// Builds item number `seq` (its offset) for a Push op.
    fn make(seq: u64, kind: u8, k: u8, len: usize, counted: bool) -> OutItem {
        // Exactly `len` bytes; items are told apart by their offset.
        let bytes: Arc<str> = "x".repeat(len).into();
        let item = match kind {
            0 | 1 => OutItem::progress(bytes, key(k), seq),
            2 => OutItem::lifecycle(bytes, key(k), seq),
            _ => OutItem::message(bytes).with_offset(seq),
        };
        if counted {
            item
        } else {
            item.uncounted()
        }
    }

    /// Straightforward O(n) model of the same rules.
    fn model_push(
        cfg: OutQueueConfig,
        q: &mut Vec<OutItem>,
        slow: &mut bool,
        item: OutItem,
    ) -> PushOutcome {
        if *slow {
            return PushOutcome::Slow;
        }
        let bytes: usize = q.iter().map(OutItem::counted_len).sum();
        let mut victim = None;
        if item.counted
            && item.conflatable
            && item.key.is_some()
            && bytes > cfg.conflate_after_bytes
        {
            if let Some(pos) = q.iter().rposition(|i| i.key == item.key) {
                if q[pos].conflatable {
                    victim = Some(pos);
                }
            }
        }
        let freed = victim.map_or(0, |p| q[p].counted_len());
        // Nothing else counted waiting: any one item fits.
        let behind = bytes - freed;
        if item.counted && behind > 0 && behind + item.bytes.len() > cfg.slow_limit_bytes {
            *slow = true;
            return PushOutcome::Slow;
        }
        if let Some(p) = victim {
            q.remove(p);
        }
        q.push(item);
        if victim.is_some() {
            PushOutcome::Conflated
        } else {
            PushOutcome::Queued
        }
    }

    proptest! {
        /// (a) Below conflate_after_bytes nothing is conflated and drain
        /// returns exactly what was pushed.
        #[test]
        fn below_threshold_is_lossless(ops in ops(), extra in 0usize..100) {
            let total: usize = ops.iter().map(|o| match o { Op::Push(_, _, l, true) => *l, _ => 0 }).sum();
            let mut q = OutQueue::new(cfg(total + extra, total + extra));
            let mut pushed = Vec::new();
            let mut drained = Vec::new();
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(t, k, l, c) => {
                        let item = make(seq as u64, t, k, l, c);
                        pushed.push(item.clone());
                        prop_assert_eq!(q.push(item), PushOutcome::Queued);
                    }
                    Op::Drain => q.drain_into(&mut drained),
                }
                q.check();
            }
            q.drain_into(&mut drained);
            prop_assert_eq!(q.conflated_total(), 0);
            prop_assert_eq!(drained, pushed);
        }

        /// (b) + (c) Against the model, and the delivery guarantees directly.
        #[test]
        fn matches_model_and_guarantees(
            ops in ops(),
            conflate_after in 0usize..200,
            slow_extra in 0usize..1000,
        ) {
            let cfg = cfg(conflate_after, conflate_after + slow_extra);
            let mut q = OutQueue::new(cfg);
            let mut model = Vec::new();
            let mut model_slow = false;
            let mut accepted = Vec::new();
            let mut drained = Vec::new();
            let mut conflated = 0;
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(t, k, l, c) => {
                        let item = make(seq as u64, t, k, l, c);
                        let got = q.push(item.clone());
                        let want = model_push(cfg, &mut model, &mut model_slow, item.clone());
                        prop_assert_eq!(got, want);
                        match got {
                            PushOutcome::Slow => prop_assert!(q.is_slow()),
                            PushOutcome::Conflated => { conflated += 1; accepted.push(item) }
                            PushOutcome::Queued => accepted.push(item),
                        }
                    }
                    Op::Drain => {
                        let before = q.len();
                        let got = q.drain();
                        prop_assert_eq!(got.len(), before);
                        prop_assert_eq!(&got, &model);
                        model.clear();
                        drained.extend(got);
                    }
                }
                q.check();
                // (c) bytes() is the sum of the counted queued items.
                prop_assert_eq!(q.bytes(), model.iter().map(OutItem::counted_len).sum::<usize>());
                prop_assert_eq!(q.len(), model.len());
            }
            drained.extend(q.drain());
            prop_assert_eq!(q.conflated_total(), conflated);
            prop_assert_eq!(accepted.len() - drained.len(), conflated as usize);

            // Globally a subsequence of what was accepted (offsets = push order).
            let offs: Vec<u64> = drained.iter().map(|i| i.offset.unwrap()).collect();
            prop_assert!(offs.windows(2).all(|w| w[0] < w[1]));
            for k in 0..4u8 {
                let kk = Some(key(k));
                let mine: Vec<&OutItem> = drained.iter().filter(|i| i.key == kk).collect();
                let pushed: Vec<&OutItem> = accepted.iter().filter(|i| i.key == kk).collect();
                // Ends with the last item accepted for the key.
                prop_assert_eq!(mine.last(), pushed.last());
                // Every non-conflatable item is there, in order.
                let must: Vec<&OutItem> = pushed.iter().copied().filter(|i| !i.conflatable).collect();
                let kept: Vec<&OutItem> = mine.iter().copied().filter(|i| !i.conflatable).collect();
                prop_assert_eq!(kept, must);
            }
            // Items without a key are never dropped.
            let keyless = |v: &Vec<OutItem>| v.iter().filter(|i| i.key.is_none()).cloned().collect::<Vec<_>>();
            prop_assert_eq!(keyless(&drained), keyless(&accepted));
        }
    }
}
