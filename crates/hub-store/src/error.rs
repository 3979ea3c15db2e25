//! The store's error type: one enum for every engine, with messages that say
//! what failed and what to do about it. Engine-specific errors (redb) are
//! classified here so callers never depend on the engine's types.

use std::path::PathBuf;

/// What to do about a damaged store, said after every such error.
pub const DAMAGED_ADVICE: &str = "Restore it from a backup, or move it away to start with an \
     empty store (its history is lost)";

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system I/O error (disk full, permission denied, fsync failed, ...).
    #[error("store I/O error while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store file could not be opened (not a file, no permission, ...).
    #[error("cannot open the store file {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data on disk is damaged or not what this version wrote.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The store file is already open, by another process or another handle in this one.
    #[error("store file {} is already open (is another hub running on the same data directory?)", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// A batch holds an event whose offset is not greater than the namespace's
    /// last offset. This is a caller bug; nothing of the batch was written.
    #[error(
        "event offset {offset} in namespace {namespace:?} is not greater than its last offset {last_offset}; batch rejected, nothing written"
    )]
    OffsetNotIncreasing {
        /// The namespace.
        namespace: String,
        /// The offending event's offset.
        offset: u64,
        /// The namespace's last offset at that point (stored, or earlier in the batch).
        last_offset: u64,
    },
    /// An earlier write failed and the store cannot be trusted to accept more
    /// until the process reopens it.
    #[error("store is not writable: {0}")]
    Unavailable(String),
    /// The store or writer has been shut down.
    #[error("store is closed")]
    Closed,
    /// Any other error reported by the storage engine.
    #[error("storage engine error while {context}: {message}")]
    Engine {
        /// What the store was doing.
        context: &'static str,
        /// The engine's message.
        message: String,
    },
}

impl StoreError {
    /// True when the error is the caller's fault (the batch was invalid) rather
    /// than the store's: the store stays healthy after it.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, StoreError::OffsetNotIncreasing { .. })
    }

    /// Classifies a redb error, keeping I/O errors and corruption distinct.
    pub(crate) fn from_redb(context: &'static str, err: impl Into<redb::Error>) -> Self {
        match err.into() {
            redb::Error::Io(source) => StoreError::Io { context, source },
            redb::Error::Corrupted(msg) => StoreError::Corrupt(msg),
            redb::Error::PreviousIo => StoreError::Unavailable(format!(
                "an earlier I/O error poisoned the database ({context}); restart the hub to recover"
            )),
            other => StoreError::Engine {
                context,
                message: other.to_string(),
            },
        }
    }
}
