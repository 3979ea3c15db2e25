//! The WebSocket transport: upgrade (auth, origin), then one task per
//! connection that reads client messages and flushes the outbox in batched
//! frames (several messages separated by `\n`).
//!
//! On plain TCP the task writes frames to the socket itself (tungstenite
//! only reads, and its control frames are captured into the outbox), so
//! that the fan-out can also write to an idle viewer directly; over TLS
//! every frame goes through tungstenite.

use crate::app::Shared;
use crate::auth::{auth_error, authorize, token_expired_error};
use crate::clock::now_ms;
use crate::engine::{Command, Reply, Who};
use crate::outbox::{Next, Outbox};
use crate::params::Params;
use crate::sock::Wire;
use crate::ws_read_error::ReadFailure;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use hub_auth::{Action, Principal};
use hub_core::glob::Filter;
use hub_proto::{decode_client, ClientMessage, CloseCode, ErrorCode, ProtoError, ServerMessage};
use std::sync::Arc;
use tracing::Instrument;

/// `GET /ws`.
pub async fn upgrade(
    State(app): State<Shared>,
    ConnectInfo(crate::Remote(remote, wire)): ConnectInfo<crate::Remote>,
    headers: HeaderMap,
    Params(q): Params,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let handshake = crate::clock::stamp();
    if let Err(e) = app.limits.handshake(remote.ip()) {
        let refusal = crate::http_api::error_response(e, Some(429));
        return app.metrics.refusal("websocket", refusal);
    }
    let principal = match crate::door::admit(&app, &headers, &q) {
        Ok(p) => p,
        Err(refusal) => return app.metrics.refusal("websocket", refusal),
    };
    // The connection caps come before the upgrade check, so a plain HTTP
    // `GET /ws` (a browser client asking why its WebSocket did not open: it
    // cannot read an upgrade's status) gets the refusal an upgrade would
    // get, 429 naming the cap; its place is given back at once.
    let edge = match Edge::admit(&app, remote.ip(), &principal) {
        Ok(edge) => edge,
        Err(refusal) => return app.metrics.refusal("websocket", refusal),
    };
    // A plain HTTP request to /ws gets the API's JSON error, not axum's text.
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            let e = ProtoError::bad(format!(
                "/ws takes WebSocket upgrades only: {}",
                r.body_text()
            ));
            let refusal = crate::http_api::error_response(e, Some(r.status().as_u16()));
            return app.metrics.refusal("websocket", refusal);
        }
    };
    // A frame or a fragmented message past the limit is refused as soon
    // as its header (or the fragment that crosses it) says so: a client
    // never makes the hub hold more than the limit for it.
    let limit = app.cfg.max_message_size;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        // Client messages are small; the buffer grows for larger frames.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("conn", remote = %remote, sub = %principal.sub, id = tracing::field::Empty, transport = "websocket");
            let wire = wire.and_then(|w| w.upgrade());
            run(socket, wire, app, principal, edge, handshake).instrument(span)
        })
}

/// What the edge limits give a connection: its place under the connection
/// caps (freed when dropped) and its message bucket.
pub(crate) struct Edge {
    slot: crate::limits::Slot,
    ip: std::net::IpAddr,
    bucket: Option<crate::limits::MessageBucket>,
}

impl Edge {
    /// Takes a place under `max_connections` and the per-subject / per-IP
    /// caps (HTTP 429 `RATE_LIMITED` naming the cap).
    #[allow(clippy::result_large_err)]
    pub(crate) fn admit(
        app: &Shared,
        ip: std::net::IpAddr,
        principal: &Principal,
    ) -> Result<Edge, Response> {
        let slot = app
            .limits
            .admit(ip, &principal.sub, counted_by_subject(app, principal))
            .map_err(|e| crate::http_api::error_response(e, None))?;
        Ok(Edge {
            slot,
            ip,
            bucket: app.limits.message_bucket(ip),
        })
    }

