//! Test helpers shared by every integration test: start a real hub on
//! `127.0.0.1:0` (as a child process, so tests can kill, stop and restart
//! it), and talk to it over real WebSocket, HTTP and SSE connections.
//!
//! Nothing here sleeps to synchronise: every wait is for a line, a message
//! or a condition, with a deadline.

mod process;
mod raw;
mod sse;
mod tls;
mod ws;

pub use process::{Hub, HubBuilder};
pub use raw::{RawHttp, RawWs};
pub use sse::{Sse, SseEnd, SseEvent};
pub use tls::TlsFiles;
pub use tokio_tungstenite::tungstenite::Message;
pub use ws::{Ws, WsError};

use std::time::Duration;

/// The default deadline for a wait in tests.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The hub binary for tests of crates that do not build it: the
/// `PROGRESS_HUB_BIN` variable, or `progress-hub` next to the running
/// test's `deps/` directory (build it first with `cargo build -p
/// progress-hub`; panics naming that command when it is missing).
pub fn hub_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("PROGRESS_HUB_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("progress-hub"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p progress-hub`",
        bin.display()
    );
    bin
}

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
