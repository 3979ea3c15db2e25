//! Smoke tests: a tiny fan-out (10 viewers, 2 s) and a tiny latency run
//! (with arrival stamps) against a hub binary started by the benchmark,
//! and one tiny `targets` round against both the hub and the Socket.IO
//! peer (`bench/socketio`, installed with `npm ci`). The hub binary is
//! `$PROGRESS_HUB_BIN`, or `progress-hub` next to the test's `deps/`
//! directory (build it with `cargo build -p progress-hub`).

use clap::Parser;
use hub_bench::adapter::Proto;
use hub_bench::scenario::{fanout, latency, targets};
use hub_bench::target::Target;
use hub_bench::Scenario;
use hub_bench::TargetArgs;
use hub_testkit::hub_bin;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// Parses `bench ARGS --spawn-hub --hub-bin BIN`.
fn scenario(args: &[&str]) -> Scenario {
    let words = ["bench"]
        .iter()
        .chain(args)
        .chain(&["--spawn-hub", "--hub-bin"])
        .map(OsString::from)
        .chain([hub_bin().into_os_string()]);
    Cli::parse_from(words).scenario
}

/// Starts the hub `target` describes, runs `f` against it and stops it,
/// all within 30 s.
async fn against_hub<T, F, Fut>(target: &TargetArgs, f: F) -> T
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = (Target, anyhow::Result<T>)>,
{
    let run = async {
        let t = Target::resolve(target, Proto::Hub, None)
            .await
            .expect("hub starts");
        let (t, r) = f(t).await;
        t.stop().await;
        r.expect("the scenario runs")
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_fanout_against_a_spawned_hub() {
    let words = ["fanout", "--viewers", "10", "--producers", "2"];
    let Scenario::Fanout(args) =
        scenario(&[&words[..], &["--duration", "2s", "--warmup", "500ms"]].concat())
    else {
        panic!("not fanout");
    };
    let r = against_hub(&args.target, |t| async {
        let r = fanout::run(&t, &args).await;
        (t, r)
    })
    .await;
    println!("{r}");
    assert!(r.delivered.messages > 0, "viewers received progress: {r}");
    assert!(r.acked > 0, "producers got acks: {r}");
    assert_eq!(r.delivered.closed, 0, "no viewer was dropped: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_latency_run_with_arrival_stamps() {
    let words = [
        "latency",
        "--rate",
        "500",
        "--publish-rate",
        "50",
        "--arrival",
    ];
    let Scenario::Latency(args) =
        scenario(&[&words[..], &["--duration", "2s", "--warmup", "1500ms"]].concat())
    else {
        panic!("not latency");
    };
    let r = against_hub(&args.target, |t| async {
        let r = latency::run(&t, &args, 500).await;
        (t, r)
    })
    .await;
    println!("{r}");
    assert_eq!(r.viewers, 10);
    assert!(r.latency.count > 0, "latencies recorded: {r}");
    let arrival = r.arrival.expect("arrival latencies recorded");
    assert!(arrival.count > 0, "{r}");
    // Arrival comes before the read of the same messages.
    assert!(arrival.p50 <= r.latency.p50, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_targets_round_against_both_servers() {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/socketio");
    assert!(
        peer.join("node_modules/socket.io").is_dir(),
        "the Socket.IO peer is not installed: run `npm ci --prefix bench/socketio`"
    );
    let words = [
        "targets",
        "--rounds",
        "1",
        "--viewers",
        "10",
        "--publish-rate",
        "50",
        "--rate-cap",
        "500",
        "--duration",
        "1s",
        "--fanout-warmup",
        "300ms",
        "--latency-warmup",
        "1s",
        "--spawn",
    ];
    let args = words
        .iter()
        .map(OsString::from)
        .chain([OsString::from("--socketio-dir"), peer.into_os_string()]);
    let Scenario::Targets(mut args) =
        Cli::parse_from(["bench".into()].into_iter().chain(args)).scenario
    else {
        panic!("not targets");
    };
    args.target.hub_bin = Some(hub_bin());
    let rounds = tokio::time::timeout(Duration::from_secs(60), targets::run(&args))
        .await
        .expect("bounded")
        .expect("the round runs");
    assert_eq!(rounds.len(), 1);
    let r = &rounds[0];
    println!("{}", targets::summary(&rounds));
    assert_eq!(r.socketio_fanout.server, "socket.io");
    assert_eq!(r.hub_fanout.server, "progress-hub");
    for f in [&r.socketio_fanout, &r.hub_fanout] {
        assert!(f.delivered.messages > 0, "viewers received messages: {f}");
        assert_eq!(f.delivered.closed, 0, "{f}");
    }
    // The rate comes from this round's Socket.IO maximum (half, capped,
    // whole viewers).
    assert_eq!(
        r.rate,
        targets::latency_rate(r.socketio_fanout.msgs_per_sec(), 500, 50)
    );
    for l in [&r.hub_latency, &r.socketio_latency] {
        assert_eq!(l.rate, r.rate);
        assert!(l.latency.count > 0, "latencies recorded: {l}");
    }
    assert_eq!(r.socketio_latency.server, "socket.io");
}