    /// Moves the connection's place to `principal` (a `refresh` to
    /// another subject's token); refused, changing nothing, while that
    /// subject's cap is full.
    fn rehome(&mut self, app: &Shared, principal: &Principal) -> Result<(), ProtoError> {
        let by_subject = counted_by_subject(app, principal);
        self.slot.rehome(self.ip, &principal.sub, by_subject)
    }
}

/// Whether `principal`'s connections count under its subject's cap (a
/// verified token) rather than its address's (anonymous).
fn counted_by_subject(app: &Shared, principal: &Principal) -> bool {
    app.cfg.auth_enabled() && !principal.anonymous
}

struct Conn {
    app: Shared,
    out: Arc<Outbox>,
    principal: Principal,
    edge: Edge,
}

impl Conn {
    /// Takes a token from the message bucket; false (and `RATE_LIMITED`,
    /// which counts as a rejection for the abuse rule) when it is empty.
    fn within_rate(&self, text: Option<&str>) -> bool {
        let Some(bucket) = &self.edge.bucket else {
            return true;
        };
        match bucket.check() {
            Ok(()) => true,
            Err(e) => {
                // Like every producer error, it names the operation.
                let msg = text.and_then(|t| decode_client(t).ok());
                let op = match &msg {
                    Some(ClientMessage::Publish(p)) => p.operation_id.as_deref(),
                    _ => None,
                };
                let id = msg.as_ref().and_then(ClientMessage::id);
                self.out.reject(e.with_operation(op).with_id(id));
                false
            }
        }
    }
}

