//! [`ConnectionStats`]: a snapshot of the connection's health and counters.

use std::time::{Duration, SystemTime};

use crate::client::Shared;
use crate::machine::ConnState;

/// What [`Client::connection_stats`](crate::Client::connection_stats) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStats {
    /// The hub URL.
    pub url: String,
    /// Connection state.
    pub state: ConnState,
    /// Retry number in the current streak (0 after a stable connection).
    pub attempts: u32,
    /// Connected and a frame arrived within one heartbeat interval.
    pub healthy: bool,
    /// Messages waiting (unacked, plus pending progress updates).
    pub queue_len: u64,
    /// Lifecycle messages waiting for an ack.
    pub lifecycle_queued: u64,
    /// Operations the reporter still tracks.
    pub operations: u64,
    /// When the last `heartbeat` arrived.
    pub last_heartbeat: Option<SystemTime>,
    /// Connections the hub reported in its last heartbeat.
    pub clients_connected: Option<u64>,
    /// Producer messages written (first sends and resends).
    pub sent: u64,
    /// Producer messages acked.
    pub acked: u64,
    /// Producer messages sent again after a reconnect or refusal.
    pub resent: u64,
    /// Lifecycle calls refused because the queue was full.
    pub queue_full: u64,
    /// Operations re-registered because the hub had lost them.
    pub resurrected: u64,
    /// Messages the hub refused for good.
    pub rejected: u64,
    /// Lifecycle messages (start, complete, fail, cancel) the hub refused
    /// for good: operations whose reported state the hub does not hold.
    pub lifecycle_rejected: u64,
    /// Messages cut to fit the hub's message size limit.
    pub shrunk: u64,
    /// Bytes held for queued operations (bounded by
    /// [`OutboxConfig::max_bytes`](crate::outbox::OutboxConfig::max_bytes)).
    pub queued_bytes: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// Total time spent not connected.
    pub time_disconnected: Duration,
    /// Frames received.
    pub frames_received: u64,
    /// The last connection or protocol error seen.
    pub last_error: Option<String>,
    /// The hub's error code for it, when it named one (`TOKEN_EXPIRED`).
    pub last_error_code: Option<String>,
}

impl ConnectionStats {
    pub(crate) fn collect(shared: &Shared) -> ConnectionStats {
        let now = shared.now_ms();
        let inner = shared.inner.lock();
        let m = &inner.machine;
        let o = inner.outbox.stats();
        ConnectionStats {
            url: shared.config.url.clone(),
            state: if inner.crashed {
                ConnState::Failed
            } else if inner.closed {
                ConnState::Disconnected
            } else {
                m.state()
            },
            attempts: m.retries(),
            healthy: m.healthy(now) && !inner.closed,
            queue_len: o.queued,
            lifecycle_queued: o.lifecycle_queued,
            operations: o.operations,
            last_heartbeat: inner.last_heartbeat,
            clients_connected: inner.clients_connected,
            sent: o.sent,
            acked: o.acked,
            resent: o.resent,
            queue_full: o.queue_full,
            resurrected: o.resurrected,
            rejected: o.rejected,
            lifecycle_rejected: o.lifecycle_rejected,
            shrunk: o.shrunk,
            queued_bytes: o.bytes,
            reconnects: m.reconnects(),
            time_disconnected: Duration::from_millis(m.time_disconnected_ms(now)),
            frames_received: inner.frames_received,
            last_error: inner.last_error.clone(),
            last_error_code: inner.last_error_code.clone(),
        }
    }
}
