//! Shared fixtures for hub-tui's tests: a fixed clock, a small namespace with
//! every state, parents and children, and helpers to draw into a TestBackend.

#![allow(dead_code)]

use hub_tui::{App, AppConfig, ConnStatus, OpEvent, OpState, OpStatus, SystemStatus, Update};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::json;

/// The fixed "now" of every test (ms since the Unix epoch).
pub const NOW: u64 = 1_764_000_000_000;
pub const URL: &str = "ws://127.0.0.1:8765/ws";

pub fn op(id: &str, name: &str, state: OpStatus, progress: f64, started_s_ago: u64) -> OpState {
    let mut s = OpState::new(id, name, NOW - started_s_ago * 1000);
    s.state = state;
    s.progress = Some(progress);
    s.updated_at = NOW - 1000;
    s.kind = Some(id.split('.').next().unwrap_or("default").to_owned());
    if state.is_terminal() {
        s.finished_at = Some(NOW - 2000);
    } else {
        s.rate = Some(1.5);
        s.eta_seconds = Some((100.0 - progress) / 1.5);
    }
    s
}

/// A namespace with one operation in every state, a parent with children.
pub fn fixture_ops() -> Vec<OpState> {
    let mut ops = Vec::new();
    let mut backup = op("backup.1", "Nightly backup", OpStatus::Running, 45.0, 600);
    backup.step = Some("uploading".into());
    backup.metadata = Some(json!({"host": "db-01", "retention": "30d"}));
    ops.push(backup);
    let mut dump = op(
        "backup.1.db",
        "Database dump",
        OpStatus::Completed,
        100.0,
        590,
    );
    dump.parent_id = Some("backup.1".into());
    ops.push(dump);
    let mut files = op(
        "backup.1.files",
        "Upload files",
        OpStatus::Running,
        30.0,
        300,
    );
    files.parent_id = Some("backup.1".into());
    files.step = Some("uploading".into());
    files.message = Some("12/40 files".into());
    files.current = Some(12.0);
    files.total = Some(40.0);
    ops.push(files);
    let mut render = op("render.7", "Render frame 7", OpStatus::Running, 62.0, 95);
    render.step = Some("shading".into());
    render.message = Some("tile 31 of 50".into());
    render.rate = Some(2.5);
    render.eta_seconds = Some(15.2);
    render.details = Some(json!({"tiles_done": 31, "tiles": 50}));
    ops.push(render);
    let mut import = op("import.3", "Import users.csv", OpStatus::Failed, 71.0, 400);
    import.error = Some("row 1042: invalid email address".into());
    ops.push(import);
    let mut train = op("train.2", "Train model v2", OpStatus::Canceled, 33.0, 1800);
    train.message = Some("canceled by alice".into());
    ops.push(train);
    ops.push(op(
        "render.6",
        "Render frame 6",
        OpStatus::Completed,
        100.0,
        200,
    ));
    let mut sync = op("sync.1", "Sync mirrors", OpStatus::Stalled, 12.0, 3700);
    sync.step = Some("listing".into());
    sync.eta_seconds = None;
    ops.push(sync);
    ops
}

pub fn app() -> App {
    App::new(AppConfig::new(URL, "default"))
}

/// A connected app holding the fixture (as after a fresh subscribe).
pub fn connected_app() -> App {
    let mut a = app();
    a.apply(
        Update::Connection(ConnStatus::Connecting { attempt: 0 }),
        NOW - 5000,
    );
    a.apply(Update::Connection(ConnStatus::Connected), NOW - 5000);
    a.apply(
        Update::Subscribed {
            epoch: "e1".into(),
            offset: 120,
            recovered: false,
            resumed_from: None,
        },
        NOW - 5000,
    );
    a.apply(
        Update::Snapshot {
            epoch: "e1".into(),
            offset: 120,
            operations: fixture_ops(),
        },
        NOW - 5000,
    );
    a.apply(
        Update::SystemStatus(SystemStatus {
            events_per_second: Some(153.0),
            deliveries_per_second: Some(400.0),
            connections: Some(3),
            is_stale: false,
            finished_retention_ms: None,
        }),
        NOW - 1000,
    );
    a
}

pub fn event(kind: &str, offset: u64, state: OpState) -> Update {
    Update::Event(Box::new(OpEvent {
        kind: kind.into(),
        offset,
        timestamp: NOW - 500,
        state,
        reason: None,
    }))
}

pub fn draw(app: &mut App, w: u16, h: u16, now: u64) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| app.render(f, now)).expect("draw");
    t
}

pub fn screen(app: &mut App, w: u16, h: u16, now: u64) -> String {
    draw(app, w, h, now).backend().to_string()
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(k: KeyCode) -> KeyEvent {
    KeyEvent::new(k, KeyModifiers::NONE)
}

pub fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}
