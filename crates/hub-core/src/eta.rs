//! Progress-rate and ETA estimation for one operation.
//!
//! [`EtaEstimator`] keeps a *time-weighted* exponential average of the
//! progress rate (percent per second), in the spirit of indicatif's
//! estimator: an observation's weight decays with its age, halving every
//! `half_life` (default [`DEFAULT_HALF_LIFE_MS`] = 15 s). It is not a
//! per-sample EMA: a sample covering a longer interval weighs more, so the
//! estimate does not depend on how often a producer reports.
//!
//! The math: with `w(dt) = 2^(-dt / half_life)`, each observation folds the
//! interval since the previous one into the raw average
//! `s ← s·w(dt) + Δprogress·(1 − w(dt))/dt` (for `dt = 0` the limit
//! `Δprogress·ln2/half_life`, so a burst reported twice within one
//! millisecond is not lost). The raw average starts at 0 as if the job had
//! made no progress before it was first seen; dividing by
//! `1 − w(now − start)` removes that bias, so a job moving at constant speed
//! is estimated exactly. When asked at a later `now`, the time since the
//! last observation counts as zero progress (`s·w(now − last)`), so while a
//! job stalls its rate decays and its ETA grows.
//!
//! Regressions (progress lower than the previous observation, e.g. a
//! restarted job or a grown `total`) **restart** the estimate from the new
//! value: the old rate describes work that no longer counts.
//!
//! Pure: time is an argument (`now`, ms since the Unix epoch). Outputs are
//! always finite and non-negative.

use serde::{Deserialize, Serialize};

/// Default half-life of an observation's weight, in milliseconds (15 s).
pub const DEFAULT_HALF_LIFE_MS: u64 = 15_000;

/// The least time observations must span before a rate is given: two
/// reports a few milliseconds apart (a start and a first update sent
/// together) would otherwise claim thousands of percent per second.
pub const MIN_SPAN_MS: u64 = 1_000;

/// Rates below this (percent per second) are reported as 0, which means
/// "no ETA": about 3,000 years to do 100 %.
pub const MIN_RATE: f64 = 1e-9;

/// Smoothed progress-rate estimator (percent per second) and ETA.
///
/// ```
/// use hub_core::eta::EtaEstimator;
/// let mut est = EtaEstimator::new();
/// est.observe(0.0, 1_000);
/// est.observe(10.0, 11_000); // 10 % in 10 s
/// let rate = est.rate(11_000).unwrap();
/// assert!((rate - 1.0).abs() < 1e-9);
/// assert!((est.eta_seconds(11_000).unwrap() - 90.0).abs() < 1e-6);
/// // Stalling: asked later with no new progress, the ETA grows.
/// assert!(est.eta_seconds(21_000).unwrap() > 90.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EtaEstimator {
    /// Half-life of an observation's weight, ms (treated as at least 1).
    half_life_ms: u64,
    /// Time of the first observation since the last (re)start; None before any.
    start_ms: Option<u64>,
    /// Time of the latest observation.
    last_ms: u64,
    /// Latest observed progress, clamped to 0..=100.
    last_progress: f64,
    /// Raw (biased) time-weighted average rate in percent per second, as of `last_ms`.
    smoothed: f64,
    /// Whether any progress was made since the last (re)start.
    progressed: bool,
}

impl Default for EtaEstimator {
    fn default() -> Self {
        Self::with_half_life_ms(DEFAULT_HALF_LIFE_MS)
    }
}

impl EtaEstimator {
    /// An estimator with the default half-life ([`DEFAULT_HALF_LIFE_MS`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// An estimator whose observations lose half their weight every
    /// `half_life_ms` milliseconds (0 is treated as 1). Shorter reacts
    /// faster to speed changes, longer is steadier.
    pub fn with_half_life_ms(half_life_ms: u64) -> Self {
        EtaEstimator {
            half_life_ms: half_life_ms.max(1),
            start_ms: None,
            last_ms: 0,
            last_progress: 0.0,
            smoothed: 0.0,
            progressed: false,
        }
    }

    /// The configured half-life in milliseconds.
    pub fn half_life_ms(&self) -> u64 {
        self.half_life_ms.max(1)
    }

    /// The latest observed progress (0..=100), or None before any observation.
    pub fn progress(&self) -> Option<f64> {
        self.start_ms.map(|_| self.last_progress)
    }

