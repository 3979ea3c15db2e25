//! A connection's outbox: the bounded, conflating queue the engine pushes
//! encoded messages into, and the signal its writer waits on.
//!
//! The engine pushes shared bytes here. Usually the connection's own task
//! drains everything queued into one frame and writes it. On plain TCP a
//! viewer that is keeping up (nothing queued, nothing being written) has
//! its message written by the fan-out instead, straight to the socket
//! ([`Outbox::write_direct`]), which spares a task wake-up per delivery.
//!
//! Exactly one writer at a time: under the queue's lock, `writing` says the
//! task owns the socket, and `pending` holds bytes that must go out before
//! any new frame (what a direct write could not finish, and the control
//! frames tungstenite produces, captured by [`crate::sock::Wire`]). A
//! direct write happens under the lock and only when both are clear, so
//! frames never interleave and messages leave in queue order.

use hub_core::outqueue::{OutItem, OutQueue, OutQueueConfig, PushOutcome};
use hub_proto::{CloseCode, ErrorCode, ErrorMessage, ProtoError, ServerMessage};
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
    queue: Mutex<Queued>,
    closing: Mutex<Option<Closing>>,
    /// Set once `closing` is: the writer checks this after every frame
    /// without taking the lock.
    is_closing: AtomicBool,
    notify: Notify,
    ping: AtomicBool,
    last_activity: AtomicU64,
    /// Whether the connection holds at least one subscription (see
    /// [`Outbox::push_status`]).
    subscribed: AtomicBool,
    /// Whether this is an SSE connection (no WebSocket pings).
    pub sse: bool,
    rejections: Mutex<VecDeque<u64>>,
    /// The `exp` of the connection's token, ms (0: never expires); see
    /// [`Outbox::token_expired`].
    expires_at: AtomicU64,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Role bits for `ws_updates_clients` ([`ROLE_VIEWER`], [`ROLE_PRODUCER`],
    /// plus `GONE` once counted out).
    role: AtomicU8,
    /// The queue's conflation count already exported (updated under the queue lock).
    conflated_seen: AtomicU64,
}

/// The queue and the socket's write state, under one lock.
struct Queued {
    queue: OutQueue,
    /// The plain-TCP socket, while the connection's task runs.
    wire: Option<Arc<crate::sock::Wire>>,
    /// Whether the connection's task is writing (owns the socket).
    writing: bool,
    /// Bytes to write before anything else.
    pending: Vec<u8>,
    /// Messages taken from the queue that did not fit in the last frame
    /// ([`crate::frame::MAX_FRAME_BYTES`]): the next frames, before
    /// anything still queued.
    held: Vec<OutItem>,
    /// When the last frame was taken for writing ([`crate::clock::stamp`]).
    last_frame: u64,
}

/// A viewer sent a frame less than this long ago (ns) is busy: its messages
/// go through its task, which batches what arrives meanwhile into one
/// frame. Direct writes are for viewers that get a message now and then.
pub const DIRECT_QUIET_NS: u64 = 2_000_000;

impl Queued {
    /// Whether the fan-out may write to the socket now.
    fn direct_ready(&self) -> bool {
        self.wire.is_some() && !self.writing && self.pending.is_empty() && self.held.is_empty()
    }
}

/// What a connection's task writes next.
pub enum Next {
    /// Bytes left over from a direct write, or captured control frames.
    Raw(Vec<u8>),
    /// A frame of queued messages.
    Frame(crate::frame::Batch),
}

/// What [`Outbox::push_live`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued (or refused: the viewer is too slow and the outbox closing);
    /// the connection's task was woken.
    Queued,
    /// Queued into an idle plain-TCP connection: call
    /// [`Outbox::write_direct`] (the task was not woken).
    Direct,
}

/// Role bit: the connection has subscribed.
pub const ROLE_VIEWER: u8 = 1;
/// Role bit: the connection has published.
pub const ROLE_PRODUCER: u8 = 2;
const GONE: u8 = 4;

/// The most bytes of control frames (and one unfinished frame) held for
/// the connection's task; a client that makes more pile up is closed.
pub const PENDING_LIMIT: usize = 1 << 20;

/// More than this many rejected messages ...
pub const ABUSE_REJECTIONS: usize = 20;

/// `RATE_LIMITED` reasons that are about the whole hub, not what one
/// connection does: they do not count towards the abuse rule.
pub const HUB_CAPACITY_LIMITS: [&str; 5] = [
    "operations",
    "operations_per_namespace",
    "namespaces",
    "ingest",
    "snapshots",
];

