//! A stand-alone driver for the benchmark, the same as
//! `progress-hub bench ...`: `cargo run --release -p hub-bench --example
//! bench -- fanout --target hub,socketio --spawn --hub-bin target/release/progress-hub`.

use clap::Parser;

/// progress-hub's load generator.
#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(flatten)]
    bench: hub_bench::BenchArgs,
}

fn main() {
    std::process::exit(hub_bench::main(Cli::parse().bench));
}
