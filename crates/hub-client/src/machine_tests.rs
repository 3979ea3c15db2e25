//! Deterministic and property tests of the connection state machine.

use super::*;
use proptest::prelude::*;

fn notifications(actions: &[Action]) -> Vec<StateChange> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn last_state(actions: &[Action]) -> Option<ConnState> {
    notifications(actions).last().map(|c| c.state)
}

fn machine() -> Machine {
    Machine::with_seed(MachineConfig::default(), 7)
}

#[test]
fn first_connect_and_handshake() {
    let mut m = machine();
    assert_eq!(m.poll_timeout(), None);
    let a = m.handle(Event::ConnectRequested, 0);
    assert_eq!(a[0], Action::OpenSocket);
    assert_eq!(last_state(&a), Some(ConnState::Connecting));
    assert_eq!(m.poll_timeout(), Some(10_000));
    assert!(a.contains(&Action::ScheduleTimer(10_000)));
    let a = m.handle(Event::Connected, 100);
    assert_eq!(last_state(&a), Some(ConnState::Connected));
    assert_eq!(m.poll_timeout(), Some(60_100));
    assert!(m.healthy(100));
}

#[test]
fn connect_timeout_closes_and_backs_off() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    assert!(
        m.handle(Event::Timeout, 9_999).is_empty(),
        "early timeout is ignored"
    );
    let a = m.handle(Event::Timeout, 10_000);
    assert_eq!(a[0], Action::CloseSocket);
    let c = notifications(&a)[0];
    assert_eq!(c.state, ConnState::Reconnecting);
    assert_eq!(c.reason, Reason::ConnectTimeout);
    assert_eq!(c.attempt, 1);
    let d = c.next_delay_ms.unwrap();
    assert!((100..=500).contains(&d));
    assert_eq!(m.poll_timeout(), Some(10_000 + d));
    let a = m.handle(Event::Timeout, 10_000 + d);
    assert_eq!(a[0], Action::OpenSocket);
    assert_eq!(notifications(&a)[0].reason, Reason::RetryTimer);
}

#[test]
fn silence_for_two_heartbeats_is_death() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 0);
    m.handle(Event::FrameReceived(FrameKind::Heartbeat), 30_000);
    assert_eq!(m.last_heartbeat_at(), Some(30_000));
    m.handle(Event::FrameReceived(FrameKind::Message), 50_000);
    assert_eq!(m.poll_timeout(), Some(110_000));
    assert!(m.handle(Event::Timeout, 109_999).is_empty());
    let a = m.handle(Event::Timeout, 110_000);
    assert_eq!(a[0], Action::CloseSocket);
    let c = notifications(&a)[0];
    assert_eq!(
        (c.state, c.reason),
        (ConnState::Reconnecting, Reason::HeartbeatTimeout)
    );
    // The connection had been up long enough: the streak starts over.
    assert_eq!(c.attempt, 1);
    assert!(c.next_delay_ms.unwrap() <= 500);
}

/// A machine (default config: 30 s) connected at `at`.
fn connected_at(config: MachineConfig, at: u64) -> Machine {
    let mut m = Machine::with_seed(config, 7);
    m.handle(Event::ConnectRequested, at);
    m.handle(Event::Connected, at);
    m
}

fn heartbeat(m: &mut Machine, now: u64) -> Vec<Action> {
    m.handle(Event::FrameReceived(FrameKind::Heartbeat), now)
}

fn is_heartbeat_timeout(actions: &[Action]) -> bool {
    actions.first() == Some(&Action::CloseSocket)
        && notifications(actions)
            .first()
            .is_some_and(|c| c.reason == Reason::HeartbeatTimeout)
}

#[test]
fn slack_is_a_quarter_but_at_least_half_a_second() {
    assert_eq!(heartbeat_slack_ms(0), 500);
    assert_eq!(heartbeat_slack_ms(300), 500);
    assert_eq!(heartbeat_slack_ms(2_000), 500);
    assert_eq!(heartbeat_slack_ms(2_004), 501);
    assert_eq!(heartbeat_slack_ms(30_000), 7_500);
}

#[test]
fn learns_the_hub_interval_from_two_heartbeats() {
    // A hub started with `--heartbeat-interval 300ms`, a client configured
    // with the default 30 s.
    let mut m = connected_at(MachineConfig::default(), 0);
    assert_eq!(m.learned_heartbeat_interval_ms(), None);
    assert_eq!(m.heartbeat_interval_ms(), 30_000);
    heartbeat(&mut m, 120);
    // One heartbeat is no interval yet: the configured value applies.
    assert_eq!(m.learned_heartbeat_interval_ms(), None);
    assert_eq!(m.poll_timeout(), Some(120 + 60_000));
    heartbeat(&mut m, 420);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(300));
    assert_eq!(m.heartbeat_interval_ms(), 300);
    assert_eq!(m.dead_after_ms(), 2 * 300 + 500);
    assert_eq!(m.poll_timeout(), Some(420 + 1_100));
    assert!(m.handle(Event::Timeout, 1_519).is_empty());
    assert_eq!(m.state(), ConnState::Connected);
    let a = m.handle(Event::Timeout, 1_520);
    assert!(is_heartbeat_timeout(&a), "{a:?}");
    assert_eq!(m.state(), ConnState::Reconnecting);
}

