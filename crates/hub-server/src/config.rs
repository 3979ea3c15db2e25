//! Server configuration: one struct holding every setting with its default,
//! read from flags, `PROGRESS_HUB_*` environment variables and a TOML file
//! (precedence: flag > environment > file > default). The file is the one
//! `--config` names, or else the one `PROGRESS_HUB_CONFIG` names.
//!
//! A bad value or an unknown key is refused with a message naming the key
//! and where it came from; so is a value that parses but makes no sense
//! (a zero interval, an address that is not one, a TLS certificate without
//! its key), through the same formatter.

pub(crate) mod lenient;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map as FMap};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every setting of `progress-hub serve`. Field names are the TOML keys;
/// flags are the same names in kebab-case; variables `PROGRESS_HUB_<UPPER_SNAKE>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: String,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Keep nothing on disk (a new epoch every start).
    #[serde(deserialize_with = "lenient::bool")]
    pub memory: bool,
    /// Interval of `heartbeat` messages and WebSocket pings.
    #[serde(with = "lenient::duration")]
    pub heartbeat_interval: Duration,
    /// Silence from a client after which it is closed (1001); also how long
    /// a write may wait for a client that reads nothing (it is then dropped
    /// as a slow client), but never less than 30 s for that.
    #[serde(with = "lenient::duration")]
    pub idle_timeout: Duration,
    /// Silence from a producer after which its operation is `stalled`.
    #[serde(with = "lenient::duration")]
    pub stall_timeout: Duration,
    /// At least the newest N events per namespace are kept for replay.
    #[serde(deserialize_with = "lenient::u64")]
    pub history_size: u64,
    /// Bytes the retained history of all namespaces together may hold
    /// (each event counted as its encoding plus 64 bytes). Past it, the
    /// namespaces holding the most give up their oldest events, down to
    /// a common level, until all hold 90% of it; each keeps at least its
    /// newest event. 0 (the default): no bound, so `history_size` events
    /// per namespace are always kept, as the protocol promises; set it to
    /// bound memory at the cost of that promise when the budget is full.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_history_bytes: usize,
    /// Interval of `system_status` to subscribed connections.
    #[serde(with = "lenient::duration")]
    pub status_interval: Duration,
    /// Resuming further back than this many events gets a snapshot.
    #[serde(deserialize_with = "lenient::u64")]
    pub replay_limit: u64,
    /// How long finished operations stay in snapshots and history.
    #[serde(with = "lenient::duration")]
    pub finished_retention: Duration,
    /// Silence from a producer after which the hub fails its operation as
    /// abandoned, freeing its place (0: never).
    #[serde(with = "lenient::duration")]
    pub abandon_timeout: Duration,
    /// Largest message a client may send, in bytes.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_message_size: usize,
    /// HS256 secret for JWTs.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub jwt_secret: Option<String>,
    /// Public key (PEM) for JWTs: RSA (RS256), P-256 (ES256), P-384 (ES384) or Ed25519 (EdDSA).
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file for JWTs (keys by `kid`).
    pub jwks_file: Option<PathBuf>,
    /// Tokenless WebSocket, SSE and HTTP GET act as a viewer of every namespace.
    #[serde(deserialize_with = "lenient::bool")]
    pub allow_anonymous_read: bool,
    /// Browser origins allowed besides the hub's own (comma-separated, or
    /// an array in TOML): each `scheme://host[:port]` with no path, query or
    /// fragment (a lone trailing `/` is dropped), `null`, or `*` for any;
    /// anything else is refused at start. An open hub on a
    /// loopback address also answers requests whose `Host` is one of their
    /// hosts (besides IP addresses and `localhost`).
    #[serde(deserialize_with = "lenient::opt_list")]
    pub allowed_origins: Option<String>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Allow an open hub (no auth) on a non-loopback address, which then
    /// answers requests for any `Host` (on loopback an open hub answers only
    /// IP addresses, `localhost` and the hosts of `allowed_origins`).
    #[serde(deserialize_with = "lenient::bool")]
    pub insecure_no_auth: bool,
    /// Bytes queued for a viewer after which its progress updates are
    /// conflated, if it subscribed with `conflate: true`.
    #[serde(deserialize_with = "lenient::usize")]
    pub conflate_after_bytes: usize,
    /// Bytes queued for a viewer after which it is dropped as `SLOW_CLIENT`.
    #[serde(deserialize_with = "lenient::usize")]
    pub slow_client_bytes: usize,
    /// Bytes of snapshots (`operation_list`) made for viewers that have not
    /// read them yet, hub-wide, past which a subscribe that needs one gets
    /// `RATE_LIMITED` (`reason: "snapshots"`, `retry_after_ms`). A snapshot
    /// is one message of a whole namespace and does not count against
    /// `slow_client_bytes`; viewers that read let go of theirs at once.
    /// HTTP operation listings (`GET .../operations`) count the same way
    /// until they are sent, and past it get HTTP 429 with `Retry-After`.
    /// One snapshot or listing is always made when none waits, however
    /// big; 0: no bound.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_snapshot_bytes: usize,
    /// Bytes of HTTP request bodies being received, hub-wide: each `POST`
    /// of an event reserves its `Content-Length` (`max_message_size` when
    /// it has none) before its body is read and gives it back once
    /// answered; one that does not fit gets HTTP 429 `RATE_LIMITED`
    /// (`reason: "bodies"`) with `Retry-After`. Bounds the memory of
    /// bodies sent slowly or never finished (each may take
    /// `handshake_timeout`). A body is always admitted when none is being
    /// received, however big; 0: no bound.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_body_bytes_in_flight: usize,
    /// Most WebSocket and SSE connections the hub holds (more get HTTP 429
    /// `RATE_LIMITED`); connections being served as plain HTTP are capped
    /// at twice this plus 16 (past that the hub stops accepting until one
    /// ends).
    #[serde(deserialize_with = "lenient::usize")]
    pub max_connections: usize,
    /// Most operations one namespace holds.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_operations_per_namespace: usize,
    /// Most operations (live and finished ones still retained) all
    /// namespaces together hold; a start past it gets `RATE_LIMITED`
    /// (`reason: "operations"`) until finished ones leave after
    /// `finished_retention`. 0: no bound.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_operations: usize,
    /// Most namespaces the hub holds (one with no operation and no viewer is forgotten to make room).
    #[serde(deserialize_with = "lenient::usize")]
    pub max_namespaces: usize,
    /// Most WebSocket/SSE handshakes one IP address may start per second
    /// (burst: the same number); more get HTTP 429 `RATE_LIMITED` with
    /// `Retry-After` before the upgrade. 0: unlimited.
    #[serde(deserialize_with = "lenient::u32")]
    pub handshakes_per_ip_per_second: u32,
    /// Messages one connection may send per second (token bucket, burst: the
    /// same number); more get `RATE_LIMITED` with `data.retry_after_ms`, and
    /// the connection stays (sustained excess is abuse: close 1008). The
    /// HTTP API's events and cancels get the same rate per peer address
    /// (429 with `Retry-After` past it). 0: unlimited.
    #[serde(deserialize_with = "lenient::u32")]
    pub max_messages_per_second: u32,
    /// Producer messages the whole hub takes in per second (WebSocket and
    /// HTTP together); more get `RATE_LIMITED` (HTTP 429). 0: unlimited.
    #[serde(deserialize_with = "lenient::u32")]
    pub max_ingest_per_second: u32,
    /// Progress updates of one operation broadcast to live viewers per
    /// second; beyond it updates are still acked, stored and replayed, but
    /// live viewers get only the latest one per window (they skip offsets).
    /// Lifecycle events are never skipped. 0: unlimited (the default).
    #[serde(deserialize_with = "lenient::u32")]
    pub max_updates_per_operation_per_second: u32,
    /// Most connections (WebSocket and SSE) one token subject may hold;
    /// more get HTTP 429 `RATE_LIMITED`. 0: unlimited.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_connections_per_user: usize,
    /// Most unauthenticated connections (anonymous readers, or everyone on
    /// an open hub) one IP address may hold; more get HTTP 429. 0: unlimited.
    #[serde(deserialize_with = "lenient::usize")]
    pub max_anonymous_connections_per_ip: usize,
    /// A WebSocket that sends no frame at all (not even the pong to the
    /// ping the hub sends at the upgrade) within this long is closed with
    /// `IDLE_TIMEOUT` (1001). 0s: off (only `idle_timeout` applies).
    #[serde(with = "lenient::duration")]
    pub first_message_timeout: Duration,
    /// Longest a TLS handshake, and any request's HTTP headers, may take
    /// before the hub drops the TCP connection (slowloris); also how long
    /// a kept-alive HTTP connection may wait idle for its next request, and
    /// an event's body may take to arrive (else 408 `IDLE_TIMEOUT`).
    #[serde(with = "lenient::duration")]
    pub handshake_timeout: Duration,
    /// Peers exempt from the per-IP and per-connection rate limits
    /// (handshakes, messages, anonymous connections per IP): comma-separated
    /// addresses or CIDR blocks. Default: loopback (a same-host proxy or
    /// local tooling, whose clients all share that address). Empty: none.
    #[serde(deserialize_with = "lenient::list")]
    pub rate_limit_exempt: String,
    /// On SIGTERM, how long `/ready` answers 503 while the hub keeps
    /// serving everyone (new clients included), so load balancers stop
    /// sending new clients before the connections are closed with
    /// `SERVER_SHUTDOWN` (1012).
    #[serde(with = "lenient::duration")]
    pub shutdown_grace: Duration,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Log level filter (overridden by `RUST_LOG`).
    pub log_level: String,
    /// Where each key that was set came from (`flag --listen`,
    /// `environment variable PROGRESS_HUB_LISTEN`, `config file F`), so
    /// that errors found when a value is used name it too.
    #[serde(skip)]
    pub sources: std::collections::BTreeMap<String, String>,
    /// Things worth a warning once logging is up (unknown
    /// `PROGRESS_HUB_*` variables, key settings overridden by another source).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8765".into(),
            data_dir: PathBuf::from("./progress-hub-data"),
            memory: false,
            heartbeat_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            stall_timeout: Duration::from_secs(60),
            history_size: 100_000,
            max_history_bytes: 0,
            status_interval: Duration::from_secs(5),
            replay_limit: 10_000,
            finished_retention: Duration::from_secs(3600),
            abandon_timeout: Duration::from_secs(86_400),
            max_message_size: 65_536,
            jwt_secret: None,
            jwt_public_key: None,
            jwks_file: None,
            allow_anonymous_read: false,
            allowed_origins: None,
            tls_cert: None,
            tls_key: None,
            insecure_no_auth: false,
            conflate_after_bytes: 64 * 1024,
            slow_client_bytes: 1024 * 1024,
            max_snapshot_bytes: 512 << 20,
            max_body_bytes_in_flight: 64 << 20,
            max_connections: 100_000,
            max_operations_per_namespace: 100_000,
            max_operations: 1_000_000,
            max_namespaces: 10_000,
            handshakes_per_ip_per_second: 20,
            max_messages_per_second: 500,
            max_ingest_per_second: 0,
            max_updates_per_operation_per_second: 0,
            max_connections_per_user: 1000,
            max_anonymous_connections_per_ip: 100,
            first_message_timeout: Duration::ZERO,
            handshake_timeout: Duration::from_secs(10),
            rate_limit_exempt: "127.0.0.0/8,::1".into(),
            shutdown_grace: Duration::ZERO,
            log_format: "text".into(),
            log_level: "info".into(),
            sources: Default::default(),
            warnings: Vec::new(),
        }
    }
}

