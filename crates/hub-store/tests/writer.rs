//! GroupCommitWriter: ids reported once each and in order, groups merge,
//! failures are reported per id without panicking, shutdown drains.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use common::{events, op};
use hub_store::{
    Batch, EventStore, GroupCommitWriter, Loaded, MemoryStore, StoreConfig, StoreError,
};

/// The test's side of a gate: "commit started" and "release it".
type Gate = (Receiver<()>, Sender<()>);

type Reports = Arc<Mutex<Vec<(Vec<u64>, Result<(), String>)>>>;

/// A callback that records every report.
fn recorder() -> (Reports, hub_store::OnCommit) {
    let reports: Reports = Arc::default();
    let sink = reports.clone();
    let cb = Box::new(move |ids: Vec<u64>, r: Result<(), StoreError>| {
        sink.lock()
            .unwrap()
            .push((ids, r.map_err(|e| e.to_string())));
    });
    (reports, cb)
}

fn all_ids(reports: &Reports) -> Vec<u64> {
    reports
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(ids, _)| ids.clone())
        .collect()
}

/// Wraps a store: counts commits, and can hold the first commit until released.
struct GatedStore {
    inner: MemoryStore,
    commits: AtomicU64,
    started: Mutex<Option<Sender<()>>>,
    release: Mutex<Option<Receiver<()>>>,
    fail_io: bool,
}

impl GatedStore {
    fn new(gated: bool, fail_io: bool) -> (Arc<Self>, Option<Gate>) {
        let (started_tx, started_rx) = channel();
        let (release_tx, release_rx) = channel();
        let store = Arc::new(GatedStore {
            inner: MemoryStore::new(StoreConfig {
                history_size: 1_000_000,
            }),
            commits: AtomicU64::new(0),
            started: Mutex::new(gated.then_some(started_tx)),
            release: Mutex::new(gated.then_some(release_rx)),
            fail_io,
        });
        (store, gated.then_some((started_rx, release_tx)))
    }
}

impl EventStore for GatedStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if let Some(started) = self.started.lock().unwrap().take() {
            started.send(()).unwrap();
            self.release.lock().unwrap().take().unwrap().recv().unwrap();
        }
        if self.fail_io {
            return Err(StoreError::Io {
                context: "committing (fsync)",
                source: std::io::Error::other("disk on fire"),
            });
        }
        self.inner.commit(batch)
    }
    fn check_writable(&self) -> Result<(), StoreError> {
        self.inner.check_writable()
    }
    fn epoch(&self) -> String {
        self.inner.epoch()
    }
}

#[test]
fn many_submitters_get_every_id_once_in_order() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 500;
    let (store, _) = GatedStore::new(false, false);
    let (reports, cb) = recorder();
    let writer = GroupCommitWriter::spawn(store.clone(), cb);
    let submitted: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let writer = &writer;
                s.spawn(move || {
                    let ns = format!("ns{t}");
                    (1..=PER_THREAD)
                        .map(|o| {
                            let mut b = events(&[(&ns, o)]);
                            b.upsert_ops.push(op(&ns, "op", &o.to_string()));
                            writer.submit(b)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    writer.shutdown();

    let total = THREADS * PER_THREAD;
    // Each thread saw increasing ids; together they are exactly 1..=total.
    let mut union: Vec<u64> = submitted.iter().flatten().copied().collect();
    for ids in &submitted {
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
    union.sort_unstable();
    assert_eq!(union, (1..=total).collect::<Vec<_>>());
    // Reported exactly once each, in submission order, all successful.
    assert_eq!(all_ids(&reports), (1..=total).collect::<Vec<_>>());
    assert!(reports.lock().unwrap().iter().all(|(_, r)| r.is_ok()));
    let commits = store.commits.load(Ordering::SeqCst);
    assert_eq!(commits as usize, reports.lock().unwrap().len());
    // Everything is in the store.
    let loaded = store.load().unwrap();
    assert_eq!(loaded.namespaces.len(), THREADS as usize);
    for ns in &loaded.namespaces {
        assert_eq!(ns.last_offset, PER_THREAD);
        assert_eq!(ns.events.len() as u64, PER_THREAD);
        assert_eq!(&*ns.ops[0].data, PER_THREAD.to_string().as_bytes());
    }
}

#[test]
fn batches_queued_during_a_commit_merge_into_one() {
    let (store, gate) = GatedStore::new(true, false);
    let (started, release) = gate.unwrap();
    let (reports, cb) = recorder();
    let writer = GroupCommitWriter::spawn(store.clone(), cb);
    assert_eq!(writer.submit(events(&[("a", 1)])), 1);
    started.recv().unwrap(); // the writer is now inside commit #1
    for o in 2..=100 {
        let mut b = events(&[("a", o)]);
        // Ops that flip between upsert and delete must end as the last batch says.
        if o % 2 == 0 {
            b.upsert_ops.push(op("a", "flip", &o.to_string()));
        } else {
            b.delete_ops.push(("a".into(), "flip".into()));
        }
        b.upsert_ops.push(op("a", "last", &o.to_string()));
        assert_eq!(writer.submit(b), o);
    }
    release.send(()).unwrap();
    writer.shutdown();

    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        2,
        "99 queued batches, one commit"
    );
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].0, vec![1]);
    assert_eq!(reports[1].0, (2..=100).collect::<Vec<_>>());
    let loaded = store.load().unwrap();
    let a = &loaded.namespaces[0];
    assert_eq!(a.last_offset, 100);
    assert_eq!(a.events.len(), 100);
    // Batch 100 upserted "flip" last; "last" holds batch 100's value.
    assert_eq!(a.ops.len(), 2);
    assert_eq!(&*a.ops[0].data, b"100");
    assert_eq!(&*a.ops[1].data, b"100");
}

#[test]
fn a_bad_batch_in_a_group_fails_alone() {
    let (store, gate) = GatedStore::new(true, false);
    let (started, release) = gate.unwrap();
    let (reports, cb) = recorder();
    let writer = GroupCommitWriter::spawn(store.clone(), cb);
    writer.submit(events(&[("x", 1)]));
    started.recv().unwrap();
    writer.submit(events(&[("a", 1)]));
    writer.submit(events(&[("a", 1)])); // caller bug: repeated offset
    writer.submit(events(&[("b", 1)]));
    release.send(()).unwrap();
    writer.shutdown();

    let reports = reports.lock().unwrap();
    let ids: Vec<_> = reports.iter().map(|(ids, _)| ids.clone()).collect();
    assert_eq!(ids, [vec![1], vec![2], vec![3], vec![4]]);
    assert!(reports[0].1.is_ok() && reports[1].1.is_ok() && reports[3].1.is_ok());
    assert!(reports[2].1.as_ref().unwrap_err().contains("not greater"));
    let names: Vec<_> = store
        .load()
        .unwrap()
        .namespaces
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["a", "b", "x"]);
}

