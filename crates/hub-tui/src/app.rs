//! The view model: everything the screen shows, updated by [`Update`](crate::Update)s from
//! the driver and by keys, with time passed in (no clock reads here).
//!
//! Per event the model does a map lookup and a ring push; the sorted, filtered
//! row order is rebuilt lazily (only when membership, a state, a parent or a
//! filter changed) when the screen or a key needs it.

use crate::filter::{StateFilter, TextFilter};
use crate::op::{OpEntry, OpStatus};
pub use crate::order::RowRef;
use crate::toast::{ToastLevel, Toasts};
use crate::update::{ConnStatus, SystemStatus};
use std::collections::{HashMap, HashSet};

/// Settings fixed for the session.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    /// Hub URL, shown in the status bar.
    pub url: String,
    /// The subscribed namespace.
    pub namespace: String,
    /// Whether the token allows `cancel` (the `c` key is offered only then).
    pub can_cancel: bool,
    /// How many recent events to keep per operation (detail pane).
    pub recent_events: usize,
    /// Finished operations are forgotten this long after they finished
    /// (the hub's `--finished-retention` default; replaced by the hub's
    /// own figure once its `system_status` announces it).
    pub finished_retention_ms: u64,
}

impl AppConfig {
    /// Defaults for `url` and `namespace`: cancel allowed, 20 recent
    /// events, finished operations kept one hour.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        AppConfig {
            url: url.into(),
            namespace: namespace.into(),
            can_cancel: true,
            recent_events: 20,
            finished_retention_ms: 3_600_000,
        }
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Browsing the list.
    Normal,
    /// Typing a filter after `/`.
    Filter,
    /// Asking "cancel this operation? y/n".
    ConfirmCancel {
        /// The operation to cancel.
        operation_id: String,
    },
}

/// What the caller must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send `cancel` for this operation.
    Cancel(String),
    /// Drop the connection (or the wait) and connect again now.
    Reconnect,
    /// Leave, restoring the terminal.
    Quit,
}

/// Counts of operations by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Running.
    pub running: usize,
    /// Stalled.
    pub stalled: usize,
    /// Completed.
    pub completed: usize,
    /// Failed.
    pub failed: usize,
    /// Canceled.
    pub canceled: usize,
}

impl Counts {
    /// The count for one state.
    pub fn get(&self, s: OpStatus) -> usize {
        match s {
            OpStatus::Running => self.running,
            OpStatus::Stalled => self.stalled,
            OpStatus::Completed => self.completed,
            OpStatus::Failed => self.failed,
            OpStatus::Canceled => self.canceled,
            OpStatus::Unknown => 0,
        }
    }
}

