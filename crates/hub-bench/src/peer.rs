//! Servers the benchmark starts itself: the hub binary
//! (`serve --memory --listen 127.0.0.1:0`) or the Socket.IO peer
//! (`node bench/socketio/server.js`). Each is ready once it prints
//! `listening on HOST:PORT`, and is stopped by its PID (SIGTERM, then
//! SIGKILL) at the end. Children inherit the raised open-files limit.

use crate::adapter::Proto;
use anyhow::{anyhow, bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server child process.
pub struct Peer {
    /// What it speaks.
    pub proto: Proto,
    /// Its process id.
    pub pid: u32,
    /// Its base URL (`ws://ADDR/ws` or `http://ADDR`).
    pub url: String,
    child: Child,
    _data_dir: Option<tempfile::TempDir>,
}

impl Peer {
    /// Starts the hub from `bin`: in memory, or on a fresh temporary data
    /// directory under `durable_in` when given (durable acks).
    pub async fn spawn_hub(
        bin: &Path,
        extra: &[String],
        durable_in: Option<&Path>,
    ) -> anyhow::Result<Peer> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        let data_dir = match durable_in {
            Some(parent) => {
                let dir = tempfile::Builder::new()
                    .prefix("hub-bench-")
                    .tempdir_in(parent)?;
                cmd.arg("--data-dir").arg(dir.path());
                Some(dir)
            }
            None => {
                cmd.arg("--memory");
                None
            }
        };
        cmd.args(extra);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let (child, addr) = start(cmd)
            .await
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("hub exited at once"))?;
        Ok(Peer {
            proto: Proto::Hub,
            pid,
            url: format!("ws://{addr}/ws"),
            child,
            _data_dir: data_dir,
        })
    }

    /// Starts `node server.js` in `dir` (which must hold `node_modules`).
    pub async fn spawn_socketio(node: &Path, dir: &Path) -> anyhow::Result<Peer> {
        let dir = socketio_dir(dir)?;
        if !dir.join("node_modules/socket.io").is_dir() {
            bail!(
                "{} has no node_modules/socket.io: run `npm ci --prefix {}` first",
                dir.display(),
                dir.display()
            );
        }
        let mut cmd = Command::new(node);
        cmd.arg("server.js").current_dir(&dir);
        let (child, addr) = start(cmd).await.context("starting the Socket.IO peer")?;
        let pid = child.id().ok_or_else(|| anyhow!("node exited at once"))?;
        Ok(Peer {
            proto: Proto::SocketIo,
            pid,
            url: format!("http://{addr}"),
            child,
            _data_dir: None,
        })
    }

    /// Stops the server: SIGTERM, and SIGKILL if it is still there after a while.
    pub async fn stop(mut self) {
        let pid = Pid::from_raw(self.pid as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await;
        }
    }
}

/// `dir` as given, or else relative to this crate's checkout (so the
/// default `bench/socketio` works from anywhere in the workspace).
fn socketio_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("server.js").is_file() {
        return Ok(dir.to_owned());
    }
    let from_repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    if from_repo.join("server.js").is_file() {
        return Ok(from_repo);
    }
    bail!("no server.js in {} (give --socketio-dir)", dir.display())
}

/// Spawns `cmd` and waits for its `listening on ADDR` line; the rest of
/// its stdout is drained in the background, stderr is shared with ours.
async fn start(mut cmd: Command) -> anyhow::Result<(Child, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                return Some(addr.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    match found {
        Some(addr) => {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((child, addr))
        }
        None => {
            let _ = child.start_kill();
            let status = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await;
            bail!("it did not print `listening on ADDR` (exit: {status:?})")
        }
    }
}
