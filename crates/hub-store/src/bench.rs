//! A durable-throughput benchmark shared by `benches/durable.rs` and the
//! binary's `progress-hub bench store`: submitter threads push progress
//! updates through a [`GroupCommitWriter`] into a [`RedbStore`] and wait for
//! every one to be durable.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::{Batch, EventRecord, GroupCommitWriter, OpRecord, RedbStore, StoreConfig, StoreError};

/// Size of each event and each operation snapshot, in bytes.
pub const PAYLOAD_BYTES: usize = 200;
/// How many batches may be queued but not yet durable, across all submitters
/// (the server bounds its in-flight batches the same way).
pub const MAX_IN_FLIGHT: u64 = 1024;

/// The outcome of [`bench_durable_events`].
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Events made durable.
    pub events: u64,
    /// Wall-clock seconds from the first submit to the last durable commit.
    pub seconds: f64,
    /// Commits (fsyncs) the writer made.
    pub commits: u64,
}

impl BenchReport {
    /// Durable events per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} durable events in {:.3} s: {:.0} events/s, {} commits ({:.1} events/commit)",
            self.events,
            self.seconds,
            self.events_per_second(),
            self.commits,
            self.events as f64 / self.commits.max(1) as f64
        )
    }
}

#[derive(Default)]
struct Progress {
    in_flight: u64,
    committed: u64,
    commits: u64,
    error: Option<String>,
}

/// Commits `events` progress updates from `submitters` threads (at least 1)
/// into a new store in `dir`, each update a batch of one 200-byte event plus
/// the 200-byte snapshot of its operation (what the hub writes per update),
/// and reports how long it took until all were durable.
pub fn bench_durable_events(
    dir: &Path,
    events: u64,
    submitters: usize,
) -> Result<BenchReport, StoreError> {
    let store = Arc::new(RedbStore::open(dir, StoreConfig::default())?);
    let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
    let on_commit_progress = progress.clone();
    let writer = GroupCommitWriter::spawn(
        store,
        Box::new(move |ids, result| {
            let (lock, cvar) = &*on_commit_progress;
            let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
            p.commits += 1;
            p.in_flight -= ids.len() as u64;
            match result {
                Ok(()) => p.committed += ids.len() as u64,
                Err(e) => p.error = Some(e.to_string()),
            }
            cvar.notify_all();
        }),
    );
    let submitters = submitters.max(1) as u64;
    let payload: Arc<[u8]> = Arc::from(vec![b'x'; PAYLOAD_BYTES]);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for s in 0..submitters {
            let (writer, progress, payload) = (&writer, &progress, &payload);
            let count = events / submitters + u64::from(s < events % submitters);
            scope.spawn(move || {
                let namespace = format!("bench-{s}");
                for offset in 1..=count {
                    let (lock, cvar) = &**progress;
                    let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while p.in_flight >= MAX_IN_FLIGHT && p.error.is_none() {
                        p = cvar.wait(p).unwrap_or_else(|e| e.into_inner());
                    }
                    if p.error.is_some() {
                        return;
                    }
                    p.in_flight += 1;
                    drop(p);
                    writer.submit(Batch {
                        events: vec![EventRecord {
                            namespace: namespace.clone(),
                            offset,
                            data: payload.clone(),
                        }],
                        upsert_ops: vec![OpRecord {
                            namespace: namespace.clone(),
                            operation_id: format!("op-{}", offset % 16),
                            data: payload.clone(),
                        }],
                        ..Batch::default()
                    });
                }
            });
        }
    });
    writer.shutdown();
    let seconds = start.elapsed().as_secs_f64();
    let (lock, _) = &*progress;
    let p = lock.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(msg) = &p.error {
        return Err(StoreError::Unavailable(format!(
            "benchmark commit failed: {msg}"
        )));
    }
    Ok(BenchReport {
        events: p.committed,
        seconds,
        commits: p.commits,
    })
}
