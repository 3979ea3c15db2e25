//! `latency`: producers publish at a fixed rate so the viewers together
//! receive R messages per second; each viewer records send-to-receive
//! latency of the messages stamped within the measurement window into an
//! HDR histogram (with `--arrival`, a second one up to the kernel's
//! receive stamp of the bytes).

use super::{Producers, Viewers, LATENCY_READ_BUFFER};
use crate::args::LatencyArgs;
use crate::clock;
use crate::producer::Pacing;
use crate::target::{room_name, Meter, Target, Usage};
use crate::viewer::{ViewerTotals, Window};
use hdrhistogram::Histogram;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Values recorded.
    pub count: u64,
}

impl Percentiles {
    /// Reads percentiles from a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            count: h.len(),
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: f64| us / 1000.0;
        write!(
            f,
            "p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  (n={})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.count
        )
    }
}

/// What one latency run measured.
#[derive(Clone, Debug)]
pub struct LatencyResult {
    /// Server name.
    pub server: &'static str,
    /// Target delivered messages per second.
    pub rate: u64,
    /// Viewers.
    pub viewers: usize,
    /// End-to-end latency: producer's send to the viewer reading it.
    pub latency: Percentiles,
    /// Producer's send to arrival at the viewer's socket (`--arrival`).
    pub arrival: Option<Percentiles>,
    /// How late producers sent against their schedule.
    pub send_lag: Percentiles,
    /// Viewer totals within the window.
    pub delivered: ViewerTotals,
    /// Time and CPU within the window.
    pub usage: Usage,
    /// The first producer failure, if any.
    pub failure: Option<String>,
}

impl fmt::Display for LatencyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.usage;
        writeln!(
            f,
            "latency {}: target {} delivered msgs/s ({} viewers), measured {:.0} msgs/s",
            self.server,
            self.rate,
            self.viewers,
            self.delivered.messages as f64 / u.secs
        )?;
        writeln!(f, "  end-to-end  {}", self.latency)?;
        if let Some(a) = &self.arrival {
            writeln!(f, "  at arrival  {a}")?;
        }
        writeln!(f, "  send lag    {}", self.send_lag)?;
        write!(
            f,
            "  cpu: generator {:.2} cores, server {}; viewer errors {}, closed early {}",
            u.own_cores,
            u.peer_cores
                .map_or("n/a".into(), |c| format!("{c:.2} cores")),
            self.delivered.errors,
            self.delivered.closed
        )?;
        if let Some(e) = &self.failure {
            write!(f, "\n  producer failure: {e}")?;
        }
        Ok(())
    }
}

/// Runs the latency scenario against `target` at `rate` delivered messages per second.
pub async fn run(target: &Target, a: &LatencyArgs, rate: u64) -> anyhow::Result<LatencyResult> {
    let room = room_name("latency");
    let viewers_n = (rate / a.publish_rate.max(1)).max(1) as usize;
    let per_producer = rate as f64 / viewers_n as f64 / a.producers.max(1) as f64;
    let cc = a.target.connect_concurrency;
    let window = Arc::new(if a.arrival {
        Window::closed().with_arrival()
    } else {
        Window::closed()
    });
    let viewers = Viewers::start(
        target,
        &room,
        viewers_n,
        cc,
        LATENCY_READ_BUFFER,
        Some(window.clone()),
    )
    .await?;
    // Producers go on for a second after the window so its last messages arrive.
    let deadline = Instant::now() + a.warmup + a.duration + Duration::from_secs(1);
    let pacing = Pacing::Rate {
        per_sec: per_producer,
        window: 4096,
    };
    let producers =
        match Producers::start(target, &room, a.producers.max(1), cc, pacing, deadline).await {
            Ok(p) => p,
            Err(e) => {
                viewers.stop().await;
                return Err(e);
            }
        };
    let from = Instant::now() + a.warmup;
    let to = from + a.duration;
    window.set(clock::ns_at(from.into_std()), clock::ns_at(to.into_std()));
    tokio::time::sleep_until(from).await;
    let (v0, m0) = (viewers.totals(), Meter::now(target.pid));
    tokio::time::sleep_until(to).await;
    let (v1, m1) = (viewers.totals(), Meter::now(target.pid));
    let (lag, failure) = producers.join().await;
    let hist = viewers.stop().await;
    Ok(LatencyResult {
        server: target.proto.name(),
        rate,
        viewers: viewers_n,
        latency: hist
            .as_ref()
            .map(|h| Percentiles::of(&h.read))
            .unwrap_or_default(),
        arrival: hist
            .as_ref()
            .and_then(|h| h.arrival.as_ref())
            .map(Percentiles::of),
        send_lag: lag.as_ref().map(Percentiles::of).unwrap_or_default(),
        delivered: v1.since(v0),
        usage: m1.since(&m0),
        failure: failure.map(|e| format!("{e:#}")),
    })
}
