//! The format of the per-operation records the engine keeps in the store:
//! a live operation's snapshot (the core's [`Operation`] as JSON), or, once
//! the operation was dropped after the finished-retention window, its
//! tombstone (`{"tombstone": {...}}`), so that a restart keeps the id
//! finished.

use hub_core::{Operation, Tombstone};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What one stored operation record holds.
#[derive(Debug)]
pub enum Record {
    /// A live (or recently finished) operation.
    Live(Box<Operation>),
    /// What is kept of an operation dropped after the retention window.
    Dropped(Tombstone),
}

#[derive(Serialize, Deserialize)]
struct DroppedShape<T> {
    tombstone: T,
}

/// The record of a live operation.
pub fn encode_live(op: &Operation) -> Arc<[u8]> {
    serde_json::to_vec(op).unwrap_or_default().into()
}

/// The record of a dropped operation.
pub fn encode_dropped(t: &Tombstone) -> Arc<[u8]> {
    serde_json::to_vec(&DroppedShape { tombstone: t })
        .unwrap_or_default()
        .into()
}

/// Reads a record back (live ones, the many and the large, are tried
/// first; a tombstone is small to parse twice).
pub fn decode(bytes: &[u8]) -> Result<Record, serde_json::Error> {
    match serde_json::from_slice::<Operation>(bytes) {
        Ok(op) => Ok(Record::Live(Box::new(op))),
        Err(live) => serde_json::from_slice::<DroppedShape<Tombstone>>(bytes)
            .map(|d| Record::Dropped(d.tombstone))
            .map_err(|_| live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_proto::OperationStatus;

    #[test]
    fn a_tombstone_reads_back_as_dropped() {
        let t = Tombstone {
            started_offset: 2,
            last_seq: 3,
            last_offset: 9,
            state: OperationStatus::Failed,
            dropped_at: 12,
            cancel_requested: true,
        };
        match decode(&encode_dropped(&t)).unwrap() {
            Record::Dropped(back) => assert_eq!(back, t),
            Record::Live(_) => panic!("read back as a live operation"),
        }
    }

    #[test]
    fn a_tombstone_written_before_cancel_requested_was_kept_still_reads() {
        let t = Tombstone {
            started_offset: 2,
            last_seq: 3,
            last_offset: 9,
            state: OperationStatus::Canceled,
            dropped_at: 12,
            cancel_requested: true,
        };
        let mut record: serde_json::Value = serde_json::from_slice(&encode_dropped(&t)).unwrap();
        let fields = record["tombstone"]
            .as_object_mut()
            .expect("the tombstone's fields");
        assert!(fields.remove("cancel_requested").is_some());
        match decode(&serde_json::to_vec(&record).unwrap()).unwrap() {
            Record::Dropped(back) => assert!(!back.cancel_requested),
            Record::Live(_) => panic!("read back as a live operation"),
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"{\"state\": 1}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