#[test]
fn any_frame_keeps_a_learned_connection_alive() {
    let mut m = connected_at(MachineConfig::default(), 0);
    heartbeat(&mut m, 1_000);
    heartbeat(&mut m, 2_000);
    assert_eq!(m.dead_after_ms(), 2_500);
    // Messages and pings do not teach the interval but prove life.
    m.handle(Event::FrameReceived(FrameKind::Message), 4_000);
    assert_eq!(m.poll_timeout(), Some(6_500));
    m.handle(Event::FrameReceived(FrameKind::Control), 6_000);
    assert_eq!(m.poll_timeout(), Some(8_500));
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(1_000));
    assert!(m.handle(Event::Timeout, 8_499).is_empty());
    assert!(is_heartbeat_timeout(&m.handle(Event::Timeout, 8_500)));
}

#[test]
fn an_announced_interval_replaces_the_configured_one() {
    // A hub with `--heartbeat-interval 75s`, a client configured with 30 s.
    let mut m = connected_at(MachineConfig::default(), 0);
    m.announce_heartbeat_interval(75_000);
    m.handle(Event::FrameReceived(FrameKind::Message), 10);
    assert_eq!(m.heartbeat_interval_ms(), 75_000);
    assert_eq!(m.dead_after_ms(), 150_000);
    assert_eq!(m.poll_timeout(), Some(10 + 150_000));
    heartbeat(&mut m, 75_000);
    heartbeat(&mut m, 150_000);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(75_000));
    assert_eq!(
        m.dead_after_ms(),
        150_000,
        "min(2 x 75 s + slack, 2 x 75 s)"
    );
    assert!(m.handle(Event::Timeout, 150_000 + 149_999).is_empty());
    assert_eq!(m.state(), ConnState::Connected);
    // The announcement is per connection.
    m.handle(Event::Closed { code: Some(1012) }, 200_000);
    let mut m = connected_at(MachineConfig::default(), 0);
    assert_eq!(m.dead_after_ms(), 60_000);
    // Absurd figures are bounded.
    m.announce_heartbeat_interval(u64::MAX);
    assert_eq!(m.heartbeat_interval_ms(), MAX_ANNOUNCED_HEARTBEAT_MS);
}

#[test]
fn learned_interval_never_exceeds_the_configured_one() {
    let cfg = MachineConfig {
        heartbeat_interval_ms: 1_000,
        ..MachineConfig::default()
    };
    let mut m = connected_at(cfg, 0);
    heartbeat(&mut m, 100);
    heartbeat(&mut m, 5_100);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(1_000));
    // 2 x 1000 + 500 would be slower than 2 x configured: learning never
    // delays detection.
    assert_eq!(m.dead_after_ms(), 2_000);
    assert_eq!(m.poll_timeout(), Some(7_100));
    assert_eq!(m.healthy_window_ms(), 1_000);
}

#[test]
fn the_largest_recent_gap_wins_and_bursts_are_ignored() {
    let mut m = connected_at(MachineConfig::default(), 0);
    let mut t = 0;
    for _ in 0..5 {
        t += 1_000;
        heartbeat(&mut m, t);
    }
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(1_000));
    // The hub stalled for 1.8 s, then fired its missed tick at once.
    t += 1_800;
    heartbeat(&mut m, t);
    t += 10;
    heartbeat(&mut m, t);
    assert_eq!(
        m.learned_heartbeat_interval_ms(),
        Some(1_800),
        "a 10 ms burst gap is no sample; the long gap is kept"
    );
    // Shorter gaps never shrink it below the largest of the last four.
    for expected in [1_800, 1_800, 1_800, 1_000] {
        t += 1_000;
        heartbeat(&mut m, t);
        assert_eq!(m.learned_heartbeat_interval_ms(), Some(expected));
    }
    // And a longer gap raises it at once (up to the configured value).
    t += 1_600;
    heartbeat(&mut m, t);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(1_600));
}

#[test]
fn the_interval_is_learned_again_on_every_connection() {
    let mut m = connected_at(MachineConfig::default(), 0);
    heartbeat(&mut m, 300);
    heartbeat(&mut m, 600);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(300));
    m.handle(Event::Closed { code: Some(1012) }, 700);
    assert_eq!(m.learned_heartbeat_interval_ms(), None);
    let t = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, t);
    m.handle(Event::Connected, t + 10);
    // No gap spans connections: until two heartbeats of this connection
    // were seen, it goes by the interval the last one knew (300 ms: dead
    // after 2 x 300 + the 500 ms slack), not the configured 30 s.
    assert_eq!(m.learned_heartbeat_interval_ms(), None);
    assert_eq!(m.remembered_heartbeat_interval_ms(), Some(300));
    assert_eq!(m.dead_after_ms(), 1_100);
    heartbeat(&mut m, t + 20);
    assert_eq!(m.learned_heartbeat_interval_ms(), None);
    heartbeat(&mut m, t + 5_020);
    assert_eq!(m.learned_heartbeat_interval_ms(), Some(5_000));
    assert_eq!(m.dead_after_ms(), 10_000 + 1_250);
}

