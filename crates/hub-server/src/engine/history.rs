//! The hub-wide bound on retained history (`max_history_bytes`, off by
//! default: the protocol promises `history_size` events per namespace).
//!
//! Every namespace keeps its newest `history_size` events in memory for
//! exact replay. When an operator sets it, together they may hold at most
//! `max_history_bytes`
//! (each event counted as [`crate::log::LogEntry::cost`]): past it, the
//! namespaces holding the most are cut down to a common level
//! ([`hub_core::budget::water_level`]) until all hold 90% of the budget,
//! so one busy namespace gives up its oldest events before a quiet
//! neighbour loses any, and the next cut is a while away. Each namespace
//! keeps at least its newest event. The store is told the same floors
//! with the next batch ([`hub_store::Batch::trim_below`]) and drops the
//! chunks wholly below them, so a restart brings back at most the rest of
//! the oldest chunk (never a gap). A viewer that resumes from before
//! a namespace's oldest retained event gets a snapshot, as it would past
//! `history_size`.
//!
//! When even one event per namespace is more than the budget (many
//! namespaces of large events), a cut cannot get under it; the next try
//! then waits until another tenth of the budget has come in, so such a
//! hub does not rescan every namespace after every commit.

use super::Engine;

impl Engine {
    /// Counts `added` bytes in and `freed` bytes out of the retained history.
    pub(super) fn history_changed(&mut self, added: usize, freed: usize) {
        self.history_bytes = (self.history_bytes + added).saturating_sub(freed);
    }

    /// Cuts the namespaces' histories back under the budget when they
    /// hold more than it.
    pub(super) fn keep_history_in_budget(&mut self) {
        let limit = self.cfg.max_history_bytes;
        if limit == 0 || self.history_bytes <= limit.max(self.history_retry_above) {
            return;
        }
        let target = limit - limit / 10;
        let sizes: Vec<usize> = self
            .namespaces
            .values()
            .map(|ns| ns.log.retained_bytes())
            .collect();
        let level = hub_core::budget::water_level(&sizes, target);
        let mut dropped = 0;
        for (name, ns) in self.namespaces.iter_mut() {
            if ns.log.retained_bytes() <= level {
                continue;
            }
            let before = ns.log.len();
            let freed = ns.log.trim_to_bytes(level);
            self.history_bytes = self.history_bytes.saturating_sub(freed);
            dropped += before - ns.log.len();
            self.batch
                .trim_below
                .push((name.clone(), ns.log.first_offset()));
        }
        self.history_retry_above = if self.history_bytes > limit {
            self.history_bytes.saturating_add(limit / 10)
        } else {
            0
        };
        self.metrics.history_cut.inc_by(dropped as u64);
        tracing::debug!(
            events = dropped,
            held_bytes = self.history_bytes,
            limit,
            "retained history cut to stay within max_history_bytes"
        );
    }
}
