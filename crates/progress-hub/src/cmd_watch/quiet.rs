//! Saying when the hub has gone quiet, before the connection is declared
//! dead.
//!
//! hub-client decides what "quiet" means: [`ConnectionStats::healthy`]
//! (connected, and a frame arrived within one heartbeat interval, the one
//! learned from the hub's own heartbeats plus its slack), the same test
//! `top` and the dashboard use for "Link quiet". The connection is only
//! declared dead after about two intervals (~60 s with the 30 s default),
//! so [`Quiet`] turns the health flag, polled by the caller, into at most
//! one `-- no word from the hub ...` line per silence and one line when
//! frames flow again. hub-client's window is at most the interval the hub
//! announced (its slack is cut off there), so an unhealthy reading must
//! also hold for hub-client's slack of that interval
//! ([`heartbeat_slack_ms`]: a quarter of it, at least 500 ms) before it is
//! reported: a heartbeat a few milliseconds late makes no pair of lines,
//! and a 30 s hub is called quiet after about 37.5 s.
//!
//! [`ConnectionStats::healthy`]: hub_client::ConnectionStats::healthy

use hub_client::machine::{heartbeat_slack_ms, MAX_ANNOUNCED_HEARTBEAT_MS, MIN_HEARTBEAT_SLACK_MS};

/// A change worth a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing has come for `silent_ms`: the data may be stale.
    Quiet {
        /// Time since the last frame.
        silent_ms: u64,
    },
    /// Frames arrive again after `silent_ms` of silence.
    Heard {
        /// How long nothing came.
        silent_ms: u64,
    },
}

impl Change {
    /// The status line (`-- ...`).
    pub fn line(self) -> String {
        match self {
            Change::Quiet { silent_ms } => format!(
                "-- no word from the hub for {}; data may be stale",
                seconds(silent_ms)
            ),
            Change::Heard { silent_ms } => format!(
                "-- the hub is heard again (silent for {})",
                seconds(silent_ms)
            ),
        }
    }
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// The silence state of one watch; fed readings of the connection's
/// health with the time (ms, any fixed origin).
#[derive(Debug)]
pub struct Quiet {
    /// How long an unhealthy reading must last to be reported.
    confirm_ms: u64,
    /// The frame counter at the last reading, and when it last moved.
    frames: Option<(u64, u64)>,
    /// Since when the readings say "connected but not healthy".
    unhealthy_since: Option<u64>,
    /// The last frame's time, while a silence is reported.
    reported_from: Option<u64>,
}

impl Default for Quiet {
    fn default() -> Self {
        Quiet {
            confirm_ms: MIN_HEARTBEAT_SLACK_MS,
            frames: None,
            unhealthy_since: None,
            reported_from: None,
        }
    }
}

impl Quiet {
    /// The heartbeat interval the hub announced (`system_status`'s
    /// `heartbeat_interval_ms`): its slack is waited out before a silence
    /// is reported.
    pub fn hub_interval(&mut self, interval_ms: u64) {
        self.confirm_ms = heartbeat_slack_ms(interval_ms.min(MAX_ANNOUNCED_HEARTBEAT_MS));
    }