#[test]
fn healthy_follows_the_learned_interval() {
    let mut m = connected_at(MachineConfig::default(), 0);
    // Configured: one interval of 30 s.
    assert!(m.healthy(30_000));
    assert!(!m.healthy(30_001));
    heartbeat(&mut m, 100);
    heartbeat(&mut m, 400);
    assert_eq!(m.healthy_window_ms(), 300 + 500);
    assert!(m.healthy(1_200));
    assert!(
        !m.healthy(1_201),
        "silent for more than one learned interval + slack"
    );
    assert_eq!(m.state(), ConnState::Connected, "not dead yet");
    m.handle(Event::FrameReceived(FrameKind::Message), 1_300);
    assert!(m.healthy(1_300));
}

#[test]
fn retry_counter_resets_only_after_min_uptime() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    let mut now = 0;
    // Three failed attempts.
    for i in 1..=3 {
        m.handle(Event::ConnectFailed { http_status: None }, now);
        assert_eq!(m.retries(), i);
        now = m.poll_timeout().unwrap();
        m.handle(Event::Timeout, now);
    }
    // A handshake that flaps after 1 s does not reset the counter.
    m.handle(Event::Connected, now);
    assert_eq!(m.retries(), 3);
    let a = m.handle(Event::Closed { code: Some(1006) }, now + 1_000);
    assert_eq!(notifications(&a)[0].attempt, 4);
    now = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, now);
    m.handle(Event::Connected, now);
    // Staying up for 5 s resets it (via the timer)...
    assert_eq!(m.poll_timeout(), Some(now + 5_000));
    m.handle(Event::Timeout, now + 5_000);
    assert_eq!(m.retries(), 0);
    // ...so the next drop starts from the first window again.
    let a = m.handle(Event::Closed { code: Some(1012) }, now + 6_000);
    let c = notifications(&a)[0];
    assert_eq!((c.attempt, c.reason), (1, Reason::Closed(Some(1012))));
    assert!(c.next_delay_ms.unwrap() <= 500);
}

#[test]
fn uptime_reset_also_seen_on_close_without_timer() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(
        Event::ConnectFailed {
            http_status: Some(502),
        },
        0,
    );
    let t = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, t);
    m.handle(Event::Connected, t);
    let a = m.handle(Event::Closed { code: Some(1013) }, t + 60_000);
    assert_eq!(notifications(&a)[0].attempt, 1);
}

#[test]
fn auth_refusals_fail_and_token_refresh_retries() {
    for refusal in [
        Event::ConnectFailed {
            http_status: Some(401),
        },
        Event::Closed { code: Some(4001) },
    ] {
        let mut m = machine();
        m.handle(Event::ConnectRequested, 0);
        if matches!(refusal, Event::Closed { .. }) {
            m.handle(Event::Connected, 0);
        }
        let a = m.handle(refusal, 10);
        let c = notifications(&a)[0];
        assert_eq!(
            (c.state, c.reason),
            (ConnState::Failed, Reason::AuthRejected)
        );
        assert_eq!(m.poll_timeout(), None);
        // Nothing but an explicit action leaves Failed.
        for e in [
            Event::Timeout,
            Event::NetworkOnline,
            Event::ConnectRequested,
        ] {
            assert!(m.handle(e, 1_000_000).is_empty());
        }
        let a = m.handle(Event::TokenRefreshed, 1_000_000);
        assert_eq!(last_state(&a), Some(ConnState::Reconnecting));
    }
}

#[test]
fn a_provider_without_a_new_token_is_asked_again_with_backoff() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 0);
    let a = m.handle(Event::Closed { code: Some(4001) }, 10);
    assert!(a.contains(&Action::AskToken), "asked at once: {a:?}");
    let mut now = 10;
    let mut delays = Vec::new();
    for _ in 0..30 {
        // The provider still has the refused token.
        m.handle(Event::TokenUnchanged, now);
        assert_eq!(m.state(), ConnState::Failed);
        let at = m.poll_timeout().expect("asked again later");
        assert!(at > now);
        delays.push(at - now);
        // Nothing happens before the deadline.
        assert!(!m.handle(Event::Timeout, at - 1).contains(&Action::AskToken));
        let a = m.handle(Event::Timeout, at);
        assert_eq!(a, vec![Action::AskToken]);
        assert_eq!(m.poll_timeout(), None);
        now = at;
    }
    let cap = MachineConfig::default().backoff.cap_ms;
    assert!(delays.iter().all(|d| *d <= cap), "{delays:?}");
    assert!(
        delays[20..].iter().any(|d| *d > delays[0]),
        "backs off: {delays:?}"
    );
    // It has one at last: reconnect.
    let a = m.handle(Event::TokenRefreshed, now);
    assert_eq!(last_state(&a), Some(ConnState::Reconnecting));
}

