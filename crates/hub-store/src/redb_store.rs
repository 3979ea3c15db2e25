//! [`RedbStore`]: the durable engine, one redb file (`<dir>/events.redb`)
//! with three tables:
//!
//! - `event_chunks`: `(namespace, last offset) -> chunk`, the retained
//!   events, each commit's events of a namespace packed into one value
//!   ([`crate::chunk`]);
//! - `ops`: `(namespace, operation_id) -> bytes`, the latest operation snapshots;
//! - `generations`: `namespace -> u64`, the generation of each namespace
//!   created after the hub first forgot one (absent: 0);
//! - `meta`: `key -> string`, holding the store's `epoch` (created on first
//!   open, kept across restarts), the data `format` and the hub's
//!   namespace `generation` counter.
//!
//! A namespace's last offset is the largest key in `event_chunks` for it;
//! trimming never removes the newest event, so it survives restarts without
//! a table of its own. Every commit is one write transaction with
//! `Durability::Immediate` (one fsync).
//!
//! Format 1 kept one `events` entry per event; a commit of 3,000 events
//! then spent most of its time building B-tree pages. A format-1 file is
//! converted to format 2 when it is opened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, Durability, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::chunk;
use crate::guard::{no_panic, on_open};
use crate::record::{check_offsets, new_epoch, trim_floor};
use crate::{
    Batch, EventRecord, EventStore, Loaded, NamespaceData, OpRecord, StoreConfig, StoreError,
};

const CHUNKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("event_chunks");
/// Format 1's table: one entry per event (read only to convert it).
const EVENTS_V1: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
const OPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("ops");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const GENERATIONS: TableDefinition<&str, u64> = TableDefinition::new("generations");

/// The file name inside the store directory.
pub const FILE_NAME: &str = "events.redb";
const FORMAT: &str = "2";

/// Memory redb may use to cache the file's pages (its default is 1 GiB,
/// which a hub that writes all day fills: RSS grew with every event written
/// long after the retained history stopped growing). The hub reads the
/// file at start and otherwise writes: appends and trims touch the ends of
/// the trees, and the OS page cache holds the rest.
pub const CACHE_BYTES: usize = 64 << 20;

/// An [`EventStore`] backed by a redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    epoch: String,
    history: u64,
    /// Why the last commit failed, if it did for a reason other than a bad
    /// batch; cleared by the next successful commit. Read by `check_writable`.
    failure: Mutex<Option<String>>,
}

