//! When connections left, for the hub's own cancel: an operation whose
//! cancel is pending is canceled by the hub only once its producer is gone
//! and the stall timeout has passed since it left, so the engine remembers
//! recent departures for one stall timeout (older ones count as long ago).

use std::collections::{HashMap, VecDeque};

/// Most departures remembered; past this the oldest are forgotten (a
/// forgotten one counts as long ago, which at worst cancels a little early
/// for a connection that left within the last stall timeout).
pub const MAX_REMEMBERED: usize = 100_000;

/// Recent connection departures: connection id → when it closed (ms).
#[derive(Debug)]
pub struct Departures {
    order: VecDeque<(u64, u64)>,
    at: HashMap<u64, u64>,
    keep_ms: u64,
}

impl Departures {
    /// Remembers departures for `keep_ms` (the stall timeout).
    pub fn new(keep_ms: u64) -> Self {
        Departures {
            order: VecDeque::new(),
            at: HashMap::new(),
            keep_ms,
        }
    }

    /// Connection `conn` closed at `now`.
    pub fn left(&mut self, conn: u64, now: u64) {
        while let Some(&(c, t)) = self.order.front() {
            if t.saturating_add(self.keep_ms) >= now && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            if self.at.get(&c) == Some(&t) {
                self.at.remove(&c);
            }
        }
        self.order.push_back((conn, now));
        self.at.insert(conn, now);
    }

    /// Since when `conn` is gone, for a connection that is not open: when
    /// it closed if that was recent, else 0 (long ago, or never open, like
    /// an HTTP request's).
    pub fn since(&self, conn: u64) -> u64 {
        self.at.get(&conn).copied().unwrap_or(0)
    }

    /// Departures remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_departures_are_remembered_for_one_window() {
        let mut d = Departures::new(1_000);
        d.left(7, 100);
        assert_eq!(d.since(7), 100);
        assert_eq!(d.since(8), 0, "never seen: long ago");
        d.left(8, 1_100);
        assert_eq!(d.since(7), 100, "still within the window");
        d.left(9, 1_101);
        assert_eq!(d.since(7), 0, "forgotten after the window");
        assert_eq!((d.since(8), d.since(9)), (1_100, 1_101));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn the_count_is_capped() {
        let mut d = Departures::new(u64::MAX / 2);
        for c in 0..(MAX_REMEMBERED as u64 + 10) {
            d.left(c, 5);
        }
        assert_eq!(d.len(), MAX_REMEMBERED);
        assert_eq!(d.since(0), 0, "the oldest went first");
        assert_eq!(d.since(MAX_REMEMBERED as u64 + 9), 5);
    }
}
