//! Decoding the hub's messages (one JSON text per line of a frame) into the
//! model's [`Update`]s and the replies the driver tracks. Lenient: unknown
//! fields are ignored, unknown types are skipped.

use crate::op::OpState;
use crate::update::{OpEvent, SystemStatus, Update};
use serde::Deserialize;
use serde_json::Value;

/// A decoded server message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Something for the model as is.
    Update(Update),
    /// `subscribed`.
    Subscribed {
        /// Request id.
        id: Option<u64>,
        /// Epoch.
        epoch: String,
        /// Last offset.
        offset: u64,
        /// Whether missed events follow.
        recovered: bool,
    },
    /// `ok`.
    Ok {
        /// Request id.
        id: Option<u64>,
    },
    /// `error`.
    Error {
        /// Request id, when it answers one.
        id: Option<u64>,
        /// Code.
        code: String,
        /// Sentence.
        message: String,
    },
    /// Anything else (acks, pongs, `cancel_requested`, unknown types).
    Other,
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    offset: u64,
    #[serde(default)]
    timestamp: u64,
    state: OpState,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct RawList {
    epoch: String,
    offset: u64,
    #[serde(default)]
    operations: Vec<OpState>,
}

#[derive(Deserialize)]
struct RawSubscribed {
    #[serde(default)]
    id: Option<u64>,
    epoch: String,
    offset: u64,
    recovered: bool,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    id: Option<u64>,
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct RawOk {
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    data: Value,
    #[serde(default)]
    is_stale: bool,
}

/// Event types that carry an operation state.
pub const EVENT_TYPES: [&str; 7] = [
    "operation_started",
    "progress_update",
    "operation_completed",
    "operation_failed",
    "operation_canceled",
    "operation_stalled",
    "operation_resumed",
];

/// Decodes one JSON message; anything unreadable is [`Incoming::Other`].
pub fn decode(text: &str) -> Incoming {
    let Ok(tag) = serde_json::from_str::<Tag<'_>>(text) else {
        return Incoming::Other;
    };
    let ty = tag.ty.as_ref();
    if EVENT_TYPES.contains(&ty) {
        return match serde_json::from_str::<RawEvent>(text) {
            Ok(e) => Incoming::Update(Update::Event(Box::new(OpEvent {
                kind: e.kind,
                offset: e.offset,
                timestamp: e.timestamp,
                state: e.state,
                reason: e.reason,
            }))),
            Err(_) => Incoming::Other,
        };
    }
    let decoded = match ty {
        "operation_list" => serde_json::from_str::<RawList>(text).map(|l| {
            Incoming::Update(Update::Snapshot {
                epoch: l.epoch,
                offset: l.offset,
                operations: l.operations,
            })
        }),
        "subscribed" => serde_json::from_str::<RawSubscribed>(text).map(|s| Incoming::Subscribed {
            id: s.id,
            epoch: s.epoch,
            offset: s.offset,
            recovered: s.recovered,
        }),
        "heartbeat" => Ok(Incoming::Update(Update::Heartbeat)),
        "system_status" => serde_json::from_str::<RawStatus>(text).map(|s| {
            Incoming::Update(Update::SystemStatus(SystemStatus {
                events_per_second: s.data.get("events_per_second").and_then(Value::as_f64),
                deliveries_per_second: s.data.get("deliveries_per_second").and_then(Value::as_f64),
                connections: s.data.get("connections").and_then(Value::as_u64),
                is_stale: s.is_stale,
            }))
        }),
        "error" => serde_json::from_str::<RawError>(text).map(|e| Incoming::Error {
            id: e.id,
            code: e.code,
            message: e.message,
        }),
        "ok" => serde_json::from_str::<RawOk>(text).map(|o| Incoming::Ok { id: o.id }),
        _ => Ok(Incoming::Other),
    };
    decoded.unwrap_or(Incoming::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpStatus;

    #[test]
    fn events_and_snapshots_decode_with_nulls() {
        let ev = r#"{"type":"progress_update","namespace":"default","offset":18,"timestamp":5,"operation_id":"r.1","seq":2,"progress":25.0,
            "state":{"operation_id":"r.1","namespace":"default","name":"Render","kind":"render","state":"running","progress":25.0,"current":null,"total":null,
            "step":null,"message":null,"details":null,"error":null,"parent_id":null,"started_at":1,"updated_at":5,"finished_at":null,"rate":null,
            "eta_seconds":null,"cancel_requested":false,"last_offset":18,"weight":null,"metadata":null,"future_field":1}}"#;
        let Incoming::Update(Update::Event(e)) = decode(ev) else {
            panic!("not an event")
        };
        assert_eq!(e.offset, 18);
        assert_eq!(e.state.state, OpStatus::Running);
        assert_eq!(e.state.progress, Some(25.0));
        let list = r#"{"type":"operation_list","namespace":"default","epoch":"e1","offset":3,"operations":[{"operation_id":"a","state":"martian","name":null}]}"#;
        let Incoming::Update(Update::Snapshot { operations, .. }) = decode(list) else {
            panic!("not a snapshot")
        };
        assert_eq!(operations[0].state, OpStatus::Unknown);
        assert_eq!(decode("not json"), Incoming::Other);
        assert_eq!(
            decode(r#"{"type":"ok","id":4}"#),
            Incoming::Ok { id: Some(4) }
        );
    }
}
