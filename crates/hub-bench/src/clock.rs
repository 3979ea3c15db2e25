//! The generator's one clock: nanoseconds since the process first asked,
//! shared by producers (send stamps) and viewers (receive time), so
//! end-to-end latency is a difference of two readings of the same
//! monotonic clock.

use std::sync::OnceLock;
use std::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();

fn base() -> Instant {
    *BASE.get_or_init(Instant::now)
}

/// Monotonic nanoseconds since the generator's clock started.
pub fn now_ns() -> u64 {
    ns_at(Instant::now())
}

/// The generator-clock reading of `at` (0 for instants before the clock started).
pub fn ns_at(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base()).as_nanos()).unwrap_or(u64::MAX)
}

/// The generator-clock reading of a wall-clock time (ns since the Unix
/// epoch, as the kernel stamps received packets), through the offset
/// between the two clocks measured once.
pub fn from_realtime(ns: u64) -> u64 {
    static OFFSET: OnceLock<i128> = OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        wall - i128::from(now_ns())
    });
    u64::try_from((i128::from(ns) - offset).max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert!(ns_at(Instant::now()) >= b);
    }

    #[test]
    fn wall_clock_times_map_onto_the_generator_clock() {
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        };
        let (w, n) = (wall(), now_ns());
        let mapped = from_realtime(w);
        assert!(mapped.abs_diff(n) < 1_000_000, "{mapped} vs {n}");
        // Well past the clock's start, so neither reading is clamped to 0
        // (when this test is the first to read the clock, `w` itself may
        // map to just before it started).
        let later = w + 10_000_000;
        assert_eq!(from_realtime(later + 5_000) - from_realtime(later), 5_000);
        assert_eq!(from_realtime(0), 0);
    }
}
