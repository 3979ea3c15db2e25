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
}
