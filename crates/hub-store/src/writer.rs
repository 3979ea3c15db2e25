//! [`GroupCommitWriter`]: one dedicated thread owns the store's writes and
//! turns however many batches are queued into one transaction (one fsync),
//! so durable throughput grows with load instead of being capped at one
//! fsync per batch.
//!
//! Architecture invariant: `on_commit` is called exactly once for every
//! submitted batch id, on the writer thread, in submission order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::{Batch, EventStore, StoreError};

/// At most this many events are merged into one commit.
pub const MAX_GROUP_EVENTS: usize = 4096;
/// At most about this many payload bytes are merged into one commit.
pub const MAX_GROUP_BYTES: usize = 4 << 20;

/// The callback told about each commit: the ids it covered and its outcome.
pub type OnCommit = Box<dyn FnMut(Vec<u64>, Result<(), StoreError>) + Send>;

#[derive(Default)]
struct Queue {
    next_id: u64,
    pending: VecDeque<(u64, Batch)>,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Group commit: a dedicated std::thread owns the store's writes.
pub struct GroupCommitWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommitWriter {
    /// Starts the writer thread. `on_commit(ids, result)` is called on the
    /// writer thread after each commit, with the ids of every batch that
    /// commit covered, in submission order. It should be quick (e.g. send to
    /// a channel): the next commit waits for it.
    ///
    /// If a merged commit is rejected because one batch is invalid
    /// ([`StoreError::is_caller_error`]), the group is retried one batch at a
    /// time so only the faulty batch fails.
    pub fn spawn(store: Arc<dyn EventStore>, on_commit: OnCommit) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                next_id: 1,
                ..Queue::default()
            }),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hub-store-writer".into())
            .spawn(move || run(&thread_shared, &*store, on_commit))
            .expect("spawning the store writer thread");
        GroupCommitWriter {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues a batch; never blocks (beyond a short lock); returns its id
    /// (1, 2, 3, ... in submission order). The caller bounds how many are in
    /// flight.
    pub fn submit(&self, batch: Batch) -> u64 {
        let mut queue = self.shared.lock();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.pending.push_back((id, batch));
        drop(queue);
        self.shared.wake.notify_one();
        id
    }

    /// Commits everything queued, then stops the thread and joins it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if thread.join().is_err() {
            tracing::error!("the store writer thread panicked (in on_commit?)");
        }
    }
}

impl Drop for GroupCommitWriter {
    /// Same as [`GroupCommitWriter::shutdown`]: queued batches are committed.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread's loop.
fn run(shared: &Shared, store: &dyn EventStore, mut on_commit: OnCommit) {
    while let Some(group) = next_group(shared) {
        commit_group(store, group, &mut on_commit);
    }
}

/// Blocks until something is queued, then takes a bounded group of batches.
/// Returns `None` when stopping and nothing is left.
fn next_group(shared: &Shared) -> Option<Vec<(u64, Batch)>> {
    let mut queue = shared.lock();
    while queue.pending.is_empty() {
        if queue.stopping {
            return None;
        }
        queue = shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
    }
    let mut group = Vec::new();
    let (mut events, mut bytes) = (0usize, 0usize);
    while let Some((_, next)) = queue.pending.front() {
        let (e, b) = (next.events.len(), next.approx_bytes());
        if !group.is_empty() && (events + e > MAX_GROUP_EVENTS || bytes + b > MAX_GROUP_BYTES) {
            break;
        }
        events += e;
        bytes += b;
        group.extend(queue.pending.pop_front());
    }
    Some(group)
}

fn commit_group(store: &dyn EventStore, group: Vec<(u64, Batch)>, on_commit: &mut OnCommit) {
    if group.len() == 1 {
        let (id, batch) = &group[0];
        let result = store.commit(batch);
        log_failure(&result, 1);
        on_commit(vec![*id], result);
        return;
    }
    let ids: Vec<u64> = group.iter().map(|(id, _)| *id).collect();
    // Cloning is cheap (payloads are `Arc`s) and keeps the batches for a retry.
    let merged = Batch::merge(group.iter().map(|(_, b)| b.clone()));
    match store.commit(&merged) {
        Err(e) if e.is_caller_error() => {
            tracing::warn!(error = %e, batches = ids.len(), "group rejected; retrying its batches one at a time");
            for (id, batch) in group {
                let result = store.commit(&batch);
                log_failure(&result, 1);
                on_commit(vec![id], result);
            }
        }
        result => {
            log_failure(&result, ids.len());
            on_commit(ids, result);
        }
    }
}

fn log_failure(result: &Result<(), StoreError>, batches: usize) {
    if let Err(e) = result {
        tracing::error!(error = %e, batches, "store commit failed");
    }
}