/// How long the hub gives a close's last writes, and, on shutdown, the
/// client's close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a connection the hub closed for its own reasons (idle, slow,
/// abuse, token) waits for the client's close frame before dropping the
/// socket: long enough for a client that was not reading (a synchronous
/// test that sleeps, a paused tab) to come back, answer the pings queued
/// before the error, and still read the error and the close frame. The
/// socket holds nothing else meanwhile; shutdown keeps [`CLOSE_LINGER`].
const CLOSE_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn run(
    mut socket: WebSocket,
    wire: Option<Arc<Wire>>,
    app: Shared,
    principal: Principal,
    edge: Edge,
    handshake: u64,
) {
    // Counted until the socket is dropped, after the closing handshake.
    let _socket = app.registry.hold_socket();
    let out = app.new_outbox(false);
    if let Some(w) = &wire {
        let capture: Arc<dyn crate::sock::Capture> = out.clone();
        w.capture(Arc::downgrade(&capture));
        out.attach(w.clone());
    }
    let wire = wire.as_deref();
    out.opened(handshake);
    tracing::Span::current().record("id", out.id);
    tracing::debug!("websocket connected");
    out.set_token_expiry(principal.expires_at);
    let mut conn = Conn {
        app: app.clone(),
        out: out.clone(),
        principal,
        edge,
    };
    let notified = out.wait();
    tokio::pin!(notified);
    let mut reason = "client_close";
    // Slowloris: a socket that sends nothing, not even the pong to this
    // opening ping, within `first_message_timeout` is closed.
    let first = app.cfg.first_message_timeout;
    let stall = app.cfg.write_stall();
    let mut heard = first.is_zero();
    if !heard
        && send_within(&mut socket, Message::Ping(Default::default()), stall)
            .await
            .is_err()
    {
        heard = true;
    }
    let silent = tokio::time::sleep(first);
    tokio::pin!(silent);
    let close: Option<(u16, String)> = loop {
        tokio::select! {
            _ = &mut silent, if !heard => {
                heard = true;
                let e = ProtoError::new(ErrorCode::IdleTimeout, "nothing was received from the client after the upgrade")
                    .with_data(serde_json::json!({"reason": "first_message", "timeout_ms": first.as_millis() as u64}));
                out.close(CloseCode::Idle, e, now_ms());
            }
            // Not while earlier replays and snapshots wait for the writer
            // (the branch below takes them): see Outbox::backlog_full.
            msg = socket.recv(), if !out.backlog_full() => {
                heard = true;
                let now = now_ms();
                match msg {
                    None => break None,
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite has queued its answer to the close:
                        // have it written (captured, on plain TCP).
                        let _ = futures_util::SinkExt::flush(&mut socket).await;
                        break None;
                    }
                    Some(Err(e)) => match crate::ws_read_error::classify(e) {
                        ReadFailure::InvalidUtf8 => {
                            reason = "invalid_payload";
                            break Some((CloseCode::InvalidPayload.code(), CloseCode::InvalidPayload.reason().into()));
                        }
                        ReadFailure::TooLarge { size } => {
                            reason = "too_large";
                            let max = app.cfg.max_message_size;
                            // Refused by the codec, which says the size the
                            // frame's header (or the fragments so far) gave.
                            let mut data = serde_json::json!({"limit": max});
                            if let Some(size) = size {
                                data["size"] = size.into();
                            }
                            let e = ProtoError::new(ErrorCode::MessageTooLarge, format!("the message is larger than {max} bytes"))
                                .with_data(data);
                            out.close(CloseCode::TooLarge, e, now);
                            let c = out.closing().expect("just set");
                            let _ = send_within(&mut socket, Message::Text(c.error.to_string().into()), CLOSE_LINGER).await;
                            let _ = flush(&mut socket, &out, wire, stall).await;
                            break Some((CloseCode::TooLarge.code(), CloseCode::TooLarge.reason().into()));
                        }
                        ReadFailure::Protocol(why) => {
                            // An unmasked frame, reserved bits or opcodes, a
                            // fragmented control frame: RFC 6455 wants the
                            // connection failed, and 1002 says why.
                            tracing::debug!(conn = out.id, error = %why, "websocket protocol error");
                            reason = "protocol_error";
                            break Some((CloseCode::ProtocolError.code(), why));
                        }
                        ReadFailure::Other(text) => {
                            tracing::debug!(conn = out.id, error = %text, "websocket read failed");
                            reason = "error";
                            break None;
                        }
                    },
                    Some(Ok(Message::Text(t))) => {
                        out.touch(now);
                        if conn.close_if_expired(Some(t.as_str()), now) {
                            continue;
                        }
                        if conn.within_rate(Some(t.as_str())) {
                            conn.on_text(t.as_str()).await;
                        }
                    }
                    Some(Ok(Message::Binary(b))) => {
                        out.touch(now);
                        if conn.close_if_expired(None, now)
                            || !conn.within_rate(None)
                            || conn.close_if_too_large(b.len())
                        {
                            continue;
                        }
                        out.reject(ProtoError::bad("binary frames are not part of the protocol; send JSON text frames"));
                    }
                    Some(Ok(Message::Ping(_))) => {
                        out.touch(now);
                        // tungstenite has queued the pong in its own write
                        // buffer, which has no bound. On plain TCP the pong
                        // is captured into the outbox (bounded by
                        // PENDING_LIMIT); over TLS, have it written before
                        // reading on, so a peer that pings and never reads
                        // stalls its own reads instead of growing the hub.
                        if wire.is_none() {
                            if let Err(e) = flush_socket(&mut socket, stall).await {
                                reason = e.reason();
                                break None;
                            }
                        }
                    }
                    Some(Ok(Message::Pong(_))) => out.touch(now),
                }
            }
            _ = &mut notified => {
                notified.set(out.wait());
                if out.take_ping() {
                    if let Err(e) = send_within(&mut socket, Message::Ping(Default::default()), stall).await {
                        reason = e.reason();
                        break None;
                    }
                }
                if let Err(e) = flush(&mut socket, &out, wire, stall).await {
                    reason = e.reason();
                    break None;
                }
                if let Some(c) = out.closing() {
                    let _ = send_within(&mut socket, Message::Text(c.error.to_string().into()), CLOSE_LINGER).await;
                    if let Err(e) = flush(&mut socket, &out, wire, stall).await {
                        reason = e.reason();
                        break None;
                    }
                    reason = close_reason(c.code);
                    break Some((c.code.code(), c.code.reason().into()));
                }
            }
        }
    };
    let mut linger = None;
    let restart = close
        .as_ref()
        .is_some_and(|(code, _)| *code == CloseCode::ServiceRestart.code());
    if let Some((code, reason)) = close {
        let wait = if restart {
            CLOSE_LINGER
        } else {
            CLOSE_REPLY_WAIT
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        linger = send_within(&mut socket, Message::Close(Some(frame)), CLOSE_LINGER)
            .await
            .is_ok()
            .then_some(wait);
    }
    if wire.is_some() {
        // The close frame (ours, or tungstenite's answer to the client's)
        // was captured: write it, briefly.
        let sent = tokio::time::timeout(CLOSE_LINGER, flush(&mut socket, &out, wire, stall)).await;
        linger = linger.filter(|_| matches!(sent, Ok(Ok(()))));
    }
    out.detach();
    out.finished(reason);
    tracing::debug!(reason, "websocket closed");
    // Its place under the connection caps goes with its registry entry, so
    // the caps and the connection counts agree (the socket itself is
    // counted until dropped by `_socket`, for the shutdown).
    drop(conn);
    // The engine learns of the departure before the registry forgets the
    // connection: in between, a tick that found it gone with no departure
    // on record would take it for one gone long ago (and cancel at once
    // what its producer left).
    app.engine.send(Command::Closed { conn: out.id }).await;
    app.registry.remove(out.id);
    // The closing handshake: wait (briefly) for the client's close before
    // dropping the socket. Closing a socket that still holds unread client
    // data makes the kernel send a reset, and a reset can destroy the
    // error and close frame just sent before the client reads them.
    if let Some(wait) = linger {
        // Nothing follows the close frame: on plain TCP the hub ends its
        // side now, so a client still working through a backlog reads the
        // error, the close frame and then the end of the stream.
        if let Some(w) = wire {
            w.shutdown_write();
        }
        let mut sent_since = false;
        let replied = tokio::time::timeout(wait, async {
            while let Some(Ok(m)) = socket.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
                sent_since = true;
            }
        })
        .await
        .is_ok();
        // On shutdown a producer that kept sending may still be reading
        // the acks, error and close frame sent before its messages, part
        // of them perhaps still in the hub's send queue: the hub goes on
        // throwing its input away until it ends its side (within the
        // hub's overall shutdown bound), since closing now would make its
        // next message draw a reset that loses all that. A client that
        // has sent nothing since the close frame is let go once quiet.
        if let (false, Some(w), true) = (replied, wire, restart) {
            let quiet = if sent_since {
                SHUTDOWN_DISCARD
            } else {
                DISCARD_QUIET
            };
            let _ = tokio::time::timeout(SHUTDOWN_DISCARD, w.discard_until_quiet(quiet)).await;
        }
    }
}

