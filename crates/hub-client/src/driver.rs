//! The thin tokio task that carries out the [`Machine`]'s actions on a real
//! socket: it opens and closes WebSockets, splits the hub's batched frames on
//! `\n`, routes messages to the outbox and the subscriptions, and writes
//! what they have to send.
//!
//! **Architecture invariant**: every decision (when to reconnect, what to
//! resend, what is a duplicate) is taken by the socket-free parts
//! ([`Machine`], [`Outbox`](crate::outbox::Outbox), [`View`](crate::view::View));
//! this file only moves bytes and time.
//!
//! [`Machine`]: crate::machine::Machine

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::{Command, Control, Inner, OpSignal, Shared};
use crate::connect::{ConnectError, Ws};
use crate::machine::{Action, ConnState, Event, FrameKind, Reason};
use crate::outbox::Notice;
use crate::renew;
use crate::view::Update;
use crate::wire::ServerMessage;

type ConnectFuture =
    Pin<Box<dyn Future<Output = (Result<Ws, ConnectError>, Option<String>)> + Send>>;
type TokenFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// Messages written per turn of the loop before reading again.
const BATCH: usize = 256;

struct Driver {
    shared: Arc<Shared>,
    socket: Option<Ws>,
    connecting: Option<ConnectFuture>,
    refreshing: Option<TokenFuture>,
    /// When (client clock, ms) to renew the live connection's token.
    renew_at: Option<u64>,
    /// Asking the provider for the token to send in `refresh`.
    renewing: Option<TokenFuture>,
    last_token: Option<String>,
    ever_connected: bool,
}

/// Run the connection until it is closed, or until every handle is gone and
/// the queue is delivered (or the linger time passed).
pub(crate) async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let _guard = EndGuard(shared.clone());
    let mut d = Driver {
        shared,
        socket: None,
        connecting: None,
        refreshing: None,
        renew_at: None,
        renewing: None,
        last_token: None,
        ever_connected: false,
    };
    d.apply(Event::ConnectRequested);
    let mut linger_until: Option<u64> = None;
    loop {
        let deadline = d.deadline(linger_until);
        tokio::select! {
            cmd = commands.recv(), if linger_until.is_none() => match cmd {
                Some(Command::ReconnectNow) => d.apply(Event::ReconnectNow),
                Some(Command::NetworkOnline) => d.apply(Event::NetworkOnline),
                Some(Command::Hurry(wait)) => {
                    let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    let until = d.shared.now_ms().saturating_add(wait);
                    d.apply(Event::Hurry { until });
                }
                Some(Command::Close) => break,
                None => {
                    let linger = u64::try_from(d.shared.config.linger.as_millis()).unwrap_or(u64::MAX);
                    let until = d.shared.now_ms().saturating_add(linger);
                    linger_until = Some(until);
                    // What is left is delivered while the client lingers.
                    d.apply(Event::Hurry { until });
                }
            },
            () = d.shared.wake.notified() => {}
            (res, token) = poll_opt(&mut d.connecting) => {
                d.connecting = None;
                d.on_connect_result(res, token);
            }
            msg = next_opt(&mut d.socket) => d.on_socket(msg),
            token = poll_opt(&mut d.refreshing) => {
                d.refreshing = None;
                d.on_refreshed(token);
            }
            token = poll_opt(&mut d.renewing) => {
                d.renewing = None;
                d.on_renewed(token).await;
            }
            () = sleep_until_ms(&d.shared, deadline) => {
                let now = d.shared.now_ms();
                d.renew_if_due(now);
                resubscribe_due(&mut d.shared.inner.lock(), now);
                let due = d.shared.inner.lock().machine.poll_timeout().is_some_and(|t| t <= now);
                if due {
                    d.apply(Event::Timeout);
                }
            }
        }
        d.flush().await;
        let idle = d.shared.inner.lock().outbox.is_idle();
        // Only a change wakes `Client::flush`: it pokes this loop while it
        // waits, and a notice on every turn made the two spin against each
        // other (a whole core while the hub was unreachable).
        d.shared
            .idle
            .send_if_modified(|was| std::mem::replace(was, idle) != idle);
        if let Some(until) = linger_until {
            if idle || d.shared.now_ms() >= until {
                break;
            }
        }
    }
    let socket = d.socket.take();
    d.apply(Event::DisconnectRequested);
    {
        let mut inner = d.shared.inner.lock();
        inner.closed = true;
        // End every subscription's stream (their maps stay readable).
        for v in inner.views.values_mut() {
            v.tx = mpsc::channel(1).0;
        }
    }
    d.shared.idle.send_replace(true);
    if let Some(mut ws) = socket {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
}

