//! A server under test: its protocol, the WebSocket URL to dial, its PID
//! when known (for memory and CPU), and the child process when the
//! benchmark started it. Targets are measured one at a time, so each has
//! the whole machine.

use crate::adapter::Proto;
use crate::args::TargetArgs;
use crate::peer::Peer;
use crate::sys;
use anyhow::{anyhow, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// A server under test.
pub struct Target {
    /// What it speaks.
    pub proto: Proto,
    /// The WebSocket URL to dial.
    pub ws_url: String,
    /// Its process id, when known.
    pub pid: Option<u32>,
    peer: Option<Peer>,
}

impl Target {
    /// Connects to (or starts) the server for `proto` as `args` say; a hub
    /// started for a durable measurement gets a fresh data directory under
    /// `durable_in`.
    pub async fn resolve(
        args: &TargetArgs,
        proto: Proto,
        durable_in: Option<&Path>,
    ) -> anyhow::Result<Target> {
        let (url, spawn, pid) = match proto {
            Proto::Hub => (&args.hub_url, args.spawn || args.spawn_hub, args.hub_pid),
            Proto::SocketIo => (
                &args.socketio_url,
                args.spawn || args.spawn_socketio,
                args.socketio_pid,
            ),
        };
        let url = url.clone().or_else(|| {
            (args.targets.len() == 1)
                .then(|| args.url.clone())
                .flatten()
        });
        if spawn {
            let peer = match proto {
                Proto::Hub => {
                    let bin = match &args.hub_bin {
                        Some(b) => b.clone(),
                        None => std::env::current_exe()?,
                    };
                    Peer::spawn_hub(&bin, &args.hub_args, durable_in).await?
                }
                Proto::SocketIo => Peer::spawn_socketio(&args.node, &args.socketio_dir).await?,
            };
            let ws_url = proto.ws_url(&peer.url).map_err(|e| anyhow!(e))?;
            return Ok(Target {
                proto,
                ws_url,
                pid: Some(peer.pid),
                peer: Some(peer),
            });
        }
        let Some(url) = url else {
            bail!(
                "no server for {}: give --{}-url (or --url with one --target), or --spawn-{}",
                proto.name(),
                cli_name(proto),
                cli_name(proto)
            );
        };
        let ws_url = proto.ws_url(&url).map_err(|e| anyhow!(e))?;
        Ok(Target {
            proto,
            ws_url,
            pid,
            peer: None,
        })
    }

    /// Its resident memory in bytes, when its PID is known.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(|p| sys::rss_bytes(p).ok())
    }

    /// Stops it if the benchmark started it.
    pub async fn stop(self) {
        if let Some(peer) = self.peer {
            peer.stop().await;
        }
    }
}

fn cli_name(proto: Proto) -> &'static str {
    match proto {
        Proto::Hub => "hub",
        Proto::SocketIo => "socketio",
    }
}

/// A point in time for rates: wall clock and CPU of the generator and the server.
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    at: Instant,
    own_cpu: Duration,
    peer_cpu: Option<Duration>,
}

/// Elapsed wall time and CPU (in cores) between two [`Meter`] readings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Wall-clock seconds.
    pub secs: f64,
    /// The generator's CPU use, in cores.
    pub own_cores: f64,
    /// The server's CPU use, in cores (when its PID is known).
    pub peer_cores: Option<f64>,
}

impl Meter {
    /// Reads the clocks now.
    pub fn now(pid: Option<u32>) -> Meter {
        Meter {
            at: Instant::now(),
            own_cpu: sys::cpu_self(),
            peer_cpu: pid.and_then(sys::cpu_of),
        }
    }

    /// What was used since `earlier`.
    pub fn since(&self, earlier: &Meter) -> Usage {
        let secs = (self.at - earlier.at).as_secs_f64().max(1e-9);
        Usage {
            secs,
            own_cores: (self.own_cpu.saturating_sub(earlier.own_cpu)).as_secs_f64() / secs,
            peer_cores: match (self.peer_cpu, earlier.peer_cpu) {
                (Some(a), Some(b)) => Some(a.saturating_sub(b).as_secs_f64() / secs),
                _ => None,
            },
        }
    }
}

/// A namespace / room name unique to this run.
pub fn room_name(scenario: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!("bench-{scenario}-{nanos}")
}