/// On shutdown, how long past [`CLOSE_LINGER`] the hub keeps discarding
/// what a client that has not answered the close still sends (the hub
/// waits at most 5 s for all sockets in all).
const SHUTDOWN_DISCARD: std::time::Duration = std::time::Duration::from_secs(3);

/// A client that has sent nothing for this long has no input left to
/// discard: the hub lets go of its socket without waiting for its end.
const DISCARD_QUIET: std::time::Duration = std::time::Duration::from_millis(250);

/// The disconnection reason label for a close the hub asked for.
pub(crate) fn close_reason(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Idle => "idle_timeout",
        CloseCode::InvalidPayload => "invalid_payload",
        CloseCode::ProtocolError => "protocol_error",
        CloseCode::Abuse => "abuse",
        CloseCode::TooLarge => "too_large",
        CloseCode::ServiceRestart => "shutdown",
        CloseCode::TryAgainLater => "slow_client",
        CloseCode::AuthFailure => "auth_expiry",
    }
}

/// Sends one message through tungstenite within `limit` (on plain TCP it
/// is captured into the outbox at once; over TLS it is written).
/// Writes what tungstenite holds in its own buffer (a pong it queued),
/// within `limit`.
async fn flush_socket(
    socket: &mut WebSocket,
    limit: std::time::Duration,
) -> Result<(), WriteFailed> {
    within(limit, futures_util::SinkExt::flush(socket)).await
}

async fn send_within(
    socket: &mut WebSocket,
    msg: Message,
    limit: std::time::Duration,
) -> Result<(), WriteFailed> {
    within(limit, socket.send(msg)).await
}