impl RedbStore {
    /// Opens (creating if needed) the store in `dir`: creates the directory,
    /// the file `dir/events.redb`, its tables and its epoch. After an unclean
    /// shutdown redb repairs the file here, which may take a while on big files.
    pub fn open(dir: &Path, cfg: StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            context: "creating the store directory",
            source,
        })?;
        let path = dir.join(FILE_NAME);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            // redb takes an empty file as a new database: say so, since a
            // store lost to a bad copy looks exactly like this.
            tracing::warn!(path = %path.display(), "the store file is empty: starting a new store, with a new epoch (viewers get snapshots)");
        }
        let (db, epoch) = no_panic(&path, "opening it", true, || {
            let db = redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(&path)
                .map_err(|e| match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => {
                        StoreError::Locked { path: path.clone() }
                    }
                    other => StoreError::from_redb("opening the database", other),
                })?;
            let epoch = init_meta(&db)?;
            Ok((db, epoch))
        })
        .map_err(|e| on_open(&path, e))?;
        tracing::info!(path = %path.display(), %epoch, "event store opened");
        Ok(RedbStore {
            db,
            path,
            epoch,
            history: cfg.effective_history(),
            failure: Mutex::new(None),
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, txn: &WriteTransaction, batch: &Batch) -> Result<(), StoreError> {
        let ctx = "writing a batch";
        let mut chunks = txn.open_table(CHUNKS).map_err(engine_err(ctx))?;
        let mut ops = txn.open_table(OPS).map_err(engine_err(ctx))?;
        let mut generations = txn.open_table(GENERATIONS).map_err(engine_err(ctx))?;
        for ns in &batch.drop_namespaces {
            let ns = ns.as_str();
            chunks
                .retain_in((ns, 0u64)..=(ns, u64::MAX), |_, _| false)
                .map_err(|e| StoreError::from_redb("dropping a namespace", e))?;
            let mut ids = Vec::new();
            for entry in ops.range((ns, "")..).map_err(engine_err(ctx))? {
                let (key, _) = entry.map_err(engine_err(ctx))?;
                let (n, id) = key.value();
                if n != ns {
                    break;
                }
                ids.push(id.to_owned());
            }
            for id in &ids {
                ops.remove((ns, id.as_str())).map_err(engine_err(ctx))?;
            }
            generations.remove(ns).map_err(engine_err(ctx))?;
        }
        for (ns, generation) in &batch.generations {
            generations
                .insert(ns.as_str(), *generation)
                .map_err(engine_err(ctx))?;
        }
        let touched = check_offsets(batch, |ns| last_offset(&chunks, ns))?;
        // The history budget's cuts: every chunk wholly below the floor.
        // The newest chunk stays (its key is the namespace's last offset).
        for (ns, floor) in &batch.trim_below {
            let floor = (*floor).min(last_offset(&chunks, ns)?);
            chunks
                .retain_in((ns.as_str(), 0u64)..(ns.as_str(), floor), |_, _| false)
                .map_err(|e| StoreError::from_redb("trimming history", e))?;
        }
        let mut by_ns: BTreeMap<&str, Vec<&EventRecord>> = BTreeMap::new();
        for e in &batch.events {
            by_ns.entry(e.namespace.as_str()).or_default().push(e);
        }
        for (ns, events) in by_ns {
            for (last, bytes) in chunk::encode(events) {
                chunks
                    .insert((ns, last), bytes.as_slice())
                    .map_err(engine_err(ctx))?;
            }
        }
        // Trim in bulk: only once the oldest chunk ends a quarter of the
        // history (at least one event) below the floor, and then every
        // chunk wholly below it. The file holds about 1.25x the history;
        // `load` returns only the newest `history` events.
        let slack = (self.history / 4).max(1);
        for (ns, last) in &touched {
            let floor = trim_floor(*last, self.history);
            if floor <= 1 {
                continue;
            }
            let oldest = chunks
                .range((ns.as_str(), 0u64)..(ns.as_str(), floor))
                .map_err(engine_err(ctx))?
                .next()
                .transpose()
                .map_err(engine_err(ctx))?
                .map(|(k, _)| k.value().1);
            if oldest.is_some_and(|o| o + slack <= floor) {
                chunks
                    .retain_in((ns.as_str(), 0u64)..(ns.as_str(), floor), |_, _| false)
                    .map_err(|e| StoreError::from_redb("trimming history", e))?;
            }
        }
        for op in &batch.upsert_ops {
            ops.insert((op.namespace.as_str(), op.operation_id.as_str()), &*op.data)
                .map_err(engine_err(ctx))?;
        }
        for (ns, id) in &batch.delete_ops {
            ops.remove((ns.as_str(), id.as_str()))
                .map_err(engine_err(ctx))?;
        }
        if let Some(g) = batch.generation {
            let mut meta = txn.open_table(META).map_err(engine_err(ctx))?;
            meta.insert("generation", g.to_string().as_str())
                .map_err(engine_err(ctx))?;
        }
        Ok(())
    }

    fn record_outcome(&self, result: &Result<(), StoreError>) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => *failure = None,
            Err(e) if e.is_caller_error() => {}
            Err(e) => *failure = Some(e.to_string()),
        }
    }
}