    /// Feed an observation: progress (0..=100) at time now (ms).
    ///
    /// Out-of-range progress is clamped, NaN is ignored, and a `now` earlier
    /// than the previous observation is treated as equal to it. Progress
    /// lower than the previous observation restarts the estimate from this
    /// observation (see the module docs).
    pub fn observe(&mut self, progress: f64, now: u64) {
        if progress.is_nan() {
            return;
        }
        let progress = progress.clamp(0.0, 100.0);
        if self.start_ms.is_none() {
            self.restart(progress, now);
            return;
        }
        let now = now.max(self.last_ms);
        if progress < self.last_progress {
            self.restart(progress, now);
            return;
        }
        let dt_s = (now - self.last_ms) as f64 / 1000.0;
        let dp = progress - self.last_progress;
        self.smoothed = self.smoothed * self.weight(dt_s) + dp * self.sample_factor(dt_s);
        if !self.smoothed.is_finite() {
            // Cannot happen with bounded inputs; never let it poison the state.
            self.smoothed = 0.0;
        }
        if dp > 0.0 {
            self.progressed = true;
        }
        self.last_ms = now;
        self.last_progress = progress;
    }

    /// Rate in percent per second as of `now`, or None until it can estimate
    /// (needs observations spanning at least [`MIN_SPAN_MS`] with some
    /// progress).
    ///
    /// The time between the last observation and `now` counts as zero
    /// progress. Rates below [`MIN_RATE`] are reported as `Some(0.0)`.
    pub fn rate(&self, now: u64) -> Option<f64> {
        let start = self.start_ms?;
        if !self.progressed || self.last_ms < start.saturating_add(MIN_SPAN_MS) {
            return None;
        }
        let now = now.max(self.last_ms);
        let since_last_s = (now - self.last_ms) as f64 / 1000.0;
        let since_start_s = (now - start) as f64 / 1000.0;
        let raw = self.smoothed * self.weight(since_last_s);
        // Sum of the weights of the time actually observed: 1 - w(t).
        let total_weight = -(-self.k() * since_start_s).exp_m1();
        let rate = raw / total_weight;
        if rate.is_finite() && rate >= MIN_RATE {
            Some(rate)
        } else {
            Some(0.0)
        }
    }

    /// Seconds to completion as of `now`: 0 once progress is at 100 (the
    /// work is done, the operation just has not said so yet), None while
    /// the rate is unknown or zero.
    pub fn eta_seconds(&self, now: u64) -> Option<f64> {
        if self.last_progress >= 100.0 {
            return Some(0.0);
        }
        let rate = self.rate(now)?;
        if rate <= 0.0 {
            return None;
        }
        let eta = (100.0 - self.last_progress) / rate;
        eta.is_finite().then_some(eta)
    }

    fn restart(&mut self, progress: f64, now: u64) {
        self.start_ms = Some(now);
        self.last_ms = now;
        self.last_progress = progress;
        self.smoothed = 0.0;
        self.progressed = false;
    }

    /// Decay constant per second: ln 2 / half-life.
    fn k(&self) -> f64 {
        std::f64::consts::LN_2 / (self.half_life_ms() as f64 / 1000.0)
    }

    /// Weight left to something `age_s` seconds old: 2^(-age / half-life).
    fn weight(&self, age_s: f64) -> f64 {
        (-self.k() * age_s).exp()
    }

