//! Behaviour both engines must share (round trips, trimming, rejection),
//! plus what is specific to each (redb reopen and locking, memory epochs).

mod common;

use std::sync::Arc;

use common::{ev, events, op};
use hub_store::{Batch, EventStore, MemoryStore, RedbStore, StoreConfig, StoreError};

fn cfg(history_size: u64) -> StoreConfig {
    StoreConfig { history_size }
}

/// Runs `check` against a fresh store of each engine.
fn both(history: u64, check: impl Fn(&dyn EventStore)) {
    check(&MemoryStore::new(cfg(history)));
    let dir = tempfile::tempdir().unwrap();
    check(&RedbStore::open(dir.path(), cfg(history)).unwrap());
}

fn offsets(store: &dyn EventStore, ns: &str) -> Vec<u64> {
    let loaded = store.load().unwrap();
    loaded
        .namespaces
        .iter()
        .find(|n| n.name == ns)
        .map(|n| n.events.iter().map(|e| e.offset).collect())
        .unwrap_or_default()
}

#[test]
fn round_trip_events_ops_and_last_offset() {
    both(100, |store| {
        let mut first = events(&[("a", 1), ("a", 2), ("b", 1), ("a", 3)]);
        first.upsert_ops = vec![
            op("a", "o1", "v1"),
            op("a", "o2", "v1"),
            op("b", "o1", "b1"),
        ];
        store.commit(&first).unwrap();
        let mut second = events(&[("a", 4)]);
        second.upsert_ops = vec![op("a", "o1", "v2")];
        second.delete_ops = vec![
            ("a".into(), "o2".into()),
            ("a".into(), "missing".into()),
            ("nowhere".into(), "x".into()),
        ];
        store.commit(&second).unwrap();

        let loaded = store.load().unwrap();
        assert_eq!(loaded.epoch, store.epoch());
        let names: Vec<_> = loaded.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &loaded.namespaces[0];
        assert_eq!(a.last_offset, 4);
        assert_eq!(
            a.events,
            vec![ev("a", 1), ev("a", 2), ev("a", 3), ev("a", 4)]
        );
        assert_eq!(a.ops, vec![op("a", "o1", "v2")]);
        let b = &loaded.namespaces[1];
        assert_eq!(b.last_offset, 1);
        assert_eq!(b.events, vec![ev("b", 1)]);
        assert_eq!(b.ops, vec![op("b", "o1", "b1")]);
        store.check_writable().unwrap();
    });
}

#[test]
fn upsert_then_delete_in_one_batch_ends_deleted() {
    both(10, |store| {
        let batch = Batch {
            upsert_ops: vec![op("a", "o", "1"), op("a", "o", "2"), op("a", "p", "3")],
            delete_ops: vec![("a".into(), "o".into())],
            ..Batch::default()
        };
        store.commit(&batch).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.namespaces[0].ops, vec![op("a", "p", "3")]);
        // Only ops, no events: listed with last offset 0.
        assert_eq!(loaded.namespaces[0].last_offset, 0);
        assert!(loaded.namespaces[0].events.is_empty());
        // Once its last op goes, an event-less namespace disappears.
        store
            .commit(&Batch {
                delete_ops: vec![("a".into(), "p".into())],
                ..Batch::default()
            })
            .unwrap();
        assert!(store.load().unwrap().namespaces.is_empty());
        store.commit(&Batch::default()).unwrap();
    });
}

#[test]
fn trims_to_history_size_but_keeps_last_offset() {
    both(3, |store| {
        for o in 1..=10 {
            store.commit(&events(&[("a", o)])).unwrap();
        }
        assert_eq!(offsets(store, "a"), [8, 9, 10]);
        store
            .commit(&events(&[
                ("a", 11),
                ("a", 12),
                ("a", 13),
                ("a", 14),
                ("a", 15),
            ]))
            .unwrap();
        assert_eq!(offsets(store, "a"), [13, 14, 15]);
        // Untouched namespaces are not affected by another's trim.
        store.commit(&events(&[("b", 1), ("b", 2)])).unwrap();
        assert_eq!(offsets(store, "b"), [1, 2]);
        assert_eq!(store.load().unwrap().namespaces[0].last_offset, 15);
    });
    // 0 is treated as 1: the newest event always survives.
    both(0, |store| {
        store.commit(&events(&[("a", 1), ("a", 2)])).unwrap();
        store.commit(&events(&[("a", 3)])).unwrap();
        assert_eq!(offsets(store, "a"), [3]);
        assert_eq!(store.load().unwrap().namespaces[0].last_offset, 3);
    });
}

