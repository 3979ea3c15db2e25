//! State → screen: the dashboard drawn into ratatui's TestBackend and
//! compared with insta snapshots (connected, reconnecting with countdown,
//! stale, failed, filter active, detail pane, cancel prompt, 80×24, wide).

mod support;

use hub_tui::{ConnStatus, OpStatus, Update};
use ratatui::style::{Color, Modifier};
use support::*;

#[test]
fn connected_wide() {
    let mut a = connected_app();
    insta::assert_snapshot!(screen(&mut a, 140, 16, NOW));
}

#[test]
fn connected_narrow_80x24() {
    let mut a = connected_app();
    insta::assert_snapshot!(screen(&mut a, 80, 24, NOW));
}

#[test]
fn reconnecting_with_countdown_and_stale_rows() {
    let mut a = connected_app();
    a.apply(
        Update::Connection(ConnStatus::Reconnecting {
            attempt: 3,
            next_retry_at: NOW + 41_000 + 4_200,
            cause: Some("connection refused".into()),
        }),
        NOW + 40_000,
    );
    // Data last arrived 42 s before `now`.
    let t = draw(&mut a, 120, 14, NOW + 41_000);
    let text = t.backend().to_string();
    assert!(text.contains("in 5s"), "{text}");
    insta::assert_snapshot!(text);
    // The indicator is yellow, and every row is dimmed.
    let buf = t.backend().buffer();
    let ind = buf
        .content()
        .iter()
        .rev()
        .find(|c| c.symbol() == "◐")
        .expect("indicator");
    assert_eq!(ind.fg, Color::Yellow);
    let row = buf.cell((5, 2)).expect("row cell");
    assert!(row.modifier.contains(Modifier::DIM));
}

#[test]
fn stale_while_disconnected() {
    let mut a = connected_app();
    a.apply(Update::Connection(ConnStatus::Disconnected), NOW - 10_000);
    insta::assert_snapshot!(screen(&mut a, 100, 12, NOW + 60_000));
}

#[test]
fn failed_token_rejected() {
    let mut a = app();
    a.apply(
        Update::Connection(ConnStatus::Connecting { attempt: 0 }),
        NOW - 100,
    );
    a.apply(
        Update::Connection(ConnStatus::Failed {
            reason: "token rejected".into(),
        }),
        NOW - 100,
    );
    let t = draw(&mut a, 80, 10, NOW);
    let text = t.backend().to_string();
    assert!(text.contains("Connection failed: token rejected"), "{text}");
    insta::assert_snapshot!(text);
    let ind = t
        .backend()
        .buffer()
        .content()
        .iter()
        .rev()
        .find(|c| c.symbol() == "✗")
        .expect("indicator: not the ● of connected, which colour alone told apart");
    assert_eq!(ind.fg, Color::Red);
}

#[test]
fn connected_indicator_is_green_and_states_have_colours() {
    let mut a = connected_app();
    let t = draw(&mut a, 120, 14, NOW);
    let buf = t.backend().buffer();
    let ind = buf
        .content()
        .iter()
        .rev()
        .find(|c| c.symbol() == "●")
        .expect("indicator");
    assert_eq!(ind.fg, Color::Green);
    let failed = buf
        .content()
        .iter()
        .find(|c| c.symbol() == "✗")
        .expect("failed symbol");
    assert_eq!(failed.fg, Color::Red);
}

#[test]
fn filter_active() {
    let mut a = connected_app();
    for c in "/render".chars() {
        a.handle_key(key(c), NOW);
    }
    let typing = screen(&mut a, 100, 10, NOW);
    assert!(typing.contains("Filter: render"), "{typing}");
    a.handle_key(code(ratatui::crossterm::event::KeyCode::Enter), NOW);
    a.handle_key(key('s'), NOW); // active only
    insta::assert_snapshot!(screen(&mut a, 100, 10, NOW));
}

#[test]
fn detail_pane() {
    let mut a = connected_app();
    let mut s = a.op("render.7").expect("op").state.clone();
    for (i, p) in [64.0, 66.0, 68.0].into_iter().enumerate() {
        s.progress = Some(p);
        s.last_offset = 121 + i as u64;
        a.apply(event("progress_update", 121 + i as u64, s.clone()), NOW);
    }
    // Select render.7 (rows: backup.1, backup.1.files, backup.1.db, render.7, ...).
    a.handle_key(key('j'), NOW);
    a.handle_key(key('j'), NOW);
    a.handle_key(key('j'), NOW);
    a.handle_key(code(ratatui::crossterm::event::KeyCode::Enter), NOW);
    assert_eq!(a.selected(), Some("render.7"));
    insta::assert_snapshot!(screen(&mut a, 100, 30, NOW));
}

