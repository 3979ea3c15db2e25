//! The broadcast cap per operation (`max_updates_per_operation_per_second`,
//! off by default): progress updates of one operation beyond N per second
//! are still acked, stored, logged and replayed, but live viewers get only
//! the latest one of each window.
//!
//! Rules that keep what a live viewer sees consistent:
//! - lifecycle events are never held or skipped;
//! - a held update is superseded (dropped) only by a later event of the same
//!   operation, which is delivered, so each operation's latest event always
//!   reaches the viewers;
//! - offsets stay increasing for every viewer: before any other event of the
//!   namespace is delivered, the namespace's held updates are delivered
//!   first (in offset order); so is everything held before a new
//!   subscription is registered, whose replay or snapshot already covers it;
//! - a held update is delivered at the latest when its operation's window
//!   ends (at the engine's next tick after it).
//!
//! So the cap takes full effect on an operation flooding a namespace whose
//! other operations are quieter, and less when several flood one namespace
//! at once.

use hub_core::outqueue::OutItem;
use std::collections::HashMap;
use std::sync::Arc;

/// Length of a window, ms.
pub const WINDOW_MS: u64 = 1000;

/// A progress update waiting for the end of its operation's window.
pub struct Held {
    /// The operation.
    pub op: Arc<str>,
    /// The queued message.
    pub item: OutItem,
    /// (operation id, kind) for viewers' filters.
    pub key: (Arc<str>, Arc<str>),
}

struct Window {
    start: u64,
    sent: u32,
}

/// What to do with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it now (after the held updates [`Coalescer::release`] returns).
    Deliver,
    /// Hold it (see [`Coalescer::hold`]).
    Hold,
}

/// Per-operation windows and the held updates, per namespace.
pub struct Coalescer {
    per_second: u32,
    windows: HashMap<(String, Arc<str>), Window>,
    held: HashMap<String, Vec<Held>>,
}

