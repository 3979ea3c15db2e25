//! Prometheus metrics: one registry per hub instance (so tests can run
//! several hubs in one process), served at `GET /metrics` in the text
//! exposition format.
//!
//! Hot paths (per message, per frame) use handles resolved once: the
//! per-type counters live in small arrays, the client gauges in a fixed
//! table, and label strings are only built for rare events (errors,
//! disconnections, refusals).

use crate::clock::seconds_since;
use crate::sharded::{ShardedCounter, ShardedHistogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;

/// A label set with one label.
macro_rules! label_set {
    ($name:ident, $field:ident) => {
        #[doc = concat!("Labels: `", stringify!($field), "`.")]
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        pub struct $name {
            #[doc = concat!("The `", stringify!($field), "` label.")]
            pub $field: String,
        }
    };
}

/// A label set with two labels.
macro_rules! label_pair {
    ($name:ident, $a:ident, $b:ident) => {
        #[doc = concat!("Labels: `", stringify!($a), "`, `", stringify!($b), "`.")]
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        pub struct $name {
            #[doc = concat!("The `", stringify!($a), "` label.")]
            pub $a: String,
            #[doc = concat!("The `", stringify!($b), "` label.")]
            pub $b: String,
        }
    };
}

label_set!(Transport, transport);
label_set!(Reason, reason);
label_set!(Type, r#type);
label_set!(Code, code);
label_set!(Outcome, outcome);
label_set!(Limit, limit);
label_set!(State, state);
label_set!(Kind, kind);
label_set!(Version, version);
label_pair!(ClientLabels, transport, role);
label_pair!(Refusal, transport, reason);
label_pair!(KindOutcome, kind, outcome);

/// Transports, in the order of [`Metrics::client_gauge`]'s table.
pub const TRANSPORTS: [&str; 2] = ["websocket", "sse"];
/// Roles a connection has taken (bit 1: subscribed, bit 2: published).
pub const ROLES: [&str; 4] = ["none", "viewer", "producer", "both"];
/// Operation states, in the engine's `by_state` order.
pub const STATES: [&str; 5] = ["running", "stalled", "completed", "failed", "canceled"];
/// Client message types, for the per-type received counters.
const CLIENT_TYPES: [&str; 10] = [
    "operation_started",
    "progress_update",
    "operation_completed",
    "operation_failed",
    "operation_canceled",
    "subscribe",
    "unsubscribe",
    "cancel",
    "ping",
    "refresh",
];
/// Server message types, for the per-type sent counters (last: `other`).
pub const SERVER_TYPES: [&str; 17] = [
    "operation_started",
    "progress_update",
    "operation_completed",
    "operation_failed",
    "operation_canceled",
    "operation_stalled",
    "operation_resumed",
    "ack",
    "subscribed",
    "operation_list",
    "cancel_requested",
    "heartbeat",
    "system_status",
    "error",
    "ok",
    "pong",
    "other",
];
/// The limits a `RATE_LIMITED` names in `data.reason`
/// (`progress_hub_rate_limited_total{limit}`), listed at 0 from the start
/// so that alerts on their rate see a series before the first refusal.
pub const RATE_LIMITS: [&str; 17] = [
    "messages",
    "handshakes",
    "ingest",
    "bodies",
    "connections",
    "connections_per_user",
    "anonymous_per_ip",
    "abuse",
    "namespaces",
    "operations_per_namespace",
    "operations",
    "queue",
    "snapshots",
    "subscriptions",
    "filters",
    "unread_control_frames",
    "broadcast",
];
/// Disconnection reasons (`ws_updates_disconnections_total{reason}`).
pub const DISCONNECT_REASONS: [&str; 10] = [
    "client_close",
    "idle_timeout",
    "slow_client",
    "auth_expiry",
    "shutdown",
    "error",
    "invalid_payload",
    "protocol_error",
    "abuse",
    "too_large",
];
/// Resume outcomes (`progress_hub_resumes_total{outcome}`).
pub const RESUME_OUTCOMES: [&str; 6] = [
    "recovered",
    "no_resume",
    "epoch_changed",
    "history_gone",
    "too_far_behind",
    "ahead_of_stream",
];
/// `hub_auth::AuthError::reason_label` values.
pub const AUTH_REASONS: [&str; 14] = [
    "required",
    "expired",
    "malformed",
    "too_large",
    "algorithm",
    "unknown_kid",
    "missing_kid",
    "crit",
    "signature",
    "missing_exp",
    "missing_sub",
    "claims",
    "not_yet_valid",
    "invalid",
];
/// The protocol's error codes (`progress_hub_errors_sent_total{code}`).
pub const ERROR_CODES: [&str; 20] = [
    "BAD_MESSAGE",
    "MESSAGE_TOO_LARGE",
    "AUTH_REQUIRED",
    "AUTH_FAILED",
    "TOKEN_EXPIRED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "SEQ_GAP",
    "UNKNOWN_OPERATION",
    "OPERATION_FINISHED",
    "SLOW_CLIENT",
    "IDLE_TIMEOUT",
    "SERVER_SHUTDOWN",
    "STORE_UNAVAILABLE",
    "NOT_FOUND",
    "BACKPLANE_UNAVAILABLE",
    "BACKPLANE_RECOVERED",
    "UPSTREAM_FAILURE",
    "UPSTREAM_RECOVERED",
    "CIRCUIT_OPEN",
];
/// Distinct operation kinds labelled before the rest count as `other`.
pub const MAX_KINDS: usize = 100;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency bucket bounds: 100 µs .. ~6.5 s.
fn latency_bounds() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 17)
}