/// Why the dashboard gets no data although the hub may be reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// The hub refused the subscription; `retry_at` (ms since the Unix
    /// epoch) when it is asked for again, `None` when the refusal is final.
    Refused {
        /// Error code.
        code: String,
        /// The hub's sentence.
        message: String,
        /// The hub's `data.reason`.
        reason: Option<String>,
        /// When the client asks again.
        retry_at: Option<u64>,
    },
    /// The hub's message was over the client's size limit.
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Blocked {
    /// One line for the status bar and the empty list at `now`.
    pub fn describe(&self, now: u64) -> String {
        match self {
            Blocked::Refused {
                code,
                message,
                reason,
                retry_at,
            } => {
                let why = reason
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" ({r})"));
                match retry_at {
                    Some(at) => {
                        let secs = at.saturating_sub(now).div_ceil(1000);
                        format!("subscription refused for now: {code}{why}, retrying in {secs}s")
                    }
                    None => format!("subscription refused: {code}{why}: {message}"),
                }
            }
            Blocked::TooLarge { size, limit } => format!(
                "hub message of {} MiB over the client's limit of {} MiB",
                size.div_ceil(1 << 20),
                limit / (1 << 20)
            ),
        }
    }
}

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) config: AppConfig,
    pub(crate) ops: HashMap<String, OpEntry>,
    pub(crate) conn: ConnStatus,
    /// When data last arrived (local clock, ms).
    pub(crate) last_data_at: Option<u64>,
    /// The stream position the data reflects.
    pub(crate) position: Option<(String, u64)>,
    pub(crate) subscribed_once: bool,
    /// Connected and resynchronised (subscribed, then the snapshot or every
    /// replayed event up to the `subscribed` offset applied).
    pub(crate) synced: bool,
    /// A resume whose replay has not reached the `subscribed` offset yet:
    /// that offset, and after a reconnect how many updates it recovers
    /// (the toast says so once they are in).
    pub(crate) catch_up: Option<(u64, Option<u64>)>,
    /// Operations this session asked to cancel (shown as "canceling" until
    /// the hub's state says so or they finish).
    pub(crate) cancel_sent: HashSet<String>,
    pub(crate) system: Option<SystemStatus>,
    /// Why no data arrives although the connection may be up (a refused
    /// subscription, a message over the size limit); cleared by data.
    pub(crate) blocked: Option<Blocked>,
    /// Events received per second (shown when the hub's figure is absent).
    pub(crate) received: crate::meter::RateMeter,
    pub(crate) mode: Mode,
    pub(crate) show_detail: bool,
    pub(crate) filter_text: String,
    pub(crate) text_filter: TextFilter,
    pub(crate) state_filter: StateFilter,
    pub(crate) toasts: Toasts,
    /// The selected operation (follows it when the order changes).
    pub(crate) selected: Option<String>,
    /// Index of the selection at the last order rebuild (fallback when the
    /// selected operation disappears).
    pub(crate) selected_hint: usize,
    /// Whether the user moved the selection: until then it stays on the
    /// first row instead of following an operation around.
    pub(crate) user_selected: bool,
    pub(crate) scroll: usize,
    /// Rows the list showed at the last render (page size for PgUp/PgDn).
    pub(crate) page: usize,
    order: Vec<RowRef>,
    pub(crate) order_dirty: bool,
    quit: bool,
}

impl App {
    /// An empty dashboard, not connected yet.
    pub fn new(config: AppConfig) -> Self {
        App {
            config,
            ops: HashMap::new(),
            conn: ConnStatus::Disconnected,
            last_data_at: None,
            position: None,
            subscribed_once: false,
            synced: false,
            catch_up: None,
            cancel_sent: HashSet::new(),
            system: None,
            blocked: None,
            received: crate::meter::RateMeter::default(),
            mode: Mode::Normal,
            show_detail: false,
            filter_text: String::new(),
            text_filter: TextFilter::default(),
            state_filter: StateFilter::All,
            toasts: Toasts::default(),
            selected: None,
            selected_hint: 0,
            user_selected: false,
            scroll: 0,
            page: 10,
            order: Vec::new(),
            order_dirty: true,
            quit: false,
        }
    }

    /// The session settings.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The connection status.
    pub fn conn(&self) -> &ConnStatus {
        &self.conn
    }

    /// The keyboard mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Whether the detail pane is open.
    pub fn detail_open(&self) -> bool {
        self.show_detail
    }

    /// The selected operation's id.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// An operation by id.
    pub fn op(&self, id: &str) -> Option<&OpEntry> {
        self.ops.get(id)
    }

