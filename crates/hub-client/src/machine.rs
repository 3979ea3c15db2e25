//! The connection state machine, without sockets or clocks (quinn-proto
//! style).
//!
//! The driver feeds it [`Event`]s with the current time in milliseconds
//! ([`Machine::handle`]) and carries out the [`Action`]s it returns; it asks
//! [`Machine::poll_timeout`] when to deliver the next [`Event::Timeout`].
//! Everything that decides *when* and *whether* to (re)connect lives here, so
//! it is tested deterministically, including with random event sequences.
//!
//! **Invariants** (checked by the property tests):
//! - at most one socket is open; [`Action::OpenSocket`] is only returned when
//!   no socket is open;
//! - every deadline handed out is strictly in the future;
//! - an upgrade refused with 401/403 (credentials) or another 4xx but
//!   408/429 ([`refused_for_good`]) gives up at once (`Failed`), as do
//!   close codes 4001 and 1008; every other failure is retried;
//! - `Failed` is left only by [`Event::ReconnectNow`],
//!   [`Event::DisconnectRequested`] or, after an authentication refusal,
//!   [`Event::TokenRefreshed`];
//! - after an authentication refusal the token provider is asked
//!   ([`Action::AskToken`]) at once, then again after each
//!   [`Event::TokenUnchanged`] with the reconnect backoff (jittered,
//!   capped), until it has a new token: `Failed` has a deadline only then;
//! - the retry counter resets only after a connection stayed up for
//!   `min_uptime_ms`, never on the handshake itself.
//!
//! **Liveness.** The hub's real heartbeat interval is learned per
//! connection from the gaps between consecutive `heartbeat` messages: the
//! learned interval `L` is the largest of the last [`HEARTBEAT_GAP_WINDOW`]
//! gaps (gaps under [`MIN_HEARTBEAT_GAP_MS`] are a burst after a stall, not
//! the interval), never above the configured interval `C`. Until a
//! connection has seen two heartbeats, `C` applies: silence (no frame at
//! all) for `2 × C` is death. Once learned, silence for
//! `min(2 × L + slack(L), 2 × C)` is, where `slack(L) = max(500 ms, L / 4)`
//! allows for network and scheduling jitter. Learning therefore only ever makes
//! detection faster, never slower, and it starts over on every connection
//! (a reconnect may reach a restarted hub with another interval).

use crate::backoff::{Backoff, BackoffConfig};

/// How many recent heartbeat gaps the learned interval is the maximum of.
/// A stall of the hub (or of this process) that did not kill the connection
/// is followed by a burst of heartbeats; the maximum over a few gaps keeps
/// such near-zero gaps from shrinking the estimate.
pub const HEARTBEAT_GAP_WINDOW: usize = 4;

/// The largest heartbeat interval a hub's announcement is trusted with
/// (10 min): a wrong figure cannot hide a dead connection for longer.
pub const MAX_ANNOUNCED_HEARTBEAT_MS: u64 = 600_000;

/// Gaps between heartbeats shorter than this are not a sample of the
/// interval (two heartbeats delivered back to back after a stall).
pub const MIN_HEARTBEAT_GAP_MS: u64 = 50;

/// The least jitter allowance added to a learned interval.
pub const MIN_HEARTBEAT_SLACK_MS: u64 = 500;

/// Jitter allowance for a learned interval `interval_ms`:
/// `max(500 ms, interval / 4)`.
pub fn heartbeat_slack_ms(interval_ms: u64) -> u64 {
    (interval_ms / 4).max(MIN_HEARTBEAT_SLACK_MS)
}

/// The recent gaps between heartbeats of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct HeartbeatGaps {
    /// When this connection's last `heartbeat` arrived.
    last_at: Option<u64>,
    /// Ring of the newest gaps (`len` of them valid).
    gaps: [u64; HEARTBEAT_GAP_WINDOW],
    len: usize,
    next: usize,
}

impl HeartbeatGaps {
    fn record(&mut self, now: u64) {
        if let Some(prev) = self.last_at.replace(now) {
            let gap = now.saturating_sub(prev);
            if gap >= MIN_HEARTBEAT_GAP_MS {
                self.gaps[self.next] = gap;
                self.next = (self.next + 1) % HEARTBEAT_GAP_WINDOW;
                self.len = (self.len + 1).min(HEARTBEAT_GAP_WINDOW);
            }
        }
    }

    /// The largest recent gap, once there is one.
    fn max(&self) -> Option<u64> {
        self.gaps[..self.len].iter().copied().max()
    }
}

