//! Tombstones: what a namespace keeps of the operations it dropped after
//! the finished-retention window, so that their ids stay finished.
//!
//! A tombstone is enough for resends to stay idempotent (re-acked) and the
//! terminal state final (`OPERATION_FINISHED`) instead of the id starting a
//! new operation. A namespace keeps the newest `cap` of them; the caller
//! persists each one in place of the operation's record and deletes the
//! records of those pushed out, so the rule survives restarts.

use hub_proto::OperationStatus;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What is kept of one dropped operation (and persisted as its record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The offset of its `operation_started` event.
    pub started_offset: u64,
    /// The highest seq the operation accepted.
    pub last_seq: u64,
    /// The offset of its last event.
    pub last_offset: u64,
    /// Its terminal state.
    pub state: OperationStatus,
    /// When it was dropped, ms: restores keep the newest.
    pub dropped_at: u64,
    /// Whether a cancel was asked for while it ran (its re-acks say so, as
    /// its acks did). Absent in records written before it was kept.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// The tombstones of one namespace, oldest first, at most `cap` of them.
#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    by_id: HashMap<Arc<str>, Tombstone>,
    order: VecDeque<Arc<str>>,
}

impl Tombstones {
    /// The tombstone of `id`, if it was dropped and is still remembered.
    pub(crate) fn get(&self, id: &str) -> Option<&Tombstone> {
        self.by_id.get(id)
    }

    /// Remembers a dropped operation and returns the ids pushed out to stay
    /// within `cap` (at least one is always kept).
    pub(crate) fn insert(&mut self, id: &str, t: Tombstone, cap: usize) -> Vec<String> {
        let id: Arc<str> = Arc::from(id);
        if self.by_id.insert(id.clone(), t).is_none() {
            self.order.push_back(id);
        }
        let mut evicted = Vec::new();
        while self.order.len() > cap.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
                evicted.push(old.to_string());
            }
        }
        evicted
    }

    /// Rebuilds from persisted tombstones, oldest drop first (ties by id).
    /// The cap is applied at the next [`Tombstones::insert`].
    pub(crate) fn restore(tombstones: impl IntoIterator<Item = (String, Tombstone)>) -> Self {
        let mut all: Vec<(String, Tombstone)> = tombstones.into_iter().collect();
        all.sort_by(|a, b| (a.1.dropped_at, &a.0).cmp(&(b.1.dropped_at, &b.0)));
        let mut out = Tombstones::default();
        for (id, t) in all {
            let id: Arc<str> = Arc::from(id);
            if out.by_id.insert(id.clone(), t).is_none() {
                out.order.push_back(id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dropped_at: u64) -> Tombstone {
        Tombstone {
            started_offset: 1,
            last_seq: 2,
            last_offset: 7,
            state: OperationStatus::Completed,
            dropped_at,
            cancel_requested: false,
        }
    }

    #[test]
    fn keeps_the_newest_cap_and_names_the_evicted() {
        let mut ts = Tombstones::default();
        assert!(ts.insert("a", t(1), 2).is_empty());
        assert!(ts.insert("b", t(2), 2).is_empty());
        assert_eq!(ts.insert("c", t(3), 2), vec!["a".to_string()]);
        assert!(ts.get("a").is_none());
        assert_eq!(ts.get("c"), Some(&t(3)));
        assert_eq!(ts.order.len(), 2);
    }

    #[test]
    fn restore_orders_by_drop_time_and_the_next_insert_trims() {
        let mut ts = Tombstones::restore(vec![
            ("late".to_string(), t(9)),
            ("early".to_string(), t(1)),
            ("mid".to_string(), t(5)),
        ]);
        assert_eq!(ts.order.len(), 3);
        let evicted = ts.insert("new", t(10), 2);
        assert_eq!(evicted, vec!["early".to_string(), "mid".to_string()]);
        assert!(ts.get("late").is_some() && ts.get("new").is_some());
    }

    #[test]
    fn a_tombstone_round_trips_through_json() {
        let json = serde_json::to_string(&t(4)).unwrap();
        assert_eq!(serde_json::from_str::<Tombstone>(&json).unwrap(), t(4));
    }
}