#[test]
fn other_failures_never_ask_for_a_token() {
    let mut m = Machine::with_seed(
        MachineConfig {
            max_retries: Some(0),
            ..Default::default()
        },
        7,
    );
    m.handle(Event::ConnectRequested, 0);
    let a = m.handle(
        Event::ConnectFailed {
            http_status: Some(503),
        },
        5,
    );
    assert_eq!(last_state(&a), Some(ConnState::Failed));
    assert!(!a.contains(&Action::AskToken));
    assert!(m.handle(Event::TokenUnchanged, 6).is_empty());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn policy_violation_fails_and_ignores_token_refresh() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 0);
    let a = m.handle(Event::Closed { code: Some(1008) }, 5);
    assert_eq!(notifications(&a)[0].reason, Reason::PolicyViolation);
    assert!(m.handle(Event::TokenRefreshed, 6).is_empty());
    let a = m.handle(Event::ReconnectNow, 7);
    assert_eq!(a[0], Action::OpenSocket);
    assert_eq!(m.retries(), 0);
}

#[test]
fn reconnect_codes_retry() {
    for code in [1000, 1001, 1006, 1011, 1012, 1013, 4000] {
        let mut m = machine();
        m.handle(Event::ConnectRequested, 0);
        m.handle(Event::Connected, 0);
        let a = m.handle(Event::Closed { code: Some(code) }, 1);
        assert_eq!(last_state(&a), Some(ConnState::Reconnecting), "code {code}");
    }
}

#[test]
fn max_retries_then_failed() {
    let cfg = MachineConfig {
        max_retries: Some(2),
        ..MachineConfig::default()
    };
    let mut m = Machine::with_seed(cfg, 1);
    m.handle(Event::ConnectRequested, 0);
    let mut now = 0;
    let mut opens = 1;
    loop {
        let a = m.handle(Event::ConnectFailed { http_status: None }, now);
        if m.state() == ConnState::Failed {
            assert_eq!(notifications(&a)[0].reason, Reason::RetriesExhausted);
            break;
        }
        now = m.poll_timeout().unwrap();
        let a = m.handle(Event::Timeout, now);
        opens += a.iter().filter(|a| **a == Action::OpenSocket).count();
    }
    assert_eq!(opens, 3, "first attempt plus two retries");
}

#[test]
fn network_online_skips_the_wait() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::ConnectFailed { http_status: None }, 0);
    assert_eq!(m.state(), ConnState::Reconnecting);
    let a = m.handle(Event::NetworkOnline, 1);
    assert_eq!(a[0], Action::OpenSocket);
    assert_eq!(m.poll_timeout(), Some(10_001));
}

#[test]
fn user_close_stops_everything() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 0);
    let a = m.handle(Event::DisconnectRequested, 5);
    assert_eq!(a[0], Action::CloseSocket);
    assert_eq!(m.state(), ConnState::Disconnected);
    assert_eq!(m.poll_timeout(), None);
    assert!(m.handle(Event::Timeout, 100_000).is_empty());
}

#[test]
fn stats_track_downtime_and_reconnects() {
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 300);
    m.handle(Event::Closed { code: Some(1012) }, 10_000);
    let t = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, t);
    m.handle(Event::Connected, t + 50);
    assert_eq!(m.reconnects(), 1);
    assert_eq!(m.time_disconnected_ms(t + 1_000), 300 + (t + 50 - 10_000));
}

// ---- property tests -------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Event(Event),
    /// Fire the machine's own deadline.
    FireTimer,
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => Just(Event::ConnectRequested),
        3 => Just(Event::Connected),
        3 => prop_oneof![
            Just(FrameKind::Heartbeat),
            Just(FrameKind::Message),
            Just(FrameKind::Control)
        ]
        .prop_map(Event::FrameReceived),
        2 => prop::option::of(prop_oneof![
            Just(1000u16),
            Just(1001),
            Just(1006),
            Just(1008),
            Just(1012),
            Just(1013),
            Just(4001),
            Just(4000),
        ])
        .prop_map(|code| Event::Closed { code }),
        2 => prop::option::of(prop_oneof![Just(401u16), Just(403), Just(404), Just(408), Just(429), Just(500), Just(503)])
            .prop_map(|http_status| Event::ConnectFailed { http_status }),
        1 => Just(Event::Timeout),
        1 => Just(Event::NetworkOnline),
        1 => Just(Event::ReconnectNow),
        1 => (0u64..300_000).prop_map(|until| Event::Hurry { until }),
        1 => Just(Event::TokenRefreshed),
        1 => Just(Event::TokenUnchanged),
        1 => Just(Event::DisconnectRequested),
    ]
}

