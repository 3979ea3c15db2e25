//! Reconnect delay schedule: exponential growth with **full jitter applied
//! after the cap**.
//!
//! `delay(attempt) = floor + uniform(0, min(cap, base * factor^attempt) - floor)`
//!
//! Socket.IO's client caps *after* jittering, so from its fifth attempt on every
//! client waits exactly the cap and a restarted server is hit by lock-step
//! reconnect waves. Here the jitter is drawn over the whole capped window, so
//! after the cap the delays stay spread uniformly over `[floor, cap]`.
//!
//! Everything is pure: the random source is injected ([`Backoff::with_seed`]),
//! so schedules are reproducible in tests.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Parameters of the delay schedule. Defaults: base 500 ms, factor 2, cap
/// 30 s, floor 100 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Upper bound of the first window (attempt 0), in milliseconds.
    pub base_ms: u64,
    /// Growth of the window per attempt.
    pub factor: f64,
    /// Largest window, in milliseconds.
    pub cap_ms: u64,
    /// Smallest delay ever returned, in milliseconds (keeps a broken network
    /// from turning into a hot loop). Clamped to the cap.
    pub floor_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_ms: 500,
            factor: 2.0,
            cap_ms: 30_000,
            floor_ms: 100,
        }
    }
}

impl BackoffConfig {
    /// The upper bound of the jitter window for `attempt` (0-based):
    /// `max(floor, min(cap, base * factor^attempt))`.
    pub fn window_ms(&self, attempt: u32) -> u64 {
        let exp = (self.base_ms as f64) * self.factor.max(1.0).powi(attempt.min(1_000) as i32);
        let capped = if exp.is_finite() {
            exp.min(self.cap_ms as f64) as u64
        } else {
            self.cap_ms
        };
        capped.max(self.floor())
    }

    fn floor(&self) -> u64 {
        self.floor_ms.min(self.cap_ms)
    }

    /// The delay for `attempt` given a uniform sample `unit` in `[0, 1)`.
    /// This is the whole schedule as a pure function.
    pub fn delay_from_unit(&self, attempt: u32, unit: f64) -> u64 {
        let floor = self.floor();
        let window = self.window_ms(attempt);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let span = (window - floor) as f64;
        (floor + (span * unit).round() as u64).min(window)
    }
}

/// A delay generator: a [`BackoffConfig`] plus its random source.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    rng: SmallRng,
}

impl Backoff {
    /// A generator seeded from the operating system's entropy.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            rng: SmallRng::from_os_rng(),
        }
    }

    /// A generator with a fixed seed: the same seed gives the same schedule.
    pub fn with_seed(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The schedule's parameters.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// The delay before retry number `attempt` (0-based), in milliseconds.
    pub fn delay_ms(&mut self, attempt: u32) -> u64 {
        let unit: f64 = self.rng.random::<f64>();
        self.config.delay_from_unit(attempt, unit)
    }
}

/// The first `n` delays of the schedule for `seed` (attempts `0..n`).
pub fn schedule(config: BackoffConfig, seed: u64, n: u32) -> Vec<u64> {
    let mut b = Backoff::with_seed(config, seed);
    (0..n).map(|a| b.delay_ms(a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn window_grows_then_caps() {
        let c = BackoffConfig::default();
        let w: Vec<u64> = (0..10).map(|a| c.window_ms(a)).collect();
        assert_eq!(
            w,
            vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(c.window_ms(u32::MAX), 30_000);
    }

    #[test]
    fn pure_function_of_unit_sample() {
        let c = BackoffConfig::default();
        assert_eq!(c.delay_from_unit(0, 0.0), 100);
        assert_eq!(c.delay_from_unit(0, 1.0), 500);
        assert_eq!(c.delay_from_unit(0, 0.5), 300);
        assert_eq!(c.delay_from_unit(20, 0.0), 100);
        assert_eq!(c.delay_from_unit(20, 1.0), 30_000);
        assert_eq!(c.delay_from_unit(3, f64::NAN), 100);
        let no_floor = BackoffConfig { floor_ms: 0, ..c };
        assert_eq!(no_floor.delay_from_unit(20, 0.25), 7_500);
    }

    #[test]
    fn same_seed_same_schedule() {
        let c = BackoffConfig::default();
        assert_eq!(schedule(c, 42, 12), schedule(c, 42, 12));
        assert_ne!(schedule(c, 42, 12), schedule(c, 43, 12));
    }

    #[test]
    fn delays_within_bounds() {
        let c = BackoffConfig::default();
        for seed in 0..200 {
            for (a, d) in schedule(c, seed, 40).into_iter().enumerate() {
                assert!(d >= c.floor_ms, "seed {seed} attempt {a}: {d}");
                assert!(d <= c.window_ms(a as u32), "seed {seed} attempt {a}: {d}");
                assert!(d <= c.cap_ms);
            }
        }
    }

    #[test]
    fn thousand_clients_never_share_a_schedule() {
        let c = BackoffConfig::default();
        let schedules: HashSet<Vec<u64>> = (0..1_000u64)
            .map(|client| schedule(c, 0x9e37_79b9_7f4a_7c15 ^ client, 10))
            .collect();
        assert_eq!(schedules.len(), 1_000);
    }

    /// After the cap the delays stay uniform over `[floor, cap]` (they do not
    /// collapse onto the cap like Socket.IO's). Chi-square over 20 buckets.
    #[test]
    fn delays_after_cap_are_spread_uniformly() {
        let c = BackoffConfig::default();
        const BUCKETS: usize = 20;
        let mut counts = [0u32; BUCKETS];
        let mut n = 0u32;
        let mut distinct = HashSet::new();
        for client in 0..1_000u64 {
            let s = schedule(c, client, 14);
            // attempts 6..14 all have window == cap
            for &d in &s[6..] {
                let pos = (d - c.floor_ms) as f64 / (c.cap_ms - c.floor_ms) as f64;
                let b = ((pos * BUCKETS as f64) as usize).min(BUCKETS - 1);
                counts[b] += 1;
                n += 1;
                distinct.insert(d);
            }
        }
        let expected = n as f64 / BUCKETS as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        // 19 degrees of freedom: p = 0.001 critical value is 43.8.
        assert!(chi2 < 43.8, "chi-square {chi2}, buckets {counts:?}");
        // And no single value dominates (Socket.IO would give one value: 5000).
        assert!(
            distinct.len() > 5_000,
            "only {} distinct delays",
            distinct.len()
        );
    }

    #[test]
    fn first_attempts_are_spread_too() {
        let c = BackoffConfig::default();
        let firsts: HashSet<u64> = (0..1_000u64).map(|s| schedule(c, s, 1)[0]).collect();
        assert!(firsts.len() > 300, "{} distinct first delays", firsts.len());
    }
}