/// Creates the tables and the epoch if missing; returns the epoch.
fn init_meta(db: &Database) -> Result<String, StoreError> {
    let ctx = "initialising the database";
    let mut txn = db.begin_write().map_err(engine_err(ctx))?;
    txn.set_durability(Durability::Immediate);
    let epoch = {
        txn.open_table(CHUNKS).map_err(engine_err(ctx))?;
        txn.open_table(OPS).map_err(engine_err(ctx))?;
        txn.open_table(GENERATIONS).map_err(engine_err(ctx))?;
        let mut meta = txn.open_table(META).map_err(engine_err(ctx))?;
        let format = meta
            .get("format")
            .map_err(engine_err(ctx))?
            .map(|v| v.value().to_owned());
        match format.as_deref() {
            None => {
                meta.insert("format", FORMAT).map_err(engine_err(ctx))?;
            }
            Some(FORMAT) => {}
            Some("1") => {
                let converted = convert_v1(&txn)?;
                meta.insert("format", FORMAT).map_err(engine_err(ctx))?;
                tracing::info!(
                    events = converted,
                    "store converted from format 1 to {FORMAT}"
                );
            }
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "unknown store format {other:?} (this build reads format {FORMAT})"
                )))
            }
        }
        let existing = meta
            .get("epoch")
            .map_err(engine_err(ctx))?
            .map(|v| v.value().to_owned());
        match existing {
            Some(epoch) if !epoch.is_empty() => epoch,
            Some(_) => return Err(StoreError::Corrupt("empty epoch in meta table".into())),
            None => {
                let epoch = new_epoch();
                meta.insert("epoch", epoch.as_str())
                    .map_err(engine_err(ctx))?;
                epoch
            }
        }
    };
    txn.commit().map_err(engine_err(ctx))?;
    Ok(epoch)
}

/// Moves format 1's one-entry-per-event table into chunks, a namespace at
/// a time, and drops it. Returns how many events moved.
fn convert_v1(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let ctx = "converting the store from format 1";
    let mut chunks = txn.open_table(CHUNKS).map_err(engine_err(ctx))?;
    let mut moved = 0;
    {
        let old = txn.open_table(EVENTS_V1).map_err(engine_err(ctx))?;
        let mut pending: Vec<EventRecord> = Vec::new();
        let mut put = |pending: &mut Vec<EventRecord>| -> Result<(), StoreError> {
            let Some(ns) = pending.first().map(|e| e.namespace.clone()) else {
                return Ok(());
            };
            for (last, bytes) in chunk::encode(pending.iter()) {
                chunks
                    .insert((ns.as_str(), last), bytes.as_slice())
                    .map_err(engine_err(ctx))?;
            }
            pending.clear();
            Ok(())
        };
        for entry in old.iter().map_err(engine_err(ctx))? {
            let (key, value) = entry.map_err(engine_err(ctx))?;
            let (ns, offset) = key.value();
            if pending.first().is_some_and(|e| e.namespace != ns) {
                put(&mut pending)?;
            }
            pending.push(EventRecord {
                namespace: ns.to_owned(),
                offset,
                data: Arc::from(value.value()),
            });
            moved += 1;
        }
        put(&mut pending)?;
    }
    txn.delete_table(EVENTS_V1).map_err(engine_err(ctx))?;
    Ok(moved)
}

/// The namespace's largest stored offset, or 0.
fn last_offset(
    events: &Table<'_, (&'static str, u64), &'static [u8]>,
    ns: &str,
) -> Result<u64, StoreError> {
    let ctx = "reading the last offset";
    let mut range = events
        .range((ns, 0u64)..=(ns, u64::MAX))
        .map_err(engine_err(ctx))?;
    match range.next_back() {
        Some(entry) => Ok(entry.map_err(engine_err(ctx))?.0.value().1),
        None => Ok(0),
    }
}

