//! A subscription's overflow backlog: where updates wait once the
//! subscription's channel (`ClientConfig::event_buffer`) is full, so that a
//! slow consumer loses progress, never lifecycle events.
//!
//! **Rule**: a newer `progress_update` of an operation replaces that
//! operation's older pending `progress_update` only when nothing else for
//! that operation is pending after it; the old entry is removed and the new
//! one appended, so offsets stay in order. Everything else (lifecycle
//! events, snapshots, `Subscribed`, connection changes, refusals, cancel
//! results) is kept. Each replaced update is counted and reported as one
//! [`Update::Lagged`] before the next update handed out.
//!
//! **Bound**: at most `limit` entries (the client uses
//! [`OVERFLOW_FACTOR`] × `event_buffer`). Past it an update that cannot
//! replace a pending one is dropped and counted in the same `Lagged`; the
//! subscription's map stays exact either way.
//!
//! Pure: no channel, no clock. The caller pushes only while the channel is
//! full or the backlog is not empty, and the consumer pops only once the
//! channel is empty, which keeps the whole stream in order.

use std::collections::{BTreeMap, HashMap};

use crate::view::Update;

/// The backlog's bound as a multiple of the subscription channel's
/// capacity (`ClientConfig::event_buffer`).
pub const OVERFLOW_FACTOR: usize = 4;

/// The newest pending entry of one operation.
#[derive(Debug, Clone, Copy)]
struct Latest {
    /// Its key in `entries`.
    seq: u64,
    /// Whether it is a `progress_update` (one a newer one may replace).
    progress: bool,
}

/// Updates waiting for a full subscription channel, in order.
#[derive(Debug)]
pub struct Backlog {
    /// Pending updates by arrival number (removal from the middle is
    /// `O(log n)`).
    entries: BTreeMap<u64, Update>,
    next_seq: u64,
    /// Per operation, its newest pending event.
    latest: HashMap<String, Latest>,
    /// Updates replaced or dropped and not reported yet.
    skipped: u64,
    limit: usize,
}

impl Backlog {
    /// An empty backlog that holds at most `limit` updates (at least 1).
    pub fn new(limit: usize) -> Self {
        Backlog {
            entries: BTreeMap::new(),
            next_seq: 0,
            latest: HashMap::new(),
            skipped: 0,
            limit: limit.max(1),
        }
    }

