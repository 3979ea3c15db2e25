//! The `Host` rule of an open hub on a loopback address: the defence
//! against DNS rebinding (as Jupyter's and Vite's `allowedHosts`).
//!
//! A page at `http://evil.test:PORT` whose DNS name is re-pointed to
//! 127.0.0.1 reaches a hub on the user's machine with `Host: evil.test:PORT`
//! and `Origin: http://evil.test:PORT`: to the origin rule that is the hub's
//! own origin, and an open hub has no token to stop it. So when the hub runs
//! open (no key) and listens on a loopback address, a request's `Host` must
//! name an IP literal (v4, or bracketed v6), `localhost`, a `*.localhost`
//! name, or the host of an origin in `--allowed-origins` (`*` and `null`
//! name none); anything else gets 403 `FORBIDDEN` with `data.reason:
//! "host"`, on every route but `/health` and `/ready` (probes). A request
//! without `Host` (HTTP/1.0) names no DNS name and passes. With a key,
//! tokens defend the hub; on a non-loopback address (`--insecure-no-auth`)
//! clients reach it by whatever name the network gives it.

use crate::app::Shared;
use crate::http_api::error_response;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use hub_proto::{ErrorCode, ProtoError};
use std::net::IpAddr;

/// The hosts an open loopback hub answers besides IP literals and
/// `localhost`: those of `origins` (normalised `--allowed-origins`
/// entries), lower case, without port.
pub fn allowed_hosts(origins: &[String]) -> Vec<String> {
    origins
        .iter()
        .filter_map(|o| {
            let rest = o.split_once("://")?.1;
            let host = match rest.strip_prefix('[') {
                Some(v6) => v6.split_once(']')?.0,
                None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
            };
            (!host.is_empty()).then(|| host.trim_end_matches('.').to_ascii_lowercase())
        })
        .collect()
}

/// Whether a `Host` header value (`host[:port]`) may be served by an open
/// loopback hub that also answers `extra` hosts.
pub fn host_allowed(value: &str, extra: &[String]) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return true;
    }
    // RFC 3986 `port = *DIGIT`: possibly empty.
    let is_port = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(v6) = value.strip_prefix('[') {
        // `[addr]` or `[addr]:port`, nothing else after the bracket.
        return v6.split_once(']').is_some_and(|(addr, rest)| {
            addr.parse::<std::net::Ipv6Addr>().is_ok()
                && (rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port))
        });
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if is_port(port) => h,
        _ => value,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    // A DNS name's characters only (`evil.test#.localhost` is not one).
    let name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    host.parse::<IpAddr>().is_ok()
        || (name && (host == "localhost" || host.ends_with(".localhost")))
        || extra.contains(&host)
}

/// The middleware (`axum::middleware::from_fn_with_state`); a no-op unless
/// [`crate::app::AppState::hosts`] is set (open hub on loopback).
pub async fn layer(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let Some(extra) = &app.hosts else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if matches!(path, "/health" | "/ready") {
        return next.run(req).await;
    }
    // HTTP/2 carries the host in the URI's authority, not in `Host`.
    let host = match req.headers().get(header::HOST) {
        Some(v) => v.to_str().ok().map(str::to_owned),
        None => Some(
            req.uri()
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
        ),
    };
    if host.as_deref().is_some_and(|h| host_allowed(h, extra)) {
        return next.run(req).await;
    }
    let e = ProtoError::new(
        ErrorCode::Forbidden,
        "this hub runs without a token key on a loopback address and answers only requests for an IP address, localhost or a host of --allowed-origins",
    )
    .with_details(
        "A defence against DNS rebinding: reach the hub as 127.0.0.1 or localhost, list the page's origin in --allowed-origins, or configure a token key.",
    )
    .with_data(serde_json::json!({"reason": "host", "host": host}));
    let transport = match path {
        "/ws" => Some("websocket"),
        "/api/v1/stream" => Some("sse"),
        _ => None,
    };
    let resp = error_response(e, Some(403));
    match transport {
        Some(t) => app.metrics.refusal(t, resp),
        None => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let extra = allowed_hosts(&[
            "http://app.example:3000".into(),
            "https://[::2]".into(),
            "*".into(),
            "null".into(),
            "https://b.example".into(),
        ]);
        assert_eq!(extra, ["app.example", "::2", "b.example"]);
        for ok in [
            "",
            "127.0.0.1",
            "127.0.0.1:8765",
            "10.1.2.3:80",
            "[::1]:8765",
            "[::1]",
            "localhost",
            "LOCALHOST:1",
            "localhost.:1",
            "hub.localhost:8765",
            "app.example:9999",
            "b.example",
            "localhost:",
            "[::1]:",
        ] {
            assert!(host_allowed(ok, &extra), "{ok}");
        }
        for bad in [
            "evil.test",
            "evil.test:8765",
            "evil.test.:8765",
            "localhost.evil.test",
            "evillocalhost",
            "127.0.0.1.evil.test",
            "[evil.test]:80",
            "app.example.evil.test",
            "example",
            "[::1]x",
            "[::1].evil",
            "[::1]:80x",
            "evil.test#.localhost",
            "evil test.localhost",
        ] {
            assert!(!host_allowed(bad, &extra), "{bad}");
        }
    }
}
