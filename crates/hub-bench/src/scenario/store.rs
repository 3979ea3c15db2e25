//! `store`: durable events per second, directly into the store
//! ([`hub_store::bench_durable_events`]: group commit, one fsync per
//! batch) and, optionally, through a hub with a data directory (producers
//! pipelining against acks, which the hub sends after the fsync).

use super::Producers;
use crate::args::StoreArgs;
use crate::producer::Pacing;
use crate::target::{room_name, Meter, Target, Usage};
use std::fmt;
use tokio::time::Instant;

/// The direct store benchmark's outcome.
pub fn direct(a: &StoreArgs) -> anyhow::Result<hub_store::BenchReport> {
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("hub-bench-store-")
        .tempdir_in(parent)?;
    Ok(hub_store::bench_durable_events(
        dir.path(),
        a.events,
        a.submitters,
    )?)
}

/// What a run through the hub measured.
#[derive(Clone, Debug)]
pub struct ViaHubResult {
    /// Producers.
    pub producers: usize,
    /// Events acknowledged within the window.
    pub acked: u64,
    /// Time and CPU within the window.
    pub usage: Usage,
    /// Errors producers received.
    pub errors: u64,
    /// The first producer failure, if any.
    pub failure: Option<String>,
}

impl fmt::Display for ViaHubResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store   via hub: {} producers: {:.0} durable acked events/s over {:.1} s; cpu: generator {:.2} cores, hub {}; errors {}",
            self.producers,
            self.acked as f64 / self.usage.secs,
            self.usage.secs,
            self.usage.own_cores,
            self.usage.peer_cores.map_or("n/a".into(), |c| format!("{c:.2} cores")),
            self.errors
        )?;
        if let Some(e) = &self.failure {
            write!(f, "\n  producer failure: {e}")?;
        }
        Ok(())
    }
}

/// Publishes through `target` (a hub with a data directory) with no viewers.
pub async fn via_hub(target: &Target, a: &StoreArgs) -> anyhow::Result<ViaHubResult> {
    let room = room_name("store");
    let deadline = Instant::now() + a.warmup + a.duration + std::time::Duration::from_secs(1);
    let pacing = Pacing::Window(a.window);
    let producers = Producers::start(
        target,
        &room,
        a.producers,
        a.target.connect_concurrency,
        pacing,
        deadline,
    )
    .await?;
    tokio::time::sleep(a.warmup).await;
    let (p0, m0) = (producers.totals(), Meter::now(target.pid));
    tokio::time::sleep(a.duration).await;
    let (p1, m1) = (producers.totals(), Meter::now(target.pid));
    let (_, failure) = producers.join().await;
    Ok(ViaHubResult {
        producers: a.producers,
        acked: p1.1 - p0.1,
        usage: m1.since(&m0),
        errors: p1.2,
        failure: failure.map(|e| format!("{e:#}")),
    })
}
