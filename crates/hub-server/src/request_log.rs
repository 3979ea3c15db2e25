//! Every HTTP request (API calls, WebSocket upgrades, SSE streams, health
//! and metrics) runs inside a span carrying its request id — the client's
//! `X-Request-Id` when it is a sane token, else a generated one — which is
//! echoed back in the response's `X-Request-Id` header. One line is logged
//! per request when its response head is ready (status, latency, the URI
//! with credentials redacted), and error responses are counted by code.
//!
//! Tokens never reach the logs: the `token` (and `access_token`) query
//! parameters are replaced by `REDACTED` in every logged URI, and headers
//! are not logged at all.

use crate::app::Shared;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The request-id header, read and echoed.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served (a request extension).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Query parameters whose values are credentials.
const SECRET_PARAMS: [&str; 2] = ["token", "access_token"];

/// The request id a client sent, if it is 1..=128 characters of
/// `[A-Za-z0-9._:/+=-]` (anything else is replaced, so ids cannot inject
/// log lines or carry secrets of unbounded size).
fn client_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/+=-".contains(&b));
    ok.then(|| s.to_owned())
}

fn generated_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The path and query of `uri`, with credential parameters' values replaced.
pub fn redacted(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_owned();
    };
    let mut out = String::with_capacity(path.len() + 1 + query.len());
    out.push_str(path);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let name = pair.split_once('=').map_or(pair, |(k, _)| k);
        let decoded = |t: &str| {
            percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .to_ascii_lowercase()
        };
        if SECRET_PARAMS.iter().any(|p| decoded(name) == *p) {
            // `token`, also spelled `tok%65n` (the hub decodes names).
            out.push_str(name);
            out.push_str("=REDACTED");
        } else if SECRET_PARAMS.iter().any(|p| decoded(pair).contains(p)) {
            // A credential hidden anywhere in the pair (`a=b;token=...`,
            // `token%3D...`): the whole pair goes.
            out.push_str("REDACTED");
        } else {
            out.push_str(pair);
        }
    }
    out
}

/// Longest URI a log line carries, in characters: the log queue is
/// bounded in lines, so each line must be bounded in bytes too (a request
/// head may hold a 32 KiB URI).
pub const MAX_LOGGED_URI: usize = 1024;

/// [`redacted`], cut to [`MAX_LOGGED_URI`] characters (the cut ends in `…`).
pub fn logged_uri(uri: &Uri) -> String {
    hub_proto::fields::clip(&redacted(uri), MAX_LOGGED_URI)
}

/// Paths polled by machines: logged at debug level, not info.
fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn layer(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(client_id)
        .unwrap_or_else(generated_id);
    let method = req.method().clone();
    let uri = logged_uri(req.uri());
    let probe = is_probe(req.uri().path());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("http", request_id = %id, method = %method, uri = %uri);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let error = resp
        .extensions()
        .get::<crate::http_api::SentError>()
        .map(|e| e.code);
    if let Some(code) = error {
        app.metrics.error(code);
    }
    let code = error.map(|c| c.as_str());
    span.in_scope(|| {
        if probe && status < 400 {
            tracing::debug!(status, latency_ms, "request");
        } else if status >= 500 {
            tracing::warn!(status, latency_ms, code, "request");
        } else {
            tracing::info!(status, latency_ms, code, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_uris_are_cut_after_redaction() {
        let long = format!("/api/v1/x?token=secret&pad={}", "a".repeat(40_000));
        let u: Uri = long.parse().unwrap();
        let logged = logged_uri(&u);
        assert_eq!(logged.chars().count(), MAX_LOGGED_URI);
        assert!(logged.starts_with("/api/v1/x?token=REDACTED&pad=aaa") && logged.ends_with('…'));
        let short: Uri = "/health".parse().unwrap();
        assert_eq!(logged_uri(&short), "/health");
    }

    #[test]
    fn tokens_are_redacted() {
        let u: Uri = "/ws?namespace=a&token=abc.def.ghi&x=1".parse().unwrap();
        assert_eq!(redacted(&u), "/ws?namespace=a&token=REDACTED&x=1");
        let u: Uri = "/api/v1/stream?ACCESS_TOKEN=s3cret".parse().unwrap();
        assert_eq!(redacted(&u), "/api/v1/stream?ACCESS_TOKEN=REDACTED");
        let u: Uri = "/health".parse().unwrap();
        assert_eq!(redacted(&u), "/health");
        let u: Uri = "/x?token".parse().unwrap();
        assert_eq!(redacted(&u), "/x?token=REDACTED");
        let u: Uri = "/x?tok%65n=abc.def&n=1".parse().unwrap();
        assert_eq!(redacted(&u), "/x?tok%65n=REDACTED&n=1");
        let u: Uri = "/x?a=b;token=abc&Access%5FToken=q".parse().unwrap();
        assert_eq!(redacted(&u), "/x?REDACTED&Access%5FToken=REDACTED");
        let u: Uri = "/x?token%3Dabc.def".parse().unwrap();
        assert_eq!(redacted(&u), "/x?REDACTED");
    }

    #[test]
    fn client_ids_are_checked() {
        let ok = HeaderValue::from_static("req-123_abc:9");
        assert_eq!(client_id(&ok).as_deref(), Some("req-123_abc:9"));
        assert_eq!(client_id(&HeaderValue::from_static("a b")), None);
        assert_eq!(client_id(&HeaderValue::from_static("")), None);
        let long = HeaderValue::from_str(&"x".repeat(129)).unwrap();
        assert_eq!(client_id(&long), None);
        assert_eq!(generated_id().len(), 16);
    }
}
