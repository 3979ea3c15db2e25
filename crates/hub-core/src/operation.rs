//! One operation: its public state plus what the hub tracks behind it.

use crate::eta::EtaEstimator;
use hub_proto::{OperationState, OperationStatus};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// An operation as the core keeps it (and persists as its snapshot record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The state object viewers see.
    pub state: OperationState,
    /// Highest accepted seq.
    pub last_seq: u64,
    /// Offset of the `operation_started` event.
    pub started_offset: u64,
    /// Recent accepted (seq, offset) pairs, oldest first.
    pub recent: VecDeque<(u64, u64)>,
    /// Last time the producer sent an accepted message, ms.
    pub last_producer_at: u64,
    /// Rate / ETA estimator.
    pub eta: EtaEstimator,
    /// When a cancel was requested, ms.
    pub cancel_requested_at: Option<u64>,
    /// Who requested the cancel.
    pub cancel_requested_by: Option<String>,
    /// The connection that last sent a message for it (not persisted).
    #[serde(skip)]
    pub owner_conn: Option<u64>,
    /// The connection the pending cancel was delivered to (not persisted).
    #[serde(skip)]
    pub cancel_delivered_to: Option<u64>,
    /// The last tick that found the owning connection still open while a
    /// cancel was pending (not persisted): the hub cancels only for a
    /// producer gone past the stall timeout, so this only delays the next
    /// check.
    #[serde(skip)]
    pub owner_seen_at: Option<u64>,
}

impl Operation {
    /// Whether the operation is in a final state.
    pub fn is_finished(&self) -> bool {
        self.state.state.is_terminal()
    }

    /// The offset an accepted `seq` got, if remembered.
    pub fn offset_of(&self, seq: u64) -> Option<u64> {
        if seq == 1 {
            return Some(self.started_offset);
        }
        self.recent
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, o)| *o)
    }

    /// Records an accepted seq and its offset, bounded to `memory` pairs.
    pub fn remember(&mut self, seq: u64, offset: u64, memory: usize) {
        self.last_seq = seq;
        self.recent.push_back((seq, offset));
        while self.recent.len() > memory.max(1) {
            self.recent.pop_front();
        }
    }

    /// Whether a cancel is pending (requested, not finished).
    pub fn cancel_pending(&self) -> bool {
        self.state.cancel_requested && !self.is_finished()
    }

    /// Refreshes `rate` and `eta_seconds` as of `now`. A stalled
    /// operation keeps both, from the rate its silence has decayed (so its
    /// ETA has grown); a finished one has neither.
    pub fn refresh_estimate(&mut self, now: u64) {
        if self.is_finished() {
            self.state.rate = None;
            self.state.eta_seconds = None;
        } else {
            self.state.rate = self.eta.rate(now);
            self.state.eta_seconds = self.eta.eta_seconds(now);
        }
    }

    /// Sets the lifecycle state.
    pub fn set_status(&mut self, status: OperationStatus) {
        self.state.state = status;
    }
}