/// Makes the end of the driver visible, also when it panics: a client
/// whose task is gone must not look connected while calls queue into the
/// void.
/// Here on the task being dropped without ending (its runtime shut down);
/// a panic is caught by [`run_guarded`].
struct EndGuard(Arc<Shared>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        ended(&self.0, false);
    }
}

/// [`run`], and if it panics the client says so: state `Failed`
/// ([`Reason::TaskEnded`]), calls return `Closed`, flush false, an error
/// logged. Before, a panic left a client claiming `connected` forever.
pub(crate) async fn run_guarded(shared: Arc<Shared>, commands: mpsc::UnboundedReceiver<Command>) {
    use futures_util::FutureExt;
    let s = shared.clone();
    let res = std::panic::AssertUnwindSafe(run(shared, commands))
        .catch_unwind()
        .await;
    if res.is_err() {
        ended(&s, true);
    }
}

/// The driver is gone without closing normally: nothing more is sent.
fn ended(shared: &Shared, panicked: bool) {
    let mut inner = shared.inner.lock();
    if inner.closed && !panicked {
        drop(inner);
        shared.idle.send_replace(true);
        return;
    }
    inner.closed = true;
    inner.crashed |= panicked;
    let what = if panicked {
        "the client's background task panicked; nothing more is sent"
    } else {
        "the client's background task was dropped (its runtime ended); nothing more is sent"
    };
    inner.note_error(what, None);
    for v in inner.views.values_mut() {
        v.tx = mpsc::channel(1).0;
    }
    drop(inner);
    if panicked {
        tracing::error!("{what}");
    } else {
        tracing::debug!("{what}");
    }
    shared.state.send_replace(crate::machine::StateChange {
        state: if panicked {
            ConnState::Failed
        } else {
            ConnState::Disconnected
        },
        reason: Reason::TaskEnded,
        attempt: 0,
        next_delay_ms: None,
    });
    shared.idle.send_replace(true);
}

async fn poll_opt<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

type WsItem = Option<Result<Message, WsError>>;

