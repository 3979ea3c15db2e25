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
        2 => prop::option::of(prop_oneof![Just(401u16), Just(500), Just(503)])
            .prop_map(|http_status| Event::ConnectFailed { http_status }),
        1 => Just(Event::Timeout),
        1 => Just(Event::NetworkOnline),
        1 => Just(Event::ReconnectNow),
        1 => Just(Event::TokenRefreshed),
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
            ConnState::Disconnected | ConnState::Failed => {
                prop_assert!(m.poll_timeout().is_none());
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
        let mut w = World { m: Machine::with_seed(config, seed), config, open: false, opens: 0, now: 0 };
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
