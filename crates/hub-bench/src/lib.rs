//! hub-bench: the load generator behind `progress-hub bench`.
//!
//! Four scenarios (and `targets`, which combines two of them), each
//! measured against progress-hub and, with the very same generator code,
//! against a Socket.IO 4.8 peer (`bench/socketio/`);
//! only the protocol adapter ([`adapter::Proto`]) differs:
//!
//! - `fanout`: delivered messages/s to N viewers at maximum publish rate;
//! - `latency`: end-to-end latency percentiles at fixed delivered rates;
//! - `idle`: server memory per idle subscribed connection;
//! - `store`: durable events/s into the store (and through the hub);
//! - `targets`: the fan-out and latency targets of issue 3 judged in one
//!   run, the latency rate set from the Socket.IO maximum just measured.
//!
//! Only loopback addresses are dialled; every loop ends by its deadline.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     bench: hub_bench::BenchArgs,
//! }
//! let cli = Cli::parse_from(["bench", "fanout", "--viewers", "10", "--duration", "2s", "--spawn-hub"]);
//! hub_bench::run(cli.bench).await
//! # }
//! ```

pub mod adapter;
pub mod args;
pub mod clock;
pub mod conn;
pub mod peer;
pub mod producer;
pub mod raw;
pub mod runner;
pub mod scenario;
pub mod sys;
pub mod target;
pub mod viewer;

pub use args::{FanoutArgs, IdleArgs, LatencyArgs, StoreArgs, TargetArgs, TargetsArgs};

/// `progress-hub bench <scenario> [options]`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Worker threads of the generator's runtime when it builds its own (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

/// The benchmark scenarios.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Scenario {
    /// Delivered msgs/s to N viewers (default 1000) at maximum publish rate.
    Fanout(FanoutArgs),
    /// End-to-end latency percentiles at fixed delivered rates (default 10k and 100k msgs/s).
    Latency(LatencyArgs),
    /// Server memory per idle subscribed connection (default 10,000 connections).
    Idle(IdleArgs),
    /// Durable events/s into the store (and, with --via-hub, through a hub).
    Store(StoreArgs),
    /// Issue 3's relative targets in one run: fan-out against Socket.IO, and
    /// p99 at half of Socket.IO's maximum (at most 100k msgs/s), per round.
    Targets(TargetsArgs),
}

/// Runs a benchmark inside an existing tokio runtime (multi-thread).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    runner::run(args.scenario).await
}

/// Builds a multi-thread runtime, runs the benchmark, prints any error,
/// and returns the process exit code (0 ok, 1 failed).
pub fn main(args: BenchArgs) -> i32 {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(run(args));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            1
        }
    }
}
