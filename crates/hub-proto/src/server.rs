//! Server → client messages other than events.

use crate::error::{Component, ErrorCode, ProtoError, Severity};
use crate::state::OperationState;
use serde::Serialize;
use serde_json::Value;

/// The acknowledgement of a producer message (also the HTTP 200 body).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ack {
    /// Request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Namespace.
    pub namespace: String,
    /// Operation id (hub-made when the start omitted it).
    pub operation_id: String,
    /// Highest seq acknowledged (cumulative).
    pub seq: u64,
    /// The event's namespace offset.
    pub offset: u64,
    /// Present and true for a resend of an accepted seq.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Present and true while a cancel is pending.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
}

/// An `error` message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorMessage {
    /// The contract's code.
    pub code: ErrorCode,
    /// One human sentence.
    pub message: String,
    /// Longer explanation or null.
    pub details: Option<String>,
    /// Server time, ms.
    pub timestamp: u64,
    /// The part of the hub.
    pub component: Component,
    /// How bad.
    pub severity: Severity,
    /// Machine-readable fields or null.
    pub data: Option<Value>,
    /// The request id, if the request had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

impl ErrorMessage {
    /// Builds the wire error from a rejection.
    pub fn from_proto(e: ProtoError, now: u64) -> Self {
        ErrorMessage {
            code: e.code,
            component: e.code.component(),
            severity: e.code.severity(),
            message: e.message,
            details: e.details,
            timestamp: now,
            data: e.data,
            id: e.id,
        }
    }
}

/// Every non-event server message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// `ack`.
    Ack(Ack),
    /// `subscribed`.
    Subscribed {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Namespace.
        namespace: String,
        /// Stream epoch.
        epoch: String,
        /// Last offset at subscribe time.
        offset: u64,
        /// Whether the missed events follow.
        recovered: bool,
    },
    /// `operation_list` (snapshot).
    OperationList {
        /// Namespace.
        namespace: String,
        /// Stream epoch.
        epoch: String,
        /// Offset the snapshot reflects.
        offset: u64,
        /// The states.
        operations: Vec<OperationState>,
    },
    /// `cancel_requested` to the owning producer.
    CancelRequested {
        /// Namespace.
        namespace: String,
        /// Operation.
        operation_id: String,
        /// The canceller's subject.
        requested_by: String,
    },
    /// `heartbeat`.
    Heartbeat {
        /// Server time, ms.
        timestamp: u64,
        /// WebSocket + SSE connections held.
        clients_connected: u64,
    },
    /// `system_status`.
    SystemStatus {
        /// Health figures.
        data: Value,
        /// Whether part of it is cached.
        is_stale: bool,
        /// When the cached part was taken.
        #[serde(skip_serializing_if = "Option::is_none")]
        cached_at: Option<u64>,
        /// What is down.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `error`.
    Error(ErrorMessage),
    /// `ok`.
    Ok {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// `pong`.
    Pong {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Server time, ms.
        timestamp: u64,
    },
}

impl ServerMessage {
    /// Encodes the message as one JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}
