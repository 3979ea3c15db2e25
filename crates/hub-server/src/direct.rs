//! The direct writes a fan-out leaves behind: viewers that were idle on
//! plain TCP when an event was queued for them ([`Pushed::Direct`]) get it
//! written straight to their socket here instead of by their own task.
//!
//! The writes are split into chunks spawned as tasks (the engine hands
//! over each chunk as soon as it is full), so that the runtime's workers
//! share a large fan-out, the first sockets are written while the engine
//! is still queueing for the last ones, and the engine goes on with its
//! next command. Order needs no care here: each [`Outbox::write_direct`] writes
//! whatever its queue holds, under the queue's lock, in queue order.
//!
//! [`Pushed::Direct`]: crate::outbox::Pushed::Direct

use crate::outbox::Outbox;
use std::sync::Arc;

/// Viewers written to per task: a few hundred microseconds of `send` calls,
/// enough to amortise the spawn and few enough to use every worker.
pub const CHUNK: usize = 128;

/// Writes to every viewer in `ready`, spread over tasks of [`CHUNK`].
pub fn write(mut ready: Vec<Arc<Outbox>>) {
    while !ready.is_empty() {
        let chunk = ready.split_off(ready.len().saturating_sub(CHUNK));
        tokio::spawn(async move {
            for conn in chunk {
                conn.write_direct();
            }
        });
    }
}
