//! A hub child process: started with `serve`, ready once it prints
//! `listening on ADDR`, killed (SIGKILL) when dropped.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How to start a hub.
#[derive(Clone, Debug)]
pub struct HubBuilder {
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    listen: String,
    /// `ulimit` options and values the hub starts under (`-f 4096`).
    ulimits: Vec<(&'static str, u64)>,
}

impl HubBuilder {
    /// A hub from the given binary, in memory, on `127.0.0.1:0`.
    pub fn new(bin: impl AsRef<Path>) -> Self {
        HubBuilder {
            bin: bin.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            data_dir: None,
            listen: "127.0.0.1:0".into(),
            ulimits: Vec::new(),
        }
    }

    /// Uses an embedded store in `dir` instead of memory.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Listens on a fixed address (for restarts on the same port); an
    /// empty one passes no `--listen` (the environment or a file decides).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Adds flags.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the hub process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Caps the size of every file the hub writes at `blocks` blocks of
    /// the shell's `ulimit -f` (512 bytes under dash), with `SIGXFSZ`
    /// ignored: a write past it fails with `EFBIG`, as on a full disk,
    /// instead of killing the process.
    pub fn file_size_limit(mut self, blocks: u64) -> Self {
        self.ulimits.push(("-f", blocks));
        self
    }

    /// Starts the hub with at most `n` open files (soft and hard limit).
    pub fn open_files_limit(mut self, n: u64) -> Self {
        self.ulimits.push(("-n", n));
        self
    }

    /// Starts the hub and waits for `listening on`.
    pub async fn start(&self) -> Hub {
        self.try_start().await.expect("hub did not start")
    }

    /// Starts the hub; `Err` carries its exit code and stderr when it refuses to start.
    pub async fn try_start(&self) -> Result<Hub, (Option<i32>, String)> {
        let mut cmd = if self.ulimits.is_empty() {
            Command::new(&self.bin)
        } else {
            let limits: String = self
                .ulimits
                .iter()
                .map(|(opt, v)| format!("ulimit {opt} {v}; "))
                .collect();
            // `exec` keeps the process id: the hub is still this child.
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("{limits}trap '' XFSZ; exec \"$0\" \"$@\""))
                .arg(&self.bin);
            sh
        };
        cmd.arg("serve");
        if !self.listen.is_empty() {
            cmd.arg("--listen").arg(&self.listen);
        }
        match &self.data_dir {
            Some(d) => {
                cmd.arg("--data-dir").arg(d);
            }
            None => {
                cmd.arg("--memory");
            }
        }
        cmd.args(&self.args)
            .env_remove("RUST_LOG")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn hub");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, mut err_rx) = mpsc::unbounded_channel::<String>();
        let err_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if std::env::var_os("HUB_TEST_LOGS").is_some() {
                    eprintln!("[hub] {l}");
                }
                let _ = err_tx.send(l);
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
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
                Ok(Hub {
                    child,
                    addr,
                    stderr: err_rx,
                })
            }
            None => {
                let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                let code = status.ok().and_then(|s| s.ok()).and_then(|s| s.code());
                // The process is gone: its stderr ends, so this finishes.
                let _ = tokio::time::timeout(Duration::from_secs(5), err_task).await;
                let mut err = String::new();
                while let Ok(l) = err_rx.try_recv() {
                    err.push_str(&l);
                    err.push('\n');
                }
                Err((code, err))
            }
        }
    }
}

/// A running hub child process.
pub struct Hub {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    stderr: mpsc::UnboundedReceiver<String>,
}

impl Hub {
    /// `ws://ADDR/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("running") as i32)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal hub");
    }

    /// SIGKILL and reap.
    pub async fn kill9(mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the process to exit, with a deadline.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Stderr lines printed so far.
    pub fn stderr_lines(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = self.stderr.try_recv() {
            v.push(l);
        }
        v
    }
}
