//! The arguments mount as `progress-hub bench <scenario>` exactly the way
//! the binary wires them (a `Bench(BenchArgs)` subcommand), with no clash
//! between clap definitions (no network).

use clap::{CommandFactory as _, Parser, Subcommand};
use hub_bench::adapter::Proto;
use hub_bench::{BenchArgs, Scenario};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "progress-hub")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load generator.
    Bench(BenchArgs),
}

#[test]
fn definitions_are_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn fanout_against_both_targets() {
    let cli = Cli::parse_from([
        "progress-hub",
        "bench",
        "fanout",
        "--target",
        "hub,socketio",
        "--spawn",
        "--viewers",
        "10",
        "--duration",
        "2s",
        "--threads",
        "2",
    ]);
    let Cmd::Bench(args) = cli.command;
    assert_eq!(args.threads, Some(2));
    let Scenario::Fanout(f) = args.scenario else {
        panic!("not fanout")
    };
    assert_eq!(f.viewers, 10);
    assert_eq!(f.window, 256);
    assert_eq!(f.duration, Duration::from_secs(2));
    assert_eq!(f.target.targets, [Proto::Hub, Proto::SocketIo]);
    assert!(f.target.spawn);
}

#[test]
fn latency_rates_and_hub_args() {
    let cli = Cli::parse_from([
        "progress-hub",
        "bench",
        "latency",
        "--rate",
        "10000,100000",
        "--url",
        "ws://127.0.0.1:8765/ws",
        "--hub-arg=--status-interval=60s",
    ]);
    let Cmd::Bench(args) = cli.command;
    let Scenario::Latency(l) = args.scenario else {
        panic!("not latency")
    };
    assert_eq!(l.rates, [10_000, 100_000]);
    assert_eq!(l.target.url.as_deref(), Some("ws://127.0.0.1:8765/ws"));
    assert_eq!(l.target.hub_args, ["--status-interval=60s"]);
}
