//! An SSE test client: reads a `text/event-stream` response one event at a
//! time (its `id:` and its JSON `data:`), and sees when the server ends
//! the stream.

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// One SSE event: the `id:` field, if any, and the JSON message in `data:`.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    /// The SSE id (`epoch:offset`), when the event carries one.
    pub id: Option<String>,
    /// The message.
    pub data: Value,
}

/// What ended a wait for an event.
#[derive(Debug, PartialEq, Eq)]
pub enum SseEnd {
    /// No event before the deadline.
    Timeout,
    /// The server ended the stream.
    Ended,
}

/// A test SSE connection.
pub struct Sse {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
    pending: VecDeque<SseEvent>,
    /// Every event received, in order.
    pub seen: Vec<SseEvent>,
}

impl Sse {
    /// Opens `url` (a `/api/v1/stream` URL) with an optional bearer token;
    /// `Err` carries the status and body of a refused request.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Sse, (u16, String)> {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Sse::open(req).await
    }

    /// Opens `url` resuming after `last_event_id` (`epoch:offset`, sent as
    /// the `Last-Event-ID` header, as a browser's `EventSource` does).
    pub async fn resume(url: &str, last_event_id: &str) -> Result<Sse, (u16, String)> {
        Sse::open(
            reqwest::Client::new()
                .get(url)
                .header("last-event-id", last_event_id),
        )
        .await
    }

    async fn open(req: reqwest::RequestBuilder) -> Result<Sse, (u16, String)> {
        let resp = req
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err((status, resp.text().await.unwrap_or_default()));
        }
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if !kind.is_some_and(|k| k.starts_with("text/event-stream")) {
            return Err((
                status,
                format!("not an event stream: content-type {kind:?}"),
            ));
        }
        let body = resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed();
        Ok(Sse {
            body,
            buf: String::new(),
            pending: VecDeque::new(),
            seen: Vec::new(),
        })
    }

    /// The next event, or why there is none.
    pub async fn next(&mut self, deadline: Duration) -> Result<SseEvent, SseEnd> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            let chunk = match tokio::time::timeout_at(end, self.body.next()).await {
                Err(_) => return Err(SseEnd::Timeout),
                Ok(None) | Ok(Some(Err(_))) => return Err(SseEnd::Ended),
                Ok(Some(Ok(c))) => c,
            };
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            self.split_events();
        }
    }

    /// The next event whose message `type` is `ty`, skipping others;
    /// panics on a timeout or the end of the stream.
    pub async fn next_of(&mut self, ty: &str, deadline: Duration) -> SseEvent {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(ev) if ev.data["type"] == ty => return ev,
                Ok(_) => {}
                Err(e) => panic!("no `{ty}` event: {e:?}; seen: {:?}", self.seen),
            }
        }
    }

    /// Reads until the server ends the stream; panics if it has not
    /// within `deadline`.
    pub async fn ended(&mut self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(_) => {}
                Err(SseEnd::Ended) => return,
                Err(SseEnd::Timeout) => panic!("the stream did not end in time"),
            }
        }
    }

    /// Moves every complete event (ended by a blank line) from the buffer
    /// to `pending` and `seen`; blocks without `data:` (comments) are skipped.
    fn split_events(&mut self) {
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            let data = serde_json::from_str(&data).expect("server sent invalid JSON");
            let ev = SseEvent { id, data };
            self.seen.push(ev.clone());
            self.pending.push_back(ev);
        }
    }
}
