//! hub-store: the hub's durable event store.
//!
//! It stores opaque bytes: events keyed by `(namespace, offset)` and the
//! latest snapshot of each operation keyed by `(namespace, operation_id)`,
//! plus one epoch per store and the generation bookkeeping of namespaces
//! the hub forgot (a namespace is dropped whole, in one commit). It knows
//! nothing of viewers, transports or the wire protocol.
//!
//! - [`EventStore`]: the trait the server writes against;
//! - [`RedbStore`]: durable, one redb file, one fsync per commit;
//! - [`MemoryStore`]: nothing on disk, a new epoch every start;
//! - [`GroupCommitWriter`]: the one thread that writes, merging whatever is
//!   queued into one commit;
//! - [`mod@bench`]: the durable-throughput benchmark.
//!
//! ```
//! use std::sync::Arc;
//! use hub_store::{Batch, EventRecord, EventStore, MemoryStore, StoreConfig};
//!
//! let store = MemoryStore::new(StoreConfig { history_size: 2 });
//! for offset in 1..=3 {
//!     let event = EventRecord { namespace: "ns".into(), offset, data: Arc::from(&b"{}"[..]) };
//!     store.commit(&Batch { events: vec![event], ..Batch::default() }).unwrap();
//! }
//! let loaded = store.load().unwrap();
//! assert_eq!(loaded.namespaces[0].last_offset, 3);
//! assert_eq!(loaded.namespaces[0].events.len(), 2);
//! ```

pub mod bench;
pub mod chunk;
mod error;
mod guard;
mod memory;
mod record;
mod redb_store;
mod writer;

pub use bench::{bench_durable_events, BenchReport};
pub use error::{StoreError, DAMAGED_ADVICE};
pub use memory::MemoryStore;
pub use record::{Batch, EventRecord, Loaded, NamespaceData, OpRecord, StoreConfig};
pub use redb_store::{RedbStore, FILE_NAME};
pub use writer::{GroupCommitWriter, OnCommit, MAX_GROUP_BYTES, MAX_GROUP_EVENTS};

/// A durable home for events and operation snapshots. Implementations are
/// shared between the writer thread and readers, hence `Send + Sync`.
pub trait EventStore: Send + Sync + 'static {
    /// Reads everything back (epoch created and persisted on first open).
    fn load(&self) -> Result<Loaded, StoreError>;

    /// Writes the batch atomically; when it returns Ok the batch is durable (fsync'd).
    /// Also trims each touched namespace to its newest `history_size` events,
    /// and each of [`Batch::trim_below`] below its floor (never the newest
    /// event, so last_offset survives restarts).
    ///
    /// An event whose offset is not greater than its namespace's last offset
    /// is a caller bug: [`StoreError::OffsetNotIncreasing`], nothing written.
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;

    /// Cheap check used by the /ready endpoint (e.g. a tiny write txn or a cached health flag).
    fn check_writable(&self) -> Result<(), StoreError>;

    /// The epoch of this store (random, opaque, e.g. 16 hex chars).
    fn epoch(&self) -> String;

    /// Whether [`EventStore::commit`] is cheap and never blocks (no disk,
    /// no network), so a caller may commit on its own task instead of
    /// handing batches to a [`GroupCommitWriter`] thread. Default: false.
    fn commits_inline(&self) -> bool {
        false
    }
}