/// The reply to a resume from offset 121 that finds the hub at 133.
fn resumed_from_121_to_133(a: &mut hub_tui::App) {
    a.apply(
        Update::Subscribed {
            epoch: "e1".into(),
            offset: 133,
            recovered: true,
            resumed_from: Some(121),
        },
        NOW,
    );
}

#[test]
fn cancel_prompt_and_toasts() {
    let mut a = connected_app();
    let mut failing = a.op("render.7").expect("op").state.clone();
    failing.state = OpStatus::Failed;
    failing.error = Some("GPU out of memory".into());
    failing.finished_at = Some(NOW);
    a.apply(event("operation_failed", 121, failing), NOW);
    a.apply(
        Update::Connection(ConnStatus::Reconnecting {
            attempt: 1,
            next_retry_at: NOW + 1000,
            cause: None,
        }),
        NOW,
    );
    a.apply(Update::Connection(ConnStatus::Connected), NOW);
    resumed_from_121_to_133(&mut a);
    // Until the replay reaches offset 133 the rows may be behind the hub.
    let text = screen(&mut a, 100, 14, NOW);
    assert!(text.contains("catching up"), "{text}");
    assert!(!text.contains("Reconnected"), "{text}");
    let backup = a.op("backup.1").expect("op").state.clone();
    a.apply(event("progress_update", 133, backup), NOW);
    a.handle_key(key('c'), NOW); // backup.1 is selected first
    let text = screen(&mut a, 100, 14, NOW + 100);
    assert!(
        text.contains("Reconnected — 12 updates recovered"),
        "{text}"
    );
    assert!(
        text.contains("Render frame 7 failed: GPU out of memory"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// The driver reloads from the client's own map when updates were dropped
/// (`Lagged`); during a resume that reload may still be behind the
/// subscribed offset and must not end "catching up", and the one that
/// reaches it must, even when the event at that offset itself was dropped.
#[test]
fn reload_during_a_resume_ends_catching_up_only_at_the_subscribed_offset() {
    let mut a = connected_app();
    a.apply(Update::Connection(ConnStatus::Disconnected), NOW);
    a.apply(Update::Connection(ConnStatus::Connected), NOW);
    resumed_from_121_to_133(&mut a);
    let reload = |offset| Update::Snapshot {
        epoch: "e1".into(),
        offset,
        operations: fixture_ops(),
    };
    a.apply(reload(125), NOW);
    let text = screen(&mut a, 100, 14, NOW);
    assert!(text.contains("catching up"), "{text}");
    a.apply(reload(133), NOW + 10);
    let text = screen(&mut a, 100, 14, NOW + 10);
    assert!(!text.contains("catching up"), "{text}");
    assert!(
        text.contains("Reconnected — 12 updates recovered"),
        "{text}"
    );
}

#[test]
fn snapshot_after_reconnect_is_announced() {
    let mut a = connected_app();
    a.apply(
        Update::Connection(ConnStatus::Reconnecting {
            attempt: 1,
            next_retry_at: NOW,
            cause: None,
        }),
        NOW,
    );
    a.apply(Update::Connection(ConnStatus::Connected), NOW);
    a.apply(
        Update::Subscribed {
            epoch: "e2".into(),
            offset: 5,
            recovered: false,
            resumed_from: None,
        },
        NOW,
    );
    let text = screen(&mut a, 100, 10, NOW);
    assert!(text.contains("Reloaded from snapshot"), "{text}");
    // Toasts expire.
    a.tick(NOW + 60_000);
    let later = screen(&mut a, 100, 10, NOW + 60_000);
    assert!(!later.contains("Reloaded from snapshot"), "{later}");
}

#[test]
fn waiting_for_the_hub() {
    let mut a = app();
    a.apply(
        Update::Connection(ConnStatus::Reconnecting {
            attempt: 1,
            next_retry_at: NOW + 900,
            cause: Some("connection refused".into()),
        }),
        NOW,
    );
    insta::assert_snapshot!(screen(&mut a, 80, 8, NOW));
}

#[test]
fn the_list_scrolls_to_keep_the_selection_visible() {
    let mut a = app();
    let ops = (0..30u64)
        .map(|i| {
            op(
                &format!("job.{i:02}"),
                &format!("Job {i:02}"),
                OpStatus::Running,
                i as f64,
                100 - i,
            )
        })
        .collect();
    a.apply(
        Update::Snapshot {
            epoch: "e".into(),
            offset: 30,
            operations: ops,
        },
        NOW,
    );
    let top = screen(&mut a, 80, 12, NOW);
    assert!(top.contains("Job 00") && !top.contains("Job 29"), "{top}");
    a.handle_key(code(ratatui::crossterm::event::KeyCode::End), NOW);
    let bottom = screen(&mut a, 80, 12, NOW);
    assert!(
        bottom.contains("›▶ Job 29") && !bottom.contains("Job 00"),
        "{bottom}"
    );
    assert!(bottom.contains("rows 22-30"), "{bottom}");
    a.handle_key(code(ratatui::crossterm::event::KeyCode::PageUp), NOW);
    let up = screen(&mut a, 80, 12, NOW);
    assert!(up.contains("›▶ Job 20"), "{up}");
}

#[test]
fn without_hub_figures_the_status_bar_shows_the_received_rate() {
    let mut a = app();
    a.apply(Update::Connection(ConnStatus::Connected), NOW - 10_000);
    a.apply(
        Update::Subscribed {
            epoch: "e".into(),
            offset: 0,
            recovered: false,
            resumed_from: None,
        },
        NOW - 10_000,
    );
    let mut s = op("job.1", "Job", OpStatus::Running, 0.0, 10);
    for i in 0..40u64 {
        s.last_offset = i + 1;
        s.progress = Some(i as f64);
        // 8 a second over the 5 whole seconds before NOW.
        a.apply(
            event("progress_update", i + 1, s.clone()),
            NOW - 5_000 + i * 125,
        );
    }
    let text = screen(&mut a, 100, 6, NOW);
    assert!(text.contains("recv 8.0/s"), "{text}");
}

/// A subscription refused for now (`RATE_LIMITED`, reason `snapshots`)
/// says so in the status bar and in place of the rows, with the retry
/// countdown, until data arrives; it does not look connected and waiting.
#[test]
fn refused_for_now_shows_why_until_data_arrives() {
    let mut a = app();
    a.apply(Update::Connection(ConnStatus::Connected), NOW);
    a.apply(
        Update::SubscriptionRefused {
            code: "RATE_LIMITED".into(),
            message: "too many snapshots in flight".into(),
            reason: Some("snapshots".into()),
            retry_at: Some(NOW + 1_500),
        },
        NOW,
    );
    let text = screen(&mut a, 140, 8, NOW);
    let status = text.lines().last().unwrap_or_default().to_owned();
    assert!(
        status.contains("subscription refused for now: RATE_LIMITED (snapshots), retrying in 2s"),
        "{text}"
    );
    assert!(
        text.contains("No data: subscription refused for now"),
        "{text}"
    );
    assert!(!text.contains("Waiting for the hub"), "{text}");
    // Still there after any toast would have expired.
    a.tick(NOW + 60_000);
    assert!(screen(&mut a, 140, 8, NOW + 60_000).contains("RATE_LIMITED"));
    // Data clears it.
    a.apply(
        Update::Snapshot {
            epoch: "e".into(),
            offset: 0,
            operations: Vec::new(),
        },
        NOW + 61_000,
    );
    assert!(a.blocked().is_none());
    assert!(!screen(&mut a, 140, 8, NOW + 61_000).contains("refused"));
}

/// A final refusal (`FORBIDDEN`: the token does not cover the namespace)
/// stays on screen, not only as a toast that disappears.
#[test]
fn forbidden_subscription_stays_on_screen() {
    let mut a = app();
    a.apply(Update::Connection(ConnStatus::Connected), NOW);
    a.apply(
        Update::SubscriptionRefused {
            code: "FORBIDDEN".into(),
            message: "token does not cover namespace default".into(),
            reason: None,
            retry_at: None,
        },
        NOW,
    );
    a.tick(NOW + 600_000);
    let text = screen(&mut a, 140, 8, NOW + 600_000);
    assert!(
        text.contains("subscription refused: FORBIDDEN: token does not cover"),
        "{text}"
    );
}
