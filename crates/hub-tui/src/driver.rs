//! The thin connection driver: one WebSocket to the hub, driven by
//! hub-client's socket-free [`Machine`] (backoff, heartbeat liveness, "do not
//! retry" close codes). It subscribes to one namespace, resumes from the last
//! `(epoch, offset)` it saw after every reconnect, sends cancels, and turns
//! everything into [`Update`]s for the view model.
//!
//! This stands in until hub-client's `Subscriber` lands; it owns no policy of
//! its own beyond the subscription and cancel bookkeeping.

use crate::update::{ConnStatus, Update};
use crate::wire::{decode, Incoming};
use futures_util::{SinkExt, StreamExt};
use hub_client::machine::{Action, ConnState, Event, FrameKind, Machine, MachineConfig, Reason};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;

/// What the driver connects to.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `ws://` or `wss://` URL of the hub's `/ws`.
    pub url: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Namespace to subscribe to.
    pub namespace: String,
    /// Reconnect and liveness policy.
    pub machine: MachineConfig,
}

/// Requests from the UI to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Send `cancel` for this operation.
    Cancel(String),
    /// Reconnect now (also leaves the failed state).
    Reconnect,
    /// Close the connection and stop.
    Shutdown,
}

/// The running driver.
#[derive(Debug)]
pub struct DriverHandle {
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
}

impl DriverHandle {
    /// Sends a request (ignored once the driver stopped).
    pub fn request(&self, r: Request) {
        let _ = self.requests.send(r);
    }

    /// Asks the driver to close and waits (at most one second) for it.
    pub async fn shutdown(self) {
        let _ = self.requests.send(Request::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}

/// Starts the driver on the current tokio runtime; it reports to `updates`
/// and stops when told to or when `updates` is closed.
pub fn spawn(config: DriverConfig, updates: mpsc::Sender<Update>) -> DriverHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(config, updates, rx));
    DriverHandle { requests: tx, task }
}

#[derive(Debug)]
struct ConnectError {
    status: Option<u16>,
    text: String,
}

async fn connect(url: String, token: Option<String>) -> Result<Ws, ConnectError> {
    let plain = |text: String| ConnectError { status: None, text };
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| plain(format!("bad URL: {e}")))?;
    if let Some(t) = token {
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| plain("the token is not a valid header value".into()))?;
        req.headers_mut().insert("authorization", v);
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(ConnectError {
            status: Some(resp.status().as_u16()),
            text: format!("HTTP {}", resp.status().as_u16()),
        }),
        Err(tungstenite::Error::Io(e)) => Err(plain(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => e.to_string(),
        })),
        Err(e) => Err(plain(e.to_string())),
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Driver {
    config: DriverConfig,
    updates: mpsc::Sender<Update>,
    start: Instant,
    machine: Machine,
    socket: Option<Ws>,
    connecting: Option<Connecting>,
    position: Option<(String, u64)>,
    next_id: u64,
    subscribe: Option<(u64, Option<u64>)>,
    cancels: HashMap<u64, String>,
    last_error: Option<String>,
}

