//! `fanout`: N viewers subscribed to one room, P producers publishing as
//! fast as their ack windows allow; delivered messages per second at the
//! viewers over a fixed window after a warm-up.

use super::{Producers, Viewers, VIEWER_READ_BUFFER};
use crate::args::FanoutArgs;
use crate::producer::Pacing;
use crate::target::{room_name, Meter, Target, Usage};
use crate::viewer::ViewerTotals;
use std::fmt;
use tokio::time::Instant;

/// What one fan-out run measured.
#[derive(Clone, Debug)]
pub struct FanoutResult {
    /// Server name.
    pub server: &'static str,
    /// Viewers.
    pub viewers: usize,
    /// Producers.
    pub producers: usize,
    /// Viewer totals within the window.
    pub delivered: ViewerTotals,
    /// Messages acknowledged to producers within the window.
    pub acked: u64,
    /// Errors producers received (whole run).
    pub producer_errors: u64,
    /// Time and CPU within the window.
    pub usage: Usage,
    /// The first producer failure, if any.
    pub failure: Option<String>,
}

impl FanoutResult {
    /// Delivered messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.delivered.messages as f64 / self.usage.secs
    }

    /// Delivered frames per second.
    pub fn frames_per_sec(&self) -> f64 {
        self.delivered.frames as f64 / self.usage.secs
    }

    /// Delivered messages per CPU-second the server used (when its PID is
    /// known): a figure less sensitive to other load on the machine.
    pub fn msgs_per_server_cpu_sec(&self) -> Option<f64> {
        let cores = self.usage.peer_cores.filter(|c| *c > 0.0)?;
        Some(self.msgs_per_sec() / cores)
    }

    /// Published (acknowledged) messages per second.
    pub fn published_per_sec(&self) -> f64 {
        self.acked as f64 / self.usage.secs
    }
}

impl fmt::Display for FanoutResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.usage;
        let expected = self.acked as f64 * self.viewers as f64;
        writeln!(
            f,
            "fanout  {}: {} viewers, {} producers, {:.1} s",
            self.server, self.viewers, self.producers, u.secs
        )?;
        writeln!(
            f,
            "  delivered {:>12.0} msgs/s  {:>10.0} frames/s  {:.1} msgs/frame",
            self.msgs_per_sec(),
            self.frames_per_sec(),
            self.delivered.messages as f64 / self.delivered.frames.max(1) as f64
        )?;
        writeln!(
            f,
            "  payload   {:>12.1} MB/s, {:.0} bytes/msg",
            self.delivered.bytes as f64 / u.secs / 1e6,
            self.delivered.bytes as f64 / self.delivered.messages.max(1) as f64
        )?;
        writeln!(
            f,
            "  published {:>12.0} msgs/s (acked); delivered / (published x viewers) = {:.3}",
            self.published_per_sec(),
            self.delivered.messages as f64 / expected.max(1.0)
        )?;
        writeln!(
            f,
            "  cpu: generator {:.2} cores, server {}",
            u.own_cores,
            u.peer_cores
                .map_or("n/a".into(), |c| format!("{c:.2} cores"))
        )?;
        write!(
            f,
            "  viewer errors {}, viewers closed early {}, producer errors {}",
            self.delivered.errors, self.delivered.closed, self.producer_errors
        )?;
        if let Some(e) = &self.failure {
            write!(f, "\n  producer failure: {e}")?;
        }
        Ok(())
    }
}

/// Runs the fan-out scenario against `target`.
pub async fn run(target: &Target, a: &FanoutArgs) -> anyhow::Result<FanoutResult> {
    let room = room_name("fanout");
    let cc = a.target.connect_concurrency;
    let viewers = Viewers::start(target, &room, a.viewers, cc, VIEWER_READ_BUFFER, None).await?;
    let deadline = Instant::now() + a.warmup + a.duration + std::time::Duration::from_secs(1);
    let producers = match Producers::start(
        target,
        &room,
        a.producers,
        cc,
        Pacing::Window(a.window),
        deadline,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            viewers.stop().await;
            return Err(e);
        }
    };
    tokio::time::sleep(a.warmup).await;
    let (v0, p0, m0) = (viewers.totals(), producers.totals(), Meter::now(target.pid));
    tokio::time::sleep(a.duration).await;
    let (v1, p1, m1) = (viewers.totals(), producers.totals(), Meter::now(target.pid));
    let (_, failure) = producers.join().await;
    viewers.stop().await;
    Ok(FanoutResult {
        server: target.proto.name(),
        viewers: a.viewers,
        producers: a.producers,
        delivered: v1.since(v0),
        acked: p1.1 - p0.1,
        producer_errors: p1.2,
        usage: m1.since(&m0),
        failure: failure.map(|e| format!("{e:#}")),
    })
}