impl Coalescer {
    /// A coalescer allowing `per_second` updates per operation (0: off).
    pub fn new(per_second: u32) -> Self {
        Coalescer {
            per_second,
            windows: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Whether the cap is on.
    pub fn enabled(&self) -> bool {
        self.per_second > 0
    }

    /// Decides about one event of `op` in `ns` at `now` (ms).
    pub fn judge(&mut self, ns: &str, op: &Arc<str>, lifecycle: bool, now: u64) -> Verdict {
        if !self.enabled() || lifecycle {
            return Verdict::Deliver;
        }
        let w = self
            .windows
            .entry((ns.to_owned(), op.clone()))
            .or_insert(Window {
                start: now,
                sent: 0,
            });
        if now >= w.start + WINDOW_MS {
            w.start = now;
            w.sent = 0;
        }
        if w.sent < self.per_second {
            w.sent += 1;
            Verdict::Deliver
        } else {
            Verdict::Hold
        }
    }

    /// Holds an update, replacing the operation's previous held one.
    /// Returns whether one was replaced (skipped for good).
    pub fn hold(&mut self, ns: &str, held: Held) -> bool {
        let list = self.held.entry(ns.to_owned()).or_default();
        let before = list.len();
        list.retain(|h| h.op != held.op);
        let replaced = list.len() != before;
        // The newest event has the highest offset: the list stays in order.
        list.push(held);
        replaced
    }

    /// The held updates of `ns` to deliver before an event of `op`, in
    /// offset order; `op`'s own held update is superseded and dropped
    /// (returned count: how many were dropped).
    pub fn release(&mut self, ns: &str, op: Option<&str>) -> (Vec<Held>, usize) {
        let Some(list) = self.held.remove(ns) else {
            return (Vec::new(), 0);
        };
        let before = list.len();
        let out: Vec<Held> = list
            .into_iter()
            .filter(|h| op.is_none_or(|op| &*h.op != op))
            .collect();
        let dropped = before - out.len();
        (out, dropped)
    }

    /// Namespaces with a held update whose window has ended, with all their
    /// held updates (in order). A delivered update opens a new window.
    pub fn due(&mut self, now: u64) -> Vec<(String, Vec<Held>)> {
        let windows = &self.windows;
        let ended = |ns: &String, h: &Held| {
            windows
                .get(&(ns.clone(), h.op.clone()))
                .is_none_or(|w| now >= w.start + WINDOW_MS)
        };
        let names: Vec<String> = self
            .held
            .iter()
            .filter(|(ns, list)| list.iter().any(|h| ended(ns, h)))
            .map(|(ns, _)| ns.clone())
            .collect();
        let mut out = Vec::new();
        for ns in names {
            let list = self.held.remove(&ns).unwrap_or_default();
            for h in &list {
                self.windows.insert(
                    (ns.clone(), h.op.clone()),
                    Window {
                        start: now,
                        sent: 1,
                    },
                );
            }
            out.push((ns, list));
        }
        // Forget windows that ended and hold nothing.
        let held = &self.held;
        self.windows.retain(|(ns, op), w| {
            now < w.start + WINDOW_MS || held.get(ns).is_some_and(|l| l.iter().any(|h| &h.op == op))
        });
        out
    }

    /// Updates held in all namespaces.
    #[cfg(test)]
    pub fn held_count(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(op: &str, offset: u64) -> Held {
        Held {
            op: op.into(),
            item: OutItem::progress(format!("{op}@{offset}").into(), "k".into(), offset),
            key: (op.into(), "k".into()),
        }
    }

    #[test]
    fn off_delivers_everything() {
        let mut c = Coalescer::new(0);
        for t in 0..100 {
            assert_eq!(c.judge("ns", &"a".into(), false, t), Verdict::Deliver);
        }
    }

    #[test]
    fn over_the_cap_is_held_latest_wins_and_flushes_at_window_end() {
        let mut c = Coalescer::new(2);
        let a: Arc<str> = "a".into();
        assert_eq!(c.judge("ns", &a, false, 0), Verdict::Deliver);
        assert_eq!(c.judge("ns", &a, false, 10), Verdict::Deliver);
        assert_eq!(c.judge("ns", &a, false, 20), Verdict::Hold);
        assert!(!c.hold("ns", held("a", 3)));
        assert_eq!(c.judge("ns", &a, false, 30), Verdict::Hold);
        assert!(
            c.hold("ns", held("a", 4)),
            "the older held update is skipped"
        );
        // Lifecycle events are never held.
        assert_eq!(c.judge("ns", &a, true, 40), Verdict::Deliver);
        assert!(c.due(999).is_empty(), "the window has not ended");
        let due = c.due(1000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.len(), 1);
        assert_eq!(due[0].1[0].item.offset, Some(4));
        assert_eq!(c.held_count(), 0);
        // The delivery opened a new window with one update counted.
        assert_eq!(c.judge("ns", &a, false, 1001), Verdict::Deliver);
        assert_eq!(c.judge("ns", &a, false, 1002), Verdict::Hold);
    }

    #[test]
    fn release_keeps_order_and_drops_the_superseded() {
        let mut c = Coalescer::new(1);
        c.hold("ns", held("a", 5));
        c.hold("ns", held("b", 6));
        c.hold("ns", held("a", 7));
        let (out, dropped) = c.release("ns", Some("b"));
        assert_eq!(dropped, 1);
        let offsets: Vec<_> = out.iter().map(|h| h.item.offset).collect();
        assert_eq!(offsets, vec![Some(7)]);
        assert_eq!(c.held_count(), 0);
        c.hold("ns", held("a", 8));
        c.hold("other", held("z", 1));
        let (out, dropped) = c.release("ns", None);
        assert_eq!((out.len(), dropped), (1, 0));
        assert_eq!(c.held_count(), 1);
    }
}
