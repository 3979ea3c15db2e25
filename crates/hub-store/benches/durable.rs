//! Durable events per second through the group-commit writer into redb:
//! 8 submitter threads, each update one 200-byte event plus its operation's
//! 200-byte snapshot, every one fsync'd before it counts.
//! Run: `cargo bench -p hub-store --bench durable`.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use hub_store::bench_durable_events;

const EVENTS: u64 = 20_000;
const SUBMITTERS: usize = 8;

fn durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("redb_group_commit_8_submitters_200B", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let report =
                    bench_durable_events(dir.path(), EVENTS, SUBMITTERS).expect("benchmark run");
                assert_eq!(report.events, EVENTS);
                total += Duration::from_secs_f64(report.seconds);
            }
            total
        });
    });
    group.finish();
}

fn main() {
    // Written out instead of `criterion_group!`, which generates an
    // undocumented public function (the workspace denies missing docs).
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    durable(&mut c);
    c.final_summary();
}
