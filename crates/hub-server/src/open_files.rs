//! The open-files limit and the connection caps: every connection is a
//! file descriptor, and once the process has none left `accept` fails and
//! new clients hang in the kernel's backlog with no answer at all. At
//! start the hub raises its soft limit to the hard one and, if
//! `max_connections` still does not fit under it with room for everything
//! else, lowers it (with a warning), so the connection past the cap is
//! answered `429 RATE_LIMITED` instead.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for what is not a WebSocket or SSE connection: plain
/// HTTP requests being served, the store, the listener, the runtime.
pub const RESERVE: u64 = 512;

/// Descriptors kept for the process itself when capping the connections
/// served as HTTP (the store, the listener, the runtime, log files).
pub const OWN_FILES: u64 = 128;

/// Raises the soft open-files limit to the hard limit; returns the soft
/// limit now in force (`None` when it cannot be read).
pub fn raise() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The soft open-files limit (`None` when it cannot be read).
pub fn limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// `max_connections` lowered to fit `limit` descriptors with [`RESERVE`]
/// to spare, or `None` when it fits as it is.
pub fn fitted(max_connections: usize, limit: u64) -> Option<usize> {
    let room = limit.saturating_sub(RESERVE).max(1);
    (max_connections as u64 > room).then(|| usize::try_from(room).unwrap_or(usize::MAX))
}

/// How many connections the accept loop may serve at once under `limit`
/// descriptors, given the cap it would use otherwise.
pub fn http_cap(cap: usize, limit: Option<u64>) -> usize {
    match limit {
        Some(l) => {
            cap.min(usize::try_from(l.saturating_sub(OWN_FILES).max(1)).unwrap_or(usize::MAX))
        }
        None => cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_limit_with_room_to_spare() {
        assert_eq!(fitted(100_000, 1_048_576), None);
        assert_eq!(fitted(100_000, 20_000), Some(19_488));
        assert_eq!(fitted(10, 1024), None);
        assert_eq!(fitted(1000, 600), Some(88));
        assert_eq!(fitted(1000, 100), Some(1));
        assert_eq!(http_cap(200_016, Some(1024)), 896);
        assert_eq!(http_cap(216, Some(1_048_576)), 216);
        assert_eq!(http_cap(216, None), 216);
    }
}
