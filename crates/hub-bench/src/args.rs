//! Command-line arguments of `progress-hub bench`: one subcommand per
//! scenario, each with the shared target options (which servers, where,
//! or start them).

use crate::adapter::Proto;
use std::path::PathBuf;
use std::time::Duration;

/// Producers of the fan-out and latency scenarios, each publishing one operation.
pub const PRODUCERS: usize = 4;
/// Unacked messages each fan-out producer keeps in flight.
pub const WINDOW: u64 = 256;

/// Which servers to measure and how to reach them.
#[derive(clap::Args, Clone, Debug)]
pub struct TargetArgs {
    /// Servers to measure, one after the other (comma-separated): hub, socketio.
    #[arg(
        long = "target",
        value_enum,
        value_delimiter = ',',
        default_value = "hub"
    )]
    pub targets: Vec<Proto>,
    /// The server's URL when one target is measured: ws://127.0.0.1:PORT/ws
    /// (hub) or http://127.0.0.1:PORT (socketio). Loopback only.
    #[arg(long)]
    pub url: Option<String>,
    /// The hub's URL (ws://127.0.0.1:PORT/ws).
    #[arg(long)]
    pub hub_url: Option<String>,
    /// The Socket.IO peer's URL (http://127.0.0.1:PORT).
    #[arg(long)]
    pub socketio_url: Option<String>,
    /// Start every target's server (as --spawn-hub and --spawn-socketio).
    #[arg(long)]
    pub spawn: bool,
    /// Start the hub (`serve --memory --listen 127.0.0.1:0`) and stop it at the end.
    #[arg(long)]
    pub spawn_hub: bool,
    /// Start the Socket.IO peer (`node server.js`) and stop it at the end.
    #[arg(long)]
    pub spawn_socketio: bool,
    /// The hub binary to start (default: this executable).
    #[arg(long, env = "PROGRESS_HUB_BIN")]
    pub hub_bin: Option<PathBuf>,
    /// Extra flags for a started hub, e.g. `--hub-arg=--status-interval=60s`.
    #[arg(long = "hub-arg", allow_hyphen_values = true)]
    pub hub_args: Vec<String>,
    /// The Socket.IO peer's directory (server.js with node_modules installed).
    #[arg(long, default_value = "bench/socketio")]
    pub socketio_dir: PathBuf,
    /// The node executable.
    #[arg(long, default_value = "node")]
    pub node: PathBuf,
    /// PID of a hub started elsewhere (for its memory and CPU).
    #[arg(long)]
    pub hub_pid: Option<u32>,
    /// PID of a Socket.IO peer started elsewhere.
    #[arg(long)]
    pub socketio_pid: Option<u32>,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

/// `fanout`: delivered messages per second at maximum publish rate.
#[derive(clap::Args, Clone, Debug)]
pub struct FanoutArgs {
    /// Subscribed viewers.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// Producers, each publishing one operation's progress.
    #[arg(long, default_value_t = PRODUCERS)]
    pub producers: usize,
    /// Unacked messages each producer keeps in flight.
    #[arg(long, default_value_t = WINDOW)]
    pub window: u64,
    /// Measurement time (after the warm-up), e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
}

/// `latency`: end-to-end latency percentiles at fixed delivered rates.
#[derive(clap::Args, Clone, Debug)]
pub struct LatencyArgs {
    /// Delivered messages per second over all viewers (comma-separated rates).
    #[arg(long = "rate", value_delimiter = ',', default_value = "10000,100000")]
    pub rates: Vec<u64>,
    /// Messages published per second; viewers = rate / this.
    #[arg(long, default_value_t = 100)]
    pub publish_rate: u64,
    /// Producers sharing the publish rate.
    #[arg(long, default_value_t = PRODUCERS)]
    pub producers: usize,
    /// Measurement time (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Also measure latency to the message's arrival at the viewer's socket
    /// (the kernel's receive stamp), which leaves out how long the
    /// generator took to read it; reading the stamps costs the generator
    /// some CPU, which both servers share with it.
    #[arg(long)]
    pub arrival: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
}

/// `targets`: issue 3's two relative targets judged in one run. Each round
/// measures Socket.IO's and the hub's fan-out maximum, then both servers'
/// latency at the lower of 100,000 delivered msgs/s and half of that
/// round's Socket.IO maximum. `--target` is ignored: both are measured
/// (give `--spawn`, or `--hub-url` and `--socketio-url`).
#[derive(clap::Args, Clone, Debug)]
pub struct TargetsArgs {
    /// Rounds, each with its own Socket.IO maximum.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Subscribed viewers of the fan-out runs.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// Messages published per second in the latency runs; viewers = rate / this.
    #[arg(long, default_value_t = 100)]
    pub publish_rate: u64,
    /// The latency rate never goes above this (issue 3: 100,000 delivered msgs/s).
    #[arg(long, default_value_t = 100_000)]
    pub rate_cap: u64,
    /// Measurement time of each run (after its warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up of each fan-out run.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub fanout_warmup: Duration,
    /// Warm-up of each latency run.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub latency_warmup: Duration,
    /// Also measure latency to arrival at the viewer's socket (see `latency --arrival`).
    #[arg(long)]
    pub arrival: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
}

/// `idle`: server memory per idle subscribed connection.
#[derive(clap::Args, Clone, Debug)]
pub struct IdleArgs {
    /// Idle subscribed connections.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Wait after the last connection before reading the server's memory.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub settle: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
}

/// `store`: durable events per second.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// Events committed by the direct store benchmark.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Submitter threads of the direct store benchmark.
    #[arg(long, default_value_t = 4)]
    pub submitters: usize,
    /// Where the store files go (default: the system temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also measure acked events/s through a hub with a data directory
    /// (with --spawn-hub the hub is started on a fresh one).
    #[arg(long)]
    pub via_hub: bool,
    /// Producers publishing through the hub.
    #[arg(long, default_value_t = 64)]
    pub producers: usize,
    /// Unacked messages each producer keeps in flight.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Measurement time through the hub.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up through the hub.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
}

/// Parses a duration given on the command line: a bare number of seconds
/// (`3`, `1.5`) or humantime's forms (`500ms`, `10s`, `2m`, `1h 30m`). The
/// one parser of the binary's client-side commands (`bench`, `report`,
/// `run`, `token`); the server's flags go through its configuration, which
/// reads the same humantime forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 10s or 2m ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 3 "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
    }
}