impl Driver {
    fn mono(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn emit(&mut self, u: Update) -> bool {
        self.updates.send(u).await.is_ok()
    }

    fn cause(&self, reason: Reason) -> Option<String> {
        Some(match reason {
            Reason::ConnectFailed(Some(s)) => format!("HTTP {s}"),
            Reason::ConnectFailed(None) => self.last_error.clone()?,
            Reason::ConnectTimeout => "connect timeout".into(),
            Reason::HeartbeatTimeout => "no heartbeat".into(),
            Reason::Closed(Some(1012)) => "hub restarting".into(),
            Reason::Closed(Some(1013)) => "too slow, resuming".into(),
            Reason::Closed(Some(1001)) => "idle".into(),
            Reason::Closed(Some(c)) => format!("closed {c}"),
            Reason::Closed(None) => "connection lost".into(),
            _ => return None,
        })
    }

    async fn perform(&mut self, actions: Vec<Action>) -> bool {
        for a in actions {
            match a {
                Action::OpenSocket => {
                    self.connecting = Some(Box::pin(connect(
                        self.config.url.clone(),
                        self.config.token.clone(),
                    )));
                }
                Action::CloseSocket => {
                    self.connecting = None;
                    if let Some(mut ws) = self.socket.take() {
                        tokio::spawn(async move {
                            let _ =
                                tokio::time::timeout(Duration::from_millis(500), ws.close(None))
                                    .await;
                        });
                    }
                }
                Action::ScheduleTimer(_) => {}
                Action::Notify(change) => {
                    let status = match change.state {
                        ConnState::Connected => ConnStatus::Connected,
                        ConnState::Connecting => ConnStatus::Connecting {
                            attempt: change.attempt,
                        },
                        ConnState::Reconnecting => ConnStatus::Reconnecting {
                            attempt: change.attempt,
                            next_retry_at: wall_ms() + change.next_delay_ms.unwrap_or(0),
                            cause: self.cause(change.reason),
                        },
                        ConnState::Failed => ConnStatus::Failed {
                            reason: match change.reason {
                                Reason::AuthRejected => "token rejected".to_owned(),
                                Reason::PolicyViolation => "closed by the hub (policy)".to_owned(),
                                Reason::RetriesExhausted => "gave up retrying".to_owned(),
                                other => format!("{other:?}"),
                            },
                        },
                        ConnState::Disconnected => ConnStatus::Disconnected,
                    };
                    if !self.emit(Update::Connection(status)).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    async fn send(&mut self, v: serde_json::Value) -> bool {
        match self.socket.as_mut() {
            Some(ws) => ws.send(Message::text(v.to_string())).await.is_ok(),
            None => false,
        }
    }

    async fn on_connected(&mut self, ws: Ws) -> Vec<Action> {
        self.socket = Some(ws);
        let actions = self.machine.handle(Event::Connected, self.mono());
        let id = self.id();
        let mut msg = json!({"type": "subscribe", "id": id, "namespace": self.config.namespace});
        let resumed_from = self.position.as_ref().map(|(e, o)| {
            msg["resume"] = json!({"epoch": e, "offset": o});
            *o
        });
        self.subscribe = Some((id, resumed_from));
        self.cancels.clear();
        // A failed send shows up as a closed socket on the next read.
        self.send(msg).await;
        actions
    }

    async fn on_text(&mut self, text: &str) -> bool {
        for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
            let update = match decode(line) {
                Incoming::Update(u) => {
                    match &u {
                        Update::Event(e) => {
                            if let Some((_, o)) = &mut self.position {
                                *o = (*o).max(e.offset);
                            }
                        }
                        Update::Snapshot { epoch, offset, .. } => {
                            self.position = Some((epoch.clone(), *offset));
                        }
                        _ => {}
                    }
                    u
                }
                Incoming::Subscribed {
                    id,
                    epoch,
                    offset,
                    recovered,
                } => {
                    let resumed_from = match self.subscribe {
                        Some((sid, from)) if id.is_none() || id == Some(sid) => from,
                        _ => None,
                    };
                    if recovered {
                        let from = resumed_from.unwrap_or(0);
                        self.position = Some((epoch.clone(), from));
                    }
                    Update::Subscribed {
                        epoch,
                        offset,
                        recovered,
                        resumed_from: if recovered { resumed_from } else { None },
                    }
                }
                Incoming::Ok { id } => match id.and_then(|i| self.cancels.remove(&i)) {
                    Some(operation_id) => Update::CancelAccepted { operation_id },
                    None => continue,
                },
                Incoming::Error { id, code, message } => {
                    match id.and_then(|i| self.cancels.remove(&i)) {
                        Some(operation_id) => Update::CancelRefused {
                            operation_id,
                            code,
                            message,
                        },
                        None => Update::HubError { code, message },
                    }
                }
                Incoming::Other => continue,
            };
            if !self.emit(update).await {
                return false;
            }
        }
        true
    }

    async fn on_request(&mut self, r: Request) -> Option<Vec<Action>> {
        match r {
            Request::Cancel(op) => {
                let id = self.id();
                let msg = json!({"type": "cancel", "id": id, "namespace": self.config.namespace, "operation_id": op});
                if self.machine.state() == ConnState::Connected && self.send(msg).await {
                    self.cancels.insert(id, op);
                } else {
                    let u = Update::CancelRefused {
                        operation_id: op,
                        code: "NOT_CONNECTED".into(),
                        message: "not connected to the hub; try again once connected".into(),
                    };
                    if !self.emit(u).await {
                        return None;
                    }
                }
                Some(Vec::new())
            }
            Request::Reconnect => Some(self.machine.handle(Event::ReconnectNow, self.mono())),
            Request::Shutdown => None,
        }
    }
}

async fn run(
    config: DriverConfig,
    updates: mpsc::Sender<Update>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let machine = Machine::new(config.machine);
    let mut d = Driver {
        config,
        updates,
        start: Instant::now(),
        machine,
        socket: None,
        connecting: None,
        position: None,
        next_id: 0,
        subscribe: None,
        cancels: HashMap::new(),
        last_error: None,
    };
    let mut actions = d.machine.handle(Event::ConnectRequested, 0);
    loop {
        if !d.perform(std::mem::take(&mut actions)).await {
            break;
        }
        let deadline = d
            .machine
            .poll_timeout()
            .map(|at| d.start + Duration::from_millis(at));
        tokio::select! {
            res = async { d.connecting.as_mut().expect("guarded").await }, if d.connecting.is_some() => {
                d.connecting = None;
                let now = d.mono();
                actions = match res {
                    Ok(ws) => d.on_connected(ws).await,
                    Err(e) => {
                        d.last_error = Some(e.text);
                        d.machine.handle(Event::ConnectFailed { http_status: e.status }, now)
                    }
                };
            }
            msg = async { d.socket.as_mut().expect("guarded").next().await }, if d.socket.is_some() => {
                let now = d.mono();
                actions = match msg {
                    Some(Ok(Message::Text(t))) => {
                        let kind = if t.contains("\"heartbeat\"") { FrameKind::Heartbeat } else { FrameKind::Message };
                        let a = d.machine.handle(Event::FrameReceived(kind), now);
                        if !d.on_text(t.as_str()).await {
                            break;
                        }
                        a
                    }
                    Some(Ok(Message::Close(frame))) => {
                        d.socket = None;
                        d.machine.handle(Event::Closed { code: frame.map(|f| u16::from(f.code)) }, now)
                    }
                    Some(Ok(_)) => d.machine.handle(Event::FrameReceived(FrameKind::Control), now),
                    Some(Err(_)) | None => {
                        d.socket = None;
                        d.machine.handle(Event::Closed { code: None }, now)
                    }
                };
            }
            _ = async { match deadline { Some(at) => tokio::time::sleep_until(at.into()).await, None => std::future::pending().await } } => {
                actions = d.machine.handle(Event::Timeout, d.mono());
            }
            r = requests.recv() => {
                match r {
                    Some(r) => match d.on_request(r).await {
                        Some(a) => actions = a,
                        None => break,
                    },
                    None => break,
                }
            }
        }
    }
    if let Some(mut ws) = d.socket.take() {
        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    }
}
