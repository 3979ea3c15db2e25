//! The HTTP API: publish and cancel, operation and event listings, health,
//! readiness, status, and JSON errors for everything else.

use crate::app::Shared;
use crate::auth::{auth_error, authorize, token_of};
use crate::clock::now_ms;
use crate::engine::{Command, ListQuery, Reply, Who};
use crate::params::{ApiPath, Params};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hub_auth::{Action, Principal};
use hub_proto::{
    decode_http_producer, validate_namespace, validate_operation_id, ErrorCode, OperationStatus,
    ProtoError, ServerMessage,
};
use serde_json::json;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// What an error response carries for metrics and logs (a response
/// extension set by [`error_response`]): the code and its `data.reason`.
#[derive(Clone, Debug)]
pub struct SentError {
    /// The error code.
    pub code: ErrorCode,
    /// `data.reason`, when the error has one (e.g. the limit of `RATE_LIMITED`).
    pub reason: Option<String>,
}

/// `resp` with `Connection: close`: the request's body was left unread.
pub(crate) fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A JSON error response `{"error": {code, message, details, data}}`.
pub fn error_response(e: ProtoError, status: Option<u16>) -> Response {
    let status = StatusCode::from_u16(status.unwrap_or_else(|| e.code.http_status()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // A limit, or a hub that cannot take this now (RFC 9110: with 503 too).
    let retry = e.code == ErrorCode::RateLimited || status == StatusCode::SERVICE_UNAVAILABLE;
    let body = json!({"error": {"code": e.code, "message": e.message, "details": e.details, "data": e.data}});
    let mut resp = json_response(status, body.to_string());
    let reason = e.data_str("reason").map(str::to_owned);
    resp.extensions_mut().insert(SentError {
        code: e.code,
        reason,
    });
    if retry {
        let secs = e
            .data_u64("retry_after_ms")
            .map_or(1, |ms| ms.div_ceil(1000).max(1));
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // RFC 6750: a 401 says which scheme it wants, and whether the token
    // given was the problem.
    let challenge = match e.code {
        ErrorCode::AuthRequired => Some(r#"Bearer realm="progress-hub""#),
        ErrorCode::AuthFailed | ErrorCode::TokenExpired => {
            Some(r#"Bearer realm="progress-hub", error="invalid_token""#)
        }
        _ => None,
    };
    if let (Some(c), StatusCode::UNAUTHORIZED) = (challenge, status) {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    resp
}

/// An error the engine answered with, as a response; a `RATE_LIMITED`
/// (namespace or operation caps) is counted under its limit.
fn engine_error(app: &Shared, e: ProtoError) -> Response {
    if e.code == ErrorCode::RateLimited {
        app.metrics.limited(e.data_str("reason").unwrap_or("other"));
    }
    error_response(e, None)
}

/// A JSON body with a status.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn shutting_down() -> Response {
    error_response(
        ProtoError::new(ErrorCode::ServerShutdown, "the hub is shutting down"),
        None,
    )
}

/// Authenticates an HTTP request: tokenless GETs may read anonymously when allowed.
fn principal(
    app: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Principal, ProtoError> {
    app.authn
        .authenticate(
            token_of(headers, q.get("token").map(String::as_str)),
            now_ms(),
        )
        .map_err(|e| {
            app.metrics.auth_failure(&e);
            auth_error(&e)
        })
}

fn authorized(
    app: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    action: Action,
    ns: &str,
) -> Result<Principal, ProtoError> {
    let p = principal(app, headers, q)?;
    validate_namespace(ns)?;
    authorize(&p, action, ns)?;
    Ok(p)
}

async fn ask<T>(
    app: &Shared,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    if !app.engine.send(make(tx)).await {
        return Err(shutting_down());
    }
    rx.await.map_err(|_| shutting_down())
}

/// `POST /api/v1/namespaces/{ns}/operations/{id}/events`.
pub async fn post_event(
    State(app): State<Shared>,
    ConnectInfo(crate::Remote(remote, _)): ConnectInfo<crate::Remote>,
    ApiPath((ns, id)): ApiPath<(String, String)>,
    Params(q): Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = crate::clock::stamp();
    // A producer's error names its operation, whatever refused it.
    let refuse = |e: ProtoError| error_response(e.with_operation(Some(&id)), None);
    // Until the body is read, a refusal leaves it in the connection: say
    // the connection ends with this answer (hyper closes it, as it cannot
    // find where the next request starts), so a client that keeps
    // connections alive opens a new one instead of writing into a closed
    // one.
    let refuse_unread = |e: ProtoError| closing(refuse(e));
    if let Some(e) = crate::door::foreign_origin(&app, &headers) {
        return refuse_unread(e);
    }
    if app.is_shutting_down() {
        return refuse_unread(ProtoError::new(
            ErrorCode::ServerShutdown,
            "the hub is shutting down; resend this after reconnecting",
        ));
    }
    if let Err(e) = authorized(&app, &headers, &q, Action::Publish, &ns) {
        return refuse_unread(e);
    }
    if let Err(e) = app.limits.http_message(remote.ip()) {
        return refuse_unread(e);
    }
    let max = app.cfg.max_message_size;
    let too_large = || {
        refuse_unread(
            ProtoError::new(
                ErrorCode::MessageTooLarge,
                format!("the body is larger than {max} bytes"),
            )
            .with_data(json!({"limit": max})),
        )
    };
    // A body declared too large is refused before any of it is read (and
    // before a `100 Continue` would invite the client to send it).
    let declared = declared_length(&headers);
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    // The bytes it may hold while it arrives are reserved hub-wide first:
    // many bodies sent slowly, or never finished, would otherwise each
    // hold up to `max_message_size` for `handshake_timeout`.
    let expected = declared.map_or(max, |n| n as usize);
    let _reserved = match app.limits.body(expected) {
        Ok(permit) => permit,
        Err(e) => {
            app.limits.count("bodies");
            return refuse_unread(e);
        }
    };
    // A body that trickles in, or never comes, would hold the connection
    // (one of the capped places, see serve.rs): it gets as long as the
    // headers did.
    let stall = app.cfg.handshake_timeout;
    let read = tokio::time::timeout(stall, read_body(body, expected, max)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Err(_) => {
            return refuse_unread(ProtoError::new(
                ErrorCode::IdleTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    stall.as_millis()
                ),
            ))
        }
        Ok(Err(BodyError::TooLarge)) => return too_large(),
        Ok(Err(BodyError::Broken)) => {
            return refuse_unread(ProtoError::bad("the request body could not be read"))
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return refuse(ProtoError::bad("the body is not valid UTF-8"));
    };
    let msg = match decode_http_producer(text, &ns, &id) {
        Ok(m) => m,
        Err(e) => return refuse(e),
    };
    if let Err(e) = app.limits.ingest() {
        app.limits.count("ingest");
        return refuse(e);
    }
    let (tx, rx) = oneshot::channel();
    if !app
        .engine
        .send(Command::Publish {
            msg,
            conn: 0,
            reply: Reply::Http(tx),
            received,
        })
        .await
    {
        return shutting_down();
    }
    match rx.await {
        Ok(Ok(ack)) => json_response(StatusCode::OK, ServerMessage::Ack(ack).encode()),
        Ok(Err(e)) => engine_error(&app, e),
        Err(_) => shutting_down(),
    }
}

/// `POST /api/v1/namespaces/{ns}/operations/{id}/cancel`.
pub async fn cancel(
    State(app): State<Shared>,
    ConnectInfo(crate::Remote(remote, _)): ConnectInfo<crate::Remote>,
    ApiPath((ns, id)): ApiPath<(String, String)>,
    Params(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Some(e) = crate::door::foreign_origin(&app, &headers) {
        return error_response(e.with_operation(Some(&id)), None);
    }
    if app.is_shutting_down() {
        return shutting_down();
    }
    // Refusals name the operation, as the same cancel over WebSocket does.
    let p = match authorized(&app, &headers, &q, Action::Cancel, &ns) {
        Ok(p) => p,
        Err(e) => return error_response(e.with_operation(Some(&id)), None),
    };
    if let Err(e) = app.limits.http_message(remote.ip()) {
        return error_response(e.with_operation(Some(&id)), None);
    }
    if let Err(e) = validate_operation_id(&id) {
        return error_response(e.with_operation(Some(&id)), None);
    }
    let who = Who {
        conn: 0,
        sub: p.sub.clone(),
    };
    let (tx, rx) = oneshot::channel();
    let cmd = Command::Cancel {
        namespace: ns,
        operation_id: id,
        who,
        id: None,
        reply: Reply::Http(tx),
    };
    if !app.engine.send(cmd).await {
        return shutting_down();
    }
    match rx.await {
        Ok(Ok(state)) => json_response(
            StatusCode::ACCEPTED,
            json!({"operation": state}).to_string(),
        ),
        Ok(Err(e)) => engine_error(&app, e),
        Err(_) => shutting_down(),
    }
}

fn parse_limit(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ProtoError> {
    match q.get("limit") {
        None => Ok(default),
        // Any run of digits is a number to clamp, however long.
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(v.parse::<usize>().map_or(max, |n| n.min(max)))
        }
        Some(_) => Err(ProtoError::bad("`limit` must be a non-negative integer")),
    }
}

/// `GET /api/v1/namespaces/{ns}/operations?state=&kind=&limit=`.
pub async fn list_operations(
    State(app): State<Shared>,
    ApiPath(ns): ApiPath<String>,
    Params(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&app, &headers, &q, Action::View, &ns) {
        return error_response(e, None);
    }
    let state = match q.get("state").map(|s| OperationStatus::parse(s)) {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => {
            return error_response(
                ProtoError::bad(
                    "`state` must be one of running, stalled, completed, failed, canceled",
                ),
                None,
            )
        }
    };
    let limit = match parse_limit(&q, 1000, 10_000) {
        Ok(l) => l,
        Err(e) => return error_response(e, None),
    };
    let query = ListQuery {
        namespace: ns.clone(),
        state,
        kind: q.get("kind").cloned(),
        limit,
    };
    // The answer (every operation of a namespace, tens of MiB) is encoded
    // once and counted against `max_snapshot_bytes` until it is written
    // out: past that, `RATE_LIMITED` (`snapshots`) as for a subscribe.
    match ask(&app, |tx| Command::List(query, tx)).await {
        Ok(Ok(doc)) => crate::json_list::encoded(doc),
        Ok(Err(e)) => engine_error(&app, e),
        Err(r) => r,
    }
}

/// `GET /api/v1/namespaces/{ns}/operations/{id}`.
pub async fn get_operation(
    State(app): State<Shared>,
    ApiPath((ns, id)): ApiPath<(String, String)>,
    Params(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&app, &headers, &q, Action::View, &ns) {
        return error_response(e, None);
    }
    if let Err(e) = validate_operation_id(&id) {
        return error_response(e, None);
    }
    let op = id.clone();
    match ask(&app, |reply| Command::Get {
        namespace: ns,
        operation_id: op,
        reply,
    })
    .await
    {
        Ok(Some((state, events))) => {
            let state = serde_json::to_string(&state).unwrap_or_default();
            crate::json_list::response(format!("{{\"operation\":{state},\"events\":"), events, "}")
        }
        Ok(None) => error_response(
            ProtoError::new(
                ErrorCode::UnknownOperation,
                "this namespace has no such operation",
            )
            .with_operation(Some(&id)),
            None,
        ),
        Err(r) => r,
    }
}

/// `GET /api/v1/namespaces/{ns}/events?after=&limit=`.
pub async fn events(
    State(app): State<Shared>,
    ApiPath(ns): ApiPath<String>,
    Params(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&app, &headers, &q, Action::View, &ns) {
        return error_response(e, None);
    }
    let after = match q.get("after").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            return error_response(
                ProtoError::bad("`after` must be a non-negative integer"),
                None,
            )
        }
    };
    let limit = match parse_limit(&q, 100, 1000) {
        Ok(l) => l,
        Err(e) => return error_response(e, None),
    };
    let namespace = ns.clone();
    match ask(&app, |reply| Command::Events { namespace, after, limit, reply }).await {
        Ok(page) => crate::json_list::response(
            format!(
                "{{\"namespace\":{},\"epoch\":{},\"first_offset\":{},\"last_offset\":{},\"events\":",
                json!(ns),
                json!(page.epoch),
                page.first_offset,
                page.last_offset,
            ),
            page.events,
            "}",
        ),
        Err(r) => r,
    }
}

/// `GET /metrics`: Prometheus text exposition. Gauges that summarise the
/// engine's state (operations by state, namespaces, readiness) are set here,
/// at scrape time; process and runtime figures come from a collector.
///
/// Prometheus asks for OpenMetrics in its `Accept` header and gets it; any
/// other client gets the classic text format 0.0.4.
///
/// With auth on it needs a valid token (401 otherwise) with a role that may
/// view (403 otherwise), as `/api/v1/status` does, unless tokenless reads
/// are allowed (`--allow-anonymous-read`). Its figures are hub-wide: the
/// `kind` labels name kinds of every namespace (docs/SECURITY.md).
pub async fn metrics(State(app): State<Shared>, Params(q): Params, headers: HeaderMap) -> Response {
    if let Some(refused) = hub_wide_refusal(&app, &headers, &q) {
        return refused;
    }
    if let Some(stats) = crate::status::engine_stats(&app).await {
        app.metrics.set_engine(&stats);
    }
    crate::status::readiness(&app).await;
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics.encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            app.metrics.encode_text_004(),
        )
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The refusal of a hub-wide read (`/metrics`, `/api/v1/status`), if any:
/// none for a valid token with a role that may view (or tokenless, when
/// allowed), else the 401, or a 403.
fn hub_wide_refusal(
    app: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Option<Response> {
    match principal(app, headers, q) {
        Err(e) => Some(error_response(e, None)),
        Ok(p) if !p.may_view_something() => Some(error_response(
            ProtoError::new(
                ErrorCode::Forbidden,
                "the token has no role that may view (viewer, operator, reporter or admin)",
            ),
            None,
        )),
        Ok(_) => None,
    }
}

/// `GET /health`: the process is alive.
pub async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}).to_string())
}

/// `GET /ready`: 200 when the store is writable, the engine answers and the
/// hub is not shutting down; else 503 with each failing check, its error
/// and since when (ms).
pub async fn ready(State(app): State<Shared>) -> Response {
    let (ready, body) = crate::status::readiness(&app).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, body.to_string())
}

/// `GET /api/v1/status`: the latest `system_status`. With auth on it needs a
/// valid token (401) with a role that may view (403 for `roles: []` or
/// only unknown names), unless tokenless reads are allowed.
pub async fn status(State(app): State<Shared>, Params(q): Params, headers: HeaderMap) -> Response {
    if let Some(refused) = hub_wide_refusal(&app, &headers, &q) {
        return refused;
    }
    let msg = crate::status::latest(&app).await;
    json_response(StatusCode::OK, msg.to_string())
}

/// Unknown routes: the dashboard for GET, `NOT_FOUND` otherwise.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if (method == Method::GET || method == Method::HEAD) && !uri.path().starts_with("/api/") {
        let mut resp = hub_web::serve(uri, headers).await;
        if resp.status() == StatusCode::NOT_FOUND {
            // The dashboard answers with the hub's JSON error; logged and
            // counted by its code like every other.
            resp.extensions_mut().insert(SentError {
                code: ErrorCode::NotFound,
                reason: None,
            });
        }
        return resp;
    }
    error_response(
        ProtoError::new(
            ErrorCode::NotFound,
            format!("no route for {method} {}", uri.path()),
        ),
        None,
    )
}

/// A known path with the wrong method: `NOT_FOUND` (no such route), as JSON.
pub async fn wrong_method(method: Method, uri: Uri) -> Response {
    error_response(
        ProtoError::new(
            ErrorCode::NotFound,
            format!("no route for {method} {}", uri.path()),
        )
        .with_details("This path exists with another HTTP method."),
        None,
    )
}

/// Why a request body was not read whole.
enum BodyError {
    /// More than the limit arrived.
    TooLarge,
    /// The connection failed or the encoding was broken.
    Broken,
}

/// Reads a request body of at most `max` bytes into one buffer of
/// `expected` bytes (its `Content-Length`; it grows only for a body without
/// one), copying each piece as it arrives and letting it go. Collecting
/// the pieces instead (`axum::body::to_bytes`) keeps each of them, and the
/// connection read buffer each was cut from, until the last arrives, and
/// then copies them all into one.
async fn read_body(body: Body, expected: usize, max: usize) -> Result<Vec<u8>, BodyError> {
    use futures_util::StreamExt;
    let mut out = Vec::with_capacity(expected.min(max));
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|_| BodyError::Broken)?;
        if out.len() + piece.len() > max {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// The request's `Content-Length`, when it has a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
