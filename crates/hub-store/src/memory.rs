//! [`MemoryStore`]: the in-memory engine for `--memory` runs and tests.
//! Nothing touches the disk; every `new()` starts empty with a fresh epoch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::{check_offsets, new_epoch, trim_floor};
use crate::{
    Batch, EventRecord, EventStore, Loaded, NamespaceData, OpRecord, StoreConfig, StoreError,
};

/// One namespace's contents.
#[derive(Default)]
struct Namespace {
    last_offset: u64,
    events: VecDeque<EventRecord>,
    ops: BTreeMap<String, Arc<[u8]>>,
    generation: u64,
}

/// An [`EventStore`] that keeps everything in memory (lost on exit).
pub struct MemoryStore {
    epoch: String,
    history: u64,
    namespaces: Mutex<BTreeMap<String, Namespace>>,
    generation: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    /// An empty store with a new random epoch.
    pub fn new(cfg: StoreConfig) -> Self {
        MemoryStore {
            epoch: new_epoch(),
            history: cfg.effective_history(),
            namespaces: Mutex::new(BTreeMap::new()),
            generation: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Namespace>> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (validation happens before any mutation), so poisoning is ignored.
        self.namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EventStore for MemoryStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let namespaces = self.lock();
        let namespaces = namespaces
            .iter()
            .filter(|(_, ns)| !ns.events.is_empty() || !ns.ops.is_empty() || ns.generation > 0)
            .map(|(name, ns)| NamespaceData {
                name: name.clone(),
                last_offset: ns.last_offset,
                events: ns.events.iter().cloned().collect(),
                ops: ns
                    .ops
                    .iter()
                    .map(|(id, data)| OpRecord {
                        namespace: name.clone(),
                        operation_id: id.clone(),
                        data: data.clone(),
                    })
                    .collect(),
                generation: ns.generation,
            })
            .collect();
        Ok(Loaded {
            epoch: self.epoch.clone(),
            namespaces,
            generation: self.generation.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut namespaces = self.lock();
        let dropped = |ns: &str| batch.drop_namespaces.iter().any(|d| d == ns);
        let touched = check_offsets(batch, |ns| {
            let stored = if dropped(ns) {
                None
            } else {
                namespaces.get(ns)
            };
            Ok::<_, StoreError>(stored.map_or(0, |n| n.last_offset))
        })?;
        for ns in &batch.drop_namespaces {
            namespaces.remove(ns);
        }
        for (ns, generation) in &batch.generations {
            namespaces.entry(ns.clone()).or_default().generation = *generation;
        }
        for (name, floor) in &batch.trim_below {
            if let Some(ns) = namespaces.get_mut(name) {
                while ns.events.len() > 1 && ns.events.front().is_some_and(|e| e.offset < *floor) {
                    ns.events.pop_front();
                }
            }
        }
        for event in &batch.events {
            let ns = namespaces.entry(event.namespace.clone()).or_default();
            ns.events.push_back(event.clone());
            ns.last_offset = event.offset;
        }
        for op in &batch.upsert_ops {
            let ns = namespaces.entry(op.namespace.clone()).or_default();
            ns.ops.insert(op.operation_id.clone(), op.data.clone());
        }
        for (ns, op) in &batch.delete_ops {
            if let Some(ns) = namespaces.get_mut(ns) {
                ns.ops.remove(op);
            }
        }
        if let Some(g) = batch.generation {
            self.generation
                .store(g, std::sync::atomic::Ordering::Relaxed);
        }
        for name in touched.keys() {
            if let Some(ns) = namespaces.get_mut(name) {
                let keep_from = trim_floor(ns.last_offset, self.history);
                while ns.events.front().is_some_and(|e| e.offset < keep_from) {
                    ns.events.pop_front();
                }
            }
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn epoch(&self) -> String {
        self.epoch.clone()
    }

    /// A commit is a few pushes under one lock: the engine commits inline.
    fn commits_inline(&self) -> bool {
        true
    }
}
