//! A connection's outbox: the bounded, conflating queue the engine pushes
//! encoded messages into, and the signal its writer waits on.
//!
//! The engine never writes to a socket: it pushes shared bytes here and the
//! connection's own task drains everything queued into one frame.

use hub_core::outqueue::{OutItem, OutQueue, OutQueueConfig, PushOutcome};
use hub_proto::{CloseCode, ErrorMessage, ProtoError, ServerMessage};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Why and how a connection must close once its queue is flushed.
#[derive(Clone, Debug)]
pub struct Closing {
    /// The close code.
    pub code: CloseCode,
    /// The encoded `error` message that explains it (sent last).
    pub error: Arc<str>,
}

/// The queue between the engine and one connection.
pub struct Outbox {
    /// Connection id.
    pub id: u64,
    queue: Mutex<OutQueue>,
    closing: Mutex<Option<Closing>>,
    /// Set once `closing` is: the writer checks this after every frame
    /// without taking the lock.
    is_closing: AtomicBool,
    notify: Notify,
    ping: AtomicBool,
    last_activity: AtomicU64,
    /// Whether the connection holds at least one subscription.
    pub subscribed: AtomicBool,
    /// Whether this is an SSE connection (no WebSocket pings).
    pub sse: bool,
    rejections: Mutex<VecDeque<u64>>,
    /// When the connection's token expires, ms (0: never).
    pub expires_at: AtomicU64,
    metrics: Arc<crate::metrics::Metrics>,
    /// Role bits for `ws_updates_clients` ([`ROLE_VIEWER`], [`ROLE_PRODUCER`],
    /// plus `GONE` once counted out).
    role: AtomicU8,
    /// The queue's conflation count already exported (updated under the queue lock).
    conflated_seen: AtomicU64,
}

/// Role bit: the connection has subscribed.
pub const ROLE_VIEWER: u8 = 1;
/// Role bit: the connection has published.
pub const ROLE_PRODUCER: u8 = 2;
const GONE: u8 = 4;

/// More than this many rejected messages ...
pub const ABUSE_REJECTIONS: usize = 20;
/// ... within this window is abuse.
pub const ABUSE_WINDOW_MS: u64 = 10_000;

