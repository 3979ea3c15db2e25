//! A per-second event counter over the last few whole seconds: the rate of
//! updates this viewer receives, shown when the hub's own figure
//! (`system_status`) is not available.

use std::collections::VecDeque;

/// Counts events in one-second buckets; time is an argument (ms).
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    buckets: VecDeque<(u64, u64)>,
}

impl RateMeter {
    /// Seconds averaged over (whole seconds before the current one).
    pub const WINDOW_S: u64 = 5;

    /// Counts one event at `now`.
    pub fn record(&mut self, now: u64) {
        let sec = now / 1000;
        match self.buckets.back_mut() {
            Some((s, n)) if *s == sec => *n += 1,
            _ => self.buckets.push_back((sec, 1)),
        }
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + Self::WINDOW_S < sec)
        {
            self.buckets.pop_front();
        }
    }

    /// Events per second over the last [`Self::WINDOW_S`] whole seconds.
    pub fn per_second(&self, now: u64) -> f64 {
        let sec = now / 1000;
        let from = sec.saturating_sub(Self::WINDOW_S);
        let n: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s >= from && *s < sec)
            .map(|(_, n)| n)
            .sum();
        n as f64 / Self::WINDOW_S as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_whole_seconds_and_forgets_old_ones() {
        let mut m = RateMeter::default();
        for i in 0..50 {
            m.record(10_000 + i * 100); // 10 a second for 5 s
        }
        assert_eq!(m.per_second(15_000), 10.0);
        assert_eq!(m.per_second(15_999), 10.0);
        assert_eq!(m.per_second(17_000), 6.0);
        assert_eq!(m.per_second(60_000), 0.0);
        m.record(60_000);
        assert!(m.buckets.len() <= RateMeter::WINDOW_S as usize + 1);
    }
}
