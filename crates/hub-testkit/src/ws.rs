//! A WebSocket test client: sends JSON, receives messages one at a time
//! (splitting batched frames on `\n`), and observes close codes.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What ended a wait.
#[derive(Debug, PartialEq)]
pub enum WsError {
    /// No message before the deadline.
    Timeout,
    /// The server closed, with this code.
    Closed(Option<u16>),
}

/// A test WebSocket connection.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    /// Every message received, in order (for assertions over the whole run).
    pub seen: Vec<Value>,
    /// Frames received (to check batching).
    pub frames: usize,
}

impl Ws {
    /// Connects.
    pub async fn connect(url: &str) -> Ws {
        Self::connect_with(url, &[])
            .await
            .expect("websocket connect")
    }

    /// Connects with extra headers; `Err` carries the HTTP status of a refused upgrade.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Ws, (u16, String)> {
        let mut req = url.into_client_request().expect("request");
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                    .expect("header"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws {
                stream,
                pending: VecDeque::new(),
                seen: Vec::new(),
                frames: 0,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err((resp.status().as_u16(), body))
            }
            Err(e) => Err((0, e.to_string())),
        }
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, t: &str) {
        self.stream.send(Message::text(t)).await.expect("send");
    }

    /// Sends a raw frame.
    pub async fn send_raw(&mut self, m: Message) {
        let _ = self.stream.send(m).await;
    }

    /// The next message, or why there is none.
    pub async fn next(&mut self, deadline: Duration) -> Result<Value, WsError> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Ok(v);
            }
            let msg = match tokio::time::timeout_at(end, self.stream.next()).await {
                Err(_) => return Err(WsError::Timeout),
                Ok(None) => return Err(WsError::Closed(None)),
                Ok(Some(Err(_))) => return Err(WsError::Closed(None)),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    self.frames += 1;
                    for line in t.as_str().split('\n').filter(|l| !l.is_empty()) {
                        let v: Value =
                            serde_json::from_str(line).expect("server sent invalid JSON");
                        self.seen.push(v.clone());
                        self.pending.push_back(v);
                    }
                }
                Message::Close(frame) => {
                    return Err(WsError::Closed(frame.map(|f| u16::from(f.code))));
                }
                _ => {}
            }
        }
    }

    /// The next message whose `type` is `ty`, skipping others (heartbeats, status...).
    pub async fn next_of(&mut self, ty: &str, deadline: Duration) -> Value {
        self.until(|v| v["type"] == ty, deadline).await
    }

    /// The next message matching `pred`, skipping others; panics on timeout or close.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool, deadline: Duration) -> Value {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(e) => {
                    let recent: Vec<String> = self
                        .seen
                        .iter()
                        .rev()
                        .take(5)
                        .map(|m| m.to_string().chars().take(300).collect())
                        .collect();
                    panic!("no matching message: {e:?}; last seen: {recent:?}")
                }
            }
        }
    }

    /// Sends a request with `id` and waits for the reply carrying that id.
    pub async fn request(&mut self, mut v: Value, id: u64) -> Value {
        v["id"] = id.into();
        self.send(v).await;
        self.until(|m| m["id"] == id, Duration::from_secs(10)).await
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self, deadline: Duration) -> Option<u16> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(_) => {}
                Err(WsError::Closed(code)) => return code,
                Err(WsError::Timeout) => panic!("connection not closed in time"),
            }
        }
    }

    /// Closes from our side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Sends a close frame with a code.
    pub async fn close_with(&mut self, code: u16) {
        let _ = self
            .stream
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                },
            )))
            .await;
    }
}