/// Whether `error` refuses for the hub's capacity ([`HUB_CAPACITY_LIMITS`]).
fn is_hub_capacity(error: &ProtoError) -> bool {
    error.code == ErrorCode::RateLimited
        && error
            .data_str("reason")
            .is_some_and(|r| HUB_CAPACITY_LIMITS.contains(&r))
}
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
            queue: Mutex::new(Queued {
                queue: OutQueue::new(cfg),
                wire: None,
                writing: false,
                pending: Vec::new(),
                held: Vec::new(),
                last_frame: 0,
            }),
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

    /// The connection was refused before it was [`Outbox::opened`] (an
    /// SSE stream whose subscription was refused): it is never counted,
    /// and [`Outbox::finished`] does nothing for it.
    pub fn refused(&self) {
        self.role.fetch_or(GONE, Ordering::AcqRel);
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
    /// outbox is then closing with `SLOW_CLIENT`) or the connection is
    /// already closing: nothing is queued after the close was decided, so
    /// the error that explains it is the last message before the close
    /// frame (no heartbeat slips in between).
    pub fn push(&self, item: OutItem) -> bool {
        if self.is_closing.load(Ordering::Acquire) {
            return false;
        }
        let outcome = self.queue.lock().queue.push(item);
        self.after_push(outcome)
    }

    /// Queues live events (the fan-out; `now` is a [`crate::clock::stamp`]);
    /// their progress updates stay conflatable only when `conflate` (the
    /// subscription asked for it). When the connection was idle on plain TCP and sent no frame for
    /// [`DIRECT_QUIET_NS`], returns [`Pushed::Direct`] without waking its
    /// task: the caller then writes them with [`Outbox::write_direct`].
    pub fn push_live<'a>(
        &self,
        items: impl Iterator<Item = &'a OutItem>,
        conflate: bool,
        now: u64,
    ) -> Pushed {
        if self.is_closing.load(Ordering::Acquire) {
            // Closing: nothing more is sent (see `push`).
            return Pushed::Queued;
        }
        let mut slow = false;
        let direct;
        {
            let mut q = self.queue.lock();
            let idle = q.queue.is_empty()
                && q.direct_ready()
                && now.saturating_sub(q.last_frame) >= DIRECT_QUIET_NS;
            for item in items {
                let mut item = item.clone();
                item.conflatable &= conflate;
                if matches!(q.queue.push(item), PushOutcome::Slow) {
                    slow = true;
                    break;
                }
            }
            direct = idle && !slow && !q.queue.is_empty();
        }
        if direct && !self.is_closing.load(Ordering::Acquire) {
            return Pushed::Direct;
        }
        self.after_push(if slow {
            PushOutcome::Slow
        } else {
            PushOutcome::Queued
        });
        Pushed::Queued
    }

    /// Writes what is queued straight to the socket, without blocking, if
    /// the connection's task is not writing. What the socket does not take
    /// now is left for the task (woken), ahead of anything queued later.
    pub fn write_direct(&self) {
        let mut q = self.queue.lock();
        if !q.direct_ready() || self.is_closing.load(Ordering::Acquire) {
            drop(q);
            self.notify.notify_one();
            return;
        }
        let mut items = Vec::new();
        self.drain_locked(&mut q, &mut items);
        let Some(batch) = crate::frame::Batch::take(&mut items, &self.metrics) else {
            return;
        };
        // What did not fit in one frame is the task's to send next.
        let more = !items.is_empty();
        q.held = items;
        let now = crate::clock::stamp();
        q.last_frame = now;
        let wire = q.wire.clone().expect("direct_ready checked the wire");
        let (result, rest) = batch.try_write_to(&*wire);
        if rest.is_empty() {
            drop(q);
            batch.receipt().record_at(&self.metrics, now);
            if more {
                self.notify.notify_one();
            }
            return;
        }
        // Would block, wrote part of it, or failed: the task finishes the
        // frame (or meets the error and ends the connection).
        if let Err(e) = &result {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                tracing::debug!(conn = self.id, error = %e, "direct write failed");
            }
        }
        q.pending = rest;
        drop(q);
        self.notify.notify_one();
    }

    /// Lets the fan-out write to this connection's plain-TCP socket.
    pub fn attach(&self, wire: Arc<crate::sock::Wire>) {
        self.queue.lock().wire = Some(wire);
    }

    /// Ends direct writes (the connection's task is ending) and drops what
    /// was left to write.
    pub fn detach(&self) {
        let mut q = self.queue.lock();
        q.wire = None;
        q.pending = Vec::new();
        q.held = Vec::new();
    }

    /// For the connection's task: what to write next, marking the socket
    /// as the task's until this returns None.
    pub fn next_write(&self) -> Option<Next> {
        let mut q = self.queue.lock();
        if !q.pending.is_empty() {
            q.writing = true;
            return Some(Next::Raw(std::mem::take(&mut q.pending)));
        }
        let mut items = std::mem::take(&mut q.held);
        if items.is_empty() {
            self.drain_locked(&mut q, &mut items);
        }
        let batch = crate::frame::Batch::take(&mut items, &self.metrics);
        q.held = items;
        match batch {
            Some(b) => {
                q.writing = true;
                q.last_frame = crate::clock::stamp();
                Some(Next::Frame(b))
            }
            None => {
                q.writing = false;
                None
            }
        }
    }

    /// Whether the replays and snapshots queued and not yet taken by the
    /// writer are past
    /// [`OutQueue::backlog_full`](hub_core::outqueue::OutQueue::backlog_full).
    /// A WebSocket connection reads no more client messages until its
    /// writer has taken them, so a peer subscribing again and again without
    /// reading stalls its own connection (and is dropped once its socket
    /// takes nothing for the write stall) instead of piling up snapshots,
    /// while one that reads only waits for the writer.
    pub fn backlog_full(&self) -> bool {
        self.queue.lock().queue.backlog_full()
    }

    fn after_push(&self, outcome: PushOutcome) -> bool {
        if matches!(outcome, PushOutcome::Slow) {
            let limit = self.queue.lock().queue.config().slow_limit_bytes;
            let err = ProtoError::new(
                hub_proto::ErrorCode::SlowClient,
                "the connection could not keep up with its updates",
            )
            .with_details("The hub dropped this connection instead of queueing without bound; reconnect and resume from your last offset.")
            .with_data(serde_json::json!({"reason": "queue", "limit": limit}));
            self.close(CloseCode::TryAgainLater, err, crate::clock::now_ms());
            return false;
        }
        self.notify.notify_one();
        true
    }

    /// Records whether the connection holds at least one subscription
    /// (the engine's bookkeeping; only those get `system_status`). Clear it
    /// before queueing the reply to the last `unsubscribe`.
    pub fn set_subscribed(&self, on: bool) {
        self.subscribed.store(on, Ordering::Release);
    }

    /// Queues a `system_status` if the connection holds a subscription.
    /// The check and the push happen under the queue's lock, so none is
    /// queued after the `ok` to the last `unsubscribe`.
    pub fn push_status(&self, bytes: Arc<str>) {
        let outcome = {
            let mut q = self.queue.lock();
            if !self.subscribed.load(Ordering::Acquire) {
                return;
            }
            q.queue.push(OutItem::message(bytes))
        };
        self.after_push(outcome);
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
        self.drain_locked(&mut q, out);
    }

    fn drain_locked(&self, q: &mut Queued, out: &mut Vec<OutItem>) {
        let q = &mut q.queue;
        if q.is_empty() {
            return;
        }
        let conflated = q.conflated_total();
        let seen = self.conflated_seen.swap(conflated, Ordering::Relaxed);
        let depth = q.bytes();
        q.drain_into(out);
        if conflated > seen {
            self.metrics.conflated.inc_by(conflated - seen);
        }
        self.metrics.queue_depth_bytes.observe(depth as f64);
    }

    /// Waits until something is queued or a close is requested.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Sends an `error` that answers no message of the client's (so it
    /// does not count towards the abuse limit), e.g. a subscription ended
    /// by a narrower refreshed token.
    pub fn notify_error(&self, error: ProtoError) {
        self.metrics.error_sent(&error);
        let now = crate::clock::now_ms();
        let msg = ServerMessage::Error(ErrorMessage::from_proto(error, now)).encode();
        self.push_control(msg.into());
    }

    /// Sends an error for a rejected message, and closes the connection
    /// (1008) when it has sent more than [`ABUSE_REJECTIONS`] rejected
    /// messages within [`ABUSE_WINDOW_MS`]. Refusals for the hub's own
    /// state ([`hub_proto::ErrorCode::is_hubs_fault`]: a shutdown, a store
    /// down) and for its capacity ([`HUB_CAPACITY_LIMITS`]: it holds the
    /// most operations or namespaces it may, ...) do not count: a producer
    /// resending its backlog through them is no abuser.
    pub fn reject(&self, error: ProtoError) {
        let now = crate::clock::now_ms();
        let counts = !error.code.is_hubs_fault() && !is_hub_capacity(&error);
        self.notify_error(error);
        if !counts {
            return;
        }
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
            let e = crate::limits::rate_limited(
                "abuse",
                "too many rejected messages; closing the connection",
                ABUSE_REJECTIONS as u64,
                None,
            );
            self.close(CloseCode::Abuse, e, now);
        }
    }

    /// Records the `exp` (ms) of the token the connection now holds
    /// (`None`: a token that never expires, or none).
    pub fn set_token_expiry(&self, exp_ms: Option<u64>) {
        self.expires_at
            .store(exp_ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Whether the connection's token is expired at `now` (ms) by
    /// [`hub_auth::past_exp`]: then the connection must be closed with
    /// `TOKEN_EXPIRED` (4001).
    pub fn token_expired(&self, now: u64) -> bool {
        let exp = self.expires_at.load(Ordering::Relaxed);
        exp != 0 && hub_auth::past_exp(exp, now)
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

impl crate::sock::Capture for Outbox {
    /// Control frames tungstenite writes (pongs, pings, close) go out
    /// between whole frames, before anything queued after them.
    fn captured(&self, bytes: &[u8]) {
        let overflow = {
            let mut q = self.queue.lock();
            let over = q.pending.len() + bytes.len() > PENDING_LIMIT;
            if !over {
                q.pending.extend_from_slice(bytes);
            }
            over
        };
        if overflow {
            // A client that sends pings but never reads the pongs.
            let e = ProtoError::new(
                hub_proto::ErrorCode::SlowClient,
                "the connection does not read what the hub sends",
            )
            .with_data(
                serde_json::json!({"reason": "unread_control_frames", "limit": PENDING_LIMIT}),
            );
            self.close(CloseCode::TryAgainLater, e, crate::clock::now_ms());
        }
        self.notify.notify_one();
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
