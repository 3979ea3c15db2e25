//! The model's inputs from the driver: connection changes, subscription
//! replies, snapshots and events, applied at a given time. Per event this is
//! a map update and a ring push; the row order is only marked dirty when an
//! operation appears or changes state, parent or start.

use crate::app::{App, Blocked};
use crate::op::{OpEntry, OpState, RecentEvent};
use crate::toast::ToastLevel;
use crate::update::{ConnStatus, OpEvent, Update};

impl App {
    /// Applies one update from the driver at `now`.
    pub fn apply(&mut self, update: Update, now: u64) {
        match update {
            Update::Connection(status) => self.set_conn(status, now),
            Update::Subscribed {
                epoch,
                offset,
                recovered,
                resumed_from,
            } => {
                self.last_data_at = Some(now);
                self.blocked = None;
                let reconnect = self.subscribed_once;
                self.subscribed_once = true;
                self.catch_up = None;
                // Synced once the snapshot, or every missed event up to
                // `offset`, is in (the subscription is unfiltered, so the
                // replay reaches it).
                self.synced = false;
                if recovered {
                    let n = offset.saturating_sub(resumed_from.unwrap_or(offset));
                    if n == 0 {
                        self.caught_up(reconnect.then_some(0), now);
                    } else {
                        self.catch_up = Some((offset, reconnect.then_some(n)));
                    }
                } else if reconnect {
                    self.toast("Reloaded from snapshot", ToastLevel::Warning, now);
                }
                if recovered {
                    self.position = Some((epoch, resumed_from.unwrap_or(offset)));
                } else {
                    self.position = Some((epoch, self.position.as_ref().map_or(0, |p| p.1)));
                }
            }
            Update::Snapshot {
                epoch,
                offset,
                operations,
            } => {
                self.last_data_at = Some(now);
                // A snapshot of the client's own map (after updates were
                // dropped) may come while a resume is still being replayed:
                // current only once it reaches the subscribed offset.
                if self.catch_up.is_none() {
                    self.synced = true;
                }
                self.reached(offset, now);
                self.position = Some((epoch, offset));
                self.blocked = None;
                self.cancel_sent
                    .retain(|id| operations.iter().any(|o| o.operation_id == *id));
                let mut old = std::mem::take(&mut self.ops);
                for state in operations {
                    let mut entry = old
                        .remove(&state.operation_id)
                        .unwrap_or_else(|| OpEntry::new(state.clone()));
                    entry.state = state;
                    self.ops.insert(entry.state.operation_id.clone(), entry);
                }
                self.order_dirty = true;
            }
            Update::Event(ev) => {
                self.last_data_at = Some(now);
                self.blocked = None;
                self.received.record(now);
                let offset = ev.offset;
                self.apply_event(*ev, now);
                self.reached(offset, now);
            }
            Update::Heartbeat => self.last_data_at = Some(now),
            Update::SystemStatus(s) => {
                self.last_data_at = Some(now);
                if let Some(ms) = s.finished_retention_ms {
                    // The hub's retention, not the assumed default.
                    self.config.finished_retention_ms = ms;
                }
                self.system = Some(s);
            }
            Update::CancelAccepted { operation_id } => {
                self.cancel_sent.insert(operation_id);
            }
            Update::CancelRefused {
                operation_id,
                code,
                message,
            } => {
                self.cancel_sent.remove(&operation_id);
                if matches!(code.as_str(), "FORBIDDEN" | "AUTH_REQUIRED") {
                    self.config.can_cancel = false;
                }
                let name = self.name_of(&operation_id);
                self.toast(
                    format!("Cancel of {name} refused ({code}): {message}"),
                    ToastLevel::Error,
                    now,
                );
            }
            Update::SubscriptionRefused {
                code,
                message,
                reason,
                retry_at,
            } => {
                self.blocked = Some(Blocked::Refused {
                    code,
                    message,
                    reason,
                    retry_at,
                });
            }
            Update::MessageTooLarge { size, limit } => {
                self.blocked = Some(Blocked::TooLarge { size, limit });
            }
            Update::HubError { code, message } => {
                self.toast(format!("Hub: {code}: {message}"), ToastLevel::Warning, now);
            }
        }
    }