/// Timing and retry policy. Defaults: connect timeout 10 s, heartbeat 30 s
/// (dead after 2 × without any frame, sooner once the hub's real interval
/// is learned), minimum uptime 5 s, unlimited retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineConfig {
    /// How long a connection attempt (TCP + TLS + upgrade) may take.
    pub connect_timeout_ms: u64,
    /// The hub's heartbeat interval as far as the client knows it: used
    /// until a connection has seen two heartbeats, and the upper bound of
    /// the interval learned from them. Silence for twice this long always
    /// means the connection is dead.
    pub heartbeat_interval_ms: u64,
    /// A connection must stay up this long before the retry counter resets.
    pub min_uptime_ms: u64,
    /// Give up (state `Failed`) after this many consecutive retries.
    pub max_retries: Option<u32>,
    /// The reconnect delay schedule.
    pub backoff: BackoffConfig,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            connect_timeout_ms: 10_000,
            heartbeat_interval_ms: 30_000,
            min_uptime_ms: 5_000,
            max_retries: None,
            backoff: BackoffConfig::default(),
        }
    }
}

/// The connection's state as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Not connected and not trying (before the first connect, or closed).
    Disconnected,
    /// A connection attempt is in progress.
    Connecting,
    /// The connection is up.
    Connected,
    /// Waiting for the backoff delay before the next attempt.
    Reconnecting,
    /// Gave up: retries exhausted or the hub said not to retry (auth, abuse).
    Failed,
}

impl ConnState {
    /// Lower-case name, as printed by the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Disconnected => "disconnected",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a received frame was (every frame counts as a sign of life).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A `heartbeat` message.
    Heartbeat,
    /// Any other message.
    Message,
    /// A WebSocket control frame (ping, pong).
    Control,
}

/// Something that happened, fed to [`Machine::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The user wants a connection (first start).
    ConnectRequested,
    /// The socket opened by the last [`Action::OpenSocket`] completed its handshake.
    Connected,
    /// A frame arrived on the open socket.
    FrameReceived(FrameKind),
    /// The open socket closed (`code` from the close frame, if any).
    Closed {
        /// WebSocket close code.
        code: Option<u16>,
    },
    /// The connection attempt failed (`http_status` when the upgrade was refused).
    ConnectFailed {
        /// HTTP status of a refused upgrade.
        http_status: Option<u16>,
    },
    /// The deadline from [`Machine::poll_timeout`] was reached.
    Timeout,
    /// The network came back (e.g. an OS notification): retry now.
    NetworkOnline,
    /// Explicit request to reconnect at once (also leaves `Failed`).
    ReconnectNow,
    /// Someone waits, until `until`, for what is queued to be delivered
    /// (a flush before the job exits): a wait for a retry ends at once,
    /// and until `until` no retry waits longer than [`HURRY_DELAY_MS`],
    /// so a hub that comes back within the wait is reached within it.
    Hurry {
        /// When the waiting ends (the machine's time scale).
        until: u64,
    },
    /// The token provider returned a new token after an auth refusal.
    TokenRefreshed,
    /// The token provider, asked after an auth refusal
    /// ([`Action::AskToken`]), had no new token: ask again after a backoff.
    TokenUnchanged,
    /// The user closed the client.
    DisconnectRequested,
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The user asked to connect.
    Requested,
    /// The handshake completed.
    Handshake,
    /// The attempt failed (`http_status` when the upgrade was refused).
    ConnectFailed(Option<u16>),
    /// The attempt took longer than the connect timeout.
    ConnectTimeout,
    /// No frame for two heartbeat intervals (the learned interval, with
    /// slack, once two heartbeats were seen).
    HeartbeatTimeout,
    /// The hub (or network) closed the connection.
    Closed(Option<u16>),
    /// The hub refused the credentials (HTTP 401 or close 4001).
    AuthRejected,
    /// The hub closed with 1008 (policy violation / abuse).
    PolicyViolation,
    /// The upgrade was answered with an HTTP status that waiting cannot
    /// change ([`refused_for_good`]: 404 and the other 4xx but 408 and
    /// 429; 401 and 403 are [`Reason::AuthRejected`]): no hub WebSocket
    /// at this URL.
    UpgradeRefused(u16),
    /// `max_retries` consecutive retries failed.
    RetriesExhausted,
    /// The backoff delay elapsed.
    RetryTimer,
    /// The network came back.
    NetworkOnline,
    /// Explicit reconnect request.
    ReconnectNow,
    /// A flush is waiting ([`Event::Hurry`]).
    Hurry,
    /// A new token was supplied.
    TokenRefreshed,
    /// The user closed the client.
    UserClosed,
    /// The client's background task ended without being asked to: a
    /// panic (state `Failed`) or its runtime shut down (`Disconnected`);
    /// nothing is sent any more.
    TaskEnded,
}

