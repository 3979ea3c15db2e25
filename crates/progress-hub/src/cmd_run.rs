//! `progress-hub run [--name N] [--kind K] [--pattern REGEX] -- CMD ARGS...`:
//! run a command as a reported operation.
//!
//! The child's stdout and stderr pass through byte for byte; each line (split
//! on `\n` and `\r`, so tqdm-style redraws count) is also read by
//! [`hub_client::ProgressParser`] for percentages, `12/300` counts, tqdm bars
//! or the user's pattern, and the latest line becomes the operation's
//! message. Exit status 0 reports `completed`, anything else `failed`; a
//! cancel from the hub sends SIGTERM to the child and reports `canceled`.
//! The tool exits with the child's code (128 + signal when it was killed),
//! whether or not the hub was reachable.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use hub_client::{OperationHandle, ProgressFields, ProgressParser, Reporter};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

use crate::cmd_report::HubArgs;
use hub_bench::args::parse_duration;

/// Run a command and report it as an operation.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// Display name (default: the command line).
    #[arg(long)]
    name: Option<String>,
    /// Kind, for grouping and ETA history.
    #[arg(long)]
    kind: Option<String>,
    /// Extra regex for progress in the output: named groups `percent`, or
    /// `current` and `total`, or else the first group is a percentage.
    #[arg(long)]
    pattern: Option<String>,
    /// Choose the operation id (default: a new time-ordered id).
    #[arg(long)]
    id: Option<String>,
    /// Parent operation id.
    #[arg(long)]
    parent: Option<String>,
    /// After the command ends, how long to wait for the hub to acknowledge.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    flush_timeout: Duration,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Longest message taken from an output line.
const MAX_MESSAGE: usize = 200;

/// Splits output into lines on `\n` and `\r` and feeds them to the parser.
struct LineFeed {
    buf: Vec<u8>,
}

impl LineFeed {
    fn push(&mut self, bytes: &[u8], parser: &ProgressParser, op: &OperationHandle) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.line(parser, op);
            } else if self.buf.len() < 64 * 1024 {
                self.buf.push(b);
            }
        }
    }

    fn line(&mut self, parser: &ProgressParser, op: &OperationHandle) {
        let text = String::from_utf8_lossy(&self.buf);
        let line = strip_ansi(&text);
        let line = line.trim();
        if !line.is_empty() {
            let mut fields = ProgressFields {
                message: Some(line.chars().take(MAX_MESSAGE).collect()),
                ..Default::default()
            };
            if let Some(p) = parser.parse_line(line) {
                fields.progress = p.percent;
                fields.current = p.current;
            }
            let _ = op.update(fields);
        }
        self.buf.clear();
    }
}

/// Remove ANSI escape sequences (colours, cursor moves) from a line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Copy `from` to `to` unchanged, feeding a copy to the line parser.
async fn pump<R, W>(mut from: R, mut to: W, parser: &ProgressParser, op: &OperationHandle)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut feed = LineFeed { buf: Vec::new() };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Output goes through even if our own stdout is gone.
        let _ = to.write_all(&buf[..n]).await;
        let _ = to.flush().await;
        feed.push(&buf[..n], parser, op);
    }
    feed.line(parser, op);
}

/// Run the command; returns its exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let parser = match &args.pattern {
        Some(p) => ProgressParser::with_pattern(p).context("invalid --pattern")?,
        None => ProgressParser::new(),
    };
    let reporter = Reporter::connect(args.hub.config()).context("invalid hub settings")?;
    let name = args.name.clone().unwrap_or_else(|| args.command.join(" "));
    let name: String = name.chars().take(256).collect();
    let mut start = reporter.start(name).metadata(serde_json::json!({
        "command": args.command,
        "pid": std::process::id(),
    }));
    if let Some(k) = &args.kind {
        start = start.kind(k);
    }
    if let Some(i) = &args.id {
        start = start.id(i);
    }
    if let Some(p) = &args.parent {
        start = start.parent(p);
    }
    let op = start.begin()?;

    let spawned = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("progress-hub: cannot run {:?}: {e}", args.command[0]);
            op.fail(format!("cannot run {:?}: {e}", args.command[0]))?;
            reporter.flush(args.flush_timeout).await;
            return Ok(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    let stdout = child.stdout.take().context("child stdout")?;
    let stderr = child.stderr.take().context("child stderr")?;
    let out = pump(stdout, tokio::io::stdout(), &parser, &op);
    let err = pump(stderr, tokio::io::stderr(), &parser, &op);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;

    let mut canceled = false;
    let status = {
        let wait = async {
            let (_, _, status) = tokio::join!(out, err, child.wait());
            status
        };
        tokio::pin!(wait);
        loop {
            tokio::select! {
                status = &mut wait => break status.context("waiting for the command")?,
                () = op.cancelled(), if !canceled => {
                    canceled = true;
                    eprintln!("progress-hub: cancel requested{}; sending SIGTERM to the command",
                        op.cancel_requested_by().map(|b| format!(" by {b}")).unwrap_or_default());
                    if let Some(pid) = pid {
                        let _ = kill(pid, Signal::SIGTERM);
                    }
                }
                _ = sigterm.recv() => {
                    if let Some(pid) = pid {
                        let _ = kill(pid, Signal::SIGTERM);
                    }
                }
            }
        }
    };

    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    };
    if canceled {
        op.canceled(Some("canceled from the hub"))?;
    } else if status.success() {
        op.complete()?;
    } else {
        let why = match status.signal() {
            Some(s) => format!("killed by signal {s}"),
            None => format!("exit code {code}"),
        };
        op.fail(why)?;
    }
    if !reporter.flush(args.flush_timeout).await {
        let stats = reporter.connection_stats();
        eprintln!(
            "progress-hub: the hub at {} did not acknowledge every report ({})",
            stats.url, stats.state
        );
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[32m42%\u{1b}[0m done"), "42% done");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}[2K\u{1b}[1G 5/10"), " 5/10");
    }
}