/// Every key, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "memory",
    "heartbeat_interval",
    "idle_timeout",
    "stall_timeout",
    "history_size",
    "max_history_bytes",
    "status_interval",
    "replay_limit",
    "finished_retention",
    "abandon_timeout",
    "max_message_size",
    "jwt_secret",
    "jwt_public_key",
    "jwks_file",
    "allow_anonymous_read",
    "allowed_origins",
    "tls_cert",
    "tls_key",
    "insecure_no_auth",
    "conflate_after_bytes",
    "slow_client_bytes",
    "max_snapshot_bytes",
    "max_body_bytes_in_flight",
    "max_connections",
    "max_operations_per_namespace",
    "max_operations",
    "max_namespaces",
    "handshakes_per_ip_per_second",
    "max_messages_per_second",
    "max_ingest_per_second",
    "max_updates_per_operation_per_second",
    "max_connections_per_user",
    "max_anonymous_connections_per_ip",
    "first_message_timeout",
    "handshake_timeout",
    "rate_limit_exempt",
    "shutdown_grace",
    "log_format",
    "log_level",
];

/// The shortest [`Config::write_stall`].
pub const MIN_WRITE_STALL: Duration = Duration::from_secs(30);

/// `PROGRESS_HUB_*` variables that are not settings of `serve` but are
/// read by other commands and tools (so they may be in the environment).
const OTHER_VARS: &[&str] = &["CONFIG", "URL", "TOKEN", "BIN"];

