//! What the dashboard knows about one operation: the hub's state object
//! (as hub-client decodes it, normalised for display), how a state is
//! shown and ordered, and a bounded ring of its recent events.

use serde_json::Value;
use std::collections::VecDeque;

/// Lifecycle state of an operation: hub-client's, so the dashboard and the
/// client library decode the protocol's state names in one place.
pub use hub_client::OpStatus;

/// How the dashboard shows and orders a state.
pub trait StatusLook: Copy {
    /// Every known state, in display order.
    const ALL: [OpStatus; 5];
    /// Sort rank: live states first, then failures, cancellations, successes.
    fn rank(self) -> u8;
    /// A one-column symbol, so the state reads without colour too.
    fn symbol(self) -> &'static str;
}

impl StatusLook for OpStatus {
    const ALL: [OpStatus; 5] = [
        OpStatus::Running,
        OpStatus::Stalled,
        OpStatus::Failed,
        OpStatus::Canceled,
        OpStatus::Completed,
    ];

    fn rank(self) -> u8 {
        match self {
            OpStatus::Running => 0,
            OpStatus::Stalled => 1,
            OpStatus::Failed => 2,
            OpStatus::Canceled => 3,
            OpStatus::Completed => 4,
            OpStatus::Unknown => 5,
        }
    }

    fn symbol(self) -> &'static str {
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

/// The operation state object of protocol v1 as the model keeps it: decoded
/// leniently by hub-client (so a newer hub never breaks an older `top`) and
/// normalised by the driver (`driver::convert`): a missing name is empty,
/// missing times and offsets are 0.
#[derive(Debug, Clone, PartialEq)]
pub struct OpState {
    /// Operation id.
    pub operation_id: String,
    /// Display name (empty when the hub sent none).
    pub name: String,
    /// Grouping kind.
    pub kind: Option<String>,
    /// Lifecycle state.
    pub state: OpStatus,
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
    /// Latest details object.
    pub details: Option<Value>,
    /// Error text of a failed operation.
    pub error: Option<String>,
    /// Parent operation id.
    pub parent_id: Option<String>,
    /// Start time, ms since the Unix epoch (hub clock).
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
    /// Free metadata from the start message.
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
