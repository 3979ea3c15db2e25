//! Property tests: random batch sequences (appends, operation writes,
//! namespaces dropped and recreated in a generation) give identical results
//! on the memory and redb engines (also after reopening the redb file), and
//! merging batches is equivalent to committing them one by one.

use std::sync::Arc;

use hub_store::{
    Batch, EventRecord, EventStore, Loaded, MemoryStore, OpRecord, RedbStore, StoreConfig,
};
use proptest::prelude::*;

const NAMESPACES: &[&str] = &["a", "b", "ns/with:odd chars"];
const OPS: &[&str] = &["o1", "o2", "o3"];

/// A batch description: namespaces dropped (by index; each recreated in
/// the generation `generation`, which the batch also stores, when
/// `generation` is set), events as (namespace index, offset step), op
/// upserts and deletes as (namespace index, op index). A step of 0 repeats
/// the last offset, making the batch invalid.
#[derive(Clone, Debug)]
struct Spec {
    drops: Vec<usize>,
    generation: Option<u64>,
    events: Vec<(usize, u64)>,
    upserts: Vec<(usize, usize, u8)>,
    deletes: Vec<(usize, usize)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let ns = 0..NAMESPACES.len();
    let op = 0..OPS.len();
    (
        prop::collection::vec(
            (
                ns.clone(),
                prop_oneof![20 => 1u64..2, 3 => 2u64..5, 1 => Just(0u64)],
            ),
            0..6,
        ),
        prop::collection::vec((ns.clone(), op.clone(), any::<u8>()), 0..4),
        prop::collection::vec((ns.clone(), op), 0..3),
        prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec(ns, 1..3)],
        prop::option::of(1u64..50),
    )
        .prop_map(|(events, upserts, deletes, drops, generation)| Spec {
            drops,
            generation,
            events,
            upserts,
            deletes,
        })
}

/// Turns specs into batches, tracking the next offset per namespace as if
/// every batch so far succeeded (a rejected one leaves later ones with gaps).
fn batches(specs: &[Spec]) -> Vec<Batch> {
    let mut last = [0u64; 3];
    specs
        .iter()
        .map(|s| Batch {
            drop_namespaces: s
                .drops
                .iter()
                .map(|&n| {
                    last[n] = 0;
                    NAMESPACES[n].to_owned()
                })
                .collect(),
            generations: s
                .generation
                .map(|g| {
                    s.drops
                        .iter()
                        .map(|&n| (NAMESPACES[n].to_owned(), g))
                        .collect()
                })
                .unwrap_or_default(),
            generation: s.generation,
            // The history budget's floors trim whole chunks in redb and
            // single events in memory: engines-level tests cover them.
            trim_below: Vec::new(),
            events: s
                .events
                .iter()
                .map(|&(n, step)| {
                    last[n] += step;
                    EventRecord {
                        namespace: NAMESPACES[n].into(),
                        offset: last[n],
                        data: Arc::from(format!("{n}:{}", last[n]).as_bytes()),
                    }
                })
                .collect(),
            upsert_ops: s
                .upserts
                .iter()
                .map(|&(n, o, v)| OpRecord {
                    namespace: NAMESPACES[n].into(),
                    operation_id: OPS[o].into(),
                    data: Arc::from(vec![v; 1 + v as usize % 7]),
                })
                .collect(),
            delete_ops: s
                .deletes
                .iter()
                .map(|&(n, o)| (NAMESPACES[n].into(), OPS[o].into()))
                .collect(),
        })
        .collect()
}

fn without_epoch(mut loaded: Loaded) -> Loaded {
    loaded.epoch.clear();
    loaded
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_redb_load_back_identically(
        history in 1u64..6,
        specs in prop::collection::vec(spec(), 1..16),
    ) {
        let cfg = StoreConfig { history_size: history };
        let memory = MemoryStore::new(cfg.clone());
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStore::open(dir.path(), cfg.clone()).unwrap();
        for batch in batches(&specs) {
            let m = memory.commit(&batch);
            let r = redb.commit(&batch);
            prop_assert_eq!(m.is_ok(), r.is_ok(), "memory {:?} redb {:?}", m, r);
            if let Err(e) = r {
                prop_assert!(e.is_caller_error());
            }
            prop_assert_eq!(without_epoch(memory.load().unwrap()), without_epoch(redb.load().unwrap()));
        }
        let expected = without_epoch(memory.load().unwrap());
        let epoch = redb.epoch();
        drop(redb);
        let reopened = RedbStore::open(dir.path(), cfg).unwrap();
        prop_assert_eq!(reopened.epoch(), epoch);
        prop_assert_eq!(without_epoch(reopened.load().unwrap()), expected);
    }

    #[test]
    fn merged_batches_equal_sequential_commits(
        history in 1u64..6,
        specs in prop::collection::vec(spec(), 1..16),
    ) {
        let all = batches(&specs);
        // Only sequences where every batch is valid are merged by the writer.
        let sequential = MemoryStore::new(StoreConfig { history_size: history });
        let all_ok = all.iter().all(|b| sequential.commit(b).is_ok());
        prop_assume!(all_ok);
        let merged = MemoryStore::new(StoreConfig { history_size: history });
        merged.commit(&Batch::merge(all)).unwrap();
        prop_assert_eq!(without_epoch(sequential.load().unwrap()), without_epoch(merged.load().unwrap()));
    }
}