fn any_step() -> impl Strategy<Value = (Step, u64)> {
    (
        prop_oneof![
            4 => any_event().prop_map(Step::Event),
            2 => Just(Step::FireTimer),
        ],
        prop_oneof![Just(0u64), 0u64..2_000, 0u64..120_000],
    )
}

fn any_config() -> impl Strategy<Value = MachineConfig> {
    (
        1u64..20_000,
        1u64..60_000,
        0u64..10_000,
        prop::option::of(0u32..6),
    )
        .prop_map(|(ct, hb, up, max)| MachineConfig {
            connect_timeout_ms: ct,
            heartbeat_interval_ms: hb,
            min_uptime_ms: up,
            max_retries: max,
            backoff: BackoffConfig::default(),
        })
}

/// The harness's model of the world around the machine.
struct World {
    m: Machine,
    config: MachineConfig,
    open: bool,
    opens: u64,
    now: u64,
    /// The latest end of a flush seen ([`Event::Hurry`]).
    hurry_until: u64,
}

impl World {
    /// Move the clock to `target`, firing every deadline on the way, like
    /// the driver does.
    fn advance(&mut self, target: u64) -> Result<(), TestCaseError> {
        while let Some(t) = self.m.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.deliver(Event::Timeout)?;
        }
        self.now = self.now.max(target);
        Ok(())
    }

    fn deliver(&mut self, event: Event) -> Result<(), TestCaseError> {
        let m = &mut self.m;
        let now = self.now;
        let before = m.state();
        let before_failed_reason = m.failed_reason();
        // Socket events are realistic only when the socket they talk about
        // exists; the machine must ignore the others entirely.
        let realistic = match event {
            Event::Closed { .. } => self.open,
            Event::Connected | Event::ConnectFailed { .. } => {
                self.open && before == ConnState::Connecting
            }
            Event::FrameReceived(_) => self.open && before == ConnState::Connected,
            _ => true,
        };
        let actions = m.handle(event, now);
        if !realistic {
            prop_assert!(
                actions.is_empty(),
                "{:?} in {:?} gave {:?}",
                event,
                before,
                actions
            );
        }
        if realistic && matches!(event, Event::Closed { .. } | Event::ConnectFailed { .. }) {
            self.open = false;
        }
        for a in &actions {
            match a {
                Action::OpenSocket => {
                    prop_assert!(!self.open, "OpenSocket while a socket is open");
                    self.open = true;
                    self.opens += 1;
                }
                Action::CloseSocket => {
                    prop_assert!(self.open, "CloseSocket with no socket");
                    self.open = false;
                }
                Action::ScheduleTimer(at) => prop_assert!(*at > now, "timer {at} not after {now}"),
                Action::Notify(_) => {}
                Action::AskToken => prop_assert!(
                    m.state() == ConnState::Failed
                        && m.failed_reason() == Some(Reason::AuthRejected),
                    "AskToken outside an auth failure"
                ),
            }
        }
        prop_assert_eq!(self.open, m.socket_open());
        // State and socket agree.
        match m.state() {
            ConnState::Connecting | ConnState::Connected => prop_assert!(self.open),
            _ => prop_assert!(!self.open),
        }
        // Liveness: every active state has a deadline in the future.
        match m.state() {
            ConnState::Connecting | ConnState::Connected | ConnState::Reconnecting => {
                let t = m.poll_timeout();
                prop_assert!(
                    t.is_some_and(|t| t > now),
                    "state {:?} deadline {:?} now {}",
                    m.state(),
                    t,
                    now
                );
            }
            ConnState::Disconnected => prop_assert!(m.poll_timeout().is_none()),
            // Only an auth failure waits for anything: the next question
            // to the token provider.
            ConnState::Failed => prop_assert!(
                m.poll_timeout().is_none() || m.failed_reason() == Some(Reason::AuthRejected)
            ),
        }
        // An upgrade refused for good gives up at once; a 408, 429 or 5xx
        // is retried (unless retries ran out).
        if let (
            ConnState::Connecting,
            Event::ConnectFailed {
                http_status: Some(st),
            },
        ) = (before, event)
        {
            if realistic && refused_for_good(st) {
                prop_assert_eq!(m.state(), ConnState::Failed);
            } else if realistic && m.state() == ConnState::Failed {
                prop_assert_eq!(m.failed_reason(), Some(Reason::RetriesExhausted));
            }
        }
        // Failed is absorbing, except for explicit exits.
        if before == ConnState::Failed && m.state() != ConnState::Failed {
            let allowed = matches!(event, Event::ReconnectNow | Event::DisconnectRequested)
                || (event == Event::TokenRefreshed
                    && before_failed_reason == Some(Reason::AuthRejected));
            prop_assert!(allowed, "left Failed on {:?}", event);
        }
        // Disconnected is left only on request.
        if before == ConnState::Disconnected && m.state() != ConnState::Disconnected {
            prop_assert!(matches!(
                event,
                Event::ConnectRequested | Event::ReconnectNow
            ));
        }
        if let Some(max) = self.config.max_retries {
            prop_assert!(m.retries() <= max);
        }
        // While a flush waits, no retry waits longer than HURRY_DELAY_MS.
        if let Event::Hurry { until } = event {
            self.hurry_until = self.hurry_until.max(until);
        }
        if now < self.hurry_until {
            for c in notifications(&actions) {
                if let Some(d) = c.next_delay_ms {
                    prop_assert!(d <= HURRY_DELAY_MS, "{} ms while a flush waits", d);
                }
            }
        }
        // Notifications report the state actually entered.
        if let Some(c) = notifications(&actions).last() {
            prop_assert_eq!(c.state, m.state());
            prop_assert_eq!(
                c.next_delay_ms.is_some(),
                c.state == ConnState::Reconnecting
            );
        }
        prop_assert!(self.opens >= m.connections());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_for_any_event_sequence(
        config in any_config(),
        seed in any::<u64>(),
        steps in prop::collection::vec(any_step(), 1..120),
    ) {
        let mut w = World { m: Machine::with_seed(config, seed), config, open: false, opens: 0, now: 0, hurry_until: 0 };
        for (step, dt) in steps {
            let target = w.now + dt;
            match step {
                Step::Event(e) => {
                    w.advance(target)?;
                    w.deliver(e)?;
                }
                // A spurious or exact timer wake-up.
                Step::FireTimer => {
                    let t = w.m.poll_timeout().unwrap_or(target).max(w.now);
                    w.advance(t.saturating_sub(1))?;
                    w.now = t;
                    w.deliver(Event::Timeout)?;
                }
            }
        }
    }

    /// A hub that never answers: attempts are spread out and never hot-loop.
    #[test]
    fn unreachable_hub_backs_off(seed in any::<u64>()) {
        let mut m = Machine::with_seed(MachineConfig::default(), seed);
        m.handle(Event::ConnectRequested, 0);
        let mut now = 0;
        let mut opens = vec![0u64];
        while opens.len() < 20 {
            m.handle(Event::ConnectFailed { http_status: None }, now);
            let t = m.poll_timeout().unwrap();
            prop_assert!(t > now);
            now = t;
            let a = m.handle(Event::Timeout, now);
            prop_assert_eq!(a[0], Action::OpenSocket);
            opens.push(now);
        }
        for (i, w) in opens.windows(2).enumerate() {
            let window = BackoffConfig::default().window_ms(i as u32);
            prop_assert!(w[1] - w[0] >= 100 && w[1] - w[0] <= window);
        }
    }
}