async fn next_opt(ws: &mut Option<Ws>) -> WsItem {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_ms(shared: &Shared, at: Option<u64>) {
    match at {
        // Never `Instant + huge`: a deadline far away (a token `exp` from the
        // network) must not overflow; `sleep` saturates.
        Some(ms) => {
            tokio::time::sleep(Duration::from_millis(ms.saturating_sub(shared.now_ms()))).await
        }
        None => std::future::pending().await,
    }
}

impl Driver {
    fn deadline(&self, linger_until: Option<u64>) -> Option<u64> {
        let inner = self.shared.inner.lock();
        let now = self.shared.now_ms();
        [
            inner.machine.poll_timeout(),
            inner
                .outbox
                .next_wakeup()
                .map(|t| t.max(now.saturating_add(1))),
            linger_until,
            self.renew_at.filter(|_| self.socket.is_some()),
            inner.resubscribe.iter().map(|(at, _)| *at).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feed the machine and carry out its actions.
    fn apply(&mut self, event: Event) {
        let now = self.shared.now_ms();
        let actions = self.shared.inner.lock().machine.handle(event, now);
        for action in actions {
            match action {
                Action::OpenSocket => self.open(),
                Action::CloseSocket => {
                    self.connecting = None;
                    if let Some(mut ws) = self.socket.take() {
                        tokio::spawn(async move {
                            let _ =
                                tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        });
                    }
                }
                Action::ScheduleTimer(_) => {}
                Action::AskToken => {
                    // A fixed token cannot change: the client stays Failed
                    // (flush says so) until `reconnect_now`.
                    if let Some(p) = self.shared.config.token.clone().filter(|p| !p.is_fixed()) {
                        if self.refreshing.is_none() {
                            self.refreshing = Some(Box::pin(async move { p.token().await }));
                        }
                    }
                }
                Action::Notify(change) => {
                    tracing::debug!(state = %change.state, reason = ?change.reason,
                        attempt = change.attempt, next_delay_ms = ?change.next_delay_ms,
                        url = %self.shared.config.url, "hub connection");
                    let mut inner = self.shared.inner.lock();
                    if change.state == ConnState::Connected {
                        on_connected(&mut inner);
                    } else {
                        inner.outbox.on_disconnected();
                        for v in inner.views.values_mut() {
                            v.view.on_disconnected();
                        }
                        inner
                            .control
                            .retain(|c| matches!(c, Control::Cancel { .. }));
                        requeue_cancels(&mut inner);
                    }
                    inner
                        .views
                        .retain(|_, v| v.deliver(Update::Connection(change)));
                    // Under the same lock as the views' delivery: a view
                    // registered later starts from this state (see
                    // `Subscriber::watch`), one registered earlier got it.
                    self.shared.state.send_replace(change);
                    drop(inner);
                }
            }
        }
    }

    fn open(&mut self) {
        self.socket = None;
        let shared = self.shared.clone();
        let probe_ready = shared.config.wait_for_ready && !self.ever_connected;
        self.connecting = Some(Box::pin(async move {
            let token = match &shared.config.token {
                Some(p) => p.token().await,
                None => None,
            };
            if probe_ready {
                if let Err(e) = shared.endpoint.ready(token.as_deref()).await {
                    return (Err(e), token);
                }
            }
            let res = shared.endpoint.connect(token.as_deref()).await;
            (res, token)
        }));
    }

    fn on_connect_result(&mut self, res: Result<Ws, ConnectError>, token: Option<String>) {
        self.last_token = token;
        match res {
            Ok(ws) => {
                self.socket = Some(ws);
                self.ever_connected = true;
                self.schedule_renewal();
                self.apply(Event::Connected);
            }
            Err(e) => {
                tracing::debug!(error = %e.message, "hub connect failed");
                self.shared.inner.lock().note_error(e.message, e.code);
                self.apply(Event::ConnectFailed {
                    http_status: e.http_status,
                });
            }
        }
    }

    /// Plans the renewal of the token in use (when it is a JWT with `exp`
    /// and a provider can give a new one).
    fn schedule_renewal(&mut self) {
        self.renew_at = None;
        if self.shared.config.token.is_none() {
            return;
        }
        let Some(exp) = self.last_token.as_deref().and_then(renew::token_exp) else {
            return;
        };
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let delay = renew::renew_in_ms(exp, unix_ms);
        self.renew_at = Some(self.shared.now_ms().saturating_add(delay));
    }

    /// Asks the provider for a new token once the renewal is due.
    fn renew_if_due(&mut self, now: u64) {
        if self.socket.is_none() || self.renewing.is_some() {
            return;
        }
        if self.renew_at.is_none_or(|t| t > now) {
            return;
        }
        self.renew_at = None;
        if let Some(p) = self.shared.config.token.clone() {
            self.renewing = Some(Box::pin(async move { p.token().await }));
        }
    }

    /// Sends `refresh` with the provider's new token on the live
    /// connection. A provider that returns the same token (or none) is not
    /// asked again until the next connection; the hub then closes the
    /// connection 5 s after `exp` and the reconnect fetches a token.
    async fn on_renewed(&mut self, token: Option<String>) {
        let Some(token) = token.filter(|t| Some(t) != self.last_token.as_ref()) else {
            return;
        };
        let Some(ws) = self.socket.as_mut() else {
            return;
        };
        let msg = serde_json::json!({"type": "refresh", "token": token}).to_string();
        if ws.send(Message::Text(msg.into())).await.is_ok() {
            tracing::debug!("token renewed on the live connection");
            self.last_token = Some(token);
            self.schedule_renewal();
        }
    }

    fn on_refreshed(&mut self, token: Option<String>) {
        if token.is_some() && token != self.last_token {
            self.apply(Event::TokenRefreshed);
        } else {
            tracing::debug!("the token provider has no new token yet; asking again later");
            self.apply(Event::TokenUnchanged);
        }
    }

    fn on_socket(&mut self, msg: WsItem) {
        match msg {
            Some(Ok(Message::Text(text))) => {
                let heartbeat = self.on_text(text.as_str());
                let kind = if heartbeat {
                    FrameKind::Heartbeat
                } else {
                    FrameKind::Message
                };
                self.apply(Event::FrameReceived(kind));
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                self.socket = None;
                self.apply(Event::Closed { code });
            }
            Some(Ok(Message::Binary(_))) => self.apply(Event::FrameReceived(FrameKind::Message)),
            Some(Ok(_)) => self.apply(Event::FrameReceived(FrameKind::Control)),
            Some(Err(e)) => {
                let mut inner = self.shared.inner.lock();
                if let WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) = &e {
                    tracing::warn!(
                        size,
                        limit = max_size,
                        "the hub sent a message over the limit"
                    );
                    let u = Update::MessageTooLarge {
                        size: *size,
                        limit: *max_size,
                    };
                    for v in inner.views.values_mut() {
                        v.deliver(u.clone());
                    }
                }
                inner.note_error(e, None);
                drop(inner);
                self.socket = None;
                self.apply(Event::Closed { code: None });
            }
            None => {
                self.socket = None;
                self.apply(Event::Closed {
                    code: Some(u16::from(CloseCode::Abnormal)),
                });
            }
        }
    }

    /// Route every message of a frame; returns whether one was a heartbeat.
    fn on_text(&mut self, text: &str) -> bool {
        // Decoded before taking the lock every reporter call shares: a
        // large snapshot must not hold up the job's calls while it parses.
        let messages: Vec<ServerMessage> = ServerMessage::parse_frame(text).collect();
        let now = self.shared.now_ms();
        let mut inner = self.shared.inner.lock();
        inner.frames_received += 1;
        let mut heartbeat = false;
        for msg in messages {
            match msg {
                ServerMessage::Heartbeat(h) => {
                    heartbeat = true;
                    inner.last_heartbeat = Some(SystemTime::now());
                    inner.clients_connected = h.clients_connected;
                }
                ServerMessage::Ack(ack) => {
                    let notices = inner.outbox.on_ack(&ack);
                    apply_notices(&mut inner, notices, None);
                }
                ServerMessage::Error(err) => on_error(&mut inner, &err, now),
                ServerMessage::CancelRequested(c) => {
                    if let Some(key) = inner
                        .outbox
                        .on_cancel_requested(c.namespace.as_deref(), &c.operation_id)
                    {
                        apply_notices(
                            &mut inner,
                            vec![Notice::CancelRequested(key)],
                            c.requested_by,
                        );
                    }
                }
                ServerMessage::Subscribed(s) => {
                    if let Some(v) = inner.views.get_mut(&s.namespace) {
                        for u in v.view.on_subscribed(&s) {
                            v.deliver(u);
                        }
                    }
                }
                ServerMessage::OperationList(l) => {
                    if let Some(v) = inner.views.get_mut(&l.namespace) {
                        for u in v.view.on_operation_list(&l) {
                            v.deliver(u);
                        }
                    }
                }
                ServerMessage::Event(e) => {
                    let ns = e.namespace.clone();
                    if let Some(v) = inner.views.get_mut(&ns) {
                        if let Some(u) = v.view.on_event(*e) {
                            v.deliver(u);
                        }
                    }
                }
                ServerMessage::SystemStatus(raw) => {
                    let announced = raw
                        .get("data")
                        .and_then(|d| d.get("heartbeat_interval_ms"))
                        .and_then(serde_json::Value::as_u64);
                    if let Some(ms) = announced {
                        inner.machine.announce_heartbeat_interval(ms);
                    }
                    let u = Update::system_status(&raw);
                    for v in inner.views.values_mut() {
                        v.deliver(u.clone());
                    }
                }
                ServerMessage::Ok { id: Some(id) } => cancel_answered(&mut inner, id, Ok(())),
                ServerMessage::Ok { id: None }
                | ServerMessage::Pong { .. }
                | ServerMessage::Unknown(_) => {}
            }
        }
        heartbeat
    }

    /// Write what the control queue and the outbox have for us.
    async fn flush(&mut self) {
        if self.socket.is_none() {
            return;
        }
        let now = self.shared.now_ms();
        let batch = {
            let mut inner = self.shared.inner.lock();
            if inner.machine.state() != ConnState::Connected {
                return;
            }
            let inner = &mut *inner;
            let mut batch = Vec::new();
            while batch.len() < BATCH {
                match inner.next_control() {
                    Some(t) => batch.push(t),
                    None if inner.control.is_empty() => break,
                    None => {}
                }
            }
            inner.outbox.promote_due(now);
            while batch.len() < BATCH {
                match inner.outbox.poll_transmit(now, &mut inner.next_id) {
                    Some(t) => batch.push(t),
                    None => break,
                }
            }
            batch
        };
        if batch.is_empty() {
            return;
        }
        if batch.len() == BATCH {
            self.shared.wake.notify_one();
        }
        let Some(ws) = self.socket.as_mut() else {
            return;
        };
        let send = async {
            for text in batch {
                ws.feed(Message::text(text)).await?;
            }
            ws.flush().await
        };
        // A peer that stops reading must not wedge the driver: the liveness
        // window bounds the write.
        let limit = Duration::from_millis(self.shared.config.machine.heartbeat_interval_ms.max(1));
        match tokio::time::timeout(limit, send).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.shared.inner.lock().note_error(e, None);
                self.socket = None;
                self.apply(Event::Closed { code: None });
            }
            Err(_) => {
                self.socket = None;
                self.apply(Event::Closed { code: None });
            }
        }
    }
}