/// A write to the socket, failed when it takes more than `limit`.
async fn within(
    limit: std::time::Duration,
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), WriteFailed> {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        // Over TLS the socket itself gives up on a peer that takes nothing
        // (`SharedTcp`), possibly before this timer.
        Ok(Err(e)) if timed_out(&e) => Err(WriteFailed::Stalled),
        Ok(Err(_)) => Err(WriteFailed::Gone),
        Err(_) => Err(WriteFailed::Stalled),
    }
}

/// Whether an error was caused by an I/O time-out.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Why [`flush`] stopped writing to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteFailed {
    /// The socket is gone.
    Gone,
    /// The peer took no byte for the write stall time: it does not read.
    Stalled,
}

impl WriteFailed {
    /// The disconnection reason label.
    fn reason(self) -> &'static str {
        match self {
            WriteFailed::Gone => "error",
            WriteFailed::Stalled => "slow_client",
        }
    }
}

/// Writes everything queued, each time as one frame (messages joined by
/// `\n`), and on plain TCP the bytes the outbox holds for the task first.
/// A peer that takes no byte for `stall` ([`crate::Config::write_stall`]:
/// it does not read) fails the write: its queue is bounded, and so is the time it
/// holds the hub. On plain TCP the [`Wire`] applies the same bound.
async fn flush(
    socket: &mut WebSocket,
    out: &Outbox,
    wire: Option<&Wire>,
    stall: std::time::Duration,
) -> Result<(), WriteFailed> {
    let m = &out.metrics;
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut => WriteFailed::Stalled,
        _ => WriteFailed::Gone,
    };
    while let Some(next) = out.next_write() {
        match (next, wire) {
            (Next::Raw(bytes), Some(w)) => w.write_all(&bytes).await.map_err(failed)?,
            (Next::Frame(batch), Some(w)) => {
                let done = match batch.try_write_some(w) {
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                        return Err(WriteFailed::Gone)
                    }
                    r => r.unwrap_or(0),
                };
                // The rest is written from the frame itself: a snapshot of
                // tens of MiB for a slow reader is held once, not twice.
                let (head, text) = batch.rest(done);
                if !head.is_empty() {
                    w.write_all(&head).await.map_err(failed)?;
                }
                if !text.is_empty() {
                    w.write_all(text).await.map_err(failed)?;
                }
                batch.receipt().record(m);
            }
            (Next::Frame(batch), None) => {
                let receipt = batch.receipt();
                let text = batch.into_string();
                send_within(socket, Message::Text(text.into()), stall).await?;
                receipt.record(m);
            }
            // Nothing is captured without a plain socket.
            (Next::Raw(_), None) => {}
        }
    }
    Ok(())
}

impl Conn {
    fn who(&self) -> Who {
        Who {
            conn: self.out.id,
            sub: self.principal.sub.clone(),
        }
    }

    /// A message over `max_message_size` (text or binary) gets
    /// `MESSAGE_TOO_LARGE` and close 1009; returns whether it was.
    fn close_if_too_large(&self, size: usize) -> bool {
        let max = self.app.cfg.max_message_size;
        if size <= max {
            return false;
        }
        let e = ProtoError::new(
            ErrorCode::MessageTooLarge,
            format!("the message is larger than {max} bytes"),
        )
        .with_data(serde_json::json!({"limit": max, "size": size}));
        self.out.close(CloseCode::TooLarge, e, now_ms());
        true
    }