/// The history budget's cuts (`trim_below`): events below the floor go,
/// the newest stays, other namespaces are untouched, and a floor for a
/// namespace dropped and recreated in the same batch cannot reach the new
/// events (drops, then trims, then appends).
#[test]
fn trims_below_a_floor_but_keeps_the_newest() {
    both(100, |store| {
        // One event per commit: redb's chunks are then single events, so
        // both engines trim to the same offset.
        for o in 1..=5 {
            store.commit(&events(&[("a", o)])).unwrap();
        }
        store.commit(&events(&[("b", 1)])).unwrap();
        store.commit(&events(&[("b", 2)])).unwrap();
        let trims = Batch {
            trim_below: vec![("a".into(), 4), ("b".into(), 10), ("missing".into(), 3)],
            ..Batch::default()
        };
        assert!(!trims.is_empty());
        store.commit(&trims).unwrap();
        assert_eq!(offsets(store, "a"), [4, 5]);
        assert_eq!(
            offsets(store, "b"),
            [2],
            "a floor past the end keeps the newest"
        );
        let loaded = store.load().unwrap();
        let last: Vec<u64> = loaded.namespaces.iter().map(|n| n.last_offset).collect();
        assert_eq!(last, [5, 2]);
        assert!(!loaded.namespaces.iter().any(|n| n.name == "missing"));
        // The offsets go on where they were.
        store.commit(&events(&[("a", 6)])).unwrap();
        assert_eq!(offsets(store, "a"), [4, 5, 6]);

        let mut again = events(&[("a", 1), ("a", 2)]);
        again.drop_namespaces = vec!["a".into()];
        again.trim_below = vec![("a".into(), 2)];
        store.commit(&again).unwrap();
        assert_eq!(offsets(store, "a"), [1, 2]);
    });
}

/// Merged batches keep the highest floor per namespace, and a later drop
/// takes away the floors before it.
#[test]
fn merging_keeps_the_highest_floor_and_drops_cancel_floors() {
    let floor = |ns: &str, f: u64| Batch {
        trim_below: vec![(ns.into(), f)],
        ..Batch::default()
    };
    let drop_b = Batch {
        drop_namespaces: vec!["b".into()],
        ..Batch::default()
    };
    let merged = Batch::merge([
        floor("a", 5),
        floor("b", 3),
        floor("a", 4),
        drop_b,
        floor("c", 2),
    ]);
    assert_eq!(
        merged.trim_below,
        vec![("a".to_string(), 5), ("c".to_string(), 2)]
    );
    assert_eq!(merged.drop_namespaces, ["b"]);
}

#[test]
fn out_of_order_offset_is_rejected_and_nothing_written() {
    both(100, |store| {
        store.commit(&events(&[("a", 1), ("a", 2)])).unwrap();
        let before = store.load().unwrap();
        let bad = [
            events(&[("b", 1), ("a", 2)]), // equal to stored last
            events(&[("a", 3), ("a", 3)]), // repeated inside the batch
            events(&[("a", 5), ("a", 4)]), // descending inside the batch
            events(&[("c", 0)]),           // offsets start at 1
        ];
        for mut batch in bad {
            batch.upsert_ops.push(op("a", "o", "should not exist"));
            batch.delete_ops.push(("a".into(), "x".into()));
            let err = store.commit(&batch).unwrap_err();
            assert!(
                matches!(err, StoreError::OffsetNotIncreasing { .. }),
                "{err}"
            );
            assert!(err.is_caller_error());
            assert_eq!(store.load().unwrap(), before);
        }
        // A rejected batch is the caller's bug, not the store's health.
        store.check_writable().unwrap();
        // Gaps are allowed; the store only demands increasing offsets.
        store.commit(&events(&[("a", 7)])).unwrap();
        assert_eq!(offsets(store, "a"), [1, 2, 7]);
    });
}

