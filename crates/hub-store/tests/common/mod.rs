//! Helpers shared by the integration tests: record builders.
#![allow(dead_code)]

use std::sync::Arc;

use hub_store::{Batch, EventRecord, OpRecord};

/// An event with a recognisable payload.
pub fn ev(ns: &str, offset: u64) -> EventRecord {
    EventRecord {
        namespace: ns.into(),
        offset,
        data: Arc::from(format!("{{\"ns\":\"{ns}\",\"o\":{offset}}}").as_bytes()),
    }
}

/// An operation snapshot with the given payload.
pub fn op(ns: &str, id: &str, data: &str) -> OpRecord {
    OpRecord {
        namespace: ns.into(),
        operation_id: id.into(),
        data: Arc::from(data.as_bytes()),
    }
}

/// A batch of events only.
pub fn events(list: &[(&str, u64)]) -> Batch {
    Batch {
        events: list.iter().map(|(ns, o)| ev(ns, *o)).collect(),
        ..Batch::default()
    }
}