/// The reference model of the learned interval: the largest of the last
/// four heartbeat gaps of at least 50 ms, capped by the configured value.
fn model_learned(arrivals: &[u64], configured: u64) -> Option<u64> {
    let gaps: Vec<u64> = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g >= MIN_HEARTBEAT_GAP_MS)
        .collect();
    let recent = &gaps[gaps.len().saturating_sub(HEARTBEAT_GAP_WINDOW)..];
    recent.iter().copied().max().map(|g| g.min(configured))
}

/// A hub beating every `interval` ms (first beat within one interval of
/// the connection), each beat delayed on the way by up to `jitter` ms (in
/// order: TCP), with other frames in between. Returns `(time, kind)`.
fn hub_frames(
    interval: u64,
    first: u64,
    delays: &[u64],
    extras: &[(u64, bool)],
) -> Vec<(u64, FrameKind)> {
    let mut frames = Vec::new();
    let mut prev = 0;
    for (k, d) in delays.iter().enumerate() {
        let at = (first + k as u64 * interval + d).max(prev);
        prev = at;
        frames.push((at, FrameKind::Heartbeat));
    }
    let end = prev;
    for (at, control) in extras {
        if *at < end {
            let kind = if *control {
                FrameKind::Control
            } else {
                FrameKind::Message
            };
            frames.push((*at, kind));
        }
    }
    frames.sort_by_key(|f| f.0);
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Against a hub whose interval is at most the configured one, a
    /// connection that keeps receiving its heartbeats (with network jitter
    /// up to half an interval, at most 500 ms) is never declared dead; after
    /// the last frame it is declared dead exactly after
    /// `min(2 x learned + slack, 2 x configured)` of silence, which is at
    /// most two real intervals plus jitter plus slack.
    #[test]
    fn learned_liveness_never_early_never_late(
        configured in 100u64..60_000,
        ratio in 1u64..=1_000,
        first_frac in 0u64..=1_000,
        raw_delays in prop::collection::vec(0u64..=1_000, 2..40),
        raw_extras in prop::collection::vec((0u64..1_000_000, any::<bool>()), 0..40),
        start in 0u64..1_000_000,
    ) {
        let interval = (configured * ratio / 1_000).max(100);
        let jitter = (interval / 2).min(500);
        let delays: Vec<u64> = raw_delays.iter().map(|d| d * jitter / 1_000).collect();
        let first = (interval * first_frac / 1_000).max(1);
        let span = first + interval * delays.len() as u64;
        let extras: Vec<(u64, bool)> = raw_extras
            .iter()
            .map(|(f, c)| (1 + f * span / 1_000_000, *c))
            .collect();
        let cfg = MachineConfig { heartbeat_interval_ms: configured, ..MachineConfig::default() };
        let mut m = Machine::with_seed(cfg, 3);
        m.handle(Event::ConnectRequested, start);
        m.handle(Event::Connected, start);
        let frames = hub_frames(interval, first, &delays, &extras);
        let mut beats = Vec::new();
        for (at, kind) in frames {
            let now = start + at;
            // Deliver every timer due before the frame, like the driver.
            while let Some(t) = m.poll_timeout() {
                if t > now {
                    break;
                }
                m.handle(Event::Timeout, t);
                prop_assert_eq!(
                    m.state(), ConnState::Connected,
                    "declared dead at {} before the frame at {} (learned {:?})",
                    t, now, m.learned_heartbeat_interval_ms()
                );
            }
            m.handle(Event::FrameReceived(kind), now);
            if kind == FrameKind::Heartbeat {
                beats.push(now);
            }
            prop_assert_eq!(m.learned_heartbeat_interval_ms(), model_learned(&beats, configured));
            prop_assert!(m.healthy(now));
        }
        // Silence: dead exactly at the expected time, not a millisecond before.
        let last = m.last_frame_at().unwrap();
        let expected = match model_learned(&beats, configured) {
            Some(l) => (2 * l + heartbeat_slack_ms(l)).min(2 * configured),
            None => 2 * configured,
        };
        prop_assert!(beats.len() < 2 || model_learned(&beats, configured).is_some());
        prop_assert_eq!(m.poll_timeout(), Some(last + expected));
        prop_assert!(m.handle(Event::Timeout, last + expected - 1).is_empty());
        prop_assert_eq!(m.state(), ConnState::Connected);
        let a = m.handle(Event::Timeout, last + expected);
        prop_assert!(is_heartbeat_timeout(&a), "{:?}", a);
        // Well before 2 x configured whenever the hub beats faster: at most
        // two real intervals plus the jitter, plus the slack of that.
        let real = interval + jitter;
        prop_assert!(expected <= (2 * real + heartbeat_slack_ms(real)).min(2 * configured));
    }

    /// Once learned, any frames arriving within the learned interval (as the
    /// machine reports it at each moment) keep the connection alive and
    /// healthy, whatever their kind.
    #[test]
    fn frames_within_the_learned_interval_keep_it_alive(
        hub_interval in 50u64..40_000,
        configured in 50u64..40_000,
        steps in prop::collection::vec((0u64..=1_000, 0u8..3), 1..80),
    ) {
        let cfg = MachineConfig { heartbeat_interval_ms: configured, ..MachineConfig::default() };
        let mut m = connected_at(cfg, 0);
        heartbeat(&mut m, hub_interval);
        heartbeat(&mut m, 2 * hub_interval);
        let mut now = 2 * hub_interval;
        let learned = m.learned_heartbeat_interval_ms();
        prop_assert_eq!(learned, Some(hub_interval.min(configured)));
        for (frac, kind) in steps {
            let l = m.heartbeat_interval_ms();
            let gap = l * frac / 1_000;
            let next = now + gap;
            while let Some(t) = m.poll_timeout() {
                if t > next {
                    break;
                }
                m.handle(Event::Timeout, t);
            }
            prop_assert_eq!(m.state(), ConnState::Connected);
            prop_assert!(m.healthy(next));
            now = next;
            let kind = match kind {
                0 => FrameKind::Heartbeat,
                1 => FrameKind::Message,
                _ => FrameKind::Control,
            };
            m.handle(Event::FrameReceived(kind), now);
            prop_assert!(m.poll_timeout().is_some_and(|t| t > now));
        }
        // And silence for two learned intervals plus slack always kills it.
        let l = m.heartbeat_interval_ms();
        let limit = (2 * l + heartbeat_slack_ms(l)).min(2 * configured);
        let t = m.poll_timeout().unwrap();
        prop_assert!(t <= now + limit);
        prop_assert!(is_heartbeat_timeout(&m.handle(Event::Timeout, t)));
    }
}