/// A state-change notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// The new state.
    pub state: ConnState,
    /// Why.
    pub reason: Reason,
    /// Retry number in the current streak (0 = first attempt, reset after
    /// `min_uptime_ms` of being connected).
    pub attempt: u32,
    /// In `Reconnecting`: the delay until the next attempt.
    pub next_delay_ms: Option<u64>,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a new socket (none is open).
    OpenSocket,
    /// Close the open socket (or abort the attempt in progress).
    CloseSocket,
    /// The next deadline is now `at` (same as [`Machine::poll_timeout`]).
    ScheduleTimer(u64),
    /// Tell listeners about a state change.
    Notify(StateChange),
    /// Ask the token provider for a new token (the hub refused the last
    /// one); answer with [`Event::TokenRefreshed`] or
    /// [`Event::TokenUnchanged`]. Without a provider that can change its
    /// token (a fixed token), do nothing: the client stays `Failed`.
    AskToken,
}

/// The connection state machine. Time is in milliseconds on any monotonic
/// scale chosen by the driver; it must never go backwards.
#[derive(Debug, Clone)]
pub struct Machine {
    config: MachineConfig,
    backoff: Backoff,
    state: ConnState,
    socket_open: bool,
    retries: u32,
    /// State-specific deadline (connect timeout, liveness, retry).
    deadline: Option<u64>,
    /// When the retry counter may be reset (while connected).
    uptime_reset_at: Option<u64>,
    failed_reason: Option<Reason>,
    connected_at: Option<u64>,
    last_frame_at: Option<u64>,
    last_heartbeat_at: Option<u64>,
    /// Heartbeat gaps of the current connection.
    heartbeats: HeartbeatGaps,
    /// The interval the hub announced on this connection.
    announced_ms: Option<u64>,
    connections: u64,
    down_since: Option<u64>,
    down_total_ms: u64,
    last_announced_timeout: Option<u64>,
    /// Until when retries are kept short ([`Event::Hurry`]).
    hurry_until: u64,
    /// Times the token provider had nothing new since the auth refusal.
    token_asks: u32,
    /// The hub's interval as an earlier connection knew it (announced, or
    /// learned from two heartbeats): the fallback of the next connection
    /// until it knows its own, so a hub that freezes right after a
    /// reconnect is found dead in two of its intervals, not two of the
    /// configured 30 s. Forgotten when a connection relying on it died
    /// for silence (the hub may beat more slowly since a restart).
    remembered_ms: Option<u64>,
}

/// Whether an HTTP status answering the WebSocket upgrade is a refusal
/// that waiting cannot change: a 4xx other than 408 (request timeout) and
/// 429 (too many requests). A 404 means the URL names no hub WebSocket
/// (a wrong path); 5xx and the rest are retried like a network blip.
pub fn refused_for_good(http_status: u16) -> bool {
    (400..500).contains(&http_status) && !matches!(http_status, 408 | 429)
}

/// The longest wait between attempts while a flush waits
/// ([`Event::Hurry`]): a job's last events reach a hub that came back
/// within half a second, instead of after a backoff drawn over 30 s.
pub const HURRY_DELAY_MS: u64 = 500;

impl Machine {
    /// A machine with a random backoff seed.
    pub fn new(config: MachineConfig) -> Self {
        Self::with_backoff(config, Backoff::new(config.backoff))
    }

    /// A machine with a seeded backoff (reproducible delays).
    pub fn with_seed(config: MachineConfig, seed: u64) -> Self {
        Self::with_backoff(config, Backoff::with_seed(config.backoff, seed))
    }

