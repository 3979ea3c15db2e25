//! The scenarios and what they share: crowds of viewers and producers
//! started against a [`Target`], read while running, stopped together.

pub mod fanout;
pub mod idle;
pub mod latency;
pub mod store;
pub mod targets;

use crate::adapter::Proto;
use crate::conn;
use crate::producer::{self, Job, Pacing, ProducerCounters};
use crate::target::Target;
use crate::viewer::{self, ViewerCounters, ViewerTotals, Window};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Read buffer of a viewer connection that receives batched frames.
pub const VIEWER_READ_BUFFER: usize = 16 * 1024;
/// Read buffer of a latency viewer (one small message per frame: a
/// smaller buffer is less to clear before each read).
pub const LATENCY_READ_BUFFER: usize = 4 * 1024;
/// Read buffer of an idle connection.
pub const IDLE_READ_BUFFER: usize = 4 * 1024;
/// How long stopping may take before tasks are abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Subscribed viewers, each read by its own task.
pub struct Viewers {
    counters: Vec<Arc<ViewerCounters>>,
    tasks: Vec<JoinHandle<Option<viewer::Latencies>>>,
    stop: watch::Sender<bool>,
}

impl Viewers {
    /// Opens `n` viewers subscribed to `room` and starts reading them.
    pub async fn start(
        target: &Target,
        room: &str,
        n: usize,
        concurrency: usize,
        read_buffer: usize,
        window: Option<Arc<Window>>,
    ) -> anyhow::Result<Viewers> {
        let (stop, stop_rx) = watch::channel(false);
        let proto = target.proto;
        let opened = conn::open_many(n, concurrency, |_| {
            let url = target.ws_url.clone();
            let steps = proto.viewer_handshake(room);
            let stop_rx = stop_rx.clone();
            let window = window.clone();
            async move {
                let stamp = window.as_ref().is_some_and(|w| w.at_arrival());
                let ws = conn::open_raw(&url, read_buffer, proto, steps, stamp).await?;
                let counters = Arc::new(ViewerCounters::default());
                let task = tokio::spawn(viewer::run(ws, proto, counters.clone(), window, stop_rx));
                Ok((counters, task))
            }
        })
        .await;
        let opened = match opened {
            Ok(v) => v,
            Err(e) => {
                let _ = stop.send(true);
                return Err(e);
            }
        };
        let (counters, tasks) = opened.into_iter().unzip();
        Ok(Viewers {
            counters,
            tasks,
            stop,
        })
    }

    /// The viewers' totals now.
    pub fn totals(&self) -> ViewerTotals {
        ViewerTotals::sum(&self.counters)
    }

    /// How many viewers there are.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Stops every viewer and merges their latencies.
    pub async fn stop(self) -> Option<viewer::Latencies> {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut merged: Option<viewer::Latencies> = None;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(Some(h))) => match merged.as_mut() {
                    Some(m) => m.add(&h),
                    None => merged = Some(h),
                },
                Ok(_) => {}
                Err(_) => task.abort(),
            }
        }
        merged
    }
}

/// Publishing producers, one operation each.
pub struct Producers {
    counters: Vec<Arc<ProducerCounters>>,
    tasks: Vec<JoinHandle<anyhow::Result<Option<Histogram<u64>>>>>,
}

impl Producers {
    /// Opens `n` producers (on the hub each starts its operation), then
    /// starts publishing with `pacing` until `deadline`.
    pub async fn start(
        target: &Target,
        room: &str,
        n: usize,
        concurrency: usize,
        pacing: Pacing,
        deadline: Instant,
    ) -> anyhow::Result<Producers> {
        let proto: Proto = target.proto;
        let tag = std::process::id();
        let wss = conn::open_many(n, concurrency, |i| {
            let url = target.ws_url.clone();
            let steps = proto.producer_handshake(room, &format!("p{i}-{tag}"));
            async move { conn::open(&url, VIEWER_READ_BUFFER, proto, steps).await }
        })
        .await?;
        let mut counters = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let t0 = Instant::now();
        let period = match pacing {
            Pacing::Rate { per_sec, .. } => Duration::from_secs_f64(1.0 / per_sec.max(0.001)),
            Pacing::Window(_) => Duration::ZERO,
        };
        for (i, ws) in wss.into_iter().enumerate() {
            let c = Arc::new(ProducerCounters::default());
            let job = Job {
                proto,
                room: room.to_owned(),
                op: format!("p{i}-{tag}"),
                pacing,
                deadline,
                first_at: t0 + period.mul_f64(i as f64 / n as f64),
            };
            tasks.push(tokio::spawn(producer::run(ws, job, c.clone())));
            counters.push(c);
        }
        Ok(Producers { counters, tasks })
    }

    /// (sent, acked, errors) so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        producer::totals(&self.counters)
    }

    /// Waits for every producer to finish; merges their send-lag histograms
    /// and reports the first failure.
    pub async fn join(self) -> (Option<Histogram<u64>>, Option<anyhow::Error>) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut merged: Option<Histogram<u64>> = None;
        let mut failure = None;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(Ok(Some(h)))) => match merged.as_mut() {
                    Some(m) => {
                        let _ = m.add(&h);
                    }
                    None => merged = Some(h),
                },
                Ok(Ok(Ok(None))) => {}
                Ok(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                }
                Ok(Err(e)) => {
                    failure.get_or_insert(e.into());
                }
                Err(_) => {
                    task.abort();
                    failure.get_or_insert(anyhow::anyhow!("a producer did not stop in time"));
                }
            }
        }
        (merged, failure)
    }
}