#[test]
fn error_message_names_the_problem() {
    let store = MemoryStore::new(cfg(10));
    store.commit(&events(&[("jobs", 5)])).unwrap();
    let err = store.commit(&events(&[("jobs", 5)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event offset 5 in namespace \"jobs\" is not greater than its last offset 5; batch rejected, nothing written"
    );
}

#[test]
fn memory_store_gets_a_new_epoch_every_time() {
    let a = MemoryStore::new(cfg(1)).epoch();
    let b = MemoryStore::new(cfg(1)).epoch();
    assert_ne!(a, b);
    for epoch in [a, b] {
        assert_eq!(epoch.len(), 16);
        assert!(epoch.chars().all(|c| c.is_ascii_hexdigit()));
    }
}

#[test]
fn redb_reopen_keeps_epoch_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, loaded) = {
        let store = RedbStore::open(dir.path(), cfg(100)).unwrap();
        assert_eq!(store.path(), dir.path().join(hub_store::FILE_NAME));
        let mut batch = events(&[("a", 1), ("a", 2), ("z", 9)]);
        batch.upsert_ops = vec![op("z", "o", "{\"state\":1}")];
        store.commit(&batch).unwrap();
        (store.epoch(), store.load().unwrap())
    };
    assert_eq!(epoch.len(), 16);
    let store = RedbStore::open(dir.path(), cfg(100)).unwrap();
    assert_eq!(store.epoch(), epoch);
    assert_eq!(store.load().unwrap(), loaded);
    // And the last offset keeps rejecting stale offsets after a restart.
    assert!(store.commit(&events(&[("z", 9)])).is_err());
    drop(store);

    // A smaller history on reopen shows only the newest events.
    let store = RedbStore::open(dir.path(), cfg(1)).unwrap();
    assert_eq!(offsets(&store, "a"), [2]);
    assert_eq!(store.load().unwrap().namespaces[0].last_offset, 2);
}

#[test]
fn redb_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("x").join("y");
    let store = RedbStore::open(&nested, cfg(5)).unwrap();
    store.commit(&events(&[("a", 1)])).unwrap();
    assert!(nested.join(hub_store::FILE_NAME).exists());
}

#[test]
fn redb_second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStore::open(dir.path(), cfg(5)).unwrap();
    let err = RedbStore::open(dir.path(), cfg(5))
        .err()
        .expect("second open must fail");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("already open"));
}

#[test]
fn trait_objects_are_shareable() {
    fn assert_shareable<T: Send + Sync + 'static>(_: &T) {}
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new(cfg(1)));
    assert_shareable(&store);
}

/// A file written by format 1 (one `events` entry per event) opens as
/// format 2 with the same epoch, events, last offsets and operations.
#[test]
fn redb_converts_a_format_1_file() {
    use redb::{Database, TableDefinition};
    const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
    const OPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("ops");
    const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(hub_store::FILE_NAME);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut events = txn.open_table(EVENTS).unwrap();
            for (ns, offset) in [("a", 3), ("a", 4), ("a", 7), ("b", 1)] {
                events.insert((ns, offset), &*ev(ns, offset).data).unwrap();
            }
            let mut ops = txn.open_table(OPS).unwrap();
            ops.insert(("a", "o1"), &b"{\"v\":1}"[..]).unwrap();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("format", "1").unwrap();
            meta.insert("epoch", "00000000000000ab").unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStore::open(dir.path(), cfg(100)).unwrap();
    assert_eq!(store.epoch(), "00000000000000ab");
    let loaded = store.load().unwrap();
    let a = &loaded.namespaces[0];
    assert_eq!(a.events, vec![ev("a", 3), ev("a", 4), ev("a", 7)]);
    assert_eq!((a.last_offset, loaded.namespaces[1].last_offset), (7, 1));
    assert_eq!(a.ops, vec![op("a", "o1", "{\"v\":1}")]);
    // Offsets go on from the converted last offset, and stay after a reopen.
    assert!(store.commit(&events(&[("a", 7)])).is_err());
    store.commit(&events(&[("a", 8)])).unwrap();
    drop(store);
    let store = RedbStore::open(dir.path(), cfg(100)).unwrap();
    assert_eq!(offsets(&store, "a"), [3, 4, 7, 8]);
}

/// A damaged chunk is reported as corruption at load, naming the chunk,
/// instead of being read as wrong events.
#[test]
fn redb_reports_a_damaged_chunk() {
    use redb::{Database, TableDefinition};
    const CHUNKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("event_chunks");
    let dir = tempfile::tempdir().unwrap();
    RedbStore::open(dir.path(), cfg(100))
        .unwrap()
        .commit(&events(&[("a", 1), ("a", 2)]))
        .unwrap();
    {
        let db = Database::create(dir.path().join(hub_store::FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(CHUNKS)
            .unwrap()
            .insert(("a", 2), &[1u8, 2, 3][..])
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(dir.path(), cfg(100))
        .unwrap()
        .load()
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("(\"a\", 2)"), "{err}");
}