/// A machine that failed to connect `n` times in a row, now waiting for
/// its next retry; returns the time.
fn failed_n_times(m: &mut Machine, n: u32) -> u64 {
    let mut now = 0;
    m.handle(Event::ConnectRequested, now);
    for _ in 0..n {
        now += 1;
        m.handle(Event::ConnectFailed { http_status: None }, now);
        if m.state() == ConnState::Reconnecting && m.retries() < n {
            now = m.poll_timeout().unwrap();
            m.handle(Event::Timeout, now);
        }
    }
    now
}

#[test]
fn a_flush_retries_at_once_and_keeps_retries_short_until_it_ends() {
    let mut m = machine();
    let now = failed_n_times(&mut m, 9);
    assert_eq!(m.state(), ConnState::Reconnecting);
    let until = now + 10_000;
    let a = m.handle(Event::Hurry { until }, now);
    assert_eq!(a[0], Action::OpenSocket, "no waiting out the backoff");
    assert_eq!(notifications(&a)[0].reason, Reason::Hurry);
    // Failures while the flush waits: retries within HURRY_DELAY_MS.
    let mut t = now;
    while t < until {
        t += 1;
        let a = m.handle(Event::ConnectFailed { http_status: None }, t);
        let d = notifications(&a)[0].next_delay_ms.unwrap();
        assert!(d <= HURRY_DELAY_MS, "{d} ms at {t}");
        t += d;
        m.handle(Event::Timeout, t);
    }
    // Past it, the backoff is the usual one again (attempt 9+: up to 30 s).
    let longest = (0..20)
        .map(|_| {
            t += 1;
            let a = m.handle(Event::ConnectFailed { http_status: None }, t);
            let d = notifications(&a)[0].next_delay_ms.unwrap();
            t += d;
            m.handle(Event::Timeout, t);
            d
        })
        .max()
        .unwrap();
    assert!(longest > HURRY_DELAY_MS, "{longest}");
}

