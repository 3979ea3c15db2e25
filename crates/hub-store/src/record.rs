//! The plain data the store moves: records, batches, what a load returns, and
//! the configuration. Payloads are opaque bytes; the store never parses them.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One event as stored: opaque JSON bytes keyed by (namespace, offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The namespace the event belongs to.
    pub namespace: String,
    /// The event's offset in its namespace (starts at 1, strictly increasing).
    pub offset: u64,
    /// The encoded event, opaque to the store.
    pub data: Arc<[u8]>,
}

/// The latest snapshot of one operation (opaque bytes written by the core).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The namespace the operation belongs to.
    pub namespace: String,
    /// The operation's id, unique within its namespace.
    pub operation_id: String,
    /// The encoded snapshot, opaque to the store.
    pub data: Arc<[u8]>,
}

/// Everything one commit writes, atomically.
///
/// Within one batch the store first removes each namespace of
/// `drop_namespaces` whole (events, operations, generation; dropping a
/// missing one is not an error), then records `generations`, trims the
/// events below each `trim_below` floor (the newest stored event of a
/// namespace always stays), appends
/// `events` (each namespace's offsets must increase, starting above its
/// stored last offset: 0 for a namespace just dropped), then applies
/// `upsert_ops` in order (a later upsert of the same op wins), then
/// `delete_ops` (so an op both upserted and deleted in one batch ends deleted;
/// deleting a missing op is not an error), and stores `generation`.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Namespaces to forget entirely, before anything else.
    pub drop_namespaces: Vec<String>,
    /// Namespaces created in a generation above 0, as `(name, generation)`;
    /// kept with the namespace until it is dropped ([`NamespaceData::generation`]).
    pub generations: Vec<(String, u64)>,
    /// `(namespace, floor)`: its stored events with offset below `floor`
    /// may go (the hub's history budget cut its replay log there). The
    /// store keeps at least its newest stored event, and may keep a few
    /// more below the floor (it trims whole chunks).
    pub trim_below: Vec<(String, u64)>,
    /// Events to append.
    pub events: Vec<EventRecord>,
    /// Operation snapshots to insert or replace.
    pub upsert_ops: Vec<OpRecord>,
    /// Operations to remove, as `(namespace, operation_id)`.
    pub delete_ops: Vec<(String, String)>,
    /// The store-wide generation counter's new value ([`Loaded::generation`]).
    pub generation: Option<u64>,
}

impl Batch {
    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.upsert_ops.is_empty()
            && self.delete_ops.is_empty()
            && self.drop_namespaces.is_empty()
            && self.generations.is_empty()
            && self.trim_below.is_empty()
            && self.generation.is_none()
    }

    /// Approximate payload size in bytes (data plus keys), used to bound group commits.
    pub fn approx_bytes(&self) -> usize {
        let events: usize = self
            .events
            .iter()
            .map(|e| e.namespace.len() + 8 + e.data.len())
            .sum();
        let ups: usize = self
            .upsert_ops
            .iter()
            .map(|o| o.namespace.len() + o.operation_id.len() + o.data.len())
            .sum();
        let dels: usize = self.delete_ops.iter().map(|(n, o)| n.len() + o.len()).sum();
        let names: usize = self.drop_namespaces.iter().map(String::len).sum::<usize>()
            + self
                .generations
                .iter()
                .chain(&self.trim_below)
                .map(|(n, _)| n.len() + 8)
                .sum::<usize>();
        events + ups + dels + names
    }

    /// Merges batches, in order, into one whose effect is the same as
    /// committing them one after the other: events are concatenated, and each
    /// operation ends up in exactly one of `upsert_ops` / `delete_ops`
    /// according to the last thing done to it.
    ///
    /// A namespace dropped by a later batch loses what earlier ones wrote
    /// to it, and the drop moves to the front with the others: the merged
    /// batch drops first, as each batch does.
    pub fn merge(batches: impl IntoIterator<Item = Batch>) -> Batch {
        let mut events: Vec<EventRecord> = Vec::new();
        let mut ops: BTreeMap<(String, String), Option<Arc<[u8]>>> = BTreeMap::new();
        let mut drops: Vec<String> = Vec::new();
        let mut generations: Vec<(String, u64)> = Vec::new();
        let mut trims: BTreeMap<String, u64> = BTreeMap::new();
        let mut generation = None;
        for batch in batches {
            for ns in batch.drop_namespaces {
                events.retain(|e| e.namespace != ns);
                ops.retain(|(n, _), _| *n != ns);
                generations.retain(|(n, _)| *n != ns);
                trims.remove(&ns);
                if !drops.contains(&ns) {
                    drops.push(ns);
                }
            }
            generations.extend(batch.generations);
            for (ns, floor) in batch.trim_below {
                let at = trims.entry(ns).or_default();
                *at = (*at).max(floor);
            }
            events.extend(batch.events);
            for op in batch.upsert_ops {
                ops.insert((op.namespace, op.operation_id), Some(op.data));
            }
            for key in batch.delete_ops {
                ops.insert(key, None);
            }
            generation = batch.generation.or(generation);
        }
        let mut merged = Batch {
            drop_namespaces: drops,
            generations,
            trim_below: trims.into_iter().collect(),
            events,
            generation,
            ..Batch::default()
        };
        for ((namespace, operation_id), data) in ops {
            match data {
                Some(data) => merged.upsert_ops.push(OpRecord {
                    namespace,
                    operation_id,
                    data,
                }),
                None => merged.delete_ops.push((namespace, operation_id)),
            }
        }
        merged
    }
}

