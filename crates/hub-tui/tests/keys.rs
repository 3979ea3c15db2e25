//! Key handling: movement, detail pane, cancel confirmation (and when it is
//! not offered), filters, reconnect and quit — the model and the commands.

mod support;

use hub_tui::{Command, ConnStatus, Mode, OpStatus, StateFilter, SystemStatus, Update};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use support::*;

#[test]
fn arrows_and_jk_move_the_selection_within_bounds() {
    let mut a = connected_app();
    a.handle_key(code(KeyCode::Up), NOW);
    assert_eq!(a.selected(), Some("backup.1"));
    a.handle_key(key('j'), NOW);
    assert_eq!(a.selected(), Some("backup.1.files"));
    a.handle_key(code(KeyCode::Down), NOW);
    assert_eq!(a.selected(), Some("backup.1.db"));
    a.handle_key(key('k'), NOW);
    assert_eq!(a.selected(), Some("backup.1.files"));
    a.handle_key(code(KeyCode::End), NOW);
    assert_eq!(a.selected(), Some("render.6"));
    a.handle_key(key('j'), NOW);
    assert_eq!(a.selected(), Some("render.6"));
    a.handle_key(key('g'), NOW);
    assert_eq!(a.selected(), Some("backup.1"));
}

#[test]
fn the_selection_follows_its_operation_when_the_order_changes() {
    let mut a = connected_app();
    a.handle_key(code(KeyCode::End), NOW); // render.6 (completed, last)
    let mut s = a.op("render.7").expect("op").state.clone();
    s.state = OpStatus::Completed;
    s.finished_at = Some(NOW);
    a.apply(event("operation_completed", 130, s), NOW);
    assert_eq!(a.selected(), Some("render.6"));
    let rows: Vec<String> = a.rows().iter().map(|r| r.id.clone()).collect();
    // Finished newest first: render.7 started after render.6.
    let i7 = rows.iter().position(|r| r == "render.7").expect("row");
    let i6 = rows.iter().position(|r| r == "render.6").expect("row");
    assert!(i7 < i6, "{rows:?}");
}

#[test]
fn enter_toggles_the_detail_pane_and_esc_closes_it() {
    let mut a = connected_app();
    a.handle_key(code(KeyCode::Enter), NOW);
    assert!(a.detail_open());
    a.handle_key(code(KeyCode::Esc), NOW);
    assert!(!a.detail_open());
    a.handle_key(code(KeyCode::Enter), NOW);
    a.handle_key(code(KeyCode::Enter), NOW);
    assert!(!a.detail_open());
}

#[test]
fn c_asks_then_y_cancels() {
    let mut a = connected_app();
    assert!(a.handle_key(key('c'), NOW).is_empty());
    assert_eq!(
        a.mode(),
        &Mode::ConfirmCancel {
            operation_id: "backup.1".into()
        }
    );
    // Other keys are ignored while asking.
    assert!(a.handle_key(key('j'), NOW).is_empty());
    assert_eq!(a.selected(), Some("backup.1"));
    assert_eq!(
        a.handle_key(key('y'), NOW),
        vec![Command::Cancel("backup.1".into())]
    );
    assert_eq!(a.mode(), &Mode::Normal);
    // The row says "canceling" at once, and a toast confirms the request.
    assert!(a.is_canceling("backup.1"));
    let text = screen(&mut a, 120, 12, NOW);
    assert!(text.contains("canceling"), "{text}");
    assert!(text.contains("Cancel requested: Nightly backup"), "{text}");
    // A refusal from the hub takes the mark away again.
    a.apply(
        Update::CancelRefused {
            operation_id: "backup.1".into(),
            code: "OPERATION_FINISHED".into(),
            message: "already finished".into(),
        },
        NOW,
    );
    assert!(!a.is_canceling("backup.1"));
}

