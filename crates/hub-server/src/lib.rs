//! progress-hub server: the HTTP, WebSocket and SSE front end, the engine
//! task that wires the core to the store, and the background tasks.
//!
//! Architecture invariant: business rules live in `hub-core`; this crate
//! moves bytes, enforces transport limits and authentication, and decides
//! nothing about operations itself.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod direct;
pub mod door;
pub mod engine;
pub mod frame;
pub mod host;
pub mod http_api;
pub mod json_list;
pub mod keywatch;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod open_files;
pub mod outbox;
pub mod params;
pub mod process;
pub mod registry;
pub mod request_log;
pub mod serve;
pub mod sharded;
pub mod sock;
pub mod sse;
pub mod status;
pub mod tasks;
pub mod tls;
pub mod ws;
pub mod ws_read_error;

pub use config::{Config, ConfigError, FlagValues};

use app::AppState;
use auth::Authn;
use engine::{Command, Engine, EngineConfig};
use hub_core::CoreConfig;
use hub_proto::{CloseCode, ErrorCode, ProtoError};
use hub_store::{EventStore, MemoryStore, RedbStore, StoreConfig};
use registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration problem (exit code 2).
    #[error("{0}")]
    Config(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] hub_store::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A running hub.
pub struct Running {
    /// The bound address (port resolved).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: oneshot::Receiver<()>,
    state: Arc<AppState>,
    certs: Option<Arc<tls::Certs>>,
}

impl Running {
    /// Starts graceful shutdown (same as SIGTERM).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Re-reads key files and the TLS certificate (same as SIGHUP).
    pub fn reload(&self) {
        self.state.authn.reload();
        if let Some(c) = &self.certs {
            c.reload();
        }
    }

    /// Waits until the hub has stopped.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

fn build_authn(cfg: &Config) -> Result<Authn, StartError> {
    use hub_auth::{KeySource, Verifier};
    let (key, source) = if let Some(s) = &cfg.jwt_secret {
        ("jwt_secret", KeySource::HsSecret(s.clone()))
    } else if let Some(p) = &cfg.jwt_public_key {
        ("jwt_public_key", KeySource::PublicKeyPem(p.clone()))
    } else if let Some(p) = &cfg.jwks_file {
        ("jwks_file", KeySource::JwksFile(p.clone()))
    } else {
        return Ok(Authn::Open);
    };
    let verifier = Verifier::new(source).map_err(|e| StartError::Config(cfg.blame(key, e)))?;
    Ok(Authn::Jwt {
        verifier,
        anonymous_read: cfg.allow_anonymous_read,
    })
}

/// Starts the hub: opens the store, binds the address, serves until
/// [`Running::shutdown`].
pub async fn start(mut cfg: Config) -> Result<Running, StartError> {
    if let Some(limit) = open_files::raise() {
        if let Some(fitted) = open_files::fitted(cfg.max_connections, limit) {
            tracing::warn!(
                open_files = limit,
                configured = cfg.max_connections,
                max_connections = fitted,
                "the open-files limit leaves room for only {fitted} connections: max_connections is lowered to that, so the next one is answered 429 instead of hanging; raise the limit (LimitNOFILE, ulimit -n) above max_connections + {}",
                open_files::RESERVE
            );
            cfg.max_connections = fitted;
        }
    }
    let authn = build_authn(&cfg)?;
    let certs = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => {
            Some(tls::Certs::new(c, k).map_err(|(key, e)| StartError::Config(cfg.blame(key, e)))?)
        }
        _ => None,
    };
    let store_cfg = StoreConfig {
        history_size: cfg.history_size,
    };
    let store: Arc<dyn EventStore> = if cfg.memory {
        Arc::new(MemoryStore::new(store_cfg))
    } else {
        // A directory that cannot hold the store is a bad setting (exit 2).
        Arc::new(
            RedbStore::open(&cfg.data_dir, store_cfg)
                .map_err(|e| StartError::Config(cfg.blame("data_dir", e)))?,
        )
    };
    let registry = Arc::new(Registry::default());
    let metrics = Arc::new(metrics::Metrics::new());
    let engine_cfg = EngineConfig {
        core: CoreConfig {
            stall_timeout_ms: cfg.stall_timeout.as_millis() as u64,
            finished_retention_ms: cfg.finished_retention.as_millis() as u64,
            abandon_timeout_ms: cfg.abandon_timeout.as_millis() as u64,
            max_operations_per_namespace: cfg.max_operations_per_namespace,
            ..CoreConfig::default()
        },
        history_size: cfg.history_size,
        max_history_bytes: cfg.max_history_bytes,
        replay_limit: cfg.replay_limit,
        max_namespaces: cfg.max_namespaces,
        max_operations: cfg.max_operations,
        max_subscriptions_per_connection: 128,
        max_filter_bytes_per_connection: 64 * 1024,
        max_snapshot_bytes: cfg.max_snapshot_bytes,
        max_updates_per_operation_per_second: cfg.max_updates_per_operation_per_second,
    };
    let (engine, epoch, engine_task) =
        Engine::start(store.clone(), engine_cfg, registry.clone(), metrics.clone()).map_err(
            // The store opened but cannot be read back (a damaged file):
            // the data directory is unusable as it is, like one that cannot
            // be opened (exit 2, naming it).
            |e| {
                if cfg.memory {
                    StartError::Store(e)
                } else {
                    StartError::Config(cfg.blame("data_dir", e))
                }
            },
        )?;
    let addr = cfg.listen_addr().map_err(StartError::Config)?;
    // An address that cannot be bound (in use, not this machine's) is a
    // setting that cannot be used: exit 2 naming `listen` and its source.
    let listener = bind(addr).map_err(|e| {
        StartError::Config(cfg.blame("listen", format!("cannot listen on {}: {e}", cfg.listen)))
    })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind {
        addr: cfg.listen.clone(),
        source,
    })?;
    let limits = limits::Limits::new(&cfg, metrics.clone());
    // DNS rebinding: an open hub on loopback answers only the names a
    // page of the user's own machine or of a listed origin uses.
    let hosts = (matches!(authn, Authn::Open) && local.ip().is_loopback())
        .then(|| host::allowed_hosts(&cfg.origins()));
    let state = Arc::new(AppState {
        limits: limits.clone(),
        hosts,
        origins: cfg.origins(),
        cfg,
        engine: engine.clone(),
        registry: registry.clone(),
        metrics,
        authn,
        store,
        epoch,
        stopping: Default::default(),
        shutting_down: Default::default(),
        started_at: clock::now_ms(),
        status: Default::default(),
    });
    let background = [
        tokio::spawn(tasks::heartbeats(state.clone())),
        tokio::spawn(tasks::sweeps(state.clone())),
        tokio::spawn(tasks::status(state.clone())),
        tokio::spawn(limits::housekeeping(limits)),
        tokio::spawn(keywatch::watch(state.clone())),
    ];
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = oneshot::channel();
    let app = app::router(state.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        request_log::layer,
    ));
    let st = state.clone();
    let (tls_listener, plain_listener) = match &certs {
        Some(c) => (
            Some(
                tls::TlsListener::new(
                    listener,
                    c.clone(),
                    st.cfg.handshake_timeout,
                    st.cfg.write_stall(),
                )
                .map_err(|source| StartError::Bind {
                    addr: st.cfg.listen.clone(),
                    source,
                })?,
            ),
            None,
        ),
        None => (
            None,
            Some(sock::PlainListener::new(listener, st.cfg.write_stall())),
        ),
    };
    tokio::spawn(async move {
        // HTTP keeps answering while the hub drains (`/ready` says 503, new
        // clients get SERVER_SHUTDOWN) and stops once connections are closed.
        let (http_stop, stop_http) = watch::channel(false);
        let http = match (tls_listener, plain_listener) {
            (Some(l), _) => serve::spawn(l, app, stop_http, &st.cfg),
            (None, Some(l)) => serve::spawn(l, app, stop_http, &st.cfg),
            (None, None) => unreachable!("one listener exists"),
        };
        let _ = stop_rx.wait_for(|s| *s).await;
        drain(&st).await;
        let _ = http_stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
        for t in background {
            t.abort();
        }
        let (tx, rx) = oneshot::channel();
        if st.engine.send(Command::Shutdown(tx)).await {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
        let _ = engine_task.await;
        let _ = done_tx.send(());
    });
    Ok(Running {
        addr: local,
        stop: stop_tx,
        done: done_rx,
        state,
        certs,
    })
}