    pub(crate) fn name_of(&self, id: &str) -> String {
        self.ops
            .get(id)
            .map_or_else(|| id.to_owned(), |e| e.state.display_name().to_owned())
    }

    fn set_conn(&mut self, status: ConnStatus, now: u64) {
        if status == self.conn {
            return;
        }
        if !status.is_connected() {
            // The data's age keeps counting from the last frame: a dead
            // connection is noticed only some heartbeats after the hub last
            // spoke, and the data was known current only until then.
            self.synced = false;
            self.catch_up = None;
        }
        if let ConnStatus::Failed { reason } = &status {
            self.toast(
                format!("Connection failed: {reason}"),
                ToastLevel::Error,
                now,
            );
        }
        self.conn = status;
    }

    /// The data now reaches `offset`: a resume that was catching up to it
    /// (or to less) is done.
    fn reached(&mut self, offset: u64, now: u64) {
        if let Some((target, recovered)) = self.catch_up {
            if offset >= target {
                self.catch_up = None;
                self.caught_up(recovered, now);
            }
        }
    }

    /// The view is current again; after a reconnect the toast says how many
    /// updates the resume brought (`recovered`).
    fn caught_up(&mut self, recovered: Option<u64>, now: u64) {
        self.synced = true;
        if let Some(n) = recovered {
            let word = if n == 1 { "update" } else { "updates" };
            self.toast(
                format!("Reconnected — {n} {word} recovered"),
                ToastLevel::Info,
                now,
            );
        }
    }

    fn apply_event(&mut self, ev: OpEvent, now: u64) {
        let OpEvent {
            kind,
            offset,
            timestamp,
            state,
            reason,
        } = ev;
        if let Some((_, pos)) = &mut self.position {
            *pos = (*pos).max(offset);
        }
        let id = state.operation_id.clone();
        let summary = summarize(&kind, &state, reason.as_deref());
        let failed_now = kind == "operation_failed";
        let recent = RecentEvent {
            offset,
            timestamp,
            kind,
            summary,
        };
        let cap = self.config.recent_events;
        match self.ops.get_mut(&id) {
            Some(entry) => {
                if offset != 0
                    && state.last_offset != 0
                    && state.last_offset < entry.state.last_offset
                {
                    return; // older than what we hold (duplicate delivery)
                }
                if entry.state.state != state.state
                    || entry.state.parent_id != state.parent_id
                    || entry.state.started_at != state.started_at
                    || entry.state.name != state.name
                {
                    self.order_dirty = true;
                }
                if state.state.is_terminal() {
                    self.cancel_sent.remove(&id);
                }
                entry.state = state;
                entry.remember(recent, cap);
            }
            None => {
                let mut entry = OpEntry::new(state);
                entry.remember(recent, cap);
                self.ops.insert(id.clone(), entry);
                self.order_dirty = true;
            }
        }
        if failed_now {
            let e = &self.ops[&id].state;
            let text = format!(
                "✗ {} failed: {}",
                e.display_name(),
                e.error.as_deref().unwrap_or("no error text")
            );
            self.toast(text, ToastLevel::Error, now);
        }
    }
}

/// One line describing an event for the detail pane.
fn summarize(kind: &str, s: &OpState, reason: Option<&str>) -> String {
    let pct = s.progress.map(|p| format!("{p:.1}%")).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    match kind {
        "operation_started" => parts.push(format!("started “{}”", s.display_name())),
        "operation_failed" => parts.push(s.error.clone().unwrap_or_default()),
        "operation_canceled" => parts.push(
            reason
                .or(s.message.as_deref())
                .unwrap_or("canceled")
                .to_owned(),
        ),
        "operation_completed" => parts.push("done".to_owned()),
        "operation_stalled" => parts.push(format!("stalled at {pct}")),
        "operation_resumed" => parts.push("resumed".to_owned()),
        _ => {
            parts.push(pct);
            if let Some(step) = &s.step {
                parts.push(step.clone());
            }
            if let Some(m) = &s.message {
                parts.push(m.clone());
            }
        }
    }
    crate::format::one_line(&parts.join(" · "))
}
