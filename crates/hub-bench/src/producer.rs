//! A producer: publishes progress messages for one operation, either as
//! fast as acks allow (a window of unacked messages) or at a fixed rate,
//! until its deadline; counts what it sent and what was acknowledged.
//!
//! At a fixed rate the send stamp is the real send time; how late each
//! send was against its schedule is recorded separately ("send lag"), so a
//! generator or server that falls behind shows up instead of hiding
//! (coordinated omission).

use crate::adapter::{engineio, Proto};
use crate::clock;
use crate::conn::Ws;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

/// How a producer paces itself.
#[derive(Clone, Copy, Debug)]
pub enum Pacing {
    /// As fast as acks allow, with at most this many messages unacked.
    Window(u64),
    /// `per_sec` messages per second, but never more than `window` unacked.
    Rate {
        /// Messages per second.
        per_sec: f64,
        /// Most unacked messages.
        window: u64,
    },
}

/// A producer's running totals.
#[derive(Debug, Default)]
pub struct ProducerCounters {
    /// Progress messages sent.
    pub sent: AtomicU64,
    /// Progress messages acknowledged.
    pub acked: AtomicU64,
    /// Error messages received.
    pub errors: AtomicU64,
}

/// Sums of producers' counters.
pub fn totals(counters: &[Arc<ProducerCounters>]) -> (u64, u64, u64) {
    counters.iter().fold((0, 0, 0), |(s, a, e), c| {
        (
            s + c.sent.load(Ordering::Relaxed),
            a + c.acked.load(Ordering::Relaxed),
            e + c.errors.load(Ordering::Relaxed),
        )
    })
}

/// Everything a producer needs besides its socket.
#[derive(Clone, Debug)]
pub struct Job {
    /// The protocol.
    pub proto: Proto,
    /// Namespace / room.
    pub room: String,
    /// Operation id.
    pub op: String,
    /// Pacing.
    pub pacing: Pacing,
    /// When to stop publishing.
    pub deadline: Instant,
    /// With [`Pacing::Rate`], when this producer's first message is due.
    /// Producers of one run are spread evenly over one period so that
    /// together they publish at a steady rate, not in bursts of one
    /// message each at the same instant.
    pub first_at: Instant,
}

struct State {
    op_hint: String,
    next: u64,
    acked: u64,
    first: u64,
    buf: String,
}

impl State {
    fn in_flight(&self) -> u64 {
        self.next - 1 - self.acked
    }
}

/// Publishes until the deadline; returns the send-lag histogram (ns) for a fixed rate.
pub async fn run(
    mut ws: Ws,
    job: Job,
    counters: Arc<ProducerCounters>,
) -> anyhow::Result<Option<Histogram<u64>>> {
    let first = job.proto.first_seq();
    let mut st = State {
        op_hint: job.op.clone(),
        next: first,
        acked: first - 1,
        first,
        buf: String::new(),
    };
    let mut lag = None;
    let result = match job.pacing {
        Pacing::Window(window) => windowed(&mut ws, &job, &mut st, window, &counters).await,
        Pacing::Rate { per_sec, window } => {
            let mut h = crate::viewer::new_histogram();
            let r = paced(&mut ws, &job, &mut st, per_sec, window, &counters, &mut h).await;
            lag = Some(h);
            r
        }
    };
    if let Some(done) = job.proto.finish(&job.room, &job.op, st.next) {
        let _ = ws.send(Message::Text(done.into())).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    result.map(|()| lag)
}

async fn windowed(
    ws: &mut Ws,
    job: &Job,
    st: &mut State,
    window: u64,
    c: &ProducerCounters,
) -> anyhow::Result<()> {
    loop {
        if Instant::now() >= job.deadline {
            return Ok(());
        }
        let mut fed = 0;
        let stamp = clock::now_ns();
        while st.in_flight() < window.max(1) {
            job.proto
                .publish(&mut st.buf, &job.room, &job.op, st.next, stamp);
            ws.feed(Message::Text(st.buf.as_str().into())).await?;
            st.next += 1;
            fed += 1;
        }
        if fed > 0 {
            ws.flush().await?;
            c.sent.fetch_add(fed, Ordering::Relaxed);
        }
        let Ok(msg) = tokio::time::timeout_at(job.deadline, ws.next()).await else {
            return Ok(());
        };
        handle(ws, job.proto, st, msg, c).await?;
        while let Some(msg) = ws.next().now_or_never() {
            handle(ws, job.proto, st, msg, c).await?;
        }
    }
}

async fn paced(
    ws: &mut Ws,
    job: &Job,
    st: &mut State,
    per_sec: f64,
    window: u64,
    c: &ProducerCounters,
    lag: &mut Histogram<u64>,
) -> anyhow::Result<()> {
    let period = Duration::from_secs_f64(1.0 / per_sec.max(0.001));
    let mut ticker = tokio::time::interval_at(job.first_at, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let end = tokio::time::sleep_until(job.deadline);
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            _ = &mut end => return Ok(()),
            msg = ws.next() => handle(ws, job.proto, st, msg, c).await?,
            scheduled = ticker.tick(), if st.in_flight() < window.max(1) => {
                let now = Instant::now();
                lag.saturating_record(u64::try_from((now - scheduled).as_nanos()).unwrap_or(u64::MAX));
                job.proto.publish(&mut st.buf, &job.room, &job.op, st.next, clock::ns_at(now.into_std()));
                ws.send(Message::Text(st.buf.as_str().into())).await?;
                st.next += 1;
                c.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

type Next = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

async fn handle(
    ws: &mut Ws,
    proto: Proto,
    st: &mut State,
    msg: Next,
    c: &ProducerCounters,
) -> anyhow::Result<()> {
    let text = match msg {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Close(f))) => anyhow::bail!("the server closed the producer: {f:?}"),
        Some(Err(e)) => return Err(e.into()),
        None => anyhow::bail!("the server closed the producer"),
        Some(Ok(_)) => return Ok(()),
    };
    let scan = proto.scan_producer(text.as_str());
    if let Some(seq) = scan.acked {
        if seq > st.acked && seq < st.next {
            st.acked = seq;
            c.acked.store(seq + 1 - st.first, Ordering::Relaxed);
        }
    }
    if scan.errors > 0
        && c.errors
            .fetch_add(u64::from(scan.errors), Ordering::Relaxed)
            == 0
    {
        let head: String = text.as_str().chars().take(300).collect();
        eprintln!("producer {}: first error: {head}", st.op_hint);
    }
    if scan.ping {
        ws.send(Message::Text(engineio::PONG.into())).await?;
    }
    Ok(())
}
