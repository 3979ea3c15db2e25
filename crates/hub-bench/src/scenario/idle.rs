//! `idle`: C subscribed connections that receive nothing but heartbeats;
//! the server's resident memory before and after, per connection.

use super::{Viewers, IDLE_READ_BUFFER};
use crate::args::IdleArgs;
use crate::target::{room_name, Target};
use anyhow::anyhow;
use std::fmt;

/// What one idle run measured.
#[derive(Clone, Debug)]
pub struct IdleResult {
    /// Server name.
    pub server: &'static str,
    /// Connections held.
    pub connections: usize,
    /// Server RSS before connecting, bytes.
    pub rss_before: u64,
    /// Server RSS with every connection open and subscribed, bytes.
    pub rss_after: u64,
    /// Connections that ended before the measurement.
    pub closed: u64,
}

impl IdleResult {
    /// Server memory per connection, bytes.
    pub fn bytes_per_conn(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.connections.max(1) as f64
    }
}

impl fmt::Display for IdleResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "idle    {}: {} subscribed connections, RSS {:.1} MiB -> {:.1} MiB: {:.0} bytes ({:.2} KiB) per connection; closed early {}",
            self.server,
            self.connections,
            mib(self.rss_before),
            mib(self.rss_after),
            self.bytes_per_conn(),
            self.bytes_per_conn() / 1024.0,
            self.closed
        )
    }
}

/// Runs the idle scenario against `target` (whose PID must be known).
pub async fn run(target: &Target, a: &IdleArgs) -> anyhow::Result<IdleResult> {
    let pid_hint =
        "the server's PID is needed: give --hub-pid / --socketio-pid, or let the bench start it";
    let rss_before = target.rss().ok_or_else(|| anyhow!(pid_hint))?;
    let room = room_name("idle");
    let viewers = Viewers::start(
        target,
        &room,
        a.connections,
        a.target.connect_concurrency,
        IDLE_READ_BUFFER,
        None,
    )
    .await?;
    tokio::time::sleep(a.settle).await;
    let rss_after = target.rss().ok_or_else(|| anyhow!(pid_hint));
    let closed = viewers.totals().closed;
    viewers.stop().await;
    Ok(IdleResult {
        server: target.proto.name(),
        connections: a.connections,
        rss_before,
        rss_after: rss_after?,
        closed,
    })
}
