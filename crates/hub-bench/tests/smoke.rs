//! Smoke tests: a tiny fan-out (10 viewers, 2 s) and a tiny latency run
//! (with arrival stamps) against a hub binary started by the benchmark,
//! when `PROGRESS_HUB_BIN` names one; skipped (with a note) otherwise.

use clap::Parser;
use hub_bench::adapter::Proto;
use hub_bench::scenario::{fanout, latency};
use hub_bench::target::Target;
use hub_bench::Scenario;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_fanout_against_a_spawned_hub() {
    let Some(bin) = std::env::var_os("PROGRESS_HUB_BIN") else {
        eprintln!("note: PROGRESS_HUB_BIN is not set; skipping the fan-out smoke test");
        return;
    };
    let cli = Cli::parse_from(
        [
            "bench",
            "fanout",
            "--viewers",
            "10",
            "--producers",
            "2",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--spawn-hub",
            "--hub-bin",
        ]
        .map(std::ffi::OsString::from)
        .into_iter()
        .chain([bin]),
    );
    let Scenario::Fanout(args) = cli.scenario else {
        unreachable!("parsed fanout")
    };
    let run = async {
        let target = Target::resolve(&args.target, Proto::Hub, None)
            .await
            .expect("hub starts");
        let r = fanout::run(&target, &args).await;
        target.stop().await;
        r.expect("fanout runs")
    };
    let r = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
    println!("{r}");
    assert!(r.delivered.messages > 0, "viewers received progress: {r}");
    assert!(r.acked > 0, "producers got acks: {r}");
    assert_eq!(r.delivered.closed, 0, "no viewer was dropped: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_latency_run_with_arrival_stamps() {
    let Some(bin) = std::env::var_os("PROGRESS_HUB_BIN") else {
        eprintln!("note: PROGRESS_HUB_BIN is not set; skipping the latency smoke test");
        return;
    };
    let cli = Cli::parse_from(
        [
            "bench",
            "latency",
            "--rate",
            "500",
            "--publish-rate",
            "50",
            "--duration",
            "2s",
            "--warmup",
            "1500ms",
            "--arrival",
            "--spawn-hub",
            "--hub-bin",
        ]
        .map(std::ffi::OsString::from)
        .into_iter()
        .chain([bin]),
    );
    let Scenario::Latency(args) = cli.scenario else {
        unreachable!("parsed latency")
    };
    let run = async {
        let target = Target::resolve(&args.target, Proto::Hub, None)
            .await
            .expect("hub starts");
        let r = latency::run(&target, &args, 500).await;
        target.stop().await;
        r.expect("latency runs")
    };
    let r = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
    println!("{r}");
    assert_eq!(r.viewers, 10);
    assert!(r.latency.count > 0, "latencies recorded: {r}");
    let arrival = r.arrival.expect("arrival latencies recorded");
    assert!(arrival.count > 0, "{r}");
    // Arrival comes before the read of the same messages.
    assert!(arrival.p50 <= r.latency.p50, "{r}");
}
