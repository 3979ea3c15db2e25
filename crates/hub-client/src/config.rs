//! Client configuration: where the hub is, how to authenticate, and every
//! timing default in one place.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::machine::MachineConfig;
use crate::outbox::OutboxConfig;

/// The default hub URL.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:8765/ws";

/// The default [`ClientConfig::max_incoming_bytes`]: 256 MiB.
pub const DEFAULT_MAX_INCOMING_BYTES: usize = 256 * 1024 * 1024;

type TokenFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// Supplies the bearer token; consulted before every (re)connect, and
/// after the hub refused a token (`AUTH_FAILED`, `TOKEN_EXPIRED`): asked
/// again with the reconnect backoff (jittered, capped) until it returns a
/// *different* token, which reconnects. A [`fixed`](TokenProvider::fixed)
/// token is not asked again: the client stays
/// [`Failed`](crate::ConnState::Failed) (a flush returns false and logs
/// why) until [`Client::reconnect_now`](crate::Client::reconnect_now).
#[derive(Clone)]
pub struct TokenProvider(Arc<dyn Fn() -> TokenFuture + Send + Sync>, bool);

impl TokenProvider {
    /// Always the same token.
    pub fn fixed(token: impl Into<String>) -> Self {
        let token = token.into();
        TokenProvider(
            Arc::new(move || {
                let t = token.clone();
                Box::pin(async move { Some(t) })
            }),
            true,
        )
    }

    /// Whether it always gives the same token ([`TokenProvider::fixed`]).
    pub fn is_fixed(&self) -> bool {
        self.1
    }

    /// A synchronous closure (e.g. reading a file or an environment variable).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn() -> Option<String> + Send + Sync + 'static,
    {
        TokenProvider(
            Arc::new(move || {
                let t = f();
                Box::pin(async move { t })
            }),
            false,
        )
    }

    /// An asynchronous closure (e.g. asking an identity service).
    pub fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        TokenProvider(Arc::new(move || Box::pin(f())), false)
    }

    /// Ask for the current token.
    pub async fn token(&self) -> Option<String> {
        (self.0)().await
    }
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenProvider(..)")
    }
}

/// Everything a [`Client`](crate::Client) needs. Build with
/// [`ClientConfig::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://` or `wss://` URL of the hub's WebSocket endpoint.
    pub url: String,
    /// Bearer token source (none: connect without credentials).
    pub token: Option<TokenProvider>,
    /// Namespace used by the reporter when none is given (default `"default"`).
    pub namespace: String,
    /// Reconnect and liveness policy.
    pub machine: MachineConfig,
    /// Outgoing queue limits and progress throttle.
    pub outbox: OutboxConfig,
    /// Before the first connection, wait until `GET /ready` answers 200.
    pub wait_for_ready: bool,
    /// Extra trusted root certificates (PEM), e.g. a private CA, for `wss://`.
    pub tls_root_pem: Option<Vec<u8>>,
    /// Capacity of each subscription's update channel (default 10,000).
    /// Past it updates wait in an overflow backlog of at most
    /// [`OVERFLOW_FACTOR`](crate::backlog::OVERFLOW_FACTOR) times as many,
    /// where a newer progress update of an operation replaces its older
    /// pending one; what is skipped is reported as
    /// [`Update::Lagged`](crate::Update::Lagged). Lifecycle events are
    /// dropped only past that bound.
    pub event_buffer: usize,
    /// Largest message sent to the hub (default 64 KiB, the hub's default
    /// `--max-message-size`; set it to the hub's own). A single update
    /// larger than this is refused; merged updates and terminal messages
    /// are kept within it (see [`crate::outbox`]), and a hub answering
    /// `MESSAGE_TOO_LARGE` with a lower `data.limit` lowers it.
    pub max_message_bytes: usize,
    /// Largest WebSocket frame or message the client accepts from the hub
    /// (default [`DEFAULT_MAX_INCOMING_BYTES`], 256 MiB: room for the
    /// snapshot of a namespace at the hub's operation limits). A larger one
    /// ends the connection and is reported as
    /// [`Update::MessageTooLarge`](crate::Update::MessageTooLarge).
    pub max_incoming_bytes: usize,
    /// How long a client whose handles were all dropped keeps trying to
    /// deliver what is queued (default 10 s). A client running its own
    /// thread (created outside a tokio runtime) makes that last drop wait
    /// for it, at most this long (see [`Client`](crate::Client)); one in a
    /// runtime lingers in the background only while the runtime lives.
    pub linger: Duration,
    /// Seed of the backoff jitter (default: random).
    pub backoff_seed: Option<u64>,
}