    fn with_backoff(config: MachineConfig, backoff: Backoff) -> Self {
        Machine {
            config,
            backoff,
            state: ConnState::Disconnected,
            socket_open: false,
            retries: 0,
            deadline: None,
            uptime_reset_at: None,
            failed_reason: None,
            connected_at: None,
            last_frame_at: None,
            last_heartbeat_at: None,
            heartbeats: HeartbeatGaps::default(),
            announced_ms: None,
            connections: 0,
            down_since: None,
            down_total_ms: 0,
            last_announced_timeout: None,
            hurry_until: 0,
            token_asks: 0,
            remembered_ms: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// The retry counter of the current streak.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Whether the machine believes a socket is open (or being opened).
    pub fn socket_open(&self) -> bool {
        self.socket_open
    }

    /// Why the machine is `Failed`, if it is.
    pub fn failed_reason(&self) -> Option<Reason> {
        self.failed_reason
    }

    /// Number of successful handshakes so far.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Successful handshakes after the first one.
    pub fn reconnects(&self) -> u64 {
        self.connections.saturating_sub(1)
    }

    /// Time of the last received frame.
    pub fn last_frame_at(&self) -> Option<u64> {
        self.last_frame_at
    }

    /// Time of the last `heartbeat` message.
    pub fn last_heartbeat_at(&self) -> Option<u64> {
        self.last_heartbeat_at
    }

    /// When the current connection came up (if connected).
    pub fn connected_at(&self) -> Option<u64> {
        self.connected_at
    }

    /// Total time spent not connected since the first connect request.
    pub fn time_disconnected_ms(&self, now: u64) -> u64 {
        self.down_total_ms + self.down_since.map_or(0, |s| now.saturating_sub(s))
    }

    /// The hub's own heartbeat interval, as its `system_status`
    /// (`data.heartbeat_interval_ms`) announced it on this connection: from
    /// the next frame on it takes the place of the configured interval
    /// (also above it: a hub beating every 75 s is not dead after 60 s).
    /// Clamped to [`MAX_ANNOUNCED_HEARTBEAT_MS`]; forgotten when the
    /// connection ends.
    pub fn announce_heartbeat_interval(&mut self, ms: u64) {
        if self.state == ConnState::Connected {
            self.announced_ms = Some(ms.clamp(1, MAX_ANNOUNCED_HEARTBEAT_MS));
        }
    }

    /// The interval the hub announced, else the configured one: the upper
    /// bound of the learned one.
    fn ceiling_ms(&self) -> u64 {
        self.announced_ms
            .unwrap_or(self.config.heartbeat_interval_ms)
    }

    /// What this connection knows of the hub's interval itself (announced,
    /// else learned), if anything.
    fn own_interval_ms(&self) -> Option<u64> {
        self.announced_ms
            .or_else(|| self.learned_heartbeat_interval_ms())
    }

    /// The interval an earlier connection knew, when this one has not
    /// been told one ([`Machine::remembered_heartbeat_interval_ms`]).
    fn remembered_fallback(&self) -> Option<u64> {
        match self.announced_ms {
            Some(_) => None,
            None => self.remembered_ms,
        }
    }

    /// The hub's interval as an earlier connection knew it (announced or
    /// learned): used by the next connection until it knows its own.
    pub fn remembered_heartbeat_interval_ms(&self) -> Option<u64> {
        self.remembered_ms
    }

    /// The hub's heartbeat interval learned on the current connection (the
    /// largest of its recent heartbeat gaps, at most the configured
    /// interval); `None` until it has seen two heartbeats.
    pub fn learned_heartbeat_interval_ms(&self) -> Option<u64> {
        self.heartbeats.max().map(|gap| gap.min(self.ceiling_ms()))
    }

    /// The heartbeat interval in effect: learned, else announced, else
    /// remembered from an earlier connection, else configured.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.learned_heartbeat_interval_ms()
            .or(self.remembered_fallback())
            .unwrap_or(self.ceiling_ms())
    }

    /// How long a frame may take, after the previous one, before the
    /// connection is no longer [`healthy`](Self::healthy): the learned
    /// interval plus its slack (at most the configured interval), else the
    /// configured interval.
    pub fn healthy_window_ms(&self) -> u64 {
        let configured = self.ceiling_ms();
        match (
            self.learned_heartbeat_interval_ms(),
            self.remembered_fallback(),
        ) {
            (Some(l), _) => l.saturating_add(heartbeat_slack_ms(l)).min(configured),
            (None, Some(r)) => r.saturating_add(heartbeat_slack_ms(r)),
            (None, None) => configured,
        }
    }

    /// Silence (no frame at all) for this long means the connection is dead:
    /// `min(2 × learned + slack, 2 × configured)`; before two heartbeats
    /// `2 × remembered + slack` (an earlier connection's interval), else
    /// `2 × configured` (announced, if the hub said).
    pub fn dead_after_ms(&self) -> u64 {
        let configured = self.ceiling_ms().saturating_mul(2);
        let twice = |i: u64| i.saturating_mul(2).saturating_add(heartbeat_slack_ms(i));
        let ms = match (
            self.learned_heartbeat_interval_ms(),
            self.remembered_fallback(),
        ) {
            (Some(l), _) => twice(l).min(configured),
            (None, Some(r)) => twice(r),
            (None, None) => configured,
        };
        ms.max(1)
    }

    /// Connected and a frame arrived within one heartbeat interval (the
    /// learned one, with its slack, once known: see
    /// [`healthy_window_ms`](Self::healthy_window_ms)).
    pub fn healthy(&self, now: u64) -> bool {
        self.state == ConnState::Connected
            && self
                .last_frame_at
                .is_some_and(|t| now.saturating_sub(t) <= self.healthy_window_ms())
    }

    /// When the driver must deliver [`Event::Timeout`], if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        match (self.deadline, self.uptime_reset_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feed one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        self.step(event, now, &mut out);
        let t = self.poll_timeout();
        if t != self.last_announced_timeout {
            self.last_announced_timeout = t;
            if let Some(at) = t {
                out.push(Action::ScheduleTimer(at));
            }
        }
        out
    }