    async fn on_text(&mut self, text: &str) {
        let received = crate::clock::stamp();
        if self.close_if_too_large(text.len()) {
            return;
        }
        let msg = match decode_client(text) {
            Ok(m) => m,
            Err(e) => return self.out.reject(e),
        };
        if let Some(c) = self.app.metrics.received_counter(msg.type_name()) {
            c.inc();
        }
        let engine = self.app.engine.clone();
        match msg {
            ClientMessage::Publish(p) => {
                if let Err(e) = authorize(&self.principal, Action::Publish, &p.namespace) {
                    return self
                        .out
                        .reject(e.with_operation(p.operation_id.as_deref()).with_id(p.id));
                }
                if let Err(e) = self.app.limits.ingest() {
                    return self
                        .out
                        .reject(e.with_operation(p.operation_id.as_deref()).with_id(p.id));
                }
                self.out.mark_role(crate::outbox::ROLE_PRODUCER);
                engine
                    .send(Command::Publish {
                        msg: p,
                        conn: self.out.id,
                        reply: Reply::Conn(self.out.clone()),
                        received,
                    })
                    .await;
            }
            ClientMessage::Subscribe {
                id,
                namespace,
                filter,
                resume,
                conflate,
            } => {
                if let Err(e) = authorize(&self.principal, Action::View, &namespace) {
                    return self.out.reject(e.with_id(id));
                }
                let filter = Filter {
                    operations: filter.operations,
                    kinds: filter.kinds,
                };
                // One subscribe at a time: the next message is read once
                // this one's replay or snapshot is queued, and not while
                // those wait unread (see Outbox::backlog_full).
                let (queued, done) = tokio::sync::oneshot::channel();
                engine
                    .send(Command::Subscribe {
                        conn: self.out.clone(),
                        id,
                        namespace,
                        filter,
                        resume,
                        conflate,
                        queued: Some(queued),
                    })
                    .await;
                let _ = done.await;
            }
            ClientMessage::Unsubscribe { id, namespace } => {
                engine
                    .send(Command::Unsubscribe {
                        conn: self.out.clone(),
                        id,
                        namespace,
                    })
                    .await;
            }
            ClientMessage::Cancel {
                id,
                namespace,
                operation_id,
            } => {
                if let Err(e) = authorize(&self.principal, Action::Cancel, &namespace) {
                    return self
                        .out
                        .reject(e.with_operation(Some(&operation_id)).with_id(id));
                }
                let who = self.who();
                engine
                    .send(Command::Cancel {
                        namespace,
                        operation_id,
                        who,
                        id,
                        reply: Reply::Conn(self.out.clone()),
                    })
                    .await;
            }
            ClientMessage::Ping { id } => {
                self.out.push_control(
                    ServerMessage::Pong {
                        id,
                        timestamp: now_ms(),
                    }
                    .encode()
                    .into(),
                );
            }
            ClientMessage::Refresh { id, token } => {
                match self.app.authn.refresh(&token, now_ms()) {
                    // The new token may be another subject's (the dashboard
                    // switching users): it could open its own connection
                    // anyway, so it becomes this one's identity, and the
                    // connection counts under its cap from now on (if that
                    // is full, the refresh is refused and nothing changes).
                    Ok(p) => {
                        if let Err(e) = self.edge.rehome(&self.app, &p) {
                            self.out.reject(e.with_id(id));
                            return;
                        }
                        self.out.set_token_expiry(p.expires_at);
                        let may = p.clone();
                        self.principal = p;
                        self.out
                            .push_control(ServerMessage::Ok { id }.encode().into());
                        engine
                            .send(Command::Narrow {
                                conn: self.out.clone(),
                                may_view: Box::new(move |ns| may.allows(Action::View, ns)),
                            })
                            .await;
                    }
                    Err(e) => {
                        self.app.metrics.auth_failure(&e);
                        self.out.close(
                            CloseCode::AuthFailure,
                            auth_error(&e).with_id(id),
                            now_ms(),
                        );
                    }
                }
            }
        }
    }

    /// Closes the connection with `TOKEN_EXPIRED` (4001) when its token is
    /// past `exp` by the clock-skew leeway at `now`: whatever it sent
    /// (`text`, `None` for a binary frame), even a `refresh`, comes too
    /// late. Returns whether it did.
    fn close_if_expired(&self, text: Option<&str>, now: u64) -> bool {
        // The outbox's record, which `refresh` moves, is the one the sweep reads.
        if !self.out.token_expired(now) {
            return false;
        }
        let id = text
            .and_then(|t| decode_client(t).ok())
            .and_then(|m| m.id());
        self.out.close(
            CloseCode::AuthFailure,
            token_expired_error().with_id(id),
            now,
        );
        true
    }
}