impl ClientConfig {
    /// Defaults for the hub at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            token: None,
            namespace: "default".to_owned(),
            machine: MachineConfig::default(),
            outbox: OutboxConfig::default(),
            wait_for_ready: false,
            tls_root_pem: None,
            event_buffer: 10_000,
            max_message_bytes: 64 * 1024,
            max_incoming_bytes: DEFAULT_MAX_INCOMING_BYTES,
            linger: Duration::from_secs(10),
            backoff_seed: None,
        }
    }

    /// A fixed bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(TokenProvider::fixed(token));
        self
    }

    /// A token source consulted on every (re)connect, and again before a
    /// JWT's `exp` to renew it on the live connection with `refresh` (see
    /// [`crate::renew`]).
    pub fn token_provider(mut self, provider: TokenProvider) -> Self {
        self.token = Some(provider);
        self
    }

    /// Default namespace of reported operations.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Wait for `GET /ready` before the first connection.
    pub fn wait_for_ready(mut self, yes: bool) -> Self {
        self.wait_for_ready = yes;
        self
    }

    /// The hub's heartbeat interval as far as the client knows it (default
    /// 30 s): silence for twice this long is always death; once two
    /// heartbeats arrived on a connection, the interval learned from them
    /// (never above this one) decides sooner. A hub that announces its
    /// interval in `system_status` (`data.heartbeat_interval_ms`, sent to
    /// viewers) replaces this one on that connection.
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.machine.heartbeat_interval_ms = millis(d);
        self
    }

    /// Connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.machine.connect_timeout_ms = millis(d);
        self
    }

    /// Uptime after which the retry counter resets.
    pub fn min_uptime(mut self, d: Duration) -> Self {
        self.machine.min_uptime_ms = millis(d);
        self
    }

    /// Give up after this many consecutive retries (default: never).
    pub fn max_retries(mut self, n: Option<u32>) -> Self {
        self.machine.max_retries = n;
        self
    }

    /// Backoff window: first window and cap.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.machine.backoff.base_ms = millis(base);
        self.machine.backoff.cap_ms = millis(cap);
        self
    }

    /// Minimum time between two progress sends of one operation.
    pub fn progress_interval(mut self, d: Duration) -> Self {
        self.outbox.progress_interval_ms = millis(d);
        self
    }

    /// Lifecycle messages that may wait for an ack before new operations
    /// are refused with `QueueFull` (the end of an operation already
    /// queued is always taken).
    pub fn max_queued_lifecycle(mut self, n: usize) -> Self {
        self.outbox.max_lifecycle = n;
        self
    }

    /// Bytes of queued operations (encoded starts and ends) past which new
    /// operations are refused with `QueueFull` (default 64 MiB).
    pub fn max_queued_bytes(mut self, n: usize) -> Self {
        self.outbox.max_bytes = n;
        self
    }

    /// Trust these PEM root certificates too.
    pub fn tls_root_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_pem = Some(pem.into());
        self
    }

    /// Delivery grace period after every handle was dropped.
    pub fn linger(mut self, d: Duration) -> Self {
        self.linger = d;
        self
    }

    /// Fix the backoff jitter seed (tests).
    pub fn backoff_seed(mut self, seed: u64) -> Self {
        self.backoff_seed = Some(seed);
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new(DEFAULT_URL)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
