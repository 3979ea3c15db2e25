//! Smoke test of the durable benchmark: everything lands, and group commit
//! makes fewer commits (fsyncs) than batches.

use hub_store::{bench_durable_events, EventStore, RedbStore, StoreConfig};

#[test]
fn bench_commits_every_event_in_fewer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let report = bench_durable_events(dir.path(), 3000, 4).unwrap();
    assert_eq!(report.events, 3000);
    assert!(report.commits >= 1 && report.commits < 3000, "{report}");
    assert!(report.events_per_second() > 0.0);
    let store = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.namespaces.len(), 4);
    let total: usize = loaded.namespaces.iter().map(|n| n.events.len()).sum();
    assert_eq!(total, 3000);
}
