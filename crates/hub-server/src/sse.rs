//! The Server-Sent Events transport: a subscription over plain HTTP for
//! networks that block WebSocket. Same messages; events and snapshots carry
//! the SSE id `epoch:offset`, so `Last-Event-ID` resumes exactly.

use crate::app::Shared;
use crate::auth::authorize;
use crate::engine::Command;
use crate::http_api::error_response;
use crate::outbox::Outbox;
use crate::params::Params;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use hub_auth::Action;
use hub_core::glob::Filter;
use hub_core::outqueue::OutItem;
use hub_proto::{
    validate_namespace, ErrorCode, FilterSpec, Position, ProtoError, DEFAULT_NAMESPACE,
};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

/// Parses an SSE id `epoch:offset`.
pub fn parse_event_id(id: &str) -> Option<Position> {
    let (epoch, offset) = id.rsplit_once(':')?;
    Some(Position {
        epoch: epoch.to_owned(),
        offset: offset.parse().ok()?,
    })
}

fn list(q: &HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A comment line (`:`) is sent after this long without a message, so
/// proxies and clients with short read timeouts (httpx's default is 5 s)
/// never see a quiet stream as dead between heartbeats and statuses.
/// Comments are ignored by `EventSource` and every SSE parser.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /api/v1/stream?namespace=N[&operations=..][&kinds=..][&conflate=true]`.
pub async fn stream(
    State(app): State<Shared>,
    ConnectInfo(crate::Remote(remote, _)): ConnectInfo<crate::Remote>,
    headers: HeaderMap,
    Params(q): Params,
) -> Response {
    let handshake = crate::clock::stamp();
    let refuse = |r: Response| app.metrics.refusal("sse", r);
    if let Err(e) = app.limits.handshake(remote.ip()) {
        return refuse(error_response(e, Some(429)));
    }
    let principal = match crate::door::admit(&app, &headers, &q) {
        Ok(p) => p,
        Err(refusal) => return refuse(refusal),
    };
    let edge = match crate::ws::Edge::admit(&app, remote.ip(), &principal) {
        Ok(edge) => edge,
        Err(refusal) => return refuse(refusal),
    };
    let namespace = q
        .get("namespace")
        .cloned()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if let Err(e) = validate_namespace(&namespace) {
        return refuse(error_response(e, None));
    }
    if let Err(e) = authorize(&principal, Action::View, &namespace) {
        let status = if e.code == ErrorCode::AuthRequired {
            401
        } else {
            403
        };
        return refuse(error_response(e, Some(status)));
    }
    let spec = FilterSpec {
        operations: list(&q, "operations"),
        kinds: list(&q, "kinds"),
    };
    if let Err(e) = spec.validate() {
        return refuse(error_response(e, None));
    }
    let FilterSpec { operations, kinds } = spec;
    let conflate = match q.get("conflate").map(String::as_str) {
        None | Some("") => Some(false),
        Some(v) => crate::config::lenient::switch_word(v),
    };
    let Some(conflate) = conflate else {
        return refuse(error_response(
            ProtoError::bad("`conflate` must be true or false"),
            None,
        ));
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| q.get("last_event_id").cloned());
    // An id that is not `epoch:offset` (not one of ours: a proxy's, or a
    // stale client's) is no position: the stream starts with a snapshot,
    // as a `resume` with an unknown epoch would. Refusing it would make an
    // EventSource give up for good, since it does not retry on an error.
    let resume = last_id.as_deref().filter(|s| !s.is_empty()).and_then(|id| {
        let p = parse_event_id(id);
        if p.is_none() {
            tracing::debug!(
                last_event_id = id,
                "unusable Last-Event-ID: starting with a snapshot"
            );
        }
        p
    });
    let out = app.new_outbox(true);
    out.set_token_expiry(principal.expires_at);
    let span = tracing::info_span!("conn", remote = %remote, sub = %principal.sub, id = out.id, transport = "sse");
    span.in_scope(|| tracing::debug!("sse connected"));
    // The guard exists before the first await: a client that goes away
    // while the subscribe waits for room in the engine's inbox (the
    // handler is dropped there) is still unregistered.
    let guard = Guard {
        app: app.clone(),
        out: out.clone(),
        _edge: edge,
        span,
    };
    let cmd = Command::Subscribe {
        conn: out.clone(),
        id: None,
        namespace,
        filter: Filter { operations, kinds },
        resume,
        conflate,
        queued: None,
    };
    app.engine.send(cmd).await;
    let first = match first_answer(&out).await {
        Ok(items) => items,
        Err(e) => {
            // Never counted as a connection; `guard` unregisters it as
            // this returns.
            out.refused();
            return refuse(error_response(e, None));
        }
    };
    out.opened(handshake);
    Sse::new(events(guard, app.epoch.clone(), first))
        .keep_alive(
            axum::response::sse::KeepAlive::new()
                .interval(KEEP_ALIVE)
                .text(""),
        )
        .into_response()
}

/// Unregisters the connection when the client goes away.
struct Guard {
    app: Shared,
    out: Arc<Outbox>,
    /// The connection's place under the connection caps.
    _edge: crate::ws::Edge,
    /// The connection's log span (id, remote, subject).
    span: tracing::Span,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let reason = self
            .out
            .closing()
            .map_or("client_close", |c| crate::ws::close_reason(c.code));
        self.out.finished(reason);
        self.span.in_scope(|| tracing::debug!(reason, "sse closed"));
        self.app.registry.remove(self.out.id);
        let engine = self.app.engine.clone();
        let conn = self.out.id;
        if !engine.try_send(Command::Closed { conn }) {
            tokio::spawn(async move { engine.send(Command::Closed { conn }).await });
        }
    }
}

