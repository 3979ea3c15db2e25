//! Events: what the hub appends to a namespace stream and fans out.

use crate::state::OperationState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum EventType {
    OperationStarted,
    ProgressUpdate,
    OperationCompleted,
    OperationFailed,
    OperationCanceled,
    OperationStalled,
    OperationResumed,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OperationStarted => "operation_started",
            EventType::ProgressUpdate => "progress_update",
            EventType::OperationCompleted => "operation_completed",
            EventType::OperationFailed => "operation_failed",
            EventType::OperationCanceled => "operation_canceled",
            EventType::OperationStalled => "operation_stalled",
            EventType::OperationResumed => "operation_resumed",
        }
    }

    /// Lifecycle events are never conflated or dropped; only
    /// `progress_update` may be.
    pub fn is_lifecycle(self) -> bool {
        self != EventType::ProgressUpdate
    }
}

/// One event of a namespace stream, as sent to viewers and stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Namespace.
    pub namespace: String,
    /// Offset in the namespace stream.
    pub offset: u64,
    /// Server time, ms.
    pub timestamp: u64,
    /// Operation id.
    pub operation_id: String,
    /// The producer's seq (absent on hub-made events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The message's own fields (`progress`, `message`, `error`, ...).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// The operation's resulting state.
    pub state: OperationState,
}

impl Event {
    /// Encodes the event once; the bytes are shared by every viewer.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}