impl EventStore for RedbStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        no_panic(&self.path, "loading it", true, || self.load_inner())
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let result = no_panic(&self.path, "committing", false, || self.commit_inner(batch));
        self.record_outcome(&result);
        result
    }

    /// Cheap and non-blocking: reports the last commit's failure, if any
    /// (other than a rejected batch). A later successful commit clears it.
    fn check_writable(&self) -> Result<(), StoreError> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(msg) => Err(StoreError::Unavailable(format!(
                "last commit failed: {msg}"
            ))),
        }
    }

    fn epoch(&self) -> String {
        self.epoch.clone()
    }
}

impl RedbStore {
    fn load_inner(&self) -> Result<Loaded, StoreError> {
        let ctx = "loading";
        let txn = self.db.begin_read().map_err(engine_err(ctx))?;
        let mut namespaces: BTreeMap<String, NamespaceData> = BTreeMap::new();
        let chunks = txn.open_table(CHUNKS).map_err(engine_err(ctx))?;
        for entry in chunks.iter().map_err(engine_err(ctx))? {
            let (key, value) = entry.map_err(engine_err(ctx))?;
            let (ns, last) = key.value();
            let data = namespace_entry(&mut namespaces, ns);
            chunk::decode(ns, last, value.value(), &mut data.events)?;
            data.last_offset = last;
        }
        let ops = txn.open_table(OPS).map_err(engine_err(ctx))?;
        for entry in ops.iter().map_err(engine_err(ctx))? {
            let (key, value) = entry.map_err(engine_err(ctx))?;
            let (ns, id) = key.value();
            namespace_entry(&mut namespaces, ns).ops.push(OpRecord {
                namespace: ns.to_owned(),
                operation_id: id.to_owned(),
                data: Arc::from(value.value()),
            });
        }
        let generations = txn.open_table(GENERATIONS).map_err(engine_err(ctx))?;
        for entry in generations.iter().map_err(engine_err(ctx))? {
            let (key, value) = entry.map_err(engine_err(ctx))?;
            namespace_entry(&mut namespaces, key.value()).generation = value.value();
        }
        let meta = txn.open_table(META).map_err(engine_err(ctx))?;
        let generation = match meta.get("generation").map_err(engine_err(ctx))? {
            None => 0,
            Some(v) => v.value().parse().map_err(|_| {
                StoreError::Corrupt(format!("bad generation {:?} in meta table", v.value()))
            })?,
        };
        let namespaces = namespaces
            .into_values()
            .map(|mut ns| {
                // The history size may have shrunk since these were written.
                let floor = trim_floor(ns.last_offset, self.history);
                let keep_from = ns.events.partition_point(|e| e.offset < floor);
                ns.events.drain(..keep_from);
                ns
            })
            .collect();
        Ok(Loaded {
            epoch: self.epoch.clone(),
            namespaces,
            generation,
        })
    }

    fn commit_inner(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| StoreError::from_redb("starting a write", e))?;
        txn.set_durability(Durability::Immediate);
        if let Err(e) = self.write(&txn, batch) {
            // Dropping aborts the transaction, or, after an I/O error (a
            // full disk), only lets it go: redb then refuses every write
            // until the file is reopened, and an explicit abort would
            // assert and panic (which reads as a damaged file).
            drop(txn);
            return Err(e);
        }
        txn.commit()
            .map_err(|e| StoreError::from_redb("committing (fsync)", e))
    }
}

fn namespace_entry<'m>(
    namespaces: &'m mut BTreeMap<String, NamespaceData>,
    ns: &str,
) -> &'m mut NamespaceData {
    if !namespaces.contains_key(ns) {
        namespaces.insert(
            ns.to_owned(),
            NamespaceData {
                name: ns.to_owned(),
                last_offset: 0,
                events: Vec::new(),
                ops: Vec::new(),
                generation: 0,
            },
        );
    }
    namespaces.get_mut(ns).expect("inserted above")
}

/// Maps any redb error to a [`StoreError`] saying what the store was doing.
fn engine_err<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::from_redb(context, e)
}
