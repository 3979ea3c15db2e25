//! A namespace's retained events, encoded once, in offset order.
//!
//! Replays, the HTTP event listing and operation detail read from here; the
//! store keeps the same events durably for restarts.

use hub_proto::EventType;
use std::collections::VecDeque;
use std::sync::Arc;

/// One retained event.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Namespace offset.
    pub offset: u64,
    /// Operation id.
    pub operation_id: Arc<str>,
    /// Operation kind.
    pub kind: Arc<str>,
    /// Event type.
    pub event_type: EventType,
    /// The producer's seq (0 on hub-made events, whose seq is absent).
    pub seq: u64,
    /// The encoded event (shared with every viewer).
    pub bytes: Arc<str>,
}

/// Most log entries [`EventLog::offset_of_seq`] reads for one resend.
pub const MAX_SEQ_SCAN: usize = 16_384;

/// What one retained event is counted as besides its encoding: the entry
/// itself and its share of the queue (the hub-wide history budget counts
/// [`LogEntry::cost`]).
pub const ENTRY_OVERHEAD: usize = 64;

impl LogEntry {
    /// Bytes this entry is counted as: its encoding plus [`ENTRY_OVERHEAD`].
    pub fn cost(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The newest `capacity` events of a namespace (fewer when the hub-wide
/// history budget trimmed it, [`EventLog::trim_to_bytes`]).
#[derive(Debug)]
pub struct EventLog {
    entries: VecDeque<LogEntry>,
    capacity: usize,
    last_offset: u64,
    /// Sum of the retained entries' [`LogEntry::cost`].
    bytes: usize,
}

impl EventLog {
    /// An empty log whose stream ends at `last_offset`.
    pub fn new(capacity: usize, last_offset: u64) -> Self {
        EventLog {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            last_offset,
            bytes: 0,
        }
    }

    /// Appends the next event (offsets must be contiguous), dropping the
    /// oldest past the capacity. Returns the bytes (as [`LogEntry::cost`])
    /// it dropped.
    pub fn push(&mut self, entry: LogEntry) -> usize {
        debug_assert!(entry.offset == self.last_offset + 1 || self.entries.is_empty());
        self.last_offset = entry.offset;
        self.bytes += entry.cost();
        self.entries.push_back(entry);
        let mut freed = 0;
        while self.entries.len() > self.capacity {
            freed += self.pop_oldest();
        }
        freed
    }

    fn pop_oldest(&mut self) -> usize {
        let cost = self.entries.pop_front().map_or(0, |e| e.cost());
        self.bytes -= cost;
        cost
    }

    /// Drops the oldest events until the rest cost at most `max` bytes,
    /// always keeping the newest one. Returns the bytes it dropped.
    pub fn trim_to_bytes(&mut self, max: usize) -> usize {
        let mut freed = 0;
        while self.bytes > max && self.entries.len() > 1 {
            freed += self.pop_oldest();
        }
        freed
    }

    /// Bytes the retained events are counted as (sum of [`LogEntry::cost`]).
    pub fn retained_bytes(&self) -> usize {
        self.bytes
    }

    /// How many events are retained.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no event is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The offset of the newest event (0 when none ever).
    pub fn last_offset(&self) -> u64 {
        self.last_offset
    }

    /// The oldest retained offset (`last_offset + 1` when none is retained).
    pub fn first_offset(&self) -> u64 {
        self.entries
            .front()
            .map_or(self.last_offset + 1, |e| e.offset)
    }

    /// Retained events with offset > `after`, oldest first.
    pub fn after(&self, after: u64) -> impl Iterator<Item = &LogEntry> {
        let first = self.first_offset();
        let skip = after.saturating_add(1).saturating_sub(first) as usize;
        self.entries.iter().skip(skip)
    }

    /// The offset of the retained event that accepted `seq` of `op`: the
    /// answer to a resend older than the operation's remembered pairs.
    ///
    /// The event lies in offsets `from..=to` (the operation's start, and an
    /// offset at or after the event, e.g. the operation's latest). An
    /// operation's producer events carry increasing seqs in offset order,
    /// so this is a binary search: each probe walks forward to the
    /// operation's next producer event. It reads at most [`MAX_SEQ_SCAN`]
    /// events in all, so a peer resending old seqs costs the engine a
    /// bounded amount each time (an operation whose events are that sparse
    /// among others' may go unfound).
    pub fn offset_of_seq(&self, op: &str, seq: u64, from: u64, to: u64) -> Option<u64> {
        if seq == 0 || self.entries.is_empty() {
            return None;
        }
        let first = self.first_offset();
        let from = from.max(first);
        let to = to.min(self.last_offset);
        if from > to {
            return None;
        }
        let (mut lo, mut hi) = ((from - first) as usize, (to - first) as usize + 1);
        let mut budget = MAX_SEQ_SCAN;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut j = mid;
            loop {
                if j == hi {
                    break;
                }
                let e = &self.entries[j];
                if e.seq != 0 && &*e.operation_id == op {
                    break;
                }
                budget = budget.checked_sub(1)?;
                j += 1;
            }
            if j == hi {
                hi = mid;
                continue;
            }
            budget = budget.checked_sub(1)?;
            let e = &self.entries[j];
            match e.seq.cmp(&seq) {
                std::cmp::Ordering::Equal => return Some(e.offset),
                std::cmp::Ordering::Less => lo = j + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Retained events of one operation, oldest first.
    pub fn of_operation<'a>(&'a self, op: &'a str) -> impl Iterator<Item = &'a LogEntry> + 'a {
        self.entries.iter().filter(move |e| &*e.operation_id == op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> LogEntry {
        LogEntry {
            offset,
            operation_id: "a".into(),
            kind: "k".into(),
            event_type: EventType::ProgressUpdate,
            seq: offset,
            bytes: format!("{offset}").into(),
        }
    }

    #[test]
    fn ring_and_after() {
        let mut log = EventLog::new(3, 0);
        assert_eq!(log.first_offset(), 1);
        for o in 1..=5 {
            log.push(entry(o));
        }
        assert_eq!(log.first_offset(), 3);
        assert_eq!(log.last_offset(), 5);
        let after: Vec<u64> = log.after(3).map(|e| e.offset).collect();
        assert_eq!(after, vec![4, 5]);
        let all: Vec<u64> = log.after(0).map(|e| e.offset).collect();
        assert_eq!(all, vec![3, 4, 5]);
        assert_eq!(log.after(5).count(), 0);
        assert_eq!(log.after(u64::MAX).count(), 0);
    }

    #[test]
    fn bytes_follow_what_is_retained() {
        let mut log = EventLog::new(3, 0);
        let cost = |o: u64| entry(o).cost();
        let mut freed = 0;
        for o in 1..=5 {
            freed += log.push(entry(o));
        }
        assert_eq!(
            freed,
            cost(1) + cost(2),
            "the count trim frees the two oldest"
        );
        assert_eq!(log.retained_bytes(), cost(3) + cost(4) + cost(5));
        assert_eq!(log.trim_to_bytes(cost(4) + cost(5)), cost(3));
        assert_eq!(log.first_offset(), 4);
        assert_eq!(log.trim_to_bytes(0), cost(4), "the newest event stays");
        assert_eq!(
            (log.len(), log.first_offset(), log.last_offset()),
            (1, 5, 5)
        );
        assert_eq!(log.retained_bytes(), cost(5));
        assert_eq!(log.trim_to_bytes(0), 0);
        assert_eq!(log.after(4).map(|e| e.offset).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn the_offset_of_a_seq_is_found_among_retained_events_only() {
        let mut log = EventLog::new(3, 0);
        for o in 1..=5 {
            log.push(entry(o));
        }
        assert_eq!(log.offset_of_seq("a", 4, 0, 5), Some(4));
        assert_eq!(log.offset_of_seq("a", 4, 4, 5), Some(4));
        assert_eq!(log.offset_of_seq("a", 4, 5, 5), None, "before the start");
        assert_eq!(log.offset_of_seq("a", 4, 0, 3), None, "after the end");
        assert_eq!(log.offset_of_seq("a", 2, 0, 5), None, "trimmed");
        assert_eq!(log.offset_of_seq("b", 4, 0, 5), None, "another operation");
        assert_eq!(
            log.offset_of_seq("a", 0, 0, 5),
            None,
            "hub-made events have no seq"
        );
    }

    /// Operations interleaved, hub-made events (seq 0) among them: every
    /// accepted seq of every operation is found, in a long log too.
    #[test]
    fn every_seq_is_found_among_interleaved_operations() {
        let ops = ["a", "b", "c"];
        let mut log = EventLog::new(100_000, 0);
        let mut seqs = [0u64; 3];
        let mut accepted = Vec::new();
        for o in 1..=60_000u64 {
            let i = (o * 7 % 11 % 3) as usize;
            let hub_made = o % 13 == 0;
            let seq = if hub_made {
                0
            } else {
                seqs[i] += 1;
                seqs[i]
            };
            log.push(LogEntry {
                seq,
                operation_id: ops[i].into(),
                ..entry(o)
            });
            if !hub_made {
                accepted.push((i, seq, o));
            }
        }
        for &(i, seq, offset) in accepted.iter().step_by(97) {
            assert_eq!(
                log.offset_of_seq(ops[i], seq, 1, 60_000),
                Some(offset),
                "{} seq {seq}",
                ops[i]
            );
        }
        assert_eq!(log.offset_of_seq("a", seqs[0] + 1, 1, 60_000), None);
    }

    #[test]
    fn the_search_for_a_seq_reads_a_bounded_number_of_events() {
        // "a" has one event at each end, with more than MAX_SEQ_SCAN events
        // of another operation between them: the search gives up.
        let n = MAX_SEQ_SCAN as u64 * 2 + 3;
        let mut log = EventLog::new(n as usize, 0);
        for o in 1..=n {
            let (op, seq) = match o {
                1 => ("a", 1),
                o if o == n => ("a", 2),
                o => ("b", o),
            };
            log.push(LogEntry {
                seq,
                operation_id: op.into(),
                ..entry(o)
            });
        }
        assert_eq!(log.offset_of_seq("a", 1, 1, n), None, "too sparse");
        assert_eq!(log.offset_of_seq("b", 5, 1, n), Some(5));
    }
}
