//! A scripted stand-in for the hub, speaking enough of protocol v1 to test
//! the client's driver over real sockets: acks with idempotency and
//! `SEQ_GAP`, subscriptions with resume or snapshot, heartbeats, batched
//! frames, and knobs to kill connections, go silent, wipe its memory or
//! refuse tokens.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Default)]
pub struct HubOp {
    pub last_seq: u64,
    pub state: Value,
}

#[derive(Default)]
pub struct HubState {
    pub epoch: u32,
    pub ops: HashMap<String, HubOp>,
    pub events: Vec<Value>,
    pub tokens_seen: Vec<Option<String>>,
    /// Tokens refused at the upgrade with 401.
    pub refuse_tokens: Vec<String>,
    pub connections: u64,
    /// Stop sending heartbeats and answering (a dead peer that keeps TCP open).
    pub silent: bool,
    pub producer_messages: u64,
    pub duplicates: u64,
    /// Answer this many progress updates with a hostile
    /// `SEQ_GAP {expected: u64::MAX}` (a broken or malicious hub).
    pub hostile_seq_gaps: u32,
}

#[derive(Clone)]
enum Signal {
    Event(Value),
    Kill(Option<u16>),
    Cancel(String),
    /// A message for every connection that holds a subscription.
    ToSubscribers(Value),
}

pub struct FakeHub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<HubState>>,
    signals: broadcast::Sender<Signal>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.signals.send(Signal::Kill(None));
    }
}

impl FakeHub {
    pub async fn start(heartbeat: Duration) -> FakeHub {
        Self::start_on(
            "127.0.0.1:0".parse().unwrap(),
            heartbeat,
            Default::default(),
        )
        .await
    }

