//! The operation state object every event and snapshot carries.

use crate::JsonObject;
use serde::{Deserialize, Serialize};

/// Lifecycle state of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// Reporting.
    Running,
    /// No word from the producer within the stall timeout.
    Stalled,
    /// Finished well (final).
    Completed,
    /// Finished with an error (final).
    Failed,
    /// Stopped on request (final).
    Canceled,
}

impl OperationStatus {
    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OperationStatus::Completed | OperationStatus::Failed | OperationStatus::Canceled
        )
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "running",
            OperationStatus::Stalled => "stalled",
            OperationStatus::Completed => "completed",
            OperationStatus::Failed => "failed",
            OperationStatus::Canceled => "canceled",
        }
    }

    /// Parses a wire name (for `?state=` filters).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => OperationStatus::Running,
            "stalled" => OperationStatus::Stalled,
            "completed" => OperationStatus::Completed,
            "failed" => OperationStatus::Failed,
            "canceled" => OperationStatus::Canceled,
            _ => return None,
        })
    }
}

/// The state of one operation: every field present, `null` when unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationState {
    /// Operation id.
    pub operation_id: String,
    /// Namespace.
    pub namespace: String,
    /// Display name.
    pub name: String,
    /// Grouping kind.
    pub kind: String,
    /// Lifecycle state.
    pub state: OperationStatus,
    /// Percent done (0..=100).
    pub progress: Option<f64>,
    /// Units done.
    pub current: Option<f64>,
    /// Units in all.
    pub total: Option<f64>,
    /// Current step label.
    pub step: Option<String>,
    /// Latest human message.
    pub message: Option<String>,
    /// Latest details object (kept as its text).
    pub details: Option<JsonObject>,
    /// Error text of a failed operation.
    pub error: Option<String>,
    /// Parent operation id.
    pub parent_id: Option<String>,
    /// Start time, ms.
    pub started_at: u64,
    /// Time of the latest event, ms.
    pub updated_at: u64,
    /// End time, ms, once final.
    pub finished_at: Option<u64>,
    /// Smoothed rate, percent per second.
    pub rate: Option<f64>,
    /// Smoothed estimate of seconds to completion.
    pub eta_seconds: Option<f64>,
    /// Whether a cancel was requested.
    pub cancel_requested: bool,
    /// Offset of the operation's latest event.
    pub last_offset: u64,
    /// Weight in a parent's aggregate.
    pub weight: Option<f64>,
    /// Free metadata from the start message (kept as its text).
    pub metadata: Option<JsonObject>,
}
