//! The door of the long-lived transports (WebSocket upgrade and SSE): the
//! checks every such request passes before a connection exists — browser
//! origin (also asked by the HTTP endpoints that change something),
//! shutdown and token. (The connection caps come next, with the
//! place they reserve: [`crate::limits::Limits::admit`].)

use crate::app::Shared;
use crate::auth::{auth_error, origin_allowed, token_of};
use crate::clock::now_ms;
use crate::http_api::error_response;
use axum::http::HeaderMap;
use axum::response::Response;
use hub_auth::Principal;
use hub_proto::{ErrorCode, ProtoError};
use std::collections::HashMap;

/// Admits a WebSocket or SSE request, or answers it with the HTTP error
/// that says why not (403 origin, 503 shutdown, 401 token).
// The error is the response to send back: boxing it would only move the
// allocation to every refusal.
#[allow(clippy::result_large_err)]
pub fn admit(
    app: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Principal, Response> {
    if let Some(e) = foreign_origin(app, headers) {
        return Err(error_response(e, Some(403)));
    }
    if app.is_shutting_down() {
        return Err(error_response(
            ProtoError::new(ErrorCode::ServerShutdown, "the hub is shutting down"),
            None,
        ));
    }
    let principal = app
        .authn
        .authenticate(
            token_of(headers, query.get("token").map(String::as_str)),
            now_ms(),
        )
        .map_err(|e| {
            app.metrics.auth_failure(&e);
            error_response(auth_error(&e), Some(401))
        })?;
    Ok(principal)
}

/// The refusal of a browser request from an origin that may not connect
/// (`FORBIDDEN`, `data.reason: "origin"`), or None for the hub's own
/// origin, a listed one, or no `Origin` (not a browser). Also asked by the
/// HTTP endpoints that change something: a form or `text/plain` POST from
/// any page needs no CORS preflight, so without it a site the user visits
/// could report or cancel operations on an open hub.
pub fn foreign_origin(app: &Shared, headers: &HeaderMap) -> Option<ProtoError> {
    (!origin_allowed(headers, app.tls(), &app.origins)).then(|| {
        ProtoError::new(ErrorCode::Forbidden, "this origin may not connect")
            .with_data(serde_json::json!({"reason": "origin"}))
    })
}