    fn step(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        use ConnState::*;
        match (self.state, event) {
            (Disconnected, Event::ConnectRequested) => {
                self.retries = 0;
                self.mark_down(now);
                self.open(now, Reason::Requested, out);
            }
            (Disconnected | Failed | Reconnecting, Event::ReconnectNow) => {
                self.retries = 0;
                self.failed_reason = None;
                self.mark_down(now);
                self.open(now, Reason::ReconnectNow, out);
            }
            (Connected, Event::ReconnectNow) => {
                self.close_socket(now, out);
                self.retries = 0;
                self.open(now, Reason::ReconnectNow, out);
            }
            (Reconnecting, Event::NetworkOnline) => self.open(now, Reason::NetworkOnline, out),
            (state, Event::Hurry { until }) => {
                self.hurry_until = self.hurry_until.max(until);
                if state == Reconnecting && now < until {
                    self.open(now, Reason::Hurry, out);
                }
            }
            (Failed, Event::TokenRefreshed) if self.failed_reason == Some(Reason::AuthRejected) => {
                self.failed_reason = None;
                self.schedule_retry(now, Reason::TokenRefreshed, out);
            }
            (Failed, Event::TokenUnchanged)
                if self.failed_reason == Some(Reason::AuthRejected) && self.deadline.is_none() =>
            {
                // Ask again later, like a reconnect: jittered, capped.
                let delay = self.backoff.delay_ms(self.token_asks).max(1);
                self.token_asks = self.token_asks.saturating_add(1);
                self.deadline = Some(now.saturating_add(delay));
            }
            (_, Event::DisconnectRequested) if self.state != Disconnected => {
                if self.socket_open {
                    self.close_socket(now, out);
                }
                self.failed_reason = None;
                self.enter(Disconnected, Reason::UserClosed, None, out);
                self.deadline = None;
            }
            (Connecting, Event::Connected) if self.socket_open => {
                self.connections += 1;
                self.token_asks = 0;
                self.connected_at = Some(now);
                self.last_frame_at = Some(now);
                self.heartbeats = HeartbeatGaps::default();
                self.announced_ms = None;
                if let Some(s) = self.down_since.take() {
                    self.down_total_ms += now.saturating_sub(s);
                }
                self.deadline = Some(now + self.liveness_ms());
                self.uptime_reset_at = if self.retries == 0 {
                    None
                } else {
                    Some(now + self.config.min_uptime_ms.max(1))
                };
                self.enter(Connected, Reason::Handshake, None, out);
            }
            (Connected, Event::FrameReceived(kind)) => {
                self.last_frame_at = Some(now);
                if kind == FrameKind::Heartbeat {
                    self.last_heartbeat_at = Some(now);
                    self.heartbeats.record(now);
                }
                self.deadline = Some(now + self.liveness_ms());
                self.check_uptime(now);
            }
            (Connecting, Event::ConnectFailed { http_status }) if self.socket_open => {
                self.socket_open = false;
                if matches!(http_status, Some(401 | 403)) {
                    self.fail(Reason::AuthRejected, out);
                } else if let Some(status) = http_status.filter(|&s| refused_for_good(s)) {
                    self.fail(Reason::UpgradeRefused(status), out);
                } else {
                    self.retries_failure(now, Reason::ConnectFailed(http_status), out);
                }
            }
            (Connecting, Event::Closed { code }) if self.socket_open => {
                self.socket_open = false;
                self.after_close(now, code, out);
            }
            (Connected, Event::Closed { code }) => {
                self.socket_open = false;
                self.check_uptime(now);
                self.left_connected(now);
                self.after_close(now, code, out);
            }
            (_, Event::Timeout) => self.on_timeout(now, out),
            _ => {}
        }
    }

