//! Smoke tests: a tiny fan-out (10 viewers, 2 s) and a tiny latency run
//! (with arrival stamps) against a hub binary started by the benchmark,
//! when `PROGRESS_HUB_BIN` names one; skipped (with a note) otherwise.

use clap::Parser;
use hub_bench::adapter::Proto;
use hub_bench::scenario::{fanout, latency};
use hub_bench::target::Target;
use hub_bench::Scenario;
use hub_bench::TargetArgs;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// Parses `bench ARGS --spawn-hub --hub-bin $PROGRESS_HUB_BIN`; None (with
/// a note) when that variable is not set.
fn scenario(args: &[&str]) -> Option<Scenario> {
    let Some(bin) = std::env::var_os("PROGRESS_HUB_BIN") else {
        eprintln!(
            "note: PROGRESS_HUB_BIN is not set; skipping the {} smoke test",
            args[0]
        );
        return None;
    };
    let words = ["bench"]
        .iter()
        .chain(args)
        .chain(&["--spawn-hub", "--hub-bin"])
        .map(std::ffi::OsString::from)
        .chain([bin]);
    Some(Cli::parse_from(words).scenario)
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
    let Some(Scenario::Fanout(args)) =
        scenario(&[&words[..], &["--duration", "2s", "--warmup", "500ms"]].concat())
    else {
        return;
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
    let Some(Scenario::Latency(args)) =
        scenario(&[&words[..], &["--duration", "2s", "--warmup", "1500ms"]].concat())
    else {
        return;
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