fn on_connected(inner: &mut Inner) {
    inner.outbox.on_connected();
    // Every view subscribes again on a new connection.
    inner.resubscribe.clear();
    inner
        .control
        .retain(|c| matches!(c, Control::Cancel { .. }));
    let namespaces: Vec<String> = inner.views.keys().cloned().collect();
    for (i, ns) in namespaces.into_iter().enumerate() {
        inner.control.insert(i, Control::Subscribe(ns));
    }
}

fn on_error(inner: &mut Inner, err: &crate::wire::ErrorMessage, now: u64) {
    tracing::debug!(code = %err.code, message = %err.message, "hub error");
    // The answer to a `cancel` (checked first: its `data.operation_id` must
    // not be taken for one of our own operations).
    if let Some(id) = err.id {
        if inner.cancels.contains_key(&id) {
            cancel_answered(inner, id, Err(err.clone()));
            return;
        }
    }
    if let Some(notice) = inner.outbox.on_error(err, now) {
        apply_notices(inner, vec![notice], None);
        return;
    }
    // A subscription the hub ended (a `refresh` to a token that may not
    // read its namespace): no request id, `data.namespace` names it. The
    // connection stays, but nothing more comes for it: as refused.
    if err.id.is_none() && err.code == "FORBIDDEN" {
        if let Some(v) = err
            .data_str("namespace")
            .and_then(|ns| inner.views.get_mut(ns))
        {
            v.view.on_ended();
            v.deliver(Update::Refused {
                code: err.code.clone(),
                message: err.message.clone(),
            });
            return;
        }
    }
    // A refused subscription?
    if let Some(id) = err.id {
        if let Some((ns, v)) = inner
            .views
            .iter_mut()
            .find(|(_, v)| v.view.request_id() == Some(id))
        {
            if let Some(after) = retry_after_ms(err) {
                // Refused for now (a limit, a hub stopping): ask again.
                tracing::info!(namespace = %ns, code = %err.code, retry_after_ms = after,
                    "subscription refused for now; asking again");
                v.deliver(Update::RefusedForNow {
                    code: err.code.clone(),
                    message: err.message.clone(),
                    reason: err.data_str("reason").map(str::to_owned),
                    retry_after_ms: after,
                });
                let ns = ns.clone();
                inner.resubscribe.push((now.saturating_add(after), ns));
                return;
            }
            v.deliver(Update::Refused {
                code: err.code.clone(),
                message: err.message.clone(),
            });
            return;
        }
    }
    inner.note_error(
        format!("{}: {}", err.code, err.message),
        Some(err.code.clone()),
    );
}

