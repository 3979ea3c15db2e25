//! A viewer: reads frames (over the lean [`RawWs`] client) until told to
//! stop, counting messages and frames into shared counters (one atomic add
//! per frame) and, for the latency scenario, recording each message's
//! end-to-end latency into its own HDR histogram, in batches (merged at
//! the end, so viewers never contend).

use crate::adapter::{engineio, Proto};
use crate::clock;
use crate::raw::{Incoming, RawWs};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// A viewer's running totals, read by the scenario at the start and end of
/// the measurement window.
#[derive(Debug, Default)]
pub struct ViewerCounters {
    /// Progress messages received.
    pub messages: AtomicU64,
    /// Text frames received.
    pub frames: AtomicU64,
    /// Payload bytes of those frames.
    pub bytes: AtomicU64,
    /// Error messages received (e.g. `SLOW_CLIENT`).
    pub errors: AtomicU64,
    /// Whether the connection ended before the viewer was told to stop.
    pub closed: AtomicBool,
}

/// Sums of several viewers' counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerTotals {
    /// Progress messages.
    pub messages: u64,
    /// Frames.
    pub frames: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Errors.
    pub errors: u64,
    /// Connections that ended early.
    pub closed: u64,
}

impl ViewerTotals {
    /// Adds up `counters` now.
    pub fn sum(counters: &[Arc<ViewerCounters>]) -> ViewerTotals {
        let mut t = ViewerTotals::default();
        for c in counters {
            t.messages += c.messages.load(Ordering::Relaxed);
            t.frames += c.frames.load(Ordering::Relaxed);
            t.bytes += c.bytes.load(Ordering::Relaxed);
            t.errors += c.errors.load(Ordering::Relaxed);
            t.closed += u64::from(c.closed.load(Ordering::Relaxed));
        }
        t
    }

    /// What happened between `earlier` and `self` (closed is not a rate).
    pub fn since(self, earlier: ViewerTotals) -> ViewerTotals {
        ViewerTotals {
            messages: self.messages - earlier.messages,
            frames: self.frames - earlier.frames,
            bytes: self.bytes - earlier.bytes,
            errors: self.errors - earlier.errors,
            closed: self.closed,
        }
    }
}

/// A new latency histogram: nanoseconds, 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Which messages viewers record the latency of: those stamped within
/// `[from, to)` on the generator clock. Shared, and set once setup is done.
#[derive(Debug)]
pub struct Window {
    from: AtomicU64,
    to: AtomicU64,
    at_arrival: bool,
}

impl Window {
    /// A window that records nothing yet.
    pub fn closed() -> Window {
        Window {
            from: AtomicU64::new(u64::MAX),
            to: AtomicU64::new(0),
            at_arrival: false,
        }
    }

    /// The same, also measuring latency to the arrival at the viewer's
    /// socket (the kernel's receive stamp, [`Latencies::arrival`]).
    pub fn with_arrival(mut self) -> Window {
        self.at_arrival = true;
        self
    }

    /// Whether viewers measure latency to arrival too.
    pub fn at_arrival(&self) -> bool {
        self.at_arrival
    }

    /// Records stamps in `[from_ns, to_ns)` from now on.
    pub fn set(&self, from_ns: u64, to_ns: u64) {
        self.to.store(to_ns, Ordering::Relaxed);
        self.from.store(from_ns, Ordering::Relaxed);
    }

    /// Whether a stamp is inside.
    pub fn contains(&self, stamp: u64) -> bool {
        stamp >= self.from.load(Ordering::Relaxed) && stamp < self.to.load(Ordering::Relaxed)
    }
}

/// What a viewer measured: send-to-read latency, and send-to-arrival (the
/// kernel's receive stamp) when its socket stamps arrivals.
pub struct Latencies {
    /// From the producer's send to the viewer reading the message (ns).
    pub read: Histogram<u64>,
    /// From the producer's send to the message reaching the viewer's socket (ns).
    pub arrival: Option<Histogram<u64>>,
}

impl Latencies {
    /// Adds another viewer's latencies.
    pub fn add(&mut self, other: &Latencies) {
        let _ = self.read.add(&other.read);
        match (self.arrival.as_mut(), &other.arrival) {
            (Some(a), Some(b)) => {
                let _ = a.add(b);
            }
            (None, Some(b)) => self.arrival = Some(b.clone()),
            _ => {}
        }
    }
}

/// Reads `ws` until `stop` changes or the connection ends. Returns the
/// latencies when `window` is given.
pub async fn run(
    mut ws: RawWs,
    proto: Proto,
    counters: Arc<ViewerCounters>,
    window: Option<Arc<Window>>,
    mut stop: watch::Receiver<bool>,
) -> Option<Latencies> {
    // Latencies are appended to a buffer and added to the histogram in
    // batches: a thousand viewers each touching its own large histogram on
    // every message missed the cache on most records.
    let mut hist = window.as_ref().map(|_| Samples::default());
    let mut at_arrival = Samples::default();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let (text, arrived) = tokio::select! {
            biased;
            m = ws.next() => match m {
                Ok(Incoming::Text(t, arrived)) => (t, arrived),
                Ok(Incoming::Closed) | Err(_) => {
                    counters.closed.store(true, Ordering::Relaxed);
                    break;
                }
            },
            _ = &mut stopped => break,
        };
        let now = window.as_ref().map_or(0, |_| clock::now_ns());
        let scan = proto.scan_viewer(text, window.is_some(), |stamp| {
            if let (Some(h), Some(w)) = (hist.as_mut(), window.as_deref()) {
                if w.contains(stamp) {
                    h.push(now.saturating_sub(stamp));
                    if let Some(a) = arrived {
                        at_arrival.push(a.saturating_sub(stamp));
                    }
                }
            }
        });
        let len = text.len() as u64;
        counters.frames.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(len, Ordering::Relaxed);
        if scan.messages > 0 {
            counters
                .messages
                .fetch_add(u64::from(scan.messages), Ordering::Relaxed);
        }
        if scan.errors > 0 {
            counters
                .errors
                .fetch_add(u64::from(scan.errors), Ordering::Relaxed);
        }
        if scan.ping && ws.send_text(engineio::PONG).await.is_err() {
            counters.closed.store(true, Ordering::Relaxed);
            break;
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), ws.close()).await;
    let arrival = at_arrival.recorded().then(|| at_arrival.finish());
    hist.map(|h| Latencies {
        read: h.finish(),
        arrival,
    })
}

/// Latency samples (ns) waiting to be added to a histogram.
#[derive(Default)]
struct Samples {
    pending: Vec<u64>,
    hist: Option<Histogram<u64>>,
}

impl Samples {
    /// Samples kept before they are added to the histogram.
    const BATCH: usize = 4096;

    fn push(&mut self, ns: u64) {
        self.pending.push(ns);
        if self.pending.len() >= Self::BATCH {
            self.drain();
        }
    }

    fn drain(&mut self) {
        let h = self.hist.get_or_insert_with(new_histogram);
        for ns in self.pending.drain(..) {
            h.saturating_record(ns);
        }
    }

    fn recorded(&self) -> bool {
        self.hist.is_some() || !self.pending.is_empty()
    }

    fn finish(mut self) -> Histogram<u64> {
        self.drain();
        self.hist.unwrap_or_else(new_histogram)
    }
}
