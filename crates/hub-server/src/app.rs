//! Shared state of the HTTP/WebSocket front end and the router.

use crate::auth::Authn;
use crate::config::Config;
use crate::engine::EngineHandle;
use crate::outbox::Outbox;
use crate::registry::Registry;
use axum::routing::{get, post};
use axum::Router;
use hub_core::outqueue::OutQueueConfig;
use hub_store::EventStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Everything a request handler needs.
pub struct AppState {
    /// The configuration.
    pub cfg: Config,
    /// The engine.
    pub engine: EngineHandle,
    /// Live connections.
    pub registry: Arc<Registry>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Authentication.
    pub authn: Authn,
    /// The store (readiness checks).
    pub store: Arc<dyn EventStore>,
    /// The store's epoch: every namespace's, except those created after
    /// the hub first forgot an idle one (see `engine::forget`).
    pub epoch: String,
    /// Set on SIGTERM: `/ready` answers 503 while the hub still serves
    /// everything for `shutdown_grace`.
    pub stopping: AtomicBool,
    /// Set once the grace is over: new connections and HTTP producer
    /// messages get `SERVER_SHUTDOWN`.
    pub shutting_down: AtomicBool,
    /// Extra allowed browser origins.
    pub origins: Vec<String>,
    /// When the hub runs open on a loopback address, the hosts it answers
    /// besides IP literals and `localhost` (see [`crate::host`]); `None`:
    /// any `Host`.
    pub hosts: Option<Vec<String>>,
    /// Start time, ms.
    pub started_at: u64,
    /// Status rates, cached figures and readiness history.
    pub status: crate::status::StatusState,
    /// Rate and resource limits at the edge.
    pub limits: Arc<crate::limits::Limits>,
}

/// The state as handlers receive it.
pub type Shared = Arc<AppState>;

impl AppState {
    /// A new outbox for a connection, registered.
    pub fn new_outbox(&self, sse: bool) -> Arc<Outbox> {
        let conn = Outbox::new(
            self.registry.next_id(),
            OutQueueConfig {
                conflate_after_bytes: self.cfg.conflate_after_bytes,
                slow_limit_bytes: self.cfg.slow_client_bytes,
            },
            crate::clock::now_ms(),
            sse,
            self.metrics.clone(),
        );
        self.registry.insert(conn.clone());
        conn
    }

    /// Whether a shutdown was asked for (the grace may still be running).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Whether the hub has stopped taking new work (after the grace).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Whether TLS is on.
    pub fn tls(&self) -> bool {
        self.cfg.tls_cert.is_some()
    }
}

/// The routes.
pub fn router(state: Shared) -> Router {
    use crate::http_api as api;
    Router::new()
        .route("/ws", get(crate::ws::upgrade))
        .route("/api/v1/stream", get(crate::sse::stream))
        .route("/api/v1/status", get(api::status))
        .route(
            "/api/v1/namespaces/{ns}/operations",
            get(api::list_operations),
        )
        .route(
            "/api/v1/namespaces/{ns}/operations/{id}",
            get(api::get_operation),
        )
        .route(
            "/api/v1/namespaces/{ns}/operations/{id}/events",
            post(api::post_event),
        )
        .route(
            "/api/v1/namespaces/{ns}/operations/{id}/cancel",
            post(api::cancel),
        )
        .route("/api/v1/namespaces/{ns}/events", get(api::events))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(api::metrics))
        .fallback(api::fallback)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(cors(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::host::layer,
        ))
        .with_state(state)
}

/// CORS for the browser origins that may connect (the hub's own and
/// `--allowed-origins`, the same rule as the WebSocket and SSE origin
/// check), so a page on another origin that embeds the client can use the
/// SSE fallback and the HTTP API: the response names the requesting origin
/// (never `*`), and preflights for `POST` with `Authorization` and a JSON
/// body are answered. Other origins get no `Access-Control-Allow-Origin`, so browsers keep
/// their pages from reading the answers.
fn cors(state: &Shared) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let tls = state.tls();
    let origins = state.origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |_origin, parts| {
            crate::auth::origin_allowed(&parts.headers, tls, &origins)
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(600))
}
