//! The model's inputs: everything the connection driver tells the view
//! model, already decoded. Whatever feeds the dashboard (the built-in driver,
//! a hub-client `Subscriber`, a test) speaks in these types.

use crate::op::OpState;

/// The connection as the status bar shows it. Times are ms since the Unix
/// epoch, on the same clock the model is given as `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnStatus {
    /// Not connected and not trying (before the first attempt).
    Disconnected,
    /// An attempt is in progress (`attempt` 0 is the first of a streak).
    Connecting {
        /// Retry number in the current streak.
        attempt: u32,
    },
    /// Up and subscribed (or subscribing).
    Connected,
    /// Waiting before the next attempt.
    Reconnecting {
        /// Retry number in the current streak.
        attempt: u32,
        /// When the next attempt starts.
        next_retry_at: u64,
        /// Why the last connection or attempt ended, when known.
        cause: Option<String>,
    },
    /// Gave up until the user asks again (`r`): the hub refused for good.
    Failed {
        /// Human reason ("token rejected").
        reason: String,
    },
}

impl ConnStatus {
    /// Whether data is flowing (rows are fresh).
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnStatus::Connected)
    }
}

/// Hub health figures from `system_status.data` that the status bar shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemStatus {
    /// Events accepted per second, hub-wide.
    pub events_per_second: Option<f64>,
    /// Messages delivered to viewers per second.
    pub deliveries_per_second: Option<f64>,
    /// Connections the hub holds.
    pub connections: Option<u64>,
    /// Whether part of the figures comes from a cache.
    pub is_stale: bool,
    /// The hub's `--finished-retention`, when it announces it: how long
    /// finished rows are kept.
    pub finished_retention_ms: Option<u64>,
}

/// One operation event of the subscribed namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct OpEvent {
    /// Event type (`operation_started`, `progress_update`, ...).
    pub kind: String,
    /// Namespace offset.
    pub offset: u64,
    /// Hub time, ms.
    pub timestamp: u64,
    /// The operation's state after the event.
    pub state: OpState,
    /// `reason` of an `operation_canceled`, when given.
    pub reason: Option<String>,
}

/// Something the driver observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The connection changed state.
    Connection(ConnStatus),
    /// The hub answered `subscribe`.
    Subscribed {
        /// Stream epoch.
        epoch: String,
        /// The namespace's last offset at that moment.
        offset: u64,
        /// Whether the missed events follow (else a snapshot follows).
        recovered: bool,
        /// The offset the subscription resumed from, if it asked to.
        resumed_from: Option<u64>,
    },
    /// An `operation_list` snapshot: replaces everything known.
    Snapshot {
        /// Stream epoch.
        epoch: String,
        /// The offset every state reflects.
        offset: u64,
        /// The states.
        operations: Vec<OpState>,
    },
    /// An operation event.
    Event(Box<OpEvent>),
    /// A `heartbeat` (proof the data is current).
    Heartbeat,
    /// A `system_status`.
    SystemStatus(SystemStatus),
    /// The hub accepted a cancel request.
    CancelAccepted {
        /// The operation.
        operation_id: String,
    },
    /// The hub refused a cancel request.
    CancelRefused {
        /// The operation.
        operation_id: String,
        /// Error code (`FORBIDDEN`, `OPERATION_FINISHED`, ...).
        code: String,
        /// The hub's sentence.
        message: String,
    },
    /// The hub refused the subscription: no data comes until it accepts.
    /// Shown persistently until data arrives.
    SubscriptionRefused {
        /// Error code (`FORBIDDEN`, `RATE_LIMITED`, ...).
        code: String,
        /// The hub's sentence.
        message: String,
        /// The hub's `data.reason` (e.g. `snapshots`), when given.
        reason: Option<String>,
        /// When the subscription is asked for again (ms since the Unix
        /// epoch); `None` when the refusal is final.
        retry_at: Option<u64>,
    },
    /// The hub sent a message over the client's size limit; the connection
    /// was dropped and is retried. Shown persistently until data arrives.
    MessageTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The client's limit.
        limit: usize,
    },
    /// Any other `error` from the hub.
    HubError {
        /// Error code.
        code: String,
        /// The hub's sentence.
        message: String,
    },
}