    /// One reading: `connected`, `healthy` (hub-client's verdict) and the
    /// count of frames received so far. Returns the line to print, if any.
    /// A connection that is not up ends a silence without a line (the
    /// connection's own `--` lines say what happened).
    pub fn observe(
        &mut self,
        now: u64,
        connected: bool,
        healthy: bool,
        frames: u64,
    ) -> Option<Change> {
        let last_frame_at = match self.frames {
            Some((n, at)) if n == frames => at,
            _ => {
                self.frames = Some((frames, now));
                now
            }
        };
        if !connected {
            self.unhealthy_since = None;
            self.reported_from = None;
            // The next connection's handshake is word from the hub: a
            // silence on it counts from there, not from the old one's
            // last frame.
            self.frames = None;
            return None;
        }
        if healthy {
            self.unhealthy_since = None;
            return self.reported_from.take().map(|from| Change::Heard {
                silent_ms: last_frame_at.saturating_sub(from),
            });
        }
        let since = *self.unhealthy_since.get_or_insert(now);
        if self.reported_from.is_none() && now.saturating_sub(since) >= self.confirm_ms {
            self.reported_from = Some(last_frame_at);
            return Some(Change::Quiet {
                silent_ms: now.saturating_sub(last_frame_at),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_silence_and_one_when_heard_again() {
        let mut q = Quiet::default();
        assert_eq!(q.observe(0, true, true, 5), None);
        assert_eq!(q.observe(250, true, true, 5), None);
        // Unhealthy from 37_500 (30 s + 7.5 s slack after the last frame).
        assert_eq!(q.observe(37_500, true, false, 5), None);
        assert_eq!(q.observe(37_750, true, false, 5), None);
        let quiet = q.observe(38_000, true, false, 5);
        assert_eq!(quiet, Some(Change::Quiet { silent_ms: 38_000 }));
        assert_eq!(
            quiet.unwrap().line(),
            "-- no word from the hub for 38 s; data may be stale"
        );
        // Once per silence.
        assert_eq!(q.observe(40_000, true, false, 5), None);
        assert_eq!(q.observe(45_000, true, false, 5), None);
        let heard = q.observe(45_250, true, true, 6);
        assert_eq!(heard, Some(Change::Heard { silent_ms: 45_250 }));
        assert_eq!(
            heard.unwrap().line(),
            "-- the hub is heard again (silent for 45 s)"
        );
        assert_eq!(q.observe(45_500, true, true, 6), None);
        // A new silence is a new line.
        assert_eq!(q.observe(50_000, true, false, 6), None);
        assert_eq!(
            q.observe(50_500, true, false, 6),
            Some(Change::Quiet { silent_ms: 5_250 })
        );
        assert_eq!(
            Change::Quiet { silent_ms: 5_250 }.line(),
            "-- no word from the hub for 5.2 s; data may be stale"
        );
    }

    #[test]
    fn the_announced_interval_sets_the_slack() {
        let mut q = Quiet::default();
        q.hub_interval(30_000);
        assert_eq!(q.observe(0, true, true, 1), None);
        // hub-client: unhealthy past the announced 30 s; 7.5 s more.
        assert_eq!(q.observe(30_250, true, false, 1), None);
        assert_eq!(q.observe(37_500, true, false, 1), None);
        assert_eq!(
            q.observe(37_750, true, false, 1),
            Some(Change::Quiet { silent_ms: 37_750 })
        );
        // A short interval keeps the 500 ms floor.
        let mut q = Quiet::default();
        q.hub_interval(300);
        assert_eq!(q.observe(0, true, true, 1), None);
        assert_eq!(q.observe(400, true, false, 1), None);
        assert!(q.observe(900, true, false, 1).is_some());
    }

    #[test]
    fn a_blip_shorter_than_the_slack_says_nothing() {
        let mut q = Quiet::default();
        assert_eq!(q.observe(0, true, true, 1), None);
        assert_eq!(q.observe(30_001, true, false, 1), None);
        assert_eq!(q.observe(30_250, true, true, 2), None);
        assert_eq!(q.observe(30_751, true, true, 2), None);
    }

    #[test]
    fn a_lost_connection_ends_the_silence_without_a_line() {
        let mut q = Quiet::default();
        assert_eq!(q.observe(0, true, true, 1), None);
        assert!(q.observe(1_000, true, false, 1).is_none());
        assert!(matches!(
            q.observe(1_500, true, false, 1),
            Some(Change::Quiet { .. })
        ));
        assert_eq!(q.observe(2_000, false, false, 1), None);
        // Reconnected: healthy again says nothing (`-- connected` did).
        assert_eq!(q.observe(3_000, true, true, 2), None);
        // Not connected is never "quiet".
        assert_eq!(q.observe(9_000, false, false, 2), None);
        assert_eq!(q.observe(19_000, false, false, 2), None);
        // A silence on a new connection counts from its handshake.
        assert_eq!(q.observe(20_000, true, true, 2), None);
        assert_eq!(q.observe(40_000, true, false, 2), None);
        assert_eq!(
            q.observe(40_500, true, false, 2),
            Some(Change::Quiet { silent_ms: 20_500 })
        );
    }
}