    /// (1 - w(dt)) / dt, with its limit k at dt = 0.
    fn sample_factor(&self, dt_s: f64) -> f64 {
        let k = self.k();
        if dt_s <= 0.0 {
            k
        } else {
            -(-k * dt_s).exp_m1() / dt_s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn none_until_it_can_estimate() {
        let mut e = EtaEstimator::new();
        assert_eq!(e.rate(0), None);
        assert_eq!(e.eta_seconds(0), None);
        assert_eq!(e.progress(), None);
        e.observe(5.0, 1_000);
        assert_eq!(e.rate(5_000), None);
        // Same-millisecond progress: observations span 0 ms.
        e.observe(7.0, 1_000);
        assert_eq!(e.rate(5_000), None);
        // Time passes but no progress since the start.
        let mut idle = EtaEstimator::new();
        idle.observe(5.0, 0);
        idle.observe(5.0, 10_000);
        assert_eq!(idle.rate(10_000), None);
        assert_eq!(idle.eta_seconds(10_000), None);
        // Now it spans time with progress.
        e.observe(7.0, 2_000);
        assert!(e.rate(2_000).unwrap() > 0.0);
        assert_eq!(e.progress(), Some(7.0));
        // A start and a first update sent together span milliseconds: no
        // rate (it would claim thousands of percent per second) until the
        // observations span a second.
        let mut burst = EtaEstimator::new();
        burst.observe(0.0, 10_000);
        burst.observe(40.0, 10_003);
        assert_eq!(burst.rate(10_003), None);
        assert_eq!(burst.eta_seconds(30_000), None);
        burst.observe(41.0, 10_003 + MIN_SPAN_MS);
        assert!(burst.rate(11_003).is_some());
    }

    #[test]
    fn constant_speed_is_exact_for_any_sampling() {
        // 0.5 %/s, reported at irregular intervals.
        let mut e = EtaEstimator::new();
        let gaps = [100u64, 3_000, 250, 17_000, 1, 900, 45_000, 5_000];
        let mut t = 1_700_000_000_000u64;
        e.observe(0.0, t);
        let mut p = 0.0;
        let mut last = t;
        for g in gaps.iter().cycle().take(40) {
            t += g;
            let next = (t - 1_700_000_000_000) as f64 / 1000.0 * 0.5;
            if next >= 100.0 {
                break;
            }
            p = next;
            last = t;
            e.observe(p, t);
            match e.rate(t) {
                Some(r) => assert!(close(r, 0.5, 0.01), "rate {r} at p {p}"),
                None => assert!(p < 0.5, "no rate after the first second"),
            }
        }
        let eta = e.eta_seconds(last).unwrap();
        assert!(close(eta, (100.0 - p) / 0.5, 0.01), "eta {eta}");
    }

    #[test]
    fn converges_after_speed_change() {
        let mut e = EtaEstimator::new();
        let mut p = 0.0;
        let mut t = 0u64;
        e.observe(p, t);
        for _ in 0..30 {
            t += 1_000;
            p += 1.0; // 1 %/s for 30 s
            e.observe(p, t);
        }
        for _ in 0..300 {
            t += 200;
            p += 0.02; // then 0.1 %/s for 60 s (4 half-lives)
            e.observe(p, t);
        }
        let r = e.rate(t).unwrap();
        assert!(r > 0.1 && r < 0.2, "rate {r} should approach 0.1");
        for _ in 0..600 {
            t += 200;
            p += 0.02; // 120 s more: 8 more half-lives
            e.observe(p, t);
        }
        let r = e.rate(t).unwrap();
        assert!(close(r, 0.1, 0.01), "rate {r}");
    }

    #[test]
    fn stall_makes_eta_grow() {
        let mut e = EtaEstimator::new();
        for i in 0..=20u64 {
            e.observe(i as f64, i * 1_000);
        }
        let mut prev = e.eta_seconds(20_000).unwrap();
        assert!(close(prev, 80.0, 0.01));
        let mut prev_rate = e.rate(20_000).unwrap();
        // 400 s = 26 half-lives: the rate is still above MIN_RATE.
        for s in 1..400u64 {
            let now = 20_000 + s * 1_000;
            let eta = e.eta_seconds(now).unwrap();
            let rate = e.rate(now).unwrap();
            assert!(
                eta > prev,
                "eta must grow during a stall: {eta} <= {prev} at {now}"
            );
            assert!(rate < prev_rate);
            prev = eta;
            prev_rate = rate;
        }
        // Reported zero progress is the same as silence.
        let mut reported = e.clone();
        reported.observe(20.0, 80_000);
        let a = reported.eta_seconds(80_000).unwrap();
        let b = e.eta_seconds(80_000).unwrap();
        assert!(close(a, b, 1e-9), "{a} vs {b}");
        // A very long stall ends in "no estimate", never inf/NaN.
        assert_eq!(e.rate(20_000 + 365 * 86_400_000), Some(0.0));
        assert_eq!(e.eta_seconds(20_000 + 365 * 86_400_000), None);
    }

    #[test]
    fn regression_restarts_the_estimate() {
        let mut e = EtaEstimator::new();
        e.observe(0.0, 0);
        e.observe(50.0, 10_000);
        assert!(e.rate(10_000).unwrap() > 0.0);
        e.observe(20.0, 11_000);
        assert_eq!(e.progress(), Some(20.0));
        assert_eq!(e.rate(11_000), None);
        e.observe(22.0, 13_000);
        let r = e.rate(13_000).unwrap();
        assert!(close(r, 1.0, 1e-9), "fresh estimate from the restart: {r}");
    }

    #[test]
    fn finished_and_odd_inputs() {
        let mut e = EtaEstimator::new();
        e.observe(0.0, 0);
        e.observe(100.0, 10_000);
        assert!(e.rate(10_000).is_some());
        assert_eq!(e.eta_seconds(10_000), Some(0.0), "nothing left to do");
        let mut e = EtaEstimator::new();
        e.observe(f64::NAN, 0);
        assert_eq!(e.progress(), None);
        e.observe(-5.0, 0);
        assert_eq!(e.progress(), Some(0.0));
        e.observe(f64::INFINITY, 1);
        assert_eq!(e.progress(), Some(100.0));
        // Time going backwards is treated as no time passing.
        let mut e = EtaEstimator::new();
        e.observe(0.0, 10_000);
        e.observe(10.0, 20_000);
        e.observe(11.0, 5_000);
        assert!(e.rate(0).unwrap() > 0.0);
        assert!(e.rate(u64::MAX).is_some_and(|r| r == 0.0));
    }

    #[test]
    fn half_life_is_configurable_and_serde_round_trips() {
        let mut fast = EtaEstimator::with_half_life_ms(1_000);
        let mut slow = EtaEstimator::with_half_life_ms(60_000);
        assert_eq!(EtaEstimator::with_half_life_ms(0).half_life_ms(), 1);
        assert_eq!(EtaEstimator::new().half_life_ms(), DEFAULT_HALF_LIFE_MS);
        for (i, p) in [0.0, 10.0, 20.0, 30.0, 31.0, 32.0].iter().enumerate() {
            fast.observe(*p, i as u64 * 1_000);
            slow.observe(*p, i as u64 * 1_000);
        }
        // After slowing from 10 %/s to 1 %/s, the short half-life follows faster.
        assert!(fast.rate(5_000).unwrap() < slow.rate(5_000).unwrap());
        let json = serde_json::to_string(&fast).unwrap();
        let back: EtaEstimator = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fast);
    }

    proptest! {
        #[test]
        fn always_finite_and_non_negative(
            steps in proptest::collection::vec((0.0f64..=100.0, 0u64..120_000, any::<bool>()), 0..60),
            half_life in 0u64..100_000,
            query_gap in 0u64..10_000_000_000,
        ) {
            let mut e = EtaEstimator::with_half_life_ms(half_life);
            let mut now = 1_700_000_000_000u64;
            for (p, gap, same_ms) in steps {
                if !same_ms {
                    now += gap;
                }
                e.observe(p, now);
                for q in [now, now + 1, now + query_gap] {
                    if let Some(r) = e.rate(q) {
                        prop_assert!(r.is_finite() && r >= 0.0, "rate {}", r);
                    }
                    if let Some(eta) = e.eta_seconds(q) {
                        prop_assert!(eta.is_finite() && eta >= 0.0, "eta {}", eta);
                    }
                }
            }
        }

        #[test]
        fn constant_speed_within_one_percent(
            rate in 0.001f64..20.0,
            gaps in proptest::collection::vec(1u64..30_000, 2..40),
        ) {
            let mut e = EtaEstimator::new();
            let mut t = 0u64;
            e.observe(0.0, t);
            for g in gaps {
                t += g;
                let p = t as f64 / 1000.0 * rate;
                if p >= 100.0 { break; }
                e.observe(p, t);
                match e.rate(t) {
                    Some(r) => prop_assert!(close(r, rate, 0.01), "rate {} want {}", r, rate),
                    None => prop_assert!(t < MIN_SPAN_MS, "no rate at {} ms", t),
                }
            }
        }

        #[test]
        fn stall_eta_is_monotonic(
            rate in 0.01f64..5.0,
            n in 2u64..50,
            probes in proptest::collection::vec(1u64..600_000, 1..30),
        ) {
            let mut e = EtaEstimator::new();
            for i in 0..=n {
                e.observe((i as f64 * rate).min(99.0), i * 1_000);
            }
            let last = n * 1_000;
            let mut prev = e.eta_seconds(last);
            prop_assert!(prev.is_some());
            let mut now = last;
            for d in probes {
                now += d;
                let eta = e.eta_seconds(now);
                match (prev, eta) {
                    (Some(a), Some(b)) => prop_assert!(b >= a, "{} then {}", a, b),
                    (None, Some(_)) => prop_assert!(false, "estimate came back during a stall"),
                    _ => {}
                }
                prev = eta;
            }
        }
    }
}