#[test]
fn store_failures_are_reported_for_every_id_without_panicking() {
    let (store, gate) = GatedStore::new(true, true);
    let (started, release) = gate.unwrap();
    let (reports, cb) = recorder();
    let writer = GroupCommitWriter::spawn(store, cb);
    writer.submit(events(&[("a", 1)]));
    started.recv().unwrap();
    writer.submit(events(&[("a", 2)]));
    writer.submit(events(&[("a", 3)]));
    release.send(()).unwrap();
    writer.shutdown();
    let reports = reports.lock().unwrap();
    assert_eq!(all_ids_of(&reports), [1, 2, 3]);
    for (_, r) in reports.iter() {
        assert!(r.as_ref().unwrap_err().contains("disk on fire"));
    }
}

fn all_ids_of(reports: &[(Vec<u64>, Result<(), String>)]) -> Vec<u64> {
    reports.iter().flat_map(|(ids, _)| ids.clone()).collect()
}

#[test]
fn shutdown_and_drop_commit_everything_queued() {
    for use_drop in [false, true] {
        let (store, _) = GatedStore::new(false, false);
        let (reports, cb) = recorder();
        let writer = GroupCommitWriter::spawn(store.clone(), cb);
        for o in 1..=1000 {
            writer.submit(events(&[("a", o)]));
        }
        if use_drop {
            drop(writer);
        } else {
            writer.shutdown();
        }
        assert_eq!(all_ids(&reports), (1..=1000).collect::<Vec<_>>());
        assert_eq!(store.load().unwrap().namespaces[0].last_offset, 1000);
    }
}

#[test]
fn groups_are_capped_in_size() {
    let (store, gate) = GatedStore::new(true, false);
    let (started, release) = gate.unwrap();
    let (reports, cb) = recorder();
    let writer = GroupCommitWriter::spawn(store.clone(), cb);
    writer.submit(events(&[("a", 1)]));
    started.recv().unwrap();
    // 3 batches of 3000 events: no two fit under MAX_GROUP_EVENTS (4096).
    let mut next = 2;
    for _ in 0..3 {
        let list: Vec<(&str, u64)> = (next..next + 3000).map(|o| ("a", o)).collect();
        next += 3000;
        writer.submit(events(&list));
    }
    release.send(()).unwrap();
    writer.shutdown();
    let ids: Vec<_> = reports
        .lock()
        .unwrap()
        .iter()
        .map(|(ids, _)| ids.clone())
        .collect();
    assert_eq!(ids, [vec![1], vec![2], vec![3], vec![4]]);
    assert_eq!(store.load().unwrap().namespaces[0].last_offset, 9001);
}