fn latency_buckets() -> Histogram {
    Histogram::new(latency_bounds())
}

/// Every metric the hub exports.
pub struct Metrics {
    registry: Registry,
    /// Connected clients by transport (`websocket`, `sse`) and role (`none`,
    /// `viewer`, `producer`, `both`).
    pub clients: Family<ClientLabels, Gauge>,
    /// Disconnections by reason.
    pub disconnections: Family<Reason, Counter>,
    /// Client messages received by type.
    pub received: Family<Type, Counter>,
    /// Events accepted (durable).
    pub events: Counter,
    /// Messages queued to viewers by the fan-out.
    pub deliveries: Counter,
    /// WebSocket frames written.
    pub frames_sent: ShardedCounter,
    /// Messages written (a frame may carry several).
    pub messages_sent: ShardedCounter,
    /// Bytes written in frames.
    pub bytes_sent: ShardedCounter,
    /// Errors sent by code.
    pub errors: Family<Code, Counter>,
    /// Subscriptions by resume outcome (`recovered`, `snapshot`, `epoch_changed`, ...).
    pub resumes: Family<Outcome, Counter>,
    /// Store commit latency (submit to durable), seconds.
    pub commit_seconds: Histogram,
    /// Events per store commit.
    pub commit_events: Histogram,
    /// Connections accepted by transport.
    pub connections_accepted: Family<Transport, Counter>,
    /// Connection attempts refused, by transport and reason.
    pub connections_refused: Family<Refusal, Counter>,
    /// Request received to connection established, by transport, seconds.
    pub handshake_seconds: HistogramFamily<Transport>,
    /// Messages per WebSocket frame (batching).
    pub messages_per_frame: ShardedHistogram,
    /// Counted bytes queued for a viewer when its writer drains the queue.
    pub queue_depth_bytes: ShardedHistogram,
    /// Progress updates dropped by conflation (a newer one replaced them).
    pub conflated: Counter,
    /// Messages written to clients, by type.
    pub sent_by_type: Family<Type, ShardedCounter>,
    /// Producer message received to the frame carrying its event written
    /// (oldest live event of each frame), seconds.
    pub e2e_seconds: ShardedHistogram,
    /// Producer message received to its ack queued, seconds.
    pub ack_seconds: ShardedHistogram,
    /// Events replayed to resuming viewers.
    pub replayed: Counter,
    /// Operations held, by state (set at scrape).
    pub operations: Family<State, Gauge>,
    /// Operations started, by kind (first [`MAX_KINDS`] kinds, then `other`).
    pub operations_started: Family<Kind, Counter>,
    /// Operations finished, by kind and outcome (`completed`, `failed`, `canceled`).
    pub operations_finished: Family<KindOutcome, Counter>,
    /// `operation_stalled` events.
    pub stalls: Counter,
    /// Retained events dropped to keep the history within
    /// `max_history_bytes` (see `engine::history`).
    pub history_cut: Counter,
    /// Bytes the retained history is counted as (set at scrape).
    pub history_bytes: Gauge,
    /// Operations the hub ended itself, by reason (`producer_gone`: a
    /// cancel its producer left unanswered; `abandoned`: producer silent
    /// past `abandon_timeout`).
    pub ended_by_hub: Family<Reason, Counter>,
    /// Actions refused with `RATE_LIMITED`, by limit.
    pub rate_limited: Family<Limit, Counter>,
    /// Refused tokens, by reason (`hub_auth::AuthError::reason_label`).
    pub auth_failures: Family<Reason, Counter>,
    /// Namespaces held (set at scrape).
    pub namespaces: Gauge,
    /// Idle namespaces forgotten (see `engine::forget`).
    pub namespaces_forgotten: Counter,
    /// Subscriptions held (set at scrape).
    pub subscriptions: Gauge,
    /// Batches waiting for the store (set at scrape).
    pub store_in_flight: Gauge,
    /// 1 when `/ready` would answer 200 (set at scrape).
    pub ready: Gauge,
    client_table: [[Gauge; 4]; 2],
    received_table: [Counter; CLIENT_TYPES.len()],
    sent_table: [ShardedCounter; SERVER_TYPES.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let clients: Family<ClientLabels, Gauge> = Family::default();
        let client_table = TRANSPORTS.map(|t| {
            ROLES.map(|r| {
                clients
                    .get_or_create(&ClientLabels {
                        transport: t.into(),
                        role: r.into(),
                    })
                    .clone()
            })
        });
        let received: Family<Type, Counter> = Family::default();
        let received_table =
            CLIENT_TYPES.map(|t| received.get_or_create(&Type { r#type: t.into() }).clone());
        let sent_by_type: Family<Type, ShardedCounter> = Family::default();
        let sent_table = SERVER_TYPES.map(|t| {
            sent_by_type
                .get_or_create(&Type { r#type: t.into() })
                .clone()
        });
        let m = Metrics {
            clients,
            disconnections: Family::default(),
            received,
            events: Counter::default(),
            deliveries: Counter::default(),
            frames_sent: ShardedCounter::default(),
            messages_sent: ShardedCounter::default(),
            bytes_sent: ShardedCounter::default(),
            errors: Family::default(),
            resumes: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_events: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            connections_accepted: Family::default(),
            connections_refused: Family::default(),
            handshake_seconds: Family::new_with_constructor(latency_buckets),
            messages_per_frame: ShardedHistogram::new(exponential_buckets(1.0, 2.0, 12)),
            queue_depth_bytes: ShardedHistogram::new(exponential_buckets(256.0, 4.0, 10)),
            conflated: Counter::default(),
            sent_by_type,
            e2e_seconds: ShardedHistogram::new(latency_bounds()),
            ack_seconds: ShardedHistogram::new(latency_bounds()),
            replayed: Counter::default(),
            operations: Family::default(),
            operations_started: Family::default(),
            operations_finished: Family::default(),
            stalls: Counter::default(),
            history_cut: Counter::default(),
            history_bytes: Gauge::default(),
            ended_by_hub: {
                // Both reasons exported from the start (at 0), for rates.
                let f: Family<Reason, Counter> = Family::default();
                for reason in ["producer_gone", "abandoned"] {
                    let _ = f.get_or_create(&Reason {
                        reason: reason.into(),
                    });
                }
                f
            },
            rate_limited: Family::default(),
            auth_failures: Family::default(),
            namespaces: Gauge::default(),
            namespaces_forgotten: Counter::default(),
            subscriptions: Gauge::default(),
            store_in_flight: Gauge::default(),
            ready: Gauge::default(),
            client_table,
            received_table,
            sent_table,
            registry: Registry::default(),
        };
        registry.register(
            "ws_updates_clients",
            "Connected clients by transport and role",
            m.clients.clone(),
        );
        registry.register(
            "ws_updates_disconnections",
            "Disconnections by reason",
            m.disconnections.clone(),
        );
        registry.register(
            "progress_hub_messages_received",
            "Client messages received by type",
            m.received.clone(),
        );
        registry.register(
            "progress_hub_events",
            "Events made durable",
            m.events.clone(),
        );
        registry.register(
            "progress_hub_deliveries",
            "Messages queued to viewers by the fan-out",
            m.deliveries.clone(),
        );
        registry.register(
            "progress_hub_frames_sent",
            "WebSocket frames written",
            m.frames_sent.clone(),
        );
        registry.register(
            "progress_hub_messages_sent",
            "Messages written to clients",
            m.messages_sent.clone(),
        );
        registry.register(
            "progress_hub_bytes_sent",
            "Bytes written to clients",
            m.bytes_sent.clone(),
        );
        registry.register(
            "progress_hub_errors_sent",
            "Error messages sent by code",
            m.errors.clone(),
        );
        registry.register(
            "progress_hub_resumes",
            "Subscriptions by resume outcome",
            m.resumes.clone(),
        );
        registry.register(
            "progress_hub_store_commit_seconds",
            "Time from handing a batch to the store to its durable commit",
            m.commit_seconds.clone(),
        );
        registry.register(
            "progress_hub_store_commit_events",
            "Events per store commit",
            m.commit_events.clone(),
        );
        Self::register_more(&mut registry, &m);
        Metrics { registry, ..m }
    }

    fn register_more(r: &mut Registry, m: &Metrics) {
        r.register(
            "progress_hub_connections_accepted",
            "Connections accepted by transport",
            m.connections_accepted.clone(),
        );
        r.register(
            "progress_hub_connections_refused",
            "Connection attempts refused by transport and reason",
            m.connections_refused.clone(),
        );
        r.register(
            "progress_hub_handshake_seconds",
            "Time from the upgrade or stream request to an established connection",
            m.handshake_seconds.clone(),
        );
        r.register(
            "progress_hub_messages_per_frame",
            "Messages batched into one WebSocket frame",
            m.messages_per_frame.clone(),
        );
        r.register(
            "progress_hub_queue_depth_bytes",
            "Bytes queued for a viewer when its writer drains the queue",
            m.queue_depth_bytes.clone(),
        );
        r.register(
            "progress_hub_conflated_updates",
            "Progress updates replaced by a newer one in a slow viewer's queue",
            m.conflated.clone(),
        );
        r.register(
            "progress_hub_messages_sent_by_type",
            "Messages written to clients by type",
            m.sent_by_type.clone(),
        );
        r.register(
            "progress_hub_end_to_end_latency_seconds",
            "Producer message received to the frame carrying its event written to a viewer (oldest event of each frame)",
            m.e2e_seconds.clone(),
        );
        r.register(
            "progress_hub_ack_latency_seconds",
            "Producer message received to its ack queued (includes the store commit)",
            m.ack_seconds.clone(),
        );
        r.register(
            "progress_hub_replayed_events",
            "Events replayed to resuming viewers",
            m.replayed.clone(),
        );
        r.register(
            "progress_hub_operations",
            "Operations held by state",
            m.operations.clone(),
        );
        r.register(
            "progress_hub_operations_started",
            "Operations started by kind (the first 100 kinds, then other)",
            m.operations_started.clone(),
        );
        r.register(
            "progress_hub_operations_finished",
            "Operations finished by kind and outcome",
            m.operations_finished.clone(),
        );
        r.register(
            "progress_hub_operations_stalled",
            "Operations marked stalled",
            m.stalls.clone(),
        );
        r.register(
            "progress_hub_history_bytes",
            "Bytes of retained events held for replay, hub-wide (each its encoding plus 64)",
            m.history_bytes.clone(),
        );
        r.register(
            "progress_hub_history_cut_events",
            "Retained events dropped before history_size to keep within max_history_bytes",
            m.history_cut.clone(),
        );
        r.register(
            "progress_hub_operations_ended_by_hub",
            "Operations the hub ended itself: producer_gone (cancel unanswered), abandoned",
            m.ended_by_hub.clone(),
        );
        r.register(
            "progress_hub_rate_limited",
            "Actions refused with RATE_LIMITED by limit",
            m.rate_limited.clone(),
        );
        r.register(
            "progress_hub_auth_failures",
            "Refused tokens by reason",
            m.auth_failures.clone(),
        );
        r.register(
            "progress_hub_namespaces",
            "Namespaces held",
            m.namespaces.clone(),
        );
        r.register(
            "progress_hub_namespaces_forgotten",
            "Idle namespaces forgotten (no operation, no viewer) with their history",
            m.namespaces_forgotten.clone(),
        );
        r.register(
            "progress_hub_subscriptions",
            "Subscriptions held",
            m.subscriptions.clone(),
        );
        r.register(
            "progress_hub_store_in_flight_batches",
            "Batches handed to the store and not yet committed",
            m.store_in_flight.clone(),
        );
        r.register(
            "progress_hub_ready",
            "1 when the hub is ready (GET /ready answers 200), else 0",
            m.ready.clone(),
        );
        // A gauge, not an OpenMetrics `info`: the text format 0.0.4 that
        // Prometheus negotiates has no `info` type.
        let build: Family<Version, Gauge> = Family::default();
        build
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        r.register(
            "progress_hub_build_info",
            "Build information (always 1)",
            build,
        );
        r.register_collector(Box::new(crate::process::ProcessCollector));
        for s in STATES {
            let _ = m.operations.get_or_create(&State { state: s.into() });
        }
        // Series of small, known label sets exist from the start at 0, so
        // `rate()` and `increase()` see their first event.
        for t in TRANSPORTS {
            let t = Transport {
                transport: t.into(),
            };
            let _ = m.connections_accepted.get_or_create(&t);
            let _ = m.handshake_seconds.get_or_create(&t);
        }
        for r in DISCONNECT_REASONS {
            let _ = m.disconnections.get_or_create(&Reason { reason: r.into() });
        }
        for o in RESUME_OUTCOMES {
            let _ = m.resumes.get_or_create(&Outcome { outcome: o.into() });
        }
        for r in AUTH_REASONS {
            let _ = m.auth_failures.get_or_create(&Reason { reason: r.into() });
        }
        for c in ERROR_CODES {
            let _ = m.errors.get_or_create(&Code { code: c.into() });
        }
        for l in RATE_LIMITS {
            let _ = m.rate_limited.get_or_create(&Limit { limit: l.into() });
        }
    }

    /// Counts one error sent.
    pub fn error(&self, code: hub_proto::ErrorCode) {
        self.errors
            .get_or_create(&Code {
                code: code.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts one error sent, with its rate limit if it is `RATE_LIMITED`.
    pub fn error_sent(&self, e: &hub_proto::ProtoError) {
        self.error(e.code);
        if e.code == hub_proto::ErrorCode::RateLimited {
            self.limited(e.data_str("reason").unwrap_or("other"));
        }
    }

    /// Counts one action refused by a rate limit.
    pub fn limited(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&Limit {
                limit: limit.to_owned(),
            })
            .inc();
    }

    /// Counts one disconnection.
    pub fn disconnected(&self, reason: &str) {
        self.disconnections
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one refused connection attempt.
    pub fn refused(&self, transport: &str, reason: &str) {
        self.connections_refused
            .get_or_create(&Refusal {
                transport: transport.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a WebSocket or SSE request refused at the door (by the
    /// [`crate::http_api::SentError`] of the response) and returns the response.
    pub fn refusal(
        &self,
        transport: &str,
        resp: axum::response::Response,
    ) -> axum::response::Response {
        use hub_proto::ErrorCode as C;
        let reason = match resp.extensions().get::<crate::http_api::SentError>() {
            Some(e) => match e.code {
                C::Forbidden => e.reason.as_deref().unwrap_or("forbidden"),
                C::ServerShutdown => "shutdown",
                C::AuthRequired | C::AuthFailed | C::TokenExpired => "auth",
                C::RateLimited => e.reason.as_deref().unwrap_or("rate_limited"),
                C::BadMessage => "bad_request",
                _ => e.code.as_str(),
            },
            None => "other",
        };
        self.refused(transport, reason);
        resp
    }

    /// Counts one refused token.
    pub fn auth_failure(&self, e: &hub_auth::AuthError) {
        self.auth_failures
            .get_or_create(&Reason {
                reason: e.reason_label().to_owned(),
            })
            .inc();
    }

    /// Counts one accepted connection and observes its handshake time.
    pub fn accepted(&self, transport: &str, handshake_stamp: u64) {
        let t = Transport {
            transport: transport.to_owned(),
        };
        self.connections_accepted.get_or_create(&t).inc();
        self.handshake_seconds
            .get_or_create(&t)
            .observe(seconds_since(handshake_stamp));
    }

    /// The connected-clients gauge for a transport (`sse` or else
    /// `websocket`) and a role bit set (see [`ROLES`]).
    pub fn client_gauge(&self, sse: bool, role: u8) -> &Gauge {
        &self.client_table[usize::from(sse)][usize::from(role & 3)]
    }

    /// The received counter of a client message type.
    pub fn received_counter(&self, ty: &str) -> Option<&Counter> {
        CLIENT_TYPES
            .iter()
            .position(|t| *t == ty)
            .map(|i| &self.received_table[i])
    }

    /// The index in [`SERVER_TYPES`] of an encoded server message (every
    /// message starts with `{"type":"`); the last index when unknown.
    pub fn sent_type_index(bytes: &str) -> usize {
        let ty = bytes
            .strip_prefix("{\"type\":\"")
            .and_then(|r| r.split_once('"'))
            .map_or("", |(t, _)| t);
        SERVER_TYPES
            .iter()
            .position(|t| *t == ty)
            .unwrap_or(SERVER_TYPES.len() - 1)
    }

    /// The index in [`SERVER_TYPES`] of a server message type name (the
    /// last index when unknown); what the engine tags each event with.
    pub fn type_tag(name: &str) -> u8 {
        let i = SERVER_TYPES
            .iter()
            .position(|t| *t == name)
            .unwrap_or(SERVER_TYPES.len() - 1);
        u8::try_from(i).expect("fewer than 255 server types")
    }

    /// The [`SERVER_TYPES`] index of a queued item: its tag when the
    /// engine set one, else read from its bytes.
    pub fn sent_index(item: &hub_core::outqueue::OutItem) -> usize {
        if item.tag == hub_core::outqueue::OutItem::UNTAGGED {
            Self::sent_type_index(&item.bytes)
        } else {
            usize::from(item.tag)
        }
    }

    /// Adds per-type sent counts gathered for one frame or drain.
    pub fn add_sent(&self, counts: &[u64; SERVER_TYPES.len()]) {
        for (c, n) in self.sent_table.iter().zip(counts) {
            if *n > 0 {
                c.inc_by(*n);
            }
        }
    }

    /// Sets the engine's figures (at scrape).
    pub fn set_engine(&self, s: &crate::engine::EngineStats) {
        for (state, n) in STATES.iter().zip(s.by_state) {
            self.operations
                .get_or_create(&State {
                    state: (*state).into(),
                })
                .set(n as i64);
        }
        self.namespaces.set(s.namespaces as i64);
        self.history_bytes.set(s.history_bytes as i64);
        self.subscriptions.set(s.subscriptions as i64);
        self.store_in_flight.set(s.in_flight_batches as i64);
    }

    /// The exposition in the OpenMetrics text format
    /// (`application/openmetrics-text; version=1.0.0`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The exposition in the Prometheus text format 0.0.4 (`text/plain`),
    /// for scrapers that do not ask for OpenMetrics: see [`to_text_004`].
    pub fn encode_text_004(&self) -> String {
        to_text_004(&self.encode())
    }
}

/// Converts the OpenMetrics text that `prometheus-client` writes into the
/// Prometheus text format 0.0.4: a counter family `x` is declared there as
/// `x_total` (the name its samples carry), and `# EOF` / `# UNIT` lines go.
pub fn to_text_004(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|r| r.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let name = rest.split(' ').next().unwrap_or("");
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push_str(&rest[name.len()..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Per-kind operation counters, resolved once per kind; owned by the engine
/// task (no lock). Past [`MAX_KINDS`] distinct kinds, the rest share `other`.
#[derive(Default)]
pub struct KindCounters {
    kinds: HashMap<Arc<str>, KindHandles>,
    other: Option<KindHandles>,
}

/// The counters of one kind: started, then completed, failed, canceled.
#[derive(Clone)]
pub struct KindHandles {
    /// `operations_started{kind}`.
    pub started: Counter,
    /// `operations_finished{kind, outcome}` for completed, failed, canceled.
    pub finished: [Counter; 3],
}

impl KindCounters {
    /// The counters of `kind`.
    pub fn get(&mut self, m: &Metrics, kind: &Arc<str>) -> &KindHandles {
        if !self.kinds.contains_key(kind) {
            if self.kinds.len() >= MAX_KINDS {
                return self.other.get_or_insert_with(|| Self::resolve(m, "other"));
            }
            self.kinds.insert(kind.clone(), Self::resolve(m, kind));
        }
        &self.kinds[kind]
    }

    fn resolve(m: &Metrics, kind: &str) -> KindHandles {
        let started = m
            .operations_started
            .get_or_create(&Kind { kind: kind.into() })
            .clone();
        let finished = ["completed", "failed", "canceled"].map(|o| {
            m.operations_finished
                .get_or_create(&KindOutcome {
                    kind: kind.into(),
                    outcome: o.into(),
                })
                .clone()
        });
        KindHandles { started, finished }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_004_declares_counters_by_their_sample_names() {
        let m = Metrics::new();
        m.events.inc_by(3);
        let text = m.encode_text_004();
        assert!(text.contains("# TYPE progress_hub_events_total counter\n"));
        assert!(text.contains("# HELP progress_hub_events_total Events made durable"));
        assert!(text.contains("\nprogress_hub_events_total 3\n"));
        assert!(text.contains("# TYPE progress_hub_store_commit_seconds histogram\n"));
        assert!(!text.contains("# EOF"));
        assert!(m.encode().ends_with("# EOF\n"));
    }

    #[test]
    fn sent_types_are_read_from_the_encoding() {
        let i = Metrics::sent_type_index;
        assert_eq!(SERVER_TYPES[i(r#"{"type":"ack","seq":1}"#)], "ack");
        assert_eq!(SERVER_TYPES[i(r#"{"type":"heartbeat"}"#)], "heartbeat");
        assert_eq!(SERVER_TYPES[i(r#"{"x":1}"#)], "other");
    }

    /// The engine's tag for an event names the same counter as reading the
    /// encoded event would; untagged items are still read.
    #[test]
    fn event_tags_agree_with_the_encoding() {
        use hub_core::outqueue::OutItem;
        for name in &SERVER_TYPES[..7] {
            let bytes: Arc<str> = format!(r#"{{"type":"{name}","offset":1}}"#).into();
            let tagged = OutItem::message(bytes.clone()).with_tag(Metrics::type_tag(name));
            assert_eq!(
                Metrics::sent_index(&tagged),
                Metrics::sent_type_index(&bytes)
            );
            assert_eq!(SERVER_TYPES[Metrics::sent_index(&tagged)], *name);
            assert_eq!(
                Metrics::sent_index(&OutItem::message(bytes.clone())),
                Metrics::sent_type_index(&bytes)
            );
        }
        assert_eq!(
            SERVER_TYPES[usize::from(Metrics::type_tag("nope"))],
            "other"
        );
    }

    #[test]
    fn kinds_are_capped() {
        let m = Metrics::new();
        let mut k = KindCounters::default();
        for i in 0..MAX_KINDS + 5 {
            let kind: Arc<str> = format!("k{i}").into();
            k.get(&m, &kind).started.inc();
        }
        let other = m
            .operations_started
            .get_or_create(&Kind {
                kind: "other".into(),
            })
            .get();
        assert_eq!(other, 5);
    }
}