impl Outbox {
    /// A new outbox.
    pub fn new(
        id: u64,
        cfg: OutQueueConfig,
        now: u64,
        sse: bool,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Self> {
        Arc::new(Outbox {
            id,
            queue: Mutex::new(OutQueue::new(cfg)),
            closing: Mutex::new(None),
            is_closing: AtomicBool::new(false),
            notify: Notify::new(),
            ping: AtomicBool::new(false),
            last_activity: AtomicU64::new(now),
            subscribed: AtomicBool::new(false),
            sse,
            rejections: Mutex::new(VecDeque::new()),
            expires_at: AtomicU64::new(0),
            metrics,
            role: AtomicU8::new(0),
            conflated_seen: AtomicU64::new(0),
        })
    }

    /// Counts the connection in: accepted, and connected with no role yet.
    /// `handshake` is the [`crate::clock::stamp`] of the request.
    pub fn opened(&self, handshake: u64) {
        let transport = if self.sse { "sse" } else { "websocket" };
        self.metrics.accepted(transport, handshake);
        self.metrics.client_gauge(self.sse, 0).inc();
    }

    /// Records that the connection took a role ([`ROLE_VIEWER`] or
    /// [`ROLE_PRODUCER`]), moving it between the connected-clients gauges.
    pub fn mark_role(&self, bit: u8) {
        let prev = self
            .role
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r & (GONE | bit) == 0).then_some(r | bit)
            });
        if let Ok(prev) = prev {
            self.metrics.client_gauge(self.sse, prev).dec();
            self.metrics.client_gauge(self.sse, prev | bit).inc();
        }
    }

    /// Counts the connection out (once): connected gauge and disconnection reason.
    pub fn finished(&self, reason: &str) {
        let prev = self.role.fetch_or(GONE, Ordering::AcqRel);
        if prev & GONE == 0 {
            self.metrics.client_gauge(self.sse, prev).dec();
            self.metrics.disconnected(reason);
        }
    }

    /// Queues one message. Returns false when the viewer is too slow (the
    /// outbox is then closing with `SLOW_CLIENT`).
    pub fn push(&self, item: OutItem) -> bool {
        let outcome = self.queue.lock().push(item);
        self.after_push(outcome)
    }

    /// Queues several messages under one lock.
    pub fn push_many<'a>(&self, items: impl Iterator<Item = &'a OutItem>) -> bool {
        let mut slow = false;
        {
            let mut q = self.queue.lock();
            for item in items {
                if matches!(q.push(item.clone()), PushOutcome::Slow) {
                    slow = true;
                    break;
                }
            }
        }
        self.after_push(if slow {
            PushOutcome::Slow
        } else {
            PushOutcome::Queued
        })
    }

    fn after_push(&self, outcome: PushOutcome) -> bool {
        if matches!(outcome, PushOutcome::Slow) {
            let err = ProtoError::new(
                hub_proto::ErrorCode::SlowClient,
                "the connection could not keep up with its updates",
            )
            .with_details("The hub dropped this connection instead of queueing without bound; reconnect and resume from your last offset.");
            self.close(CloseCode::TryAgainLater, err, crate::clock::now_ms());
            return false;
        }
        self.notify.notify_one();
        true
    }

    /// Queues a control message (never counted against the slow limit).
    pub fn push_control(&self, bytes: Arc<str>) {
        self.push(OutItem::message(bytes));
    }

    /// Asks the connection to close after what is queued, with an error that says why.
    pub fn close(&self, code: CloseCode, error: ProtoError, now: u64) {
        let mut c = self.closing.lock();
        if c.is_none() {
            self.metrics.error_sent(&error);
            let msg = ServerMessage::Error(ErrorMessage::from_proto(error, now)).encode();
            *c = Some(Closing {
                code,
                error: msg.into(),
            });
            self.is_closing.store(true, Ordering::Release);
        }
        drop(c);
        self.notify.notify_one();
    }

    /// The close request, if any.
    pub fn closing(&self) -> Option<Closing> {
        if !self.is_closing.load(Ordering::Acquire) {
            return None;
        }
        self.closing.lock().clone()
    }

    /// Takes everything queued; samples the queue depth and exports what
    /// conflation dropped since the last drain.
    pub fn drain_into(&self, out: &mut Vec<OutItem>) {
        let mut q = self.queue.lock();
        if q.is_empty() {
            return;
        }
        let conflated = q.conflated_total();
        let seen = self.conflated_seen.swap(conflated, Ordering::Relaxed);
        let depth = q.bytes();
        q.drain_into(out);
        drop(q);
        if conflated > seen {
            self.metrics.conflated.inc_by(conflated - seen);
        }
        self.metrics.queue_depth_bytes.observe(depth as f64);
    }

    /// Waits until something is queued or a close is requested.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Sends an error for a rejected message, and closes the connection
    /// (1008) when it has sent more than [`ABUSE_REJECTIONS`] rejected
    /// messages within [`ABUSE_WINDOW_MS`].
    pub fn reject(&self, error: ProtoError) {
        let now = crate::clock::now_ms();
        self.metrics.error_sent(&error);
        let msg = ServerMessage::Error(ErrorMessage::from_proto(error, now)).encode();
        self.push_control(msg.into());
        let abusive = {
            let mut r = self.rejections.lock();
            r.push_back(now);
            while r
                .front()
                .is_some_and(|t| now.saturating_sub(*t) > ABUSE_WINDOW_MS)
            {
                r.pop_front();
            }
            r.len() > ABUSE_REJECTIONS
        };
        if abusive {
            let e = ProtoError::new(
                hub_proto::ErrorCode::RateLimited,
                "too many rejected messages; closing the connection",
            )
            .with_data(serde_json::json!({"reason": "abuse"}));
            self.close(CloseCode::Abuse, e, now);
        }
    }

    /// Asks the writer to send a WebSocket ping.
    pub fn request_ping(&self) {
        self.ping.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Whether a ping is due (clears the flag).
    pub fn take_ping(&self) -> bool {
        self.ping.swap(false, Ordering::Relaxed)
    }

    /// Records client activity.
    pub fn touch(&self, now: u64) {
        self.last_activity.store(now, Ordering::Relaxed);
    }

    /// The last client activity, ms.
    pub fn last_activity(&self) -> u64 {
        self.last_activity.load(Ordering::Relaxed)
    }
}
