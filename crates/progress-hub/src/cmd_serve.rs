//! `progress-hub serve`: flags → configuration → a running hub until
//! SIGTERM/SIGINT (graceful) ; SIGHUP reloads keys.

use clap::Args;
use figment::value::{Dict, Value};
use hub_server::{Config, FlagValues};
use std::path::PathBuf;

/// Flags of `serve` (see PROTOCOL.md's command-line contract). Every flag
/// also reads `PROGRESS_HUB_<NAME>` and the TOML file given by `--config`
/// (else by `PROGRESS_HUB_CONFIG`, which [`Config::load`] reads).
///
/// Values may start with `-` (`--history-size -5`), so that the setting's
/// own check refuses them with a message naming the key and its source,
/// rather than the argument parser with a generic one.
#[derive(Args, Debug, Default)]
#[allow(missing_docs)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8765; port 0 picks a free one).
    #[arg(long, allow_hyphen_values = true)]
    listen: Option<String>,
    /// Directory of the embedded store (default ./progress-hub-data).
    #[arg(long, allow_hyphen_values = true)]
    data_dir: Option<String>,
    /// Keep nothing on disk (new epoch every start).
    #[arg(long)]
    memory: bool,
    /// Heartbeat interval (default 30s).
    #[arg(long, allow_hyphen_values = true)]
    heartbeat_interval: Option<String>,
    /// Close clients silent this long, and drop ones that read nothing for
    /// this long, but at least 30s (default 90s).
    #[arg(long, allow_hyphen_values = true)]
    idle_timeout: Option<String>,
    /// Mark operations stalled after this much producer silence (default 60s).
    #[arg(long, allow_hyphen_values = true)]
    stall_timeout: Option<String>,
    /// Events kept per namespace for replay (default 100000).
    #[arg(long, allow_hyphen_values = true)]
    history_size: Option<String>,
    /// Bytes of retained history, hub-wide, past which the namespaces
    /// holding the most give up their oldest events, even below
    /// --history-size (default 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_history_bytes: Option<String>,
    /// system_status interval (default 5s).
    #[arg(long, allow_hyphen_values = true)]
    status_interval: Option<String>,
    /// Resume further back than this many events gets a snapshot (default 10000).
    #[arg(long, allow_hyphen_values = true)]
    replay_limit: Option<String>,
    /// How long finished operations are kept (default 1h).
    #[arg(long, allow_hyphen_values = true)]
    finished_retention: Option<String>,
    /// Fail operations whose producer is silent this long as abandoned
    /// (default 24h; 0: never).
    #[arg(long, allow_hyphen_values = true)]
    abandon_timeout: Option<String>,
    /// Largest client message in bytes (default 65536).
    #[arg(long, allow_hyphen_values = true)]
    max_message_size: Option<String>,
    /// HS256 secret for JWTs.
    #[arg(long, allow_hyphen_values = true)]
    jwt_secret: Option<String>,
    /// Public key file (PEM) for JWTs: RSA (RS256), P-256 (ES256), P-384 (ES384) or Ed25519 (EdDSA).
    #[arg(long, allow_hyphen_values = true)]
    jwt_public_key: Option<String>,
    /// JWKS file.
    #[arg(long, allow_hyphen_values = true)]
    jwks_file: Option<String>,
    /// Tokenless reads act as a viewer of every namespace.
    #[arg(long)]
    allow_anonymous_read: bool,
    /// Extra browser origins allowed (comma-separated).
    #[arg(long, allow_hyphen_values = true)]
    allowed_origins: Option<String>,
    /// TLS certificate (PEM).
    #[arg(long, allow_hyphen_values = true)]
    tls_cert: Option<String>,
    /// TLS key (PEM).
    #[arg(long, allow_hyphen_values = true)]
    tls_key: Option<String>,
    /// Allow an open hub on a non-loopback address.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Bytes queued for a viewer after which progress is conflated (viewers
    /// that subscribed with conflate: true; default 65536).
    #[arg(long, allow_hyphen_values = true)]
    conflate_after_bytes: Option<String>,
    /// Bytes queued for a viewer after which it is dropped as slow (default
    /// 1048576).
    #[arg(long, allow_hyphen_values = true)]
    slow_client_bytes: Option<String>,
    /// Bytes of snapshots and HTTP operation listings not yet read by
    /// their clients, hub-wide, past which subscribes needing one and
    /// listings are refused (default 512 MiB; 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_snapshot_bytes: Option<String>,
    /// Bytes of HTTP request bodies being received, hub-wide, past which
    /// a POST gets 429 before its body is read (default 64 MiB; 0:
    /// unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_body_bytes_in_flight: Option<String>,
    /// Most WebSocket and SSE connections (default 100000).
    #[arg(long, allow_hyphen_values = true)]
    max_connections: Option<String>,
    /// Most operations per namespace (default 100000).
    #[arg(long, allow_hyphen_values = true)]
    max_operations_per_namespace: Option<String>,
    /// Most operations in all namespaces together (default 1000000; 0:
    /// unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_operations: Option<String>,
    /// Most namespaces; idle ones are forgotten to make room (default 10000).
    #[arg(long, allow_hyphen_values = true)]
    max_namespaces: Option<String>,
    /// WebSocket/SSE handshakes per IP per second (default 20; 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    handshakes_per_ip_per_second: Option<String>,
    /// Messages per connection per second (default 500; 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_messages_per_second: Option<String>,
    /// Producer messages per second into the whole hub (default 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_ingest_per_second: Option<String>,
    /// Progress updates per operation per second broadcast live; the rest are
    /// coalesced to the latest (default 0: all).
    #[arg(long, allow_hyphen_values = true)]
    max_updates_per_operation_per_second: Option<String>,
    /// Connections per token subject (default 1000; 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_connections_per_user: Option<String>,
    /// Connections without a token per IP (default 100; 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    max_anonymous_connections_per_ip: Option<String>,
    /// Close a WebSocket that sends nothing this long after the upgrade (default 0s: off).
    #[arg(long, allow_hyphen_values = true)]
    first_message_timeout: Option<String>,
    /// Longest TLS handshake / first request headers (default 10s).
    #[arg(long, allow_hyphen_values = true)]
    handshake_timeout: Option<String>,
    /// Peers exempt from per-IP and per-connection rate limits (CIDR list;
    /// default 127.0.0.0/8,::1; empty: none).
    #[arg(long, allow_hyphen_values = true)]
    rate_limit_exempt: Option<String>,
    /// On SIGTERM, answer /ready with 503 this long before closing connections (default 0s).
    #[arg(long, allow_hyphen_values = true)]
    shutdown_grace: Option<String>,
    /// Log format: text or json (default text).
    #[arg(long, allow_hyphen_values = true)]
    log_format: Option<String>,
    /// Log level (default info; RUST_LOG overrides).
    #[arg(long, allow_hyphen_values = true)]
    log_level: Option<String>,
    /// TOML configuration file with the same keys in snake_case (also
    /// PROGRESS_HUB_CONFIG; this flag wins).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ServeArgs {
    /// The flags that were given, as configuration values.
    fn flag_values(&self) -> FlagValues {
        let mut d = Dict::new();
        let mut s = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                // Numbers given as flags are numbers; figment parses strings
                // like "10" into integers where the field wants one.
                d.insert(k.into(), Value::from(v.clone()));
            }
        };
        s("listen", &self.listen);
        s("data_dir", &self.data_dir);
        s("heartbeat_interval", &self.heartbeat_interval);
        s("idle_timeout", &self.idle_timeout);
        s("stall_timeout", &self.stall_timeout);
        s("history_size", &self.history_size);
        s("max_history_bytes", &self.max_history_bytes);
        s("status_interval", &self.status_interval);
        s("replay_limit", &self.replay_limit);
        s("finished_retention", &self.finished_retention);
        s("abandon_timeout", &self.abandon_timeout);
        s("max_message_size", &self.max_message_size);
        s("jwt_secret", &self.jwt_secret);
        s("jwt_public_key", &self.jwt_public_key);
        s("jwks_file", &self.jwks_file);
        s("allowed_origins", &self.allowed_origins);
        s("tls_cert", &self.tls_cert);
        s("tls_key", &self.tls_key);
        s("conflate_after_bytes", &self.conflate_after_bytes);
        s("slow_client_bytes", &self.slow_client_bytes);
        s("max_snapshot_bytes", &self.max_snapshot_bytes);
        s("max_body_bytes_in_flight", &self.max_body_bytes_in_flight);
        s("max_connections", &self.max_connections);
        s(
            "max_operations_per_namespace",
            &self.max_operations_per_namespace,
        );
        s("max_operations", &self.max_operations);
        s("max_namespaces", &self.max_namespaces);
        s(
            "handshakes_per_ip_per_second",
            &self.handshakes_per_ip_per_second,
        );
        s("max_messages_per_second", &self.max_messages_per_second);
        s("max_ingest_per_second", &self.max_ingest_per_second);
        s(
            "max_updates_per_operation_per_second",
            &self.max_updates_per_operation_per_second,
        );
        s("max_connections_per_user", &self.max_connections_per_user);
        s(
            "max_anonymous_connections_per_ip",
            &self.max_anonymous_connections_per_ip,
        );
        s("first_message_timeout", &self.first_message_timeout);
        s("handshake_timeout", &self.handshake_timeout);
        s("rate_limit_exempt", &self.rate_limit_exempt);
        s("shutdown_grace", &self.shutdown_grace);
        s("log_format", &self.log_format);
        s("log_level", &self.log_level);
        for (k, on) in [
            ("memory", self.memory),
            ("allow_anonymous_read", self.allow_anonymous_read),
            ("insecure_no_auth", self.insecure_no_auth),
        ] {
            if on {
                d.insert(k.into(), Value::from(true));
            }
        }
        FlagValues(d)
    }
}

