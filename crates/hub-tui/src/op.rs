//! What the dashboard knows about one operation: the hub's state object
//! (decoded leniently, so a newer hub never breaks an older `top`) and a
//! bounded ring of its recent events.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::VecDeque;

/// Lifecycle state of an operation, as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Reporting.
    Running,
    /// No word from its producer within the hub's stall timeout.
    Stalled,
    /// Finished well.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped on request.
    Canceled,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

impl OpStatus {
    /// Every known state, in display order.
    pub const ALL: [OpStatus; 5] = [
        OpStatus::Running,
        OpStatus::Stalled,
        OpStatus::Failed,
        OpStatus::Canceled,
        OpStatus::Completed,
    ];

    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OpStatus::Completed | OpStatus::Failed | OpStatus::Canceled
        )
    }

    /// Sort rank: live states first, then failures, cancellations, successes.
    pub fn rank(self) -> u8 {
        match self {
            OpStatus::Running => 0,
            OpStatus::Stalled => 1,
            OpStatus::Failed => 2,
            OpStatus::Canceled => 3,
            OpStatus::Completed => 4,
            OpStatus::Unknown => 5,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Running => "running",
            OpStatus::Stalled => "stalled",
            OpStatus::Completed => "completed",
            OpStatus::Failed => "failed",
            OpStatus::Canceled => "canceled",
            OpStatus::Unknown => "unknown",
        }
    }

    /// A one-column symbol, so the state reads without colour too.
    pub fn symbol(self) -> &'static str {
        match self {
            OpStatus::Running => "▶",
            OpStatus::Stalled => "‖",
            OpStatus::Completed => "✓",
            OpStatus::Failed => "✗",
            OpStatus::Canceled => "⊘",
            OpStatus::Unknown => "?",
        }
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn unknown() -> OpStatus {
    OpStatus::Unknown
}

/// The operation state object of protocol v1 ("every field present, null
/// when unknown"); missing or null fields decode to their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpState {
    /// Operation id.
    pub operation_id: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Grouping kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Lifecycle state.
    #[serde(default = "unknown")]
    pub state: OpStatus,
    /// Percent done (0..=100).
    #[serde(default)]
    pub progress: Option<f64>,
    /// Units done.
    #[serde(default)]
    pub current: Option<f64>,
    /// Units in all.
    #[serde(default)]
    pub total: Option<f64>,
    /// Current step label.
    #[serde(default)]
    pub step: Option<String>,
    /// Latest human message.
    #[serde(default)]
    pub message: Option<String>,
    /// Latest details object.
    #[serde(default)]
    pub details: Option<Value>,
    /// Error text of a failed operation.
    #[serde(default)]
    pub error: Option<String>,
    /// Parent operation id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Start time, ms since the Unix epoch (hub clock).
    #[serde(default, deserialize_with = "null_default")]
    pub started_at: u64,
    /// Time of the latest event, ms.
    #[serde(default, deserialize_with = "null_default")]
    pub updated_at: u64,
    /// End time, ms, once final.
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// Smoothed rate, percent per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Smoothed estimate of seconds to completion.
    #[serde(default)]
    pub eta_seconds: Option<f64>,
    /// Whether a cancel was requested.
    #[serde(default, deserialize_with = "null_default")]
    pub cancel_requested: bool,
    /// Offset of the operation's latest event.
    #[serde(default, deserialize_with = "null_default")]
    pub last_offset: u64,
    /// Free metadata from the start message.
    #[serde(default)]
    pub metadata: Option<Value>,
}

impl OpState {
    /// A running operation with only the essentials set (tests, demos).
    pub fn new(operation_id: &str, name: &str, started_at: u64) -> Self {
        OpState {
            operation_id: operation_id.to_owned(),
            name: name.to_owned(),
            kind: None,
            state: OpStatus::Running,
            progress: Some(0.0),
            current: None,
            total: None,
            step: None,
            message: None,
            details: None,
            error: None,
            parent_id: None,
            started_at,
            updated_at: started_at,
            finished_at: None,
            rate: None,
            eta_seconds: None,
            cancel_requested: false,
            last_offset: 0,
            metadata: None,
        }
    }

    /// The name to show: the display name, or the id when it has none.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.operation_id
        } else {
            &self.name
        }
    }

    /// Progress as a ratio in `0.0..=1.0` (0 when unknown).
    pub fn ratio(&self) -> f64 {
        let p = match self.state {
            OpStatus::Completed => 100.0,
            _ => self.progress.unwrap_or(0.0),
        };
        if p.is_finite() {
            (p / 100.0).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// One event as remembered for the detail pane.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentEvent {
    /// Namespace offset.
    pub offset: u64,
    /// Hub time, ms.
    pub timestamp: u64,
    /// Event type (`progress_update`, ...).
    pub kind: String,
    /// A short human summary.
    pub summary: String,
}

/// An operation as the dashboard holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpEntry {
    /// The latest state.
    pub state: OpState,
    /// The newest events, oldest first, at most the configured number.
    pub recent: VecDeque<RecentEvent>,
}

impl OpEntry {
    /// An entry with no remembered events.
    pub fn new(state: OpState) -> Self {
        OpEntry {
            state,
            recent: VecDeque::new(),
        }
    }

    /// Remembers an event, forgetting the oldest past `cap`.
    pub fn remember(&mut self, event: RecentEvent, cap: usize) {
        if cap == 0 {
            return;
        }
        while self.recent.len() >= cap {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }
}
