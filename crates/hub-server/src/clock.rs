//! The one place the server reads clocks (the core never does): the wall
//! clock for timestamps and the monotonic clock for latency metrics.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A monotonic stamp (nanoseconds since the process's first call, plus
/// one, so 0 can mean "no stamp"); cheap, no allocation.
pub fn stamp() -> u64 {
    base().elapsed().as_nanos() as u64 + 1
}

/// Seconds elapsed since a [`stamp`] (0 for the empty stamp).
pub fn seconds_since(stamp: u64) -> f64 {
    if stamp == 0 {
        return 0.0;
    }
    let now = self::stamp();
    now.saturating_sub(stamp) as f64 / 1e9
}
