//! The replay-or-snapshot decision for a subscription.

use hub_proto::Position;

/// Why a subscription gets a snapshot instead of a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotReason {
    /// The subscribe carried no `resume`.
    NoResume,
    /// The stream's epoch is not the one the viewer knew.
    EpochChanged,
    /// Events after the viewer's offset are no longer retained.
    HistoryGone,
    /// More than `--replay-limit` events after the viewer's offset.
    TooFarBehind,
    /// The viewer's offset is ahead of the stream (not a position of this epoch).
    AheadOfStream,
}

impl SnapshotReason {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            SnapshotReason::NoResume => "no_resume",
            SnapshotReason::EpochChanged => "epoch_changed",
            SnapshotReason::HistoryGone => "history_gone",
            SnapshotReason::TooFarBehind => "too_far_behind",
            SnapshotReason::AheadOfStream => "ahead_of_stream",
        }
    }
}

/// What a subscription gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumePlan {
    /// Replay every matching event with offset in `(after, last_offset]`.
    Replay {
        /// The viewer's last seen offset.
        after: u64,
    },
    /// Send an `operation_list` snapshot.
    Snapshot(SnapshotReason),
}

/// Decides between exact replay and snapshot.
///
/// `first_retained` is the oldest retained event's offset (`last_offset + 1`
/// when none is retained).
pub fn plan_resume(
    resume: Option<&Position>,
    epoch: &str,
    last_offset: u64,
    first_retained: u64,
    replay_limit: u64,
) -> ResumePlan {
    let Some(pos) = resume else {
        return ResumePlan::Snapshot(SnapshotReason::NoResume);
    };
    if pos.epoch != epoch {
        return ResumePlan::Snapshot(SnapshotReason::EpochChanged);
    }
    if pos.offset > last_offset {
        return ResumePlan::Snapshot(SnapshotReason::AheadOfStream);
    }
    // Needed: offsets pos.offset+1 ..= last_offset, all retained.
    if pos.offset + 1 < first_retained {
        return ResumePlan::Snapshot(SnapshotReason::HistoryGone);
    }
    if last_offset - pos.offset > replay_limit {
        return ResumePlan::Snapshot(SnapshotReason::TooFarBehind);
    }
    ResumePlan::Replay { after: pos.offset }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(e: &str, o: u64) -> Position {
        Position {
            epoch: e.into(),
            offset: o,
        }
    }

    #[test]
    fn decisions() {
        use ResumePlan::*;
        use SnapshotReason::*;
        assert_eq!(plan_resume(None, "e", 10, 1, 100), Snapshot(NoResume));
        assert_eq!(
            plan_resume(Some(&pos("x", 3)), "e", 10, 1, 100),
            Snapshot(EpochChanged)
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 3)), "e", 10, 1, 100),
            Replay { after: 3 }
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 10)), "e", 10, 1, 100),
            Replay { after: 10 }
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 0)), "e", 0, 1, 100),
            Replay { after: 0 }
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 11)), "e", 10, 1, 100),
            Snapshot(AheadOfStream)
        );
        // Oldest retained is 5: resuming after 4 is fine, after 3 is not.
        assert_eq!(
            plan_resume(Some(&pos("e", 4)), "e", 10, 5, 100),
            Replay { after: 4 }
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 3)), "e", 10, 5, 100),
            Snapshot(HistoryGone)
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 4)), "e", 10, 1, 6),
            Replay { after: 4 }
        );
        assert_eq!(
            plan_resume(Some(&pos("e", 3)), "e", 10, 1, 6),
            Snapshot(TooFarBehind)
        );
    }

    proptest! {
        #[test]
        fn replay_only_when_every_needed_event_is_retained(
            o in 0u64..200, last in 0u64..200, first in 1u64..201, limit in 0u64..300
        ) {
            let first = first.min(last + 1);
            match plan_resume(Some(&pos("e", o)), "e", last, first, limit) {
                ResumePlan::Replay { after } => {
                    prop_assert_eq!(after, o);
                    prop_assert!(o <= last);
                    prop_assert!(o + 1 >= first);
                    prop_assert!(last - o <= limit);
                }
                ResumePlan::Snapshot(_) => {
                    prop_assert!(o > last || o + 1 < first || last - o > limit);
                }
            }
        }
    }
}