/// Logs go to stderr: human-readable text (coloured only on a terminal) or
/// one JSON object per line with `--log-format json`, where each line also
/// carries its spans' fields (`request_id`, connection `id`, `remote`,
/// `sub`, ...). Level from `RUST_LOG`, else `--log-level`.
///
/// Lines are handed to a writer thread through a bounded queue
/// ([`LOG_QUEUE_LINES`]) and dropped when it is full: a stderr nobody reads
/// (a pipe a supervisor or test harness opened and never drains) must
/// never stop the hub, which a blocking write would once the pipe's 64 KiB
/// fill. The returned guard flushes what is queued when dropped.
fn init_logs(cfg: &Config) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::EnvFilter;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true)
        .thread_name("progress-hub-log")
        .finish(std::io::stderr());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if cfg.log_format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish()
            .with(no_message_contents())
            .init();
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(no_message_contents())
            .init();
    }
    guard
}

/// Drops the WebSocket library's trace lines, whatever the level asked
/// for: they print every message received in full, a `refresh`'s token
/// included, and tokens are never logged (docs/SECURITY.md).
fn no_message_contents(
) -> tracing_subscriber::filter::FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    tracing_subscriber::filter::filter_fn(|m| {
        !(*m.level() == tracing::Level::TRACE && m.target().contains("tungstenite"))
    })
}