/// A cancel confirmed while the hub is unreachable is kept by the client
/// and sent on reconnect: the toast says it is queued, not requested.
#[test]
fn a_cancel_while_disconnected_is_announced_as_queued() {
    let mut a = connected_app();
    a.apply(Update::Connection(ConnStatus::Disconnected), NOW);
    a.handle_key(key('c'), NOW);
    assert_eq!(
        a.handle_key(key('y'), NOW),
        vec![Command::Cancel("backup.1".into())]
    );
    let text = screen(&mut a, 120, 12, NOW);
    assert!(text.contains("Cancel of Nightly backup queued"), "{text}");
    assert!(!text.contains("Cancel requested"), "{text}");
}

#[test]
fn n_or_esc_declines() {
    let mut a = connected_app();
    a.handle_key(key('c'), NOW);
    assert!(a.handle_key(key('n'), NOW).is_empty());
    assert_eq!(a.mode(), &Mode::Normal);
    a.handle_key(key('c'), NOW);
    assert!(a.handle_key(code(KeyCode::Esc), NOW).is_empty());
    assert_eq!(a.mode(), &Mode::Normal);
}

#[test]
fn cancel_is_not_offered_without_permission_or_for_finished_operations() {
    let mut a = connected_app();
    a.handle_key(key('j'), NOW);
    a.handle_key(key('j'), NOW); // backup.1.db, completed
    a.handle_key(key('c'), NOW);
    assert_eq!(a.mode(), &Mode::Normal);
    assert!(screen(&mut a, 120, 12, NOW).contains("has already finished"));

    let mut cfg = hub_tui::AppConfig::new(URL, "default");
    cfg.can_cancel = false;
    let mut b = hub_tui::App::new(cfg);
    b.apply(
        Update::Snapshot {
            epoch: "e".into(),
            offset: 1,
            operations: fixture_ops(),
        },
        NOW,
    );
    b.handle_key(key('c'), NOW);
    assert_eq!(b.mode(), &Mode::Normal);
    let text = screen(&mut b, 120, 12, NOW);
    assert!(text.contains("not allowed"), "{text}");
    assert!(!text.contains("c cancel"), "{text}");
}

#[test]
fn a_forbidden_cancel_turns_the_offer_off() {
    let mut a = connected_app();
    a.apply(
        Update::CancelRefused {
            operation_id: "render.7".into(),
            code: "FORBIDDEN".into(),
            message: "no".into(),
        },
        NOW,
    );
    assert!(!a.config().can_cancel);
}

#[test]
fn slash_filters_live_and_esc_clears() {
    let mut a = connected_app();
    a.handle_key(key('/'), NOW);
    assert_eq!(a.mode(), &Mode::Filter);
    for c in "render.*".chars() {
        a.handle_key(key(c), NOW);
    }
    let ids: Vec<String> = a.rows().iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec!["render.7", "render.6"]);
    // q is text while typing, not quit.
    assert!(a.handle_key(key('q'), NOW).is_empty());
    a.handle_key(code(KeyCode::Backspace), NOW);
    a.handle_key(code(KeyCode::Enter), NOW);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(a.rows().len(), 2);
    a.handle_key(code(KeyCode::Esc), NOW);
    assert_eq!(a.rows().len(), 8);
}

#[test]
fn s_cycles_state_filters() {
    let mut a = connected_app();
    a.handle_key(key('s'), NOW);
    assert_eq!(a.rows().len(), 4, "active: 3 running + 1 stalled");
    a.handle_key(key('s'), NOW);
    assert_eq!(a.rows().len(), 3, "running");
    // Children of a filtered-out parent become top-level rows.
    for _ in 0..4 {
        a.handle_key(key('s'), NOW);
    }
    let rows = a.rows().to_vec();
    assert_eq!(rows.len(), 2, "completed");
    assert!(rows.iter().all(|r| r.depth == 0));
    a.handle_key(key('s'), NOW);
    assert_eq!(a.rows().len(), 8);
    let _ = StateFilter::All;
}

