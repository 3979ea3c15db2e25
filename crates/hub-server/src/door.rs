//! The door of the long-lived transports (WebSocket upgrade and SSE): the
//! checks every such request passes before a connection exists — browser
//! origin, shutdown and token. (The connection caps come next, with the
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
    if !origin_allowed(headers, app.tls(), &app.origins) {
        return Err(error_response(
            ProtoError::new(ErrorCode::Forbidden, "this origin may not connect")
                .with_data(serde_json::json!({"reason": "origin"})),
            Some(403),
        ));
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
