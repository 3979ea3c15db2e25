//! The engine's cost of one `operation_list` snapshot of a namespace of
//! 100,000 operations (40 MB): every state sorted and encoded (what the hub
//! did before `engine::states`), against the states kept in start order
//! with their JSON cached, cold (each state encoded once, on the way) and
//! warm (nothing changed since the last snapshot).
//! Run: `cargo bench -p hub-server --bench snapshot`.

use criterion::{BatchSize, Criterion, Throughput};
use hub_proto::OperationState;
use hub_server::engine::states::{operation_list, Entry, States};

const OPERATIONS: usize = 100_000;

fn states() -> Vec<OperationState> {
    (0..OPERATIONS)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "operation_id": format!("render.{i}"), "namespace": "big",
                "name": format!("Render frame {i}"), "kind": "render", "state": "running",
                "progress": (i % 100) as f64, "current": null, "total": 100.0,
                "step": "encode", "message": "t=123456", "details": null, "error": null,
                "parent_id": null, "started_at": 1_796_000_000_000u64 + (i / 50) as u64,
                "updated_at": 1_796_000_000_000u64, "finished_at": null, "rate": 0.5,
                "eta_seconds": 12.0, "cancel_requested": false, "last_offset": i as u64 + 1
            }))
            .expect("a valid state")
        })
        .collect()
}

/// What the hub did before `engine::states`: every state encoded, from
/// references, into one `operation_list`.
fn before(operations: &[&OperationState]) -> String {
    #[derive(serde::Serialize)]
    struct List<'a> {
        r#type: &'static str,
        namespace: &'a str,
        epoch: &'a str,
        offset: u64,
        operations: &'a [&'a OperationState],
    }
    let list = List {
        r#type: "operation_list",
        namespace: "big",
        epoch: "e",
        offset: OPERATIONS as u64,
        operations,
    };
    serde_json::to_string(&list).expect("encodes")
}

fn snapshot(c: &mut Criterion) {
    let all = states();
    let mut group = c.benchmark_group("snapshot_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(OPERATIONS as u64));
    // The hub held them in a map by id, as it still does.
    let by_id: std::collections::HashMap<String, OperationState> = all
        .iter()
        .map(|s| (s.operation_id.clone(), s.clone()))
        .collect();
    group.bench_function("sort_and_encode_every_state", |b| {
        b.iter(|| {
            let mut ops: Vec<&OperationState> = by_id.values().collect();
            ops.sort_unstable_by(|a, b| {
                (a.started_at, &a.operation_id).cmp(&(b.started_at, &b.operation_id))
            });
            before(&ops)
        })
    });
    group.bench_function("in_order_cold_cache", |b| {
        b.iter_batched_ref(
            || all.iter().cloned().collect::<States>(),
            |states| {
                let entries: Vec<&Entry> = states.in_order().collect();
                operation_list("big", "e", OPERATIONS as u64, &entries).len()
            },
            BatchSize::LargeInput,
        )
    });
    let warm: States = all.iter().cloned().collect();
    let entries: Vec<&Entry> = warm.in_order().collect();
    operation_list("big", "e", OPERATIONS as u64, &entries);
    group.bench_function("in_order_warm_cache", |b| {
        b.iter(|| {
            let entries: Vec<&Entry> = warm.in_order().collect();
            operation_list("big", "e", OPERATIONS as u64, &entries)
        })
    });
    group.finish();
}

fn main() {
    // Not `criterion_group!`: it defines an undocumented public function
    // (the workspace denies missing docs).
    let mut c = Criterion::default().configure_from_args();
    snapshot(&mut c);
    c.final_summary();
}