struct StreamState {
    guard: Guard,
    /// The namespace's epoch, from its `subscribed` message (until then
    /// the store's).
    epoch: String,
    pending: VecDeque<OutItem>,
    buf: Vec<OutItem>,
    /// The item of the event last handed to the response body, held until
    /// the body asks for the next one: the event is a copy of its bytes,
    /// and a snapshot counts against `max_snapshot_bytes` only while its
    /// bytes live, so letting go of them before the client took the copy
    /// would let unread SSE snapshots pass the bound.
    in_flight: Option<OutItem>,
    done: bool,
}

/// Waits for the engine's answer to the stream's `subscribe` (the first
/// message it queues): a refusal (`RATE_LIMITED` while unread snapshots
/// fill `max_snapshot_bytes`, the subscription cap, a hub shutting down)
/// is returned to become the HTTP error answering the request, with
/// `Retry-After`, instead of a stream that opens, says so, and then
/// carries nothing (an `EventSource` would hold it open for ever instead
/// of retrying). Otherwise the messages queued so far, to send first,
/// `subscribed` first of all (a heartbeat queued before it goes after it:
/// the stream starts with `subscribed`).
async fn first_answer(out: &Outbox) -> Result<Vec<OutItem>, ProtoError> {
    let mut items = Vec::new();
    loop {
        out.drain_into(&mut items);
        // The answer is `subscribed` or `error`; a heartbeat may come first.
        let answer = items.iter().position(|i| {
            i.bytes.starts_with(r#"{"type":"subscribed""#)
                || i.bytes.starts_with(r#"{"type":"error""#)
        });
        match answer {
            Some(at) if items[at].bytes.starts_with(r#"{"type":"error""#) => {
                return Err(refusal(&items[at].bytes))
            }
            Some(at) => {
                items[..=at].rotate_right(1);
                return Ok(items);
            }
            None if out.closing().is_some() => return Ok(items),
            None => out.wait().await,
        }
    }
}

/// The [`ProtoError`] of an encoded `error` message.
fn refusal(bytes: &str) -> ProtoError {
    let v: serde_json::Value = serde_json::from_str(bytes).unwrap_or_default();
    let code = v["code"]
        .as_str()
        .and_then(ErrorCode::from_wire)
        .unwrap_or(ErrorCode::ServerShutdown);
    let mut e = ProtoError::new(code, v["message"].as_str().unwrap_or_default());
    if !v["data"].is_null() {
        e = e.with_data(v["data"].clone());
    }
    if let Some(d) = v["details"].as_str() {
        e = e.with_details(d);
    }
    e
}

fn events(
    guard: Guard,
    epoch: String,
    first: Vec<OutItem>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let st = StreamState {
        guard,
        epoch,
        pending: first.into(),
        buf: Vec::new(),
        in_flight: None,
        done: false,
    };
    stream::unfold(st, |mut st| async move {
        st.in_flight = None;
        loop {
            if let Some(item) = st.pending.pop_front() {
                let m = &st.guard.app.metrics;
                m.messages_sent.inc();
                m.bytes_sent.inc_by(item.bytes.len() as u64);
                let mut by_type = [0u64; crate::metrics::SERVER_TYPES.len()];
                by_type[crate::metrics::Metrics::sent_index(&item)] = 1;
                m.add_sent(&by_type);
                if item.stamp != 0 && item.counted {
                    m.e2e_seconds
                        .observe(crate::clock::seconds_since(item.stamp));
                }
                if item.bytes.starts_with(r#"{"type":"subscribed""#) {
                    // The namespace's epoch (not always the store's: see
                    // `engine::forget`) for the ids that follow.
                    if let Some(epoch) = subscribed_epoch(&item.bytes) {
                        st.epoch = epoch;
                    }
                }
                let mut ev = SseEvent::default().data(&*item.bytes);
                if let Some(off) = item.offset {
                    ev = ev.id(format!("{}:{off}", st.epoch));
                }
                st.in_flight = Some(item);
                return Some((Ok(ev), st));
            }
            if st.done {
                return None;
            }
            st.guard.out.drain_into(&mut st.buf);
            if !st.buf.is_empty() {
                st.pending.extend(st.buf.drain(..));
                continue;
            }
            if let Some(c) = st.guard.out.closing() {
                st.done = true;
                return Some((Ok(SseEvent::default().data(&*c.error)), st));
            }
            st.guard.out.wait().await;
        }
    })
}

/// The `epoch` of an encoded `subscribed` message.
fn subscribed_epoch(bytes: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(bytes).ok()?;
    v.get("epoch")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids() {
        assert_eq!(
            parse_event_id("ab:12"),
            Some(Position {
                epoch: "ab".into(),
                offset: 12
            })
        );
        assert_eq!(parse_event_id("a:b:3").unwrap().epoch, "a:b");
        assert_eq!(parse_event_id("ab"), None);
        assert_eq!(parse_event_id("ab:x"), None);
    }
}
