//! [`ShardedHistogram`] and [`ShardedCounter`]: Prometheus metrics for the
//! per-frame hot path.
//!
//! prometheus-client's `Histogram` takes a write lock on every observation,
//! and the writer tasks of every connection, spread over the runtime's
//! worker threads, observed the same few histograms once or twice per
//! frame: the lock's cache line moved between cores on almost every frame
//! and was the hub's largest single user-space cost when fanning out.
//! Shared counters bumped on every frame had the same problem on a
//! smaller scale. Here each thread adds to its own shard (its own cache
//! lines) with relaxed atomic adds; a scrape sums the shards.
//!
//! A scrape taken while observations land may see a bucket count without
//! the matching sum (or the reverse), never a count that disagrees with
//! the buckets: the count is the sum of the bucket counts.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shards per histogram; threads are spread over them round-robin.
const SHARDS: usize = 8;
/// Most finite bucket bounds a histogram may have.
pub const MAX_BOUNDS: usize = 23;

/// One thread's share, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Per-bucket counts; index `bounds.len()` is the `+Inf` bucket.
    counts: [AtomicU64; MAX_BOUNDS + 1],
    /// The sum of the observed values, as `f64` bits.
    sum: AtomicU64,
}

#[derive(Default)]
struct Inner {
    bounds: Vec<f64>,
    shards: [Shard; SHARDS],
}

/// A histogram with fixed bucket bounds, cheap to observe from many threads.
#[derive(Clone)]
pub struct ShardedHistogram {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShardedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedHistogram")
            .field("bounds", &self.inner.bounds)
            .finish_non_exhaustive()
    }
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl ShardedHistogram {
    /// A histogram with these upper bounds (ascending, finite; a `+Inf`
    /// bucket is added). Panics on more than [`MAX_BOUNDS`] bounds: the
    /// bounds are chosen in code, not by a peer.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> = bounds.into_iter().collect();
        assert!(bounds.len() <= MAX_BOUNDS, "at most {MAX_BOUNDS} bounds");
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must ascend");
        ShardedHistogram {
            inner: Arc::new(Inner {
                bounds,
                ..Inner::default()
            }),
        }
    }

    /// Records one value (NaN lands in the `+Inf` bucket).
    pub fn observe(&self, v: f64) {
        let inner = &*self.inner;
        let shard = &inner.shards[shard_index()];
        let bucket = inner
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(inner.bounds.len());
        shard.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // Only this thread writes this shard (bar a thread that shares its
        // index): the update is one uncontended compare-and-swap.
        let _ = shard
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// `(sum, count, per-bucket counts with their upper bounds)` now.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = &*self.inner;
        let mut buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|b| (b, 0))
            .collect();
        let mut sum = 0.0;
        for shard in &inner.shards {
            for (bucket, count) in buckets.iter_mut().zip(&shard.counts) {
                bucket.1 += count.load(Ordering::Relaxed);
            }
            sum += f64::from_bits(shard.sum.load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        (sum, count, buckets)
    }
}

impl TypedMetric for ShardedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ShardedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One thread's share of a counter, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct CounterShard(AtomicU64);

/// A monotonic counter, cheap to increment from many threads.
#[derive(Clone, Default)]
pub struct ShardedCounter {
    shards: Arc<[CounterShard; SHARDS]>,
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.get()).finish()
    }
}

impl ShardedCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.shards[shard_index()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    use prometheus_client::registry::Registry;

    fn exposition(name: &str, metric: impl prometheus_client::registry::Metric) -> String {
        let mut r = Registry::default();
        r.register(name, "help", metric);
        let mut out = String::new();
        encode(&mut out, &r).unwrap();
        out
    }

    /// The same observations, from several threads, encode exactly as
    /// prometheus-client's own histogram encodes them.
    #[test]
    fn encodes_like_the_reference_histogram() {
        let ours = ShardedHistogram::new(exponential_buckets(1.0, 2.0, 8));
        let reference = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        let values: Vec<f64> = (0..2000).map(|i| (i % 300) as f64 * 0.5).collect();
        std::thread::scope(|s| {
            for chunk in values.chunks(250) {
                let ours = ours.clone();
                s.spawn(move || chunk.iter().for_each(|v| ours.observe(*v)));
            }
        });
        values.iter().for_each(|v| reference.observe(*v));
        assert_eq!(exposition("h", ours), exposition("h", reference));
    }

    #[test]
    fn counter_sums_every_thread_and_encodes_like_the_reference() {
        let ours = ShardedCounter::default();
        let reference = prometheus_client::metrics::counter::Counter::<u64>::default();
        std::thread::scope(|s| {
            for t in 0..6u64 {
                let ours = ours.clone();
                s.spawn(move || (0..1000).for_each(|_| ours.inc_by(t + 1)));
            }
        });
        reference.inc_by(21_000);
        assert_eq!(ours.get(), 21_000);
        assert_eq!(exposition("c", ours), exposition("c", reference));
    }

    #[test]
    fn nan_and_huge_values_go_to_the_inf_bucket() {
        let h = ShardedHistogram::new([1.0, 2.0]);
        h.observe(f64::NAN);
        h.observe(1e300);
        h.observe(2.0);
        let (_, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets, vec![(1.0, 0), (2.0, 1), (f64::INFINITY, 2)]);
    }
}