/// Log lines waiting for the writer thread before new ones are dropped.
const LOG_QUEUE_LINES: usize = 10_000;

/// Runs `serve`; returns the exit code.
pub fn main(args: ServeArgs) -> i32 {
    let cfg = match Config::load(args.config.as_deref(), args.flag_values()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("progress-hub: {e}");
            return 2;
        }
    };
    let _log_guard = init_logs(&cfg);
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("progress-hub: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(serve(cfg))
}

/// Starts the hub, prints `listening on ADDR`, and runs until a signal.
///
/// The signal handlers are installed before the hub starts, so a SIGTERM
/// sent the moment the `listening on` line appears is a graceful shutdown
/// (exit 0), never the default action that kills the process.
pub async fn serve(cfg: Config) -> i32 {
    let signals = Signals::install();
    let running = match hub_server::start(cfg).await {
        Ok(r) => r,
        Err(hub_server::StartError::Config(e)) => {
            eprintln!("progress-hub: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("progress-hub: {e}");
            return 1;
        }
    };
    println!("listening on {}", running.addr);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %running.addr, "listening");
    signals.wait(&running).await;
    tracing::info!("shutting down");
    running.wait().await;
    0
}

/// SIGTERM and SIGINT (shut down) and SIGHUP (reload key and certificate
/// files), registered with the runtime.
struct Signals(
    Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
);

impl Signals {
    /// Registers the handlers; from here on these signals no longer end
    /// the process by their default action.
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Signals(Some((term, int, hup))),
            _ => Signals(None),
        }
    }

    /// Waits for a shutdown signal, reloading on each SIGHUP, then starts
    /// the hub's graceful shutdown.
    async fn wait(self, running: &hub_server::Running) {
        let Some((mut term, mut int, mut hup)) = self.0 else {
            let _ = tokio::signal::ctrl_c().await;
            running.shutdown();
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => running.reload(),
            }
        }
        running.shutdown();
    }
}