    fn liveness_ms(&self) -> u64 {
        self.dead_after_ms()
    }

    fn check_uptime(&mut self, now: u64) {
        if let Some(at) = self.uptime_reset_at {
            if now >= at {
                self.retries = 0;
                self.uptime_reset_at = None;
            }
        }
    }

    fn left_connected(&mut self, now: u64) {
        if let Some(known) = self.own_interval_ms() {
            self.remembered_ms = Some(known);
        }
        self.connected_at = None;
        self.heartbeats = HeartbeatGaps::default();
        self.announced_ms = None;
        self.uptime_reset_at = None;
        self.mark_down(now);
    }

    fn mark_down(&mut self, now: u64) {
        if self.down_since.is_none() {
            self.down_since = Some(now);
        }
    }

    fn after_close(&mut self, now: u64, code: Option<u16>, out: &mut Vec<Action>) {
        match code {
            Some(4001) => self.fail(Reason::AuthRejected, out),
            Some(1008) => self.fail(Reason::PolicyViolation, out),
            _ => self.retries_failure(now, Reason::Closed(code), out),
        }
    }

    fn on_timeout(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state == ConnState::Connected {
            self.check_uptime(now);
        }
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            ConnState::Connecting => {
                self.close_socket(now, out);
                self.retries_failure(now, Reason::ConnectTimeout, out);
            }
            ConnState::Connected => {
                if self.own_interval_ms().is_none() {
                    // Died on a remembered interval: the hub may beat more
                    // slowly now; the next connection goes by the
                    // configured one until it learns.
                    self.remembered_ms = None;
                }
                self.close_socket(now, out);
                self.left_connected(now);
                self.retries_failure(now, Reason::HeartbeatTimeout, out);
            }
            ConnState::Reconnecting => self.open(now, Reason::RetryTimer, out),
            ConnState::Failed if self.failed_reason == Some(Reason::AuthRejected) => {
                self.deadline = None;
                out.push(Action::AskToken);
            }
            ConnState::Disconnected | ConnState::Failed => self.deadline = None,
        }
    }

    fn close_socket(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.socket_open {
            self.socket_open = false;
            out.push(Action::CloseSocket);
        }
        if self.state == ConnState::Connected {
            self.left_connected(now);
        }
    }

    fn open(&mut self, now: u64, reason: Reason, out: &mut Vec<Action>) {
        debug_assert!(!self.socket_open);
        self.socket_open = true;
        out.push(Action::OpenSocket);
        self.deadline = Some(now + self.config.connect_timeout_ms.max(1));
        self.enter(ConnState::Connecting, reason, None, out);
    }

    /// An attempt (or a too-short connection) failed: back off or give up.
    fn retries_failure(&mut self, now: u64, reason: Reason, out: &mut Vec<Action>) {
        if let Some(max) = self.config.max_retries {
            if self.retries >= max {
                self.fail(Reason::RetriesExhausted, out);
                return;
            }
        }
        self.schedule_retry(now, reason, out);
    }

    fn schedule_retry(&mut self, now: u64, reason: Reason, out: &mut Vec<Action>) {
        let mut delay = self.backoff.delay_ms(self.retries).max(1);
        if now < self.hurry_until {
            delay = delay.min(HURRY_DELAY_MS);
        }
        // A token refresh may retry past `max_retries`; the counter stays
        // within it so the bound keeps its meaning.
        self.retries = self
            .retries
            .saturating_add(1)
            .min(self.config.max_retries.unwrap_or(u32::MAX));
        self.deadline = Some(now + delay);
        self.enter(ConnState::Reconnecting, reason, Some(delay), out);
    }

    fn fail(&mut self, reason: Reason, out: &mut Vec<Action>) {
        self.deadline = None;
        self.failed_reason = Some(reason);
        self.enter(ConnState::Failed, reason, None, out);
        if reason == Reason::AuthRejected {
            out.push(Action::AskToken);
        }
    }

    fn enter(
        &mut self,
        state: ConnState,
        reason: Reason,
        next_delay_ms: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        self.state = state;
        out.push(Action::Notify(StateChange {
            state,
            reason,
            attempt: self.retries,
            next_delay_ms,
        }));
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