/// When to ask again for a subscription the hub refused with `err`: for a
/// refusal that waiting can end (`RATE_LIMITED`, `SERVER_SHUTDOWN`,
/// `STORE_UNAVAILABLE`), after its `data.retry_after_ms` (1 s without,
/// at most 60 s); None for one it cannot (auth, `FORBIDDEN`, a bad
/// request, and the connection's own subscription limits: `RATE_LIMITED`
/// for `subscriptions` or `filters` stays until the caller holds fewer,
/// and asking again every second would only count toward the abuse rule).
fn retry_after_ms(err: &crate::wire::ErrorMessage) -> Option<u64> {
    if !matches!(
        err.code.as_str(),
        "RATE_LIMITED" | "SERVER_SHUTDOWN" | "STORE_UNAVAILABLE"
    ) {
        return None;
    }
    if matches!(err.data_str("reason"), Some("subscriptions" | "filters")) {
        return None;
    }
    let after = err.data_u64("retry_after_ms").unwrap_or(1_000);
    Some(after.clamp(1, 60_000))
}

/// Queues the subscriptions whose retry is due (those still wanted).
fn resubscribe_due(inner: &mut Inner, now: u64) {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.resubscribe)
        .into_iter()
        .partition(|(at, _)| *at <= now);
    inner.resubscribe = later;
    for (_, ns) in due {
        let wanted = inner.views.contains_key(&ns);
        let queued = inner.control.contains(&Control::Subscribe(ns.clone()));
        if wanted && !queued {
            inner.control.push_back(Control::Subscribe(ns));
        }
    }
}

