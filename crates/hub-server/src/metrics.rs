//! Prometheus metrics: one registry per hub instance (so tests can run
//! several hubs in one process), served at `GET /metrics` in the text
//! exposition format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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

label_set!(Transport, transport);
label_set!(Reason, reason);
label_set!(Type, r#type);
label_set!(Code, code);
label_set!(Outcome, outcome);
label_set!(Limit, limit);

/// Every metric the hub exports.
pub struct Metrics {
    registry: Registry,
    /// Connected clients by transport (`websocket`, `sse`).
    pub clients: Family<Transport, Gauge>,
    /// Disconnections by reason.
    pub disconnections: Family<Reason, Counter>,
    /// Client messages received by type.
    pub received: Family<Type, Counter>,
    /// Events accepted (durable).
    pub events: Counter,
    /// Messages queued to viewers by the fan-out.
    pub deliveries: Counter,
    /// WebSocket frames written.
    pub frames_sent: Counter,
    /// Messages written (a frame may carry several).
    pub messages_sent: Counter,
    /// Bytes written in frames.
    pub bytes_sent: Counter,
    /// Errors sent by code.
    pub errors: Family<Code, Counter>,
    /// Subscriptions by resume outcome (`recovered`, `snapshot`, `epoch_changed`, ...).
    pub resumes: Family<Outcome, Counter>,
    /// Actions refused with `RATE_LIMITED`, by limit.
    pub rate_limited: Family<Limit, Counter>,
    /// Store commit latency (submit to durable), seconds.
    pub commit_seconds: Histogram,
    /// Events per store commit.
    pub commit_events: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            clients: Family::default(),
            disconnections: Family::default(),
            received: Family::default(),
            events: Counter::default(),
            deliveries: Counter::default(),
            frames_sent: Counter::default(),
            messages_sent: Counter::default(),
            bytes_sent: Counter::default(),
            errors: Family::default(),
            resumes: Family::default(),
            rate_limited: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_events: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register(
            "ws_updates_clients",
            "Connected clients by transport",
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
            "progress_hub_rate_limited",
            "Actions refused with RATE_LIMITED by limit",
            m.rate_limited.clone(),
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
        for t in ["websocket", "sse"] {
            m.clients(t);
        }
        Metrics { registry, ..m }
    }

    /// Counts one error sent.
    pub fn error(&self, code: hub_proto::ErrorCode) {
        self.errors
            .get_or_create(&Code {
                code: code.as_str().to_owned(),
            })
            .inc();
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

    /// The gauge of connected clients for a transport.
    pub fn clients(&self, transport: &str) -> Gauge {
        self.clients
            .get_or_create(&Transport {
                transport: transport.to_owned(),
            })
            .clone()
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