/// What a namespace holds at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceData {
    /// The namespace's name.
    pub name: String,
    /// The offset of the newest event ever committed (0 when none was).
    pub last_offset: u64,
    /// The newest retained events (at most `history_size`), ascending by offset.
    pub events: Vec<EventRecord>,
    /// Every stored operation snapshot, sorted by operation id.
    pub ops: Vec<OpRecord>,
    /// The generation the namespace was created in (0: before the store
    /// ever dropped a namespace). The hub derives its epoch from it.
    pub generation: u64,
}

/// Everything a store holds, as read back by [`EventStore::load`](crate::EventStore::load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The store's epoch.
    pub epoch: String,
    /// Every namespace with at least one event or operation, or a
    /// generation above 0, sorted by name.
    pub namespaces: Vec<NamespaceData>,
    /// The last [`Batch::generation`] committed (0 when none was).
    pub generation: u64,
}

/// Store settings shared by every engine.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Keep at least the newest `history_size` events per namespace: every
    /// event with offset > `last_offset - history_size` is retained, which is
    /// exactly the newest `history_size` when offsets have no gaps (as the core
    /// assigns them). 0 is treated as 1: the newest event is never trimmed, so
    /// a namespace's last offset survives restarts. Default 100 000.
    pub history_size: u64,
}

impl StoreConfig {
    /// The effective history size (at least 1).
    pub fn effective_history(&self) -> u64 {
        self.history_size.max(1)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            history_size: 100_000,
        }
    }
}

/// A fresh random epoch: 16 lowercase hex characters.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Checks that every event in `batch` has an offset greater than its
/// namespace's previous one (`stored_last` for the first, then the previous
/// event of the batch). Returns each touched namespace with its new last offset.
pub(crate) fn check_offsets<E>(
    batch: &Batch,
    mut stored_last: impl FnMut(&str) -> Result<u64, E>,
) -> Result<BTreeMap<String, u64>, E>
where
    E: From<crate::StoreError>,
{
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for event in &batch.events {
        let prev = match last.get(event.namespace.as_str()) {
            Some(prev) => *prev,
            None => stored_last(&event.namespace)?,
        };
        if event.offset <= prev {
            return Err(crate::StoreError::OffsetNotIncreasing {
                namespace: event.namespace.clone(),
                offset: event.offset,
                last_offset: prev,
            }
            .into());
        }
        last.insert(event.namespace.clone(), event.offset);
    }
    Ok(last)
}

/// The lowest offset a namespace keeps: events below it are trimmed.
/// Never above `last_offset`, so the newest event always survives.
pub(crate) fn trim_floor(last_offset: u64, history: u64) -> u64 {
    last_offset.saturating_sub(history.max(1)) + 1
}
