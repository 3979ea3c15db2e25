//! Short-lived notices ("Reconnected — 12 updates recovered"): a small
//! bounded queue whose entries expire at a given time.

use std::collections::VecDeque;

/// How a toast is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastLevel {
    /// Good news or information.
    Info,
    /// Something to notice.
    Warning,
    /// Something failed.
    Error,
}

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    /// The text, one line.
    pub text: String,
    /// Colour.
    pub level: ToastLevel,
    /// When it disappears (ms).
    pub expires_at: u64,
}

/// The queue of live toasts, newest last.
#[derive(Debug, Clone, Default)]
pub struct Toasts {
    items: VecDeque<Toast>,
}

impl Toasts {
    /// How many toasts are kept at once; older ones are dropped.
    pub const MAX: usize = 4;

    /// Adds a toast shown for `ttl_ms` from `now`.
    pub fn push(&mut self, text: impl Into<String>, level: ToastLevel, now: u64, ttl_ms: u64) {
        while self.items.len() >= Self::MAX {
            self.items.pop_front();
        }
        self.items.push_back(Toast {
            text: text.into(),
            level,
            expires_at: now.saturating_add(ttl_ms),
        });
    }

    /// Forgets expired toasts.
    pub fn prune(&mut self, now: u64) {
        self.items.retain(|t| t.expires_at > now);
    }

    /// The toasts still live at `now`, oldest first.
    pub fn live(&self, now: u64) -> impl Iterator<Item = &Toast> {
        self.items.iter().filter(move |t| t.expires_at > now)
    }
}
