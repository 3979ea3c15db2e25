//! Every live connection's outbox, for heartbeats, idle checks, status and shutdown.

use crate::outbox::Outbox;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The set of live connections.
#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_id: AtomicU64,
    /// WebSocket sockets still open, including closed connections that
    /// wait for the client's close frame.
    sockets: Arc<AtomicUsize>,
}

/// A WebSocket's socket counted as open until this is dropped (see
/// [`Registry::hold_socket`]).
pub struct SocketHold(Arc<AtomicUsize>);

impl Drop for SocketHold {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Registry {
    /// A fresh connection id (never 0; 0 is free for HTTP requests).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a connection.
    pub fn insert(&self, outbox: Arc<Outbox>) {
        self.conns.lock().insert(outbox.id, outbox);
    }

    /// Removes a connection.
    pub fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    /// Number of connections held.
    pub fn len(&self) -> usize {
        self.conns.lock().len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One connection.
    pub fn get(&self, id: u64) -> Option<Arc<Outbox>> {
        self.conns.lock().get(&id).cloned()
    }

    /// Counts a WebSocket's socket as open until the hold is dropped. A
    /// connection leaves the registry when it closes, but its socket stays
    /// a little longer, waiting for the client's close frame so that no
    /// reset destroys the last frames before the client reads them; the
    /// shutdown waits for these too ([`Registry::sockets_open`]).
    pub fn hold_socket(&self) -> SocketHold {
        self.sockets.fetch_add(1, Ordering::Relaxed);
        SocketHold(self.sockets.clone())
    }

    /// WebSocket sockets still open (held by [`Registry::hold_socket`]).
    pub fn sockets_open(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }

    /// A copy of every outbox (taken under the lock, used outside it).
    pub fn all(&self) -> Vec<Arc<Outbox>> {
        self.conns.lock().values().cloned().collect()
    }
}