    /// Nothing pending (no update and no unreported skip).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.skipped == 0
    }

    /// Updates pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Queue `u` behind everything pending (conflating a progress update,
    /// dropping past the bound).
    pub fn push(&mut self, u: Update) {
        let seq = self.next_seq;
        if let Update::Event(e) = &u {
            let progress = e.kind == "progress_update";
            let op = e.operation_id();
            if progress {
                if let Some(prev) = self.latest.get(op).filter(|l| l.progress) {
                    if self.entries.remove(&prev.seq).is_some() {
                        self.skipped += 1;
                        self.next_seq += 1;
                        self.latest.insert(
                            op.to_owned(),
                            Latest {
                                seq,
                                progress: true,
                            },
                        );
                        self.entries.insert(seq, u);
                        return;
                    }
                }
            }
            if self.entries.len() >= self.limit {
                self.skipped += 1;
                return;
            }
            self.latest.insert(op.to_owned(), Latest { seq, progress });
        } else {
            if self.entries.len() >= self.limit {
                self.skipped += 1;
                return;
            }
            if matches!(u, Update::Snapshot { .. } | Update::Subscribed { .. }) {
                // A new base: no progress before it may move after it.
                self.latest.clear();
            }
        }
        self.next_seq += 1;
        self.entries.insert(seq, u);
    }

    /// The next update to hand out: an [`Update::Lagged`] first when some
    /// were skipped, else the oldest pending one.
    pub fn pop(&mut self) -> Option<Update> {
        if self.skipped > 0 {
            return Some(Update::Lagged(std::mem::take(&mut self.skipped)));
        }
        let (seq, u) = self.entries.pop_first()?;
        if let Update::Event(e) = &u {
            let op = e.operation_id();
            if self.latest.get(op).is_some_and(|l| l.seq == seq) {
                self.latest.remove(op);
            }
        }
        Some(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerMessage;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(offset: u64, op: &str, kind: &str) -> Update {
        let state = if kind == "operation_completed" {
            "completed"
        } else {
            "running"
        };
        match ServerMessage::from_value(json!({
            "type": kind, "namespace": "default", "offset": offset, "timestamp": 1,
            "operation_id": op, "seq": offset, "progress": 1.0,
            "state": {"operation_id": op, "state": state, "progress": 1.0}
        })) {
            ServerMessage::Event(e) => Update::Event(e),
            m => panic!("{m:?}"),
        }
    }

    fn drain(b: &mut Backlog) -> Vec<Update> {
        std::iter::from_fn(|| b.pop()).collect()
    }

    fn offsets(out: &[Update]) -> Vec<u64> {
        out.iter()
            .filter_map(|u| match u {
                Update::Event(e) => Some(e.offset),
                _ => None,
            })
            .collect()
    }

    fn lagged(out: &[Update]) -> u64 {
        out.iter()
            .map(|u| match u {
                Update::Lagged(n) => *n,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn progress_replaces_the_pending_progress_of_its_operation() {
        let mut b = Backlog::new(100);
        b.push(event(1, "a", "progress_update"));
        b.push(event(2, "b", "progress_update"));
        b.push(event(3, "a", "progress_update"));
        assert_eq!(b.len(), 2);
        let out = drain(&mut b);
        assert_eq!(out[0], Update::Lagged(1));
        assert_eq!(offsets(&out), vec![2, 3], "moved to the end, in order");
        assert!(b.is_empty());
    }

    #[test]
    fn progress_never_jumps_over_a_lifecycle_event_of_its_operation() {
        let mut b = Backlog::new(100);
        b.push(event(1, "a", "progress_update"));
        b.push(event(2, "a", "operation_stalled"));
        b.push(event(3, "a", "progress_update"));
        b.push(event(4, "a", "progress_update"));
        b.push(event(5, "a", "operation_completed"));
        let out = drain(&mut b);
        assert_eq!(offsets(&out), vec![1, 2, 4, 5]);
        assert_eq!(lagged(&out), 1);
    }

    #[test]
    fn a_snapshot_is_a_barrier() {
        let mut b = Backlog::new(100);
        b.push(event(7, "a", "progress_update"));
        b.push(Update::Snapshot {
            epoch: "e".into(),
            offset: 1,
            operations: Vec::new(),
        });
        b.push(event(2, "a", "progress_update"));
        let out = drain(&mut b);
        assert_eq!(out.len(), 3);
        assert_eq!(lagged(&out), 0);
    }

    #[test]
    fn popped_entries_are_not_replaced() {
        let mut b = Backlog::new(100);
        b.push(event(1, "a", "progress_update"));
        assert_eq!(offsets(&drain(&mut b)), vec![1]);
        b.push(event(2, "a", "progress_update"));
        assert_eq!(drain(&mut b).len(), 1, "nothing to report as skipped");
    }

    #[test]
    fn past_the_bound_updates_are_dropped_and_counted_but_progress_still_conflates() {
        let mut b = Backlog::new(2);
        b.push(event(1, "a", "progress_update"));
        b.push(event(2, "b", "operation_started"));
        b.push(event(3, "c", "operation_started")); // dropped
        b.push(event(4, "a", "progress_update")); // replaces 1
        let out = drain(&mut b);
        assert_eq!(out[0], Update::Lagged(2));
        assert_eq!(offsets(&out), vec![2, 4]);
    }

    fn arb_kind() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            6 => Just("progress_update"),
            1 => Just("operation_started"),
            1 => Just("operation_stalled"),
            1 => Just("operation_completed"),
        ]
    }

    proptest! {
        /// Under the bound: every lifecycle event is delivered, offsets stay
        /// increasing, the last update of every operation is delivered, and
        /// delivered + lagged = pushed.
        #[test]
        fn lifecycle_kept_order_kept_latest_kept(
            evs in prop::collection::vec((0..4usize, arb_kind()), 0..200),
            pops in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut b = Backlog::new(1_000);
            let mut out = Vec::new();
            for (i, (op, kind)) in evs.iter().enumerate() {
                b.push(event(i as u64 + 1, &format!("op{op}"), kind));
                if pops.get(i).copied().unwrap_or(false) {
                    out.extend(b.pop());
                }
            }
            out.extend(drain(&mut b));
            let got = offsets(&out);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(got.len() as u64 + lagged(&out), evs.len() as u64);
            for (i, (op, kind)) in evs.iter().enumerate() {
                let offset = i as u64 + 1;
                let last_of_op = evs[i + 1..].iter().all(|(o, _)| o != op);
                if *kind != "progress_update" || last_of_op {
                    prop_assert!(got.contains(&offset), "offset {} missing", offset);
                }
            }
        }

        /// Never more than the bound, whatever comes.
        #[test]
        fn bounded(evs in prop::collection::vec((0..50usize, arb_kind()), 0..300)) {
            let mut b = Backlog::new(16);
            for (i, (op, kind)) in evs.iter().enumerate() {
                b.push(event(i as u64 + 1, &format!("op{op}"), kind));
                prop_assert!(b.len() <= 16);
            }
        }
    }
}