/// What the handlers know of a connection: the peer address, and for plain
/// TCP the socket the fan-out may write to directly (weak: the connection
/// owns it).
#[derive(Clone, Debug)]
pub struct Remote(pub SocketAddr, pub Option<std::sync::Weak<sock::Wire>>);

/// Binds the listening socket with `TCP_NODELAY`, which accepted sockets
/// inherit: every batched frame leaves at once instead of waiting for the
/// peer's delayed ACK (Nagle), which put a 40 ms step in tail latency.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Tells every connection the hub is going away (1012) and waits, bounded,
/// for them to flush and close.
async fn drain(state: &Arc<AppState>) {
    state.status.note_shutdown();
    state.stopping.store(true, Ordering::Relaxed);
    let grace = state.cfg.shutdown_grace;
    if !grace.is_zero() {
        // Load balancers see `/ready` turn 503 and stop sending new
        // clients while the hub still serves everyone, new ones included.
        tracing::info!(grace = ?grace, "not ready; closing connections after the grace period");
        tokio::time::sleep(grace).await;
    }
    state.shutting_down.store(true, Ordering::Relaxed);
    // Producers get the acks of everything the hub accepted before the
    // connections close (later messages are refused with SERVER_SHUTDOWN).
    let (tx, rx) = oneshot::channel();
    if state.engine.send(Command::Drain(tx)).await {
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
    }
    let now = clock::now_ms();
    for c in state.registry.all() {
        let e = ProtoError::new(
            ErrorCode::ServerShutdown,
            "the hub is shutting down; reconnect shortly",
        );
        c.close(CloseCode::ServiceRestart, e, now);
    }
    // Until every socket is gone: a closed connection leaves the registry
    // at once but keeps its socket up to a second for the client's close
    // frame, and exiting earlier would reset it, destroying the acks, the
    // error and the close frame a client that was still sending had not
    // read yet.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while (!state.registry.is_empty() || state.registry.sockets_open() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
