//! The hub-wide bound on snapshot bytes waiting for their viewers.
//!
//! A snapshot (`operation_list`) is one message of every operation a
//! namespace holds: tens of MiB for a big namespace. It is not counted
//! against a viewer's `slow_client_bytes` (it is the viewer's starting
//! point, not a backlog), so a viewer that subscribes and then reads
//! nothing holds a whole one until the write stall drops it, and a few
//! hundred such connections could hold gigabytes. The engine remembers
//! the snapshots it made (weakly) and, while those still held by a queue
//! or a writer add up past `max_snapshot_bytes`, refuses new ones with
//! `RATE_LIMITED` (`reason: "snapshots"`, `retry_after_ms`). Viewers that
//! read let go of theirs within milliseconds, so only unread ones count.
//!
//! HTTP operation listings (`GET .../operations`) are the same kind of
//! answer (every operation of a namespace, up to 10,000) and count against
//! the same budget: each is encoded once here and held by its response
//! body until that is written out or dropped (`json_list::encoded`).

use hub_proto::{ErrorCode, ProtoError};
use std::sync::{Arc, Weak};

/// When a refused viewer should try again.
pub const RETRY_AFTER_MS: u64 = 1_000;

/// The snapshots made and possibly still held (see the module doc).
#[derive(Default)]
pub struct Snapshots {
    made: Vec<(Weak<str>, usize)>,
}

impl Snapshots {
    /// Bytes of the snapshots still held somewhere (forgets the others).
    pub fn held(&mut self) -> usize {
        self.made.retain(|(w, _)| w.strong_count() > 0);
        self.made.iter().map(|(_, n)| n).sum()
    }

    /// Takes `bytes` in if, with those held, it stays within `budget`
    /// (0: no bound), or if none is held (one snapshot, however big, is
    /// always possible); otherwise says no (the caller drops it).
    pub fn admit(&mut self, bytes: &Arc<str>, budget: usize) -> bool {
        let held = self.held();
        if budget > 0 && held > 0 && held.saturating_add(bytes.len()) > budget {
            return false;
        }
        self.made.push((Arc::downgrade(bytes), bytes.len()));
        true
    }

    /// [`Snapshots::admit`], with the refusal a client gets when it says
    /// no (not counted here: the outbox or the HTTP handler that sends it
    /// counts it, by its `data.reason`).
    pub fn take(&mut self, bytes: &Arc<str>, budget: usize) -> Result<(), ProtoError> {
        if self.admit(bytes, budget) {
            Ok(())
        } else {
            Err(refusal(budget))
        }
    }
}

/// `RATE_LIMITED` (`snapshots`) for a snapshot or listing past `budget`.
pub fn refusal(budget: usize) -> ProtoError {
    ProtoError::new(
        ErrorCode::RateLimited,
        "the hub holds too many snapshots its viewers have not read yet; try again shortly",
    )
    .with_data(serde_json::json!({"reason": "snapshots", "limit": budget, "retry_after_ms": RETRY_AFTER_MS}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_snapshots_still_held_count() {
        let mut s = Snapshots::default();
        let a: Arc<str> = Arc::from("x".repeat(60).as_str());
        let b: Arc<str> = Arc::from("y".repeat(50).as_str());
        assert!(s.admit(&a, 100));
        assert!(!s.admit(&b, 100), "60 held + 50 > 100");
        assert_eq!(s.held(), 60);
        drop(a);
        assert_eq!(s.held(), 0, "written out: no longer held");
        assert!(s.admit(&b, 100));
        let big: Arc<str> = Arc::from("z".repeat(500).as_str());
        assert!(!s.admit(&big, 100), "over, with one held");
        drop(b);
        assert!(s.admit(&big, 100), "alone, any size");
        assert!(s.admit(&big, 0), "0: no bound");
    }
}
