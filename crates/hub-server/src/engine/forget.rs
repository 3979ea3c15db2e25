//! Forgetting idle namespaces, so that `max_namespaces` counts the ones in
//! use rather than every name ever written to.
//!
//! A namespace is idle when it holds no operation (finished ones are
//! dropped `finished_retention` after they end), no viewer is subscribed
//! to it and every event of it is durable. One idle for the grace
//! ([`grace_ms`]) is forgotten: its history, tombstones and records go
//! from memory and, in the same commit, from the store. When the hub is at
//! `max_namespaces`, the longest-idle one is forgotten at once to make
//! room.
//!
//! The grace is long because the tombstones go too: a producer that
//! resends a finished operation's messages (its ack was lost in a crash)
//! gets a duplicate ack while the tombstone lasts, and, once the namespace
//! is forgotten, `UNKNOWN_OPERATION` (a resent start then starts the
//! operation anew). So an idle namespace stays as long as the hub would
//! wait for a silent producer (`abandon_timeout`, 24 h by default), or
//! `finished_retention` if that is longer or the hub never abandons.
//!
//! A forgotten name may come back, with offsets from 1 again, so it must
//! come back under another epoch: a viewer's old position is then no
//! position of the new stream and it gets a snapshot. Every forget bumps
//! the hub's generation counter (persisted), and a namespace created in
//! generation `g > 0` has the epoch `<store epoch>.<g>` ([`epoch_for`]).
//! A hub that never forgot anything has one epoch for every namespace.
//!
//! A viewer may subscribe to a namespace before it exists and is told the
//! epoch it will have. Other namespaces may be forgotten before it is
//! created: it is still created in the generation its first waiting viewer
//! was told ([`Engine::promise_epoch`]), which no earlier incarnation of
//! the name can have had (each was forgotten, bumping the counter past its
//! own generation, before that viewer came).

use super::state::{Ns, Sub};
use super::Engine;
use std::collections::HashMap;

/// The epoch of a namespace created in `generation` of a store whose
/// epoch is `store_epoch`.
pub fn epoch_for(store_epoch: &str, generation: u64) -> String {
    if generation == 0 {
        store_epoch.to_owned()
    } else {
        format!("{store_epoch}.{generation}")
    }
}

/// How long a namespace stays idle before it is forgotten: the longer of
/// `finished_retention` and `abandon_timeout` (0: never abandons, then
/// `finished_retention`).
pub fn grace_ms(core: &hub_core::CoreConfig) -> u64 {
    core.finished_retention_ms.max(core.abandon_timeout_ms)
}

/// Whether `name` holds nothing a client could still ask for: no
/// operation, no subscription, no event on its way to the store.
fn idle(subs: &HashMap<String, Vec<Sub>>, name: &str, ns: &Ns) -> bool {
    ns.core.is_empty() && ns.log.last_offset() == ns.core.last_offset() && !subs.contains_key(name)
}

impl Engine {
    /// The epoch of `name`: its own when the hub holds it, else the one it
    /// will be created with (promised to viewers waiting for it, or now's).
    pub(super) fn epoch_of(&self, name: &str) -> String {
        match self.namespaces.get(name) {
            Some(ns) => ns.core.epoch().to_owned(),
            None => epoch_for(&self.epoch, self.generation_for(name)),
        }
    }

    fn generation_for(&self, name: &str) -> u64 {
        self.promised.get(name).copied().unwrap_or(self.generation)
    }

    /// A viewer now waits for `name`, which does not exist yet: keep the
    /// epoch it was told for when the namespace is created.
    pub(super) fn promise_epoch(&mut self, name: &str) {
        if !self.namespaces.contains_key(name) {
            let generation = self.generation;
            self.promised.entry(name.to_owned()).or_insert(generation);
        }
    }

    /// No viewer waits for `name` any more: nothing to keep.
    pub(super) fn forget_promise(&mut self, name: &str) {
        if !self.subs.contains_key(name) {
            self.promised.remove(name);
        }
    }

    /// A new, empty namespace for `name`, in the generation promised to
    /// its waiting viewers or the current one (recorded in the batch when
    /// it is not 0).
    pub(super) fn create_namespace(&mut self, name: &str) -> Ns {
        let generation = self.promised.remove(name).unwrap_or(self.generation);
        if generation > 0 {
            self.batch.generations.push((name.to_owned(), generation));
        }
        Ns::new(name, &epoch_for(&self.epoch, generation), &self.cfg)
    }

    /// Marks idle namespaces and forgets those idle for the grace.
    pub(super) fn forget_idle(&mut self, now: u64) {
        let grace = grace_ms(&self.cfg.core);
        let mut due = Vec::new();
        for (name, ns) in self.namespaces.iter_mut() {
            if !idle(&self.subs, name, ns) {
                ns.idle_since = None;
                continue;
            }
            let since = *ns.idle_since.get_or_insert(now);
            if now >= since.saturating_add(grace) {
                due.push(name.clone());
            }
        }
        for name in due {
            self.forget(&name);
        }
    }

    /// At `max_namespaces`: forgets the longest-idle namespace, if one is
    /// idle. Returns whether there is room now.
    pub(super) fn make_room(&mut self) -> bool {
        let victim = self
            .namespaces
            .iter()
            .filter(|(name, ns)| idle(&self.subs, name, ns))
            .min_by_key(|(_, ns)| ns.idle_since.unwrap_or(u64::MAX))
            .map(|(name, _)| name.clone());
        match victim {
            Some(name) => {
                self.forget(&name);
                true
            }
            None => false,
        }
    }

    /// Drops `name` from memory and, with this turn's batch, from the store.
    fn forget(&mut self, name: &str) {
        let Some(ns) = self.namespaces.remove(name) else {
            return;
        };
        self.history_changed(0, ns.log.retained_bytes());
        // The store drops before it writes the rest of a batch: what this
        // batch still holds for the namespace would outlive the drop.
        let b = &mut self.batch;
        b.events.retain(|e| e.namespace != name);
        b.upsert_ops.retain(|o| o.namespace != name);
        b.delete_ops.retain(|(n, _)| n != name);
        b.generations.retain(|(n, _)| n != name);
        b.trim_below.retain(|(n, _)| n != name);
        self.dirty.retain(|(n, _)| n != name);
        self.generation += 1;
        b.drop_namespaces.push(name.to_owned());
        b.generation = Some(self.generation);
        self.metrics.namespaces_forgotten.inc();
        tracing::debug!(
            namespace = name,
            generation = self.generation,
            "idle namespace forgotten"
        );
    }
}