#[test]
fn a_flush_does_not_leave_failed_or_disconnected_nor_touch_a_live_connection() {
    let mut m = machine();
    assert!(m.handle(Event::Hurry { until: 5_000 }, 0).is_empty());
    assert_eq!(m.state(), ConnState::Disconnected);
    m.handle(Event::ConnectRequested, 0);
    m.handle(Event::Connected, 10);
    assert!(m.handle(Event::Hurry { until: 5_000 }, 20).is_empty());
    assert_eq!(m.state(), ConnState::Connected);
    let mut m = machine();
    m.handle(Event::ConnectRequested, 0);
    m.handle(
        Event::ConnectFailed {
            http_status: Some(401),
        },
        1,
    );
    assert_eq!(m.state(), ConnState::Failed);
    assert!(notifications(&m.handle(Event::Hurry { until: 5_000 }, 2)).is_empty());
    assert_eq!(m.state(), ConnState::Failed);
    // A flush that already ended changes nothing.
    let mut m = machine();
    let now = failed_n_times(&mut m, 3);
    assert!(m.handle(Event::Hurry { until: now }, now).is_empty());
}

/// A hub that froze right after a reconnect is found dead within two of
/// the intervals the last connection knew (announced by its status, here
/// 1 s), not two configured 30 s intervals; and a connection that died
/// on that remembered interval without a word from the hub goes back to
/// the configured one (the hub may beat more slowly since a restart), so
/// a remembered interval costs at most one needless reconnect.
#[test]
fn a_reconnect_goes_by_the_interval_the_last_connection_knew() {
    let mut m = connected_at(MachineConfig::default(), 0);
    m.announce_heartbeat_interval(1_000);
    m.handle(Event::Closed { code: Some(1006) }, 500);
    let t = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, t);
    m.handle(Event::Connected, t + 10);
    assert_eq!(m.remembered_heartbeat_interval_ms(), Some(1_000));
    assert_eq!(m.dead_after_ms(), 2_500);
    assert_eq!(m.poll_timeout(), Some(t + 10 + 2_500));
    assert!(m.healthy(t + 10 + 1_500) && !m.healthy(t + 10 + 1_501));
    // Silence: dead at 2.5 s.
    let a = m.handle(Event::Timeout, t + 10 + 2_500);
    assert_eq!(
        notifications(&a)[0].reason,
        Reason::HeartbeatTimeout,
        "{a:?}"
    );
    assert_eq!(m.remembered_heartbeat_interval_ms(), None, "forgotten");
    let t = m.poll_timeout().unwrap();
    m.handle(Event::Timeout, t);
    m.handle(Event::Connected, t + 10);
    assert_eq!(m.dead_after_ms(), 60_000, "the configured interval again");
}

#[test]
fn an_upgrade_refused_for_good_fails_at_once() {
    for (status, reason) in [
        (404, Reason::UpgradeRefused(404)),
        (400, Reason::UpgradeRefused(400)),
        (410, Reason::UpgradeRefused(410)),
        (403, Reason::AuthRejected),
        (401, Reason::AuthRejected),
    ] {
        let mut m = machine();
        m.handle(Event::ConnectRequested, 0);
        let a = m.handle(
            Event::ConnectFailed {
                http_status: Some(status),
            },
            10,
        );
        let c = notifications(&a)[0];
        assert_eq!((c.state, c.reason), (ConnState::Failed, reason), "{status}");
        assert_eq!(m.poll_timeout(), None);
        assert!(m.handle(Event::Timeout, 1_000_000).is_empty());
    }
    // Waiting can change these: retried.
    for status in [408, 429, 500, 502, 503] {
        let mut m = machine();
        m.handle(Event::ConnectRequested, 0);
        let a = m.handle(
            Event::ConnectFailed {
                http_status: Some(status),
            },
            10,
        );
        assert_eq!(
            notifications(&a)[0].state,
            ConnState::Reconnecting,
            "{status}"
        );
    }
}
