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

/// The newest `capacity` events of a namespace.
#[derive(Debug)]
pub struct EventLog {
    entries: VecDeque<LogEntry>,
    capacity: usize,
    last_offset: u64,
}

impl EventLog {
    /// An empty log whose stream ends at `last_offset`.
    pub fn new(capacity: usize, last_offset: u64) -> Self {
        EventLog {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            last_offset,
        }
    }

    /// Appends the next event (offsets must be contiguous).
    pub fn push(&mut self, entry: LogEntry) {
        debug_assert!(entry.offset == self.last_offset + 1 || self.entries.is_empty());
        self.last_offset = entry.offset;
        self.entries.push_back(entry);
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
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
    /// The search starts at offset `from` (the operation's start; nothing
    /// earlier can match) and reads at most [`MAX_SEQ_SCAN`] events, so a
    /// peer resending old seqs costs the engine a bounded amount each time.
    pub fn offset_of_seq(&self, op: &str, seq: u64, from: u64) -> Option<u64> {
        if seq == 0 {
            return None;
        }
        self.after(from.saturating_sub(1))
            .take(MAX_SEQ_SCAN)
            .find(|e| e.seq == seq && &*e.operation_id == op)
            .map(|e| e.offset)
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
    fn the_offset_of_a_seq_is_found_among_retained_events_only() {
        let mut log = EventLog::new(3, 0);
        for o in 1..=5 {
            log.push(entry(o));
        }
        assert_eq!(log.offset_of_seq("a", 4, 0), Some(4));
        assert_eq!(log.offset_of_seq("a", 4, 4), Some(4));
        assert_eq!(log.offset_of_seq("a", 4, 5), None, "before the start");
        assert_eq!(log.offset_of_seq("a", 2, 0), None, "trimmed");
        assert_eq!(log.offset_of_seq("b", 4, 0), None, "another operation");
        assert_eq!(
            log.offset_of_seq("a", 0, 0),
            None,
            "hub-made events have no seq"
        );
    }

    #[test]
    fn the_search_for_a_seq_reads_a_bounded_number_of_events() {
        let mut log = EventLog::new(MAX_SEQ_SCAN + 10, 0);
        for o in 1..=(MAX_SEQ_SCAN as u64 + 5) {
            log.push(entry(o));
        }
        let last = MAX_SEQ_SCAN as u64;
        assert_eq!(log.offset_of_seq("a", last, 1), Some(last));
        assert_eq!(log.offset_of_seq("a", last + 1, 1), None, "past the bound");
        assert_eq!(log.offset_of_seq("a", last + 1, 2), Some(last + 1));
    }
}