    /// Number of operations held (unfiltered).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is held.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Whether a `Quit` command was produced.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    pub(crate) fn set_quit(&mut self) {
        self.quit = true;
    }

    /// The last stream position the data reflects (`(epoch, offset)`).
    pub fn position(&self) -> Option<(&str, u64)> {
        self.position.as_ref().map(|(e, o)| (e.as_str(), *o))
    }

    /// Whether the rows may be out of date: not connected, or connected but
    /// not yet resynchronised (no `subscribed`/snapshot since, or a resume's
    /// missed events still coming).
    pub fn is_stale(&self) -> bool {
        !self.conn.is_connected() || !self.synced
    }

    /// Connected, with the missed events (or the snapshot) still coming.
    pub fn is_catching_up(&self) -> bool {
        self.conn.is_connected() && !self.synced
    }

    /// Whether a cancel is pending for the operation (the hub says so, or
    /// this session asked), and it has not finished.
    pub fn is_canceling(&self, id: &str) -> bool {
        self.ops.get(id).is_some_and(|e| {
            !e.state.state.is_terminal()
                && (e.state.cancel_requested || self.cancel_sent.contains(id))
        })
    }

    /// Records that this session asked to cancel `id` (the key handler does
    /// this when it returns [`Command::Cancel`]).
    pub(crate) fn mark_cancel_sent(&mut self, id: &str, now: u64) {
        self.cancel_sent.insert(id.to_owned());
        let name = self.name_of(id);
        if self.conn.is_connected() {
            self.toast(format!("Cancel requested: {name}"), ToastLevel::Info, now);
        } else {
            // The client keeps the request and sends it once connected.
            self.toast(
                format!("Cancel of {name} queued: it is sent when the hub is reachable again"),
                ToastLevel::Warning,
                now,
            );
        }
    }

    /// How old the data is at `now` (since data last arrived).
    pub fn data_age_ms(&self, now: u64) -> Option<u64> {
        self.last_data_at.map(|t| now.saturating_sub(t))
    }

    /// Counts of all held operations by state (filters ignored).
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for e in self.ops.values() {
            match e.state.state {
                OpStatus::Running => c.running += 1,
                OpStatus::Stalled => c.stalled += 1,
                OpStatus::Completed => c.completed += 1,
                OpStatus::Failed => c.failed += 1,
                OpStatus::Canceled => c.canceled += 1,
                OpStatus::Unknown => {}
            }
        }
        c
    }

    /// Adds a toast.
    pub fn toast(&mut self, text: impl Into<String>, level: ToastLevel, now: u64) {
        let ttl = match level {
            ToastLevel::Info => 5_000,
            ToastLevel::Warning => 6_000,
            ToastLevel::Error => 8_000,
        };
        self.toasts
            .push(crate::format::one_line(&text.into()), level, now, ttl);
    }

    /// Why no data arrives, when the hub said so (shown in the status bar
    /// and in place of the rows).
    pub fn blocked(&self) -> Option<&Blocked> {
        self.blocked.as_ref()
    }

    /// The toasts shown at `now`.
    pub fn toasts(&self) -> &Toasts {
        &self.toasts
    }

    /// Housekeeping at `now`: expires toasts and forgets operations that
    /// finished longer ago than the retention.
    pub fn tick(&mut self, now: u64) {
        self.toasts.prune(now);
        let keep = self.config.finished_retention_ms;
        let before = self.ops.len();
        self.ops.retain(|_, e| match e.state.finished_at {
            Some(f) if e.state.state.is_terminal() => now.saturating_sub(f) <= keep,
            _ => true,
        });
        if self.ops.len() != before {
            self.order_dirty = true;
        }
    }

    /// Sets the text filter (live while typing).
    pub(crate) fn set_filter(&mut self, text: String) {
        self.text_filter = TextFilter::new(&text);
        self.filter_text = text;
        self.order_dirty = true;
    }

    /// Sets the state filter.
    pub(crate) fn set_state_filter(&mut self, f: StateFilter) {
        self.state_filter = f;
        self.order_dirty = true;
    }

    /// The rows, in display order, after the filters (rebuilt if needed).
    pub fn rows(&mut self) -> &[RowRef] {
        self.ensure_order();
        &self.order
    }

    /// The index of the selected row in [`App::rows`].
    pub fn selected_index(&mut self) -> Option<usize> {
        self.ensure_order();
        let sel = self.selected.as_deref()?;
        self.order.iter().position(|r| r.id == sel)
    }

    /// Selects the row at `index` (clamped).
    pub(crate) fn select_index(&mut self, index: usize) {
        self.ensure_order();
        if self.order.is_empty() {
            self.selected = None;
            return;
        }
        let i = index.min(self.order.len() - 1);
        self.selected = Some(self.order[i].id.clone());
        self.selected_hint = i;
    }

    fn ensure_order(&mut self) {
        if !self.order_dirty {
            return;
        }
        self.order_dirty = false;
        self.order = crate::order::build(&self.ops, self.state_filter, &self.text_filter);
        // Keep the selection on its operation, or near where it was.
        let found = self
            .selected
            .as_deref()
            .and_then(|sel| self.order.iter().position(|r| r.id == sel))
            .filter(|_| self.user_selected);
        match found {
            Some(i) => self.selected_hint = i,
            None if self.order.is_empty() => self.selected = None,
            None => {
                let hint = if self.user_selected {
                    self.selected_hint
                } else {
                    0
                };
                let i = hint.min(self.order.len() - 1);
                self.selected = Some(self.order[i].id.clone());
                self.selected_hint = i;
            }
        }
    }
}