    /// Start on a given address with a given memory (to simulate a restart
    /// that kept or lost its data).
    pub async fn start_on(addr: SocketAddr, heartbeat: Duration, state: HubState) -> FakeHub {
        // A restart on the same port: the old listener goes when its aborted
        // task is dropped, and meanwhile a parallel test's outgoing
        // connection may hold the port; try again for a bounded time.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("binding {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let (signals, _) = broadcast::channel(100_000);
        let st = state.clone();
        let sig = signals.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(connection(tcp, st.clone(), sig.clone(), heartbeat));
            }
        });
        FakeHub {
            addr,
            state,
            signals,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Close every connection (with a close frame if `code` is given).
    pub fn kill_connections(&self, code: Option<u16>) {
        let _ = self.signals.send(Signal::Kill(code));
    }

    /// Stop listening and drop every connection; returns the memory.
    pub fn stop(self) -> HubState {
        self.accept.abort();
        let _ = self.signals.send(Signal::Kill(None));
        std::mem::take(&mut *self.state.lock())
    }

    pub fn request_cancel(&self, op: &str) {
        let _ = self.signals.send(Signal::Cancel(op.to_owned()));
    }

    /// Send `msg` (e.g. a `system_status`) to every subscribed connection.
    pub fn to_subscribers(&self, msg: Value) {
        let _ = self.signals.send(Signal::ToSubscribers(msg));
    }

    pub fn op(&self, id: &str) -> Option<HubOp> {
        self.state.lock().ops.get(id).cloned()
    }

    /// Append an event the way a producer message would (used to test viewers).
    pub fn publish(&self, msg: Value) -> Value {
        let (reply, event) = apply_producer(&mut self.state.lock(), &msg);
        if let Some(e) = event {
            let _ = self.signals.send(Signal::Event(e));
        }
        reply
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The hub's producer rules; returns the reply and the event, if one was appended.
fn apply_producer(st: &mut HubState, m: &Value) -> (Value, Option<Value>) {
    st.producer_messages += 1;
    let id = m["id"].clone();
    let ty = m["type"].as_str().unwrap_or("").to_owned();
    let op_id = m["operation_id"].as_str().unwrap_or("").to_owned();
    let seq = m["seq"].as_u64().unwrap_or(0);
    let err = |code: &str, data: Value| {
        json!({"type": "error", "code": code, "message": code, "details": null, "timestamp": now_ms(),
               "component": "hub", "severity": "warning", "data": data, "id": id})
    };
    let offset_now = st.events.len() as u64;
    let op = st.ops.get(&op_id).cloned();
    let terminal = |s: &Value| {
        matches!(
            s["state"].as_str(),
            Some("completed" | "failed" | "canceled")
        )
    };
    match op {
        None if ty != "operation_started" => {
            return (
                err("UNKNOWN_OPERATION", json!({"operation_id": op_id})),
                None,
            )
        }
        None if seq != 1 => return (err("BAD_MESSAGE", json!({"operation_id": op_id})), None),
        Some(o) if seq <= o.last_seq => {
            st.duplicates += 1;
            let off = o.state["last_offset"].as_u64().unwrap_or(offset_now);
            return (
                json!({"type": "ack", "id": id, "namespace": "default", "operation_id": op_id,
                       "seq": seq, "offset": off, "duplicate": true}),
                None,
            );
        }
        Some(_) if ty == "progress_update" && st.hostile_seq_gaps > 0 => {
            st.hostile_seq_gaps -= 1;
            return (
                err(
                    "SEQ_GAP",
                    json!({"operation_id": op_id, "expected": u64::MAX}),
                ),
                None,
            );
        }
        Some(o) if seq > o.last_seq + 1 => {
            return (
                err(
                    "SEQ_GAP",
                    json!({"operation_id": op_id, "expected": o.last_seq + 1}),
                ),
                None,
            )
        }
        Some(o) if terminal(&o.state) => {
            return (
                err("OPERATION_FINISHED", json!({"operation_id": op_id})),
                None,
            )
        }
        _ => {}
    }
    let offset = offset_now + 1;
    let mut state = st
        .ops
        .get(&op_id)
        .map(|o| o.state.clone())
        .unwrap_or_else(|| {
            json!({"operation_id": op_id, "namespace": "default", "state": "running",
                                  "progress": 0.0, "cancel_requested": false})
        });
    match ty.as_str() {
        "operation_started" => {
            state["name"] = m["name"].clone();
        }
        "progress_update" => {
            for f in ["progress", "current", "step", "message", "details"] {
                if !m[f].is_null() {
                    state[f] = m[f].clone();
                }
            }
        }
        "operation_completed" => {
            state["state"] = json!("completed");
            state["progress"] = json!(100.0);
        }
        "operation_failed" => {
            state["state"] = json!("failed");
            state["error"] = m["error"].clone();
        }
        "operation_canceled" => state["state"] = json!("canceled"),
        _ => return (err("BAD_MESSAGE", Value::Null), None),
    }
    state["last_offset"] = json!(offset);
    st.ops.insert(
        op_id.clone(),
        HubOp {
            last_seq: seq,
            state: state.clone(),
        },
    );
    let mut event = m.clone();
    event["namespace"] = json!("default");
    event["offset"] = json!(offset);
    event["timestamp"] = json!(now_ms());
    event["state"] = state;
    if let Some(o) = event.as_object_mut() {
        o.remove("id");
    }
    st.events.push(event.clone());
    (
        json!({"type": "ack", "id": id, "namespace": "default", "operation_id": op_id, "seq": seq,
               "offset": offset}),
        Some(event),
    )
}

// The handshake callback's error type is fixed by tungstenite.
#[allow(clippy::result_large_err)]
async fn connection(
    tcp: TcpStream,
    st: Arc<Mutex<HubState>>,
    signals: broadcast::Sender<Signal>,
    heartbeat: Duration,
) {
    // Listening for signals from the accept on: a client sees its
    // handshake answered before this task runs again, and a kill sent in
    // between was missed (the connection then outlived a kill-all).
    let mut rx = signals.subscribe();
    let st2 = st.clone();
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let mut s = st2.lock();
        s.tokens_seen.push(token.clone());
        if token.is_some_and(|t| s.refuse_tokens.contains(&t)) {
            let mut e = ErrorResponse::new(Some("AUTH_FAILED".into()));
            *e.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(e);
        }
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    st.lock().connections += 1;
    let mut tick = tokio::time::interval(heartbeat);
    tick.tick().await;
    let mut subscribed_from: Option<u64> = None;
    let mut owned: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else { return };
                let Message::Text(text) = msg else { continue };
                if st.lock().silent { continue; }
                let m: Value = serde_json::from_str(text.as_str()).unwrap();
                let ty = m["type"].as_str().unwrap_or("").to_owned();
                let mut out: Vec<Value> = Vec::new();
                match ty.as_str() {
                    "subscribe" => {
                        let s = st.lock();
                        let epoch = format!("e{}", s.epoch);
                        let last = s.events.len() as u64;
                        let resume = m.get("resume").filter(|r| r["epoch"] == json!(epoch));
                        match resume {
                            Some(r) => {
                                let from = r["offset"].as_u64().unwrap_or(0);
                                out.push(json!({"type": "subscribed", "id": m["id"], "namespace": "default",
                                    "epoch": epoch, "offset": last, "recovered": true}));
                                out.extend(s.events.iter().skip(from as usize).cloned());
                            }
                            None => {
                                out.push(json!({"type": "subscribed", "id": m["id"], "namespace": "default",
                                    "epoch": epoch, "offset": last, "recovered": false}));
                                let ops: Vec<Value> = s.ops.values().map(|o| o.state.clone()).collect();
                                out.push(json!({"type": "operation_list", "namespace": "default",
                                    "epoch": epoch, "offset": last, "operations": ops}));
                            }
                        }
                        subscribed_from = Some(last);
                    }
                    "cancel" if !st.lock().ops.contains_key(m["operation_id"].as_str().unwrap_or("")) => {
                        out.push(json!({"type": "error", "id": m["id"], "code": "UNKNOWN_OPERATION",
                            "message": "no such operation", "details": null, "timestamp": now_ms(),
                            "component": "hub", "severity": "warning",
                            "data": {"namespace": "default", "operation_id": m["operation_id"]}}));
                    }
                    "cancel" | "unsubscribe" | "refresh" => out.push(json!({"type": "ok", "id": m["id"]})),
                    "ping" => out.push(json!({"type": "pong", "id": m["id"], "timestamp": now_ms()})),
                    _ => {
                        let op = m["operation_id"].as_str().unwrap_or("").to_owned();
                        if !owned.contains(&op) { owned.push(op); }
                        let (reply, event) = apply_producer(&mut st.lock(), &m);
                        out.push(reply);
                        if let Some(e) = event { let _ = signals.send(Signal::Event(e)); }
                    }
                }
                // Batch every reply of this request into one frame.
                let frame = out.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
                if ws.send(Message::text(frame)).await.is_err() { return; }
            }
            sig = rx.recv() => match sig {
                Ok(Signal::Event(e)) => {
                    if let Some(from) = subscribed_from {
                        if e["offset"].as_u64().unwrap_or(0) > from
                            && ws.send(Message::text(e.to_string())).await.is_err() { return; }
                    }
                }
                Ok(Signal::Kill(code)) => {
                    if let Some(c) = code {
                        let _ = ws.send(Message::Close(Some(CloseFrame { code: CloseCode::from(c), reason: "".into() }))).await;
                    }
                    return;
                }
                Ok(Signal::ToSubscribers(m)) => {
                    if subscribed_from.is_some() && ws.send(Message::text(m.to_string())).await.is_err() { return; }
                }
                Ok(Signal::Cancel(op)) => {
                    if owned.contains(&op) {
                        let m = json!({"type": "cancel_requested", "namespace": "default", "operation_id": op, "requested_by": "tester"});
                        let _ = ws.send(Message::text(m.to_string())).await;
                    }
                }
                Err(_) => return,
            },
            _ = tick.tick() => {
                if st.lock().silent { continue; }
                let clients = st.lock().connections;
                let hb = json!({"type": "heartbeat", "timestamp": now_ms(), "clients_connected": clients});
                if ws.send(Message::text(hb.to_string())).await.is_err() { return; }
            }
        }
    }
}