/// The settings whose value is text (strings and paths). A TOML file must
/// write them as strings: `jwt_secret = 5` is refused, not read as the
/// secret "5"; variables and flags are text by nature and are taken as
/// written ([`TextVars`]).
const TEXT_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "jwt_secret",
    "jwt_public_key",
    "jwks_file",
    "tls_cert",
    "tls_key",
    "log_format",
    "log_level",
];

/// The three token-key settings: at most one may be in effect.
const KEY_SETTINGS: [&str; 3] = ["jwt_secret", "jwt_public_key", "jwks_file"];

/// A configuration the hub refuses to start with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The name of [`FlagValues`]' metadata, which [`source_name`] turns into `flag --KEY`.
const FLAG_SOURCE: &str = "command-line flag";

/// The name of the metadata of a value read from a variable (figment's own
/// [`Env`] provider's name also contains "environment"), which
/// [`source_name`] turns into `environment variable PROGRESS_HUB_KEY`.
const ENV_SOURCE: &str = "environment variable";

/// The variable naming the TOML file when `--config` is not given.
pub const CONFIG_VAR: &str = "PROGRESS_HUB_CONFIG";

/// Values given as command-line flags (only those present), as a figment provider.
#[derive(Debug, Default)]
pub struct FlagValues(pub Dict);