#[test]
fn r_reconnects_q_and_ctrl_c_quit() {
    let mut a = connected_app();
    assert_eq!(a.handle_key(key('r'), NOW), vec![Command::Reconnect]);
    assert_eq!(a.handle_key(key('q'), NOW), vec![Command::Quit]);
    assert!(a.should_quit());
    let mut b = connected_app();
    b.handle_key(key('/'), NOW);
    assert_eq!(b.handle_key(ctrl('c'), NOW), vec![Command::Quit]);
    let mut c = connected_app();
    c.handle_key(key('c'), NOW);
    assert_eq!(c.handle_key(ctrl('c'), NOW), vec![Command::Quit]);
}

#[test]
fn key_releases_are_ignored() {
    let mut a = connected_app();
    let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    k.kind = KeyEventKind::Release;
    assert!(a.handle_key(k, NOW).is_empty());
    assert!(!a.should_quit());
}

#[test]
fn recent_events_are_a_bounded_ring_and_old_deliveries_are_ignored() {
    let mut a = connected_app();
    let mut s = a.op("render.7").expect("op").state.clone();
    for i in 0..50u64 {
        s.progress = Some(i as f64);
        s.last_offset = 200 + i;
        a.apply(event("progress_update", 200 + i, s.clone()), NOW);
    }
    let e = a.op("render.7").expect("op");
    assert_eq!(e.recent.len(), 20);
    assert_eq!(e.recent.front().map(|r| r.offset), Some(230));
    assert_eq!(e.recent.back().map(|r| r.offset), Some(249));
    // A replayed older event does not roll the state back.
    s.progress = Some(1.0);
    s.last_offset = 201;
    a.apply(event("progress_update", 201, s), NOW);
    assert_eq!(a.op("render.7").expect("op").state.progress, Some(49.0));
    assert_eq!(a.position(), Some(("e1", 249)));
}

#[test]
fn finished_operations_are_forgotten_after_the_retention() {
    let mut a = connected_app();
    a.tick(NOW + 3_600_000 - 2_000);
    assert_eq!(a.len(), 8);
    a.tick(NOW + 3_600_000);
    assert_eq!(a.len(), 4, "only running and stalled ones stay");
}

#[test]
fn the_hubs_announced_retention_replaces_the_assumed_hour() {
    let mut a = connected_app();
    // A hub with `--finished-retention 60s` says so in `system_status`.
    a.apply(
        Update::SystemStatus(SystemStatus {
            finished_retention_ms: Some(60_000),
            ..SystemStatus::default()
        }),
        NOW,
    );
    assert_eq!(a.config().finished_retention_ms, 60_000);
    a.tick(NOW + 60_000 - 2_000);
    assert_eq!(a.len(), 8);
    a.tick(NOW + 60_000);
    assert_eq!(a.len(), 4, "only running and stalled ones stay");
}

#[test]
fn connection_failure_toasts_once() {
    let mut a = connected_app();
    let failed = ConnStatus::Failed {
        reason: "token rejected".into(),
    };
    a.apply(Update::Connection(failed.clone()), NOW);
    a.apply(Update::Connection(failed), NOW);
    assert_eq!(a.toasts().live(NOW).count(), 1);
    assert!(a.is_stale());
}

#[test]
fn until_the_user_moves_the_selection_stays_on_the_first_row() {
    let mut a = connected_app();
    assert_eq!(a.rows().first().map(|r| r.id.as_str()), Some("backup.1"));
    assert_eq!(a.selected(), Some("backup.1"));
    // backup.1 finishes and sinks; the selection stays on top.
    let mut s = a.op("backup.1").expect("op").state.clone();
    s.state = OpStatus::Completed;
    s.finished_at = Some(NOW);
    s.last_offset = 500;
    a.apply(event("operation_completed", 500, s), NOW);
    let first = a.rows().first().map(|r| r.id.clone());
    assert_eq!(a.selected().map(str::to_owned), first);
    assert_ne!(a.selected(), Some("backup.1"));
}