/// Report the hub's answer to a `cancel` to the subscription of its
/// namespace (lost when there is none).
fn cancel_answered(inner: &mut Inner, id: u64, result: Result<(), crate::wire::ErrorMessage>) {
    let Some((namespace, operation_id)) = inner.cancels.remove(&id) else {
        return;
    };
    if let Some(v) = inner.views.get_mut(&namespace) {
        v.deliver(Update::CancelResult {
            operation_id,
            result,
        });
    }
}

/// The connection dropped before the hub answered these `cancel`s: send
/// them again on the next connection (in the order they were sent).
fn requeue_cancels(inner: &mut Inner) {
    let mut pending: Vec<(u64, (String, String))> = inner.cancels.drain().collect();
    pending.sort_by_key(|(id, _)| *id);
    for (_, (namespace, operation_id)) in pending {
        inner.control.push_back(Control::Cancel {
            namespace,
            operation_id,
        });
    }
}

fn apply_notices(inner: &mut Inner, notices: Vec<Notice>, requested_by: Option<String>) {
    for n in notices {
        match n {
            Notice::CancelRequested(key) => {
                if let Some(s) = inner.signals.get(&key) {
                    let by = requested_by.clone();
                    s.send_if_modified(|sig| {
                        let changed = !sig.cancel_requested;
                        sig.cancel_requested = true;
                        if by.is_some() {
                            sig.requested_by = by;
                        }
                        changed
                    });
                }
            }
            Notice::Done(key) => {
                inner.signals.remove(&key);
            }
            Notice::TerminalRefused(key, code) => {
                let refusal = inner.outbox.refusal(key).map(ToString::to_string);
                tracing::warn!(%code, refusal = ?refusal,
                    "the hub refused an operation's final report; on the hub it is still running");
                if let Some(s) = inner.signals.get(&key) {
                    s.send_modify(|sig: &mut OpSignal| sig.rejected = Some(code));
                }
            }
            Notice::Dropped(key, code) => {
                tracing::warn!(%code, "the hub refused an operation; its queued messages were dropped");
                if let Some(s) = inner.signals.remove(&key) {
                    s.send_modify(|sig: &mut OpSignal| {
                        sig.rejected = Some(code);
                        sig.dropped = true;
                    });
                }
            }
        }
    }
}