impl Provider for FlagValues {
    fn metadata(&self) -> Metadata {
        Metadata::named(FLAG_SOURCE)
    }

    fn data(&self) -> Result<FMap<Profile, Dict>, figment::Error> {
        let mut m = FMap::new();
        m.insert(Profile::Default, self.0.clone());
        Ok(m)
    }
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file, then
    /// environment, then flags. The file is `file` (the `--config` flag)
    /// or else the one `PROGRESS_HUB_CONFIG` names; a file that does not
    /// exist is refused either way.
    pub fn load(file: Option<&std::path::Path>, flags: FlagValues) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let file = match file {
            Some(path) => Some((path.to_owned(), Metadata::named(FLAG_SOURCE))),
            None => std::env::var_os(CONFIG_VAR)
                .map(|path| (PathBuf::from(path), Metadata::named(ENV_SOURCE))),
        };
        let mut file_provider = None;
        if let Some((path, from)) = file {
            // Opened here, not only looked up: a file in a directory the
            // hub's user cannot enter "does not exist" to `exists()`.
            let opened = std::fs::File::open(&path).and_then(|f| f.metadata());
            let why = match opened {
                Ok(m) if m.is_dir() => Some("is a directory, not a TOML file".to_owned()),
                Ok(_) => None,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    Some("does not exist".to_owned())
                }
                Err(err) => Some(format!("cannot be read: {err}")),
            };
            if let Some(why) = why {
                let mut e = figment::Error::from(format!("file {} {why}", path.display()))
                    .with_path("config");
                e.metadata = Some(from);
                return Err(ConfigError(describe(&fig, e)));
            }
            file_provider = Some(Toml::file(path));
        }
        let non_text: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !TEXT_KEYS.contains(k))
            .collect();
        let vars = || hub_vars().only(&non_text);
        // A value each lower source holds must be good on its own too: one
        // a higher source overrides is still a mistake the operator made.
        if let Some(file) = &file_provider {
            check_alone(file)?;
        }
        check_alone(vars())?;
        check_alone(TextVars)?;
        if let Some(file) = file_provider {
            fig = fig.merge(file);
        }
        fig = fig.merge(vars()).merge(TextVars).merge(flags);
        check_file_text(&fig).map_err(|e| ConfigError(describe(&fig, *e)))?;
        let mut cfg: Config = fig.extract().map_err(|e| ConfigError(describe(&fig, e)))?;
        for key in KEYS {
            if let Some(m) = fig.find_metadata(key) {
                if m.name != std::any::type_name::<Config>() {
                    cfg.sources.insert((*key).to_owned(), source_name(m, key));
                }
            }
        }
        cfg.keep_one_key_source(&fig);
        cfg.warn_unknown_vars(std::env::vars_os().map(|(k, _)| k));
        if cfg.idle_timeout <= cfg.heartbeat_interval {
            // The hub pings with each heartbeat: a client that only answers
            // pings (browsers, most libraries) says nothing in between.
            cfg.warnings.push(format!(
                "idle_timeout ({:?}) is not longer than heartbeat_interval ({:?}): clients that only answer the hub's pings will be closed as idle; make it at least twice as long",
                cfg.idle_timeout, cfg.heartbeat_interval
            ));
        }
        if cfg.memory && cfg.sources.contains_key("data_dir") {
            let from = cfg.sources["data_dir"].clone();
            cfg.warnings.push(format!(
                "ignoring `data_dir` from {from}: `memory` keeps nothing on disk"
            ));
        }
        cfg.check().map_err(|e| ConfigError(describe(&fig, *e)))?;
        cfg.check_open_hub()?;
        Ok(cfg)
    }

    /// The token key settings (`jwt_secret`, `jwt_public_key`,
    /// `jwks_file`) are one choice: when they come from different sources
    /// the highest one's choice stands (a `--jwt-public-key` flag beats an
    /// exported `PROGRESS_HUB_JWT_SECRET`), with a warning. Two in the same
    /// source are still refused by [`Config::check`].
    fn keep_one_key_source(&mut self, fig: &Figment) {
        let rank = |k: &str| -> u8 {
            match fig.find_metadata(k) {
                Some(m) if m.name == FLAG_SOURCE => 3,
                Some(m) if m.name.contains("environment") => 2,
                Some(m) if matches!(m.source, Some(figment::Source::File(_))) => 1,
                _ => 0,
            }
        };
        let set: Vec<(&str, u8)> = KEY_SETTINGS
            .into_iter()
            .filter(|k| self.has_key_setting(k))
            .map(|k| (k, rank(k)))
            .collect();
        let Some(top) = set.iter().map(|(_, r)| *r).max() else {
            return;
        };
        for (k, r) in set {
            if r < top {
                let from = self.sources.remove(k).unwrap_or_default();
                self.warnings.push(format!(
                    "ignoring `{k}` from {from}: a token key from a higher-precedence source is set"
                ));
                match k {
                    "jwt_secret" => self.jwt_secret = None,
                    "jwt_public_key" => self.jwt_public_key = None,
                    _ => self.jwks_file = None,
                }
            }
        }
    }

    fn has_key_setting(&self, key: &str) -> bool {
        match key {
            "jwt_secret" => self.jwt_secret.is_some(),
            "jwt_public_key" => self.jwt_public_key.is_some(),
            _ => self.jwks_file.is_some(),
        }
    }

    /// Notes `PROGRESS_HUB_*` variables that are no setting (a typo such
    /// as `PROGRESS_HUB_HEARTBEAT_INTERVALL` would otherwise go unnoticed).
    /// A warning, not a refusal: tools and test harnesses put their own
    /// `PROGRESS_HUB_*` variables in the environment the hub inherits.
    fn warn_unknown_vars(&mut self, names: impl Iterator<Item = std::ffi::OsString>) {
        for name in names {
            let Some(name) = name.to_str() else {
                continue;
            };
            // `get`, not slicing: a variable's name may hold any UTF-8.
            let prefixed = name
                .get(..13)
                .is_some_and(|p| p.eq_ignore_ascii_case("PROGRESS_HUB_"));
            if prefixed && name.len() > 13 && name != name.to_ascii_uppercase() {
                self.warnings.push(format!(
                    "ignoring environment variable {name}: settings are read from upper-case names ({})",
                    name.to_ascii_uppercase()
                ));
                continue;
            }
            let Some(rest) = name.strip_prefix("PROGRESS_HUB_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) && !OTHER_VARS.contains(&rest) {
                self.warnings.push(format!(
                    "ignoring environment variable PROGRESS_HUB_{rest}: `{key}` is not a setting"
                ));
            }
        }
    }

    /// Warnings about the configuration, for the log once it is up
    /// (unknown `PROGRESS_HUB_*` variables, a token key overridden by a
    /// higher-precedence source).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One line blaming a setting for a problem found when its value was
    /// used (a key file that cannot be read, a data directory that cannot
    /// be created), naming where it was set, like load-time errors do.
    pub fn blame(&self, key: &str, what: impl std::fmt::Display) -> String {
        let from = self.sources.get(key).map_or("the default", String::as_str);
        format!("invalid value for `{key}` from {from}: {what}")
    }

    /// Checks values that parse but make no sense: the error's path is the
    /// key to blame (for a rule over two keys, one that was set), so
    /// [`describe`] can name where that key came from.
    fn check(&self) -> Result<(), Box<figment::Error>> {
        self.check_values()?;
        self.check_rules()
    }

    /// The rules over one key each: a source's value must keep them on its
    /// own, whatever other sources say ([`check_alone`]).
    fn check_values(&self) -> Result<(), Box<figment::Error>> {
        if let Err(e) = self.listen_addr() {
            return bad(
                "listen",
                &format!("expected host:port, e.g. 127.0.0.1:8765 ({e})"),
            );
        }
        for (k, d) in [
            ("heartbeat_interval", self.heartbeat_interval),
            ("idle_timeout", self.idle_timeout),
            ("stall_timeout", self.stall_timeout),
            ("status_interval", self.status_interval),
        ] {
            if d.is_zero() {
                return bad(k, "must be greater than zero");
            }
            if d < Duration::from_millis(1) {
                // 1ns would be a timer firing as fast as the hub can.
                return bad(k, "must be at least 1ms");
            }
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake_timeout", "must be greater than zero");
        }
        if let Err(e) = crate::limits::parse_networks(&self.rate_limit_exempt) {
            return bad("rate_limit_exempt", &e);
        }
        // Each entry as written is named (its normalised spelling could
        // hide what is wrong, or be empty for a lone `/`).
        let entries = self.allowed_origins.as_deref().unwrap_or("").split(',');
        if let Some(o) = entries
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .find(|e| !is_origin(&crate::auth::normalize_origin(e)))
        {
            return bad(
                "allowed_origins",
                &format!(
                    "`{o}` is not an origin: expected scheme://host[:port] with no path, \
                     query or fragment, e.g. https://app.example.com, or `*` for any"
                ),
            );
        }
        if self.history_size == 0 {
            return bad("history_size", "must be at least 1");
        }
        if self.max_message_size == 0 {
            return bad("max_message_size", "must be at least 1 byte");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad("log_format", "expected `text` or `json`");
        }
        if self.jwt_secret.as_deref() == Some("") {
            return bad("jwt_secret", "must not be empty");
        }
        Ok(())
    }

    /// The rules over several keys, which only the merged configuration
    /// can be held to.
    fn check_rules(&self) -> Result<(), Box<figment::Error>> {
        if !self.memory && self.data_dir.as_os_str().is_empty() {
            return bad(
                "data_dir",
                "must not be empty (the default is ./progress-hub-data)",
            );
        }
        if self.slow_client_bytes <= self.conflate_after_bytes {
            // Blame the one that was set: a raised conflate_after_bytes
            // with the default slow_client_bytes is the former's fault.
            return if self.slow_client_bytes == Config::default().slow_client_bytes {
                bad(
                    "conflate_after_bytes",
                    "must be smaller than slow_client_bytes",
                )
            } else {
                bad(
                    "slow_client_bytes",
                    "must be larger than conflate_after_bytes",
                )
            };
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return bad("tls_cert", "given without tls_key (they go together)"),
            (None, Some(_)) => return bad("tls_key", "given without tls_cert (they go together)"),
            _ => {}
        }
        let given: Vec<&str> = [
            ("jwt_secret", self.jwt_secret.is_some()),
            ("jwt_public_key", self.jwt_public_key.is_some()),
            ("jwks_file", self.jwks_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        if let [first, others @ ..] = given.as_slice() {
            if !others.is_empty() {
                return bad(
                    first,
                    &format!(
                        "give only one of jwt_secret, jwt_public_key, jwks_file (also given: {})",
                        others.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    /// Refuses an open hub (no token key) on a non-loopback address unless
    /// `insecure_no_auth` says so.
    fn check_open_hub(&self) -> Result<(), ConfigError> {
        if !self.auth_enabled() && !self.insecure_no_auth {
            let addr = self.listen_addr().map_err(ConfigError)?;
            if !addr.ip().is_loopback() {
                let from = self
                    .sources
                    .get("listen")
                    .map_or("the default", String::as_str);
                return Err(ConfigError(format!(
                    "invalid value for `listen` from {from}: refusing to run an open hub (no --jwt-secret, --jwt-public-key or --jwks-file) on the non-loopback address {addr}; configure auth or pass --insecure-no-auth"
                )));
            }
        }
        Ok(())
    }

    /// Whether a token key is configured.
    pub fn auth_enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key.is_some() || self.jwks_file.is_some()
    }

    /// How long a write may wait for a peer that takes nothing before the
    /// hub drops the connection: the idle timeout, but at least
    /// [`MIN_WRITE_STALL`], so that a viewer that pauses reading for longer
    /// than a short idle timeout still reads, when it resumes, the error
    /// that explains its close (`SLOW_CLIENT`, `IDLE_TIMEOUT`) and the close
    /// frame, instead of a reset.
    pub fn write_stall(&self) -> Duration {
        self.idle_timeout.max(MIN_WRITE_STALL)
    }

    /// The listen address, resolved.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "no address".to_string())
    }

    /// The configured extra origins, each in the one spelling the origin
    /// checks compare ([`crate::auth::normalize_origin`]).
    pub fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(crate::auth::normalize_origin)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A refusal of `key`'s value, saying `why` ([`describe`] names its source).
fn bad(key: &str, why: &str) -> Result<(), Box<figment::Error>> {
    Err(Box::new(
        figment::Error::from(why.to_owned()).with_path(key),
    ))
}

/// The `PROGRESS_HUB_<KEY>` variables, keyed by their setting. Names are
/// matched exactly, upper case as the contract spells them: figment's own
/// prefix match ignores case, so `progress_hub_heartbeat_interval` was
/// applied (and its bad value blamed on a variable nobody set).
fn hub_vars() -> Env {
    Env::raw().filter_map(|name| {
        let rest = name.as_str().strip_prefix("PROGRESS_HUB_")?;
        let upper = !rest.is_empty() && !rest.bytes().any(|b| b.is_ascii_lowercase());
        upper.then(|| rest.to_ascii_lowercase().into())
    })
}

/// Refuses a value `provider` holds that is bad on its own (a type or
/// format no setting takes, or one [`Config::check_values`] refuses),
/// whatever higher source overrides it. Rules over several keys are left
/// to the merged configuration.
fn check_alone(provider: impl Provider) -> Result<(), ConfigError> {
    let fig = Figment::from(Serialized::defaults(Config::default())).merge(provider);
    check_file_text(&fig).map_err(|e| ConfigError(describe(&fig, *e)))?;
    let cfg: Config = fig.extract().map_err(|e| ConfigError(describe(&fig, e)))?;
    cfg.check_values()
        .map_err(|e| ConfigError(describe(&fig, *e)))
}

/// The [`TEXT_KEYS`] settings from `PROGRESS_HUB_*` variables, taken as
/// written. figment's [`Env`] reads every value as TOML-like data first,
/// so `PROGRESS_HUB_JWT_SECRET=007` became the number 7 and then the
/// secret "7", and `true` a boolean.
struct TextVars;

impl Provider for TextVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE)
    }

    fn data(&self) -> Result<FMap<Profile, Dict>, figment::Error> {
        let dict = hub_vars()
            .only(TEXT_KEYS)
            .iter()
            .map(|(key, value)| (key.as_str().to_owned(), value.into()))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// Refuses a [`TEXT_KEYS`] setting whose value comes from the TOML file as
/// anything but a string (a number, a boolean, a table...): the lenient
/// readers would take `jwt_secret = 5` as the text "5", and a secret the
/// operator did not write as one is more likely a mistake than a choice.
fn check_file_text(fig: &Figment) -> Result<(), Box<figment::Error>> {
    for key in TEXT_KEYS {
        let (Ok(value), Some(meta)) = (fig.find_value(key), fig.find_metadata(key)) else {
            continue;
        };
        let from_file = matches!(meta.source, Some(figment::Source::File(_)));
        if from_file && !matches!(value, figment::value::Value::String(..)) {
            let kind = figment::error::Kind::InvalidType(
                value.to_actual(),
                "a string (in quotes)".to_owned(),
            );
            let mut e = figment::Error::from(kind).with_path(key);
            e.metadata = Some(meta.clone());
            return Err(Box::new(e));
        }
    }
    Ok(())
}

/// Whether a (normalized) entry of `allowed_origins` can match a browser's
/// `Origin`: `*`, `null` (what sandboxed documents send), or
/// `scheme://host[:port]` and nothing after it, where the host is a DNS
/// name, an IPv4 address or a bracketed IPv6 address (no wildcards: origins
/// compare whole) and the port is 1-65535.
fn is_origin(o: &str) -> bool {
    if o == "*" || o == "null" {
        return true;
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                match after.strip_prefix(':') {
                    Some(port) => (addr, Some(port)),
                    None if after.is_empty() => (addr, None),
                    None => return false,
                }
            }
            _ => return false,
        },
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let host_ok = rest.starts_with('[')
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    scheme_ok && host_ok && port_ok
}

/// Turns a figment error into one line naming the key and its source.
fn describe(fig: &Figment, e: figment::Error) -> String {
    let mut out = Vec::new();
    for err in e {
        let key = err.path.join(".");
        let source = err
            .metadata
            .as_ref()
            .map(|m| source_name(m, &key))
            .or_else(|| fig.find_metadata(&key).map(|m| source_name(m, &key)))
            .unwrap_or_else(|| "configuration".to_string());
        let what = match &err.kind {
            figment::error::Kind::UnknownField(f, _) => format!("unknown key `{f}`"),
            other => other.to_string(),
        };
        if key.is_empty() {
            out.push(format!("invalid configuration from {source}: {what}"));
        } else {
            out.push(format!("invalid value for `{key}` from {source}: {what}"));
        }
    }
    out.join("; ")
}

fn source_name(m: &Metadata, key: &str) -> String {
    match &m.source {
        Some(figment::Source::File(p)) => format!("config file {}", p.display()),
        _ if m.name.contains("environment") => {
            format!("environment variable PROGRESS_HUB_{}", key.to_uppercase())
        }
        _ if m.name == FLAG_SOURCE => format!("flag --{}", key.replace('_', "-")),
        _ if m.name == std::any::type_name::<Config>() => "the default".to_string(),
        _ => m.name.to_string(),
    }
}

#[cfg(test)]
mod tests;
