//! `progress-hub run [--name N] [--kind K] [--pattern REGEX] -- CMD ARGS...`:
//! run a command as a reported operation.
//!
//! The child's stdout and stderr pass through byte for byte (through one
//! pipe, to our stdout, keeping their order, when our own stdout and
//! stderr are one destination: [`crate::run_output`]); each line (split
//! on `\n` and `\r`, so tqdm-style redraws count) is also read by
//! [`hub_client::ProgressParser`] ([`crate::run_lines`]) for percentages, `12/300` counts, tqdm bars
//! or the user's pattern, and the latest line becomes the operation's
//! message. Exit status 0 reports `completed`, anything else `failed`; a
//! cancel from the hub sends SIGTERM to the child and every process it
//! started ([`crate::run_tree`]) and reports `canceled`. When our own
//! stdout (or stderr) is gone, the child's pipe is closed so that it gets
//! SIGPIPE as in a pipeline without `run` (`run -- yes | head` ends, 141).
//!
//! `run` ends when the child has exited and its output pipes reached EOF;
//! it waits at most [`OUTPUT_GRACE`] past the child's exit for that EOF
//! (a process the command left behind may hold the pipes open; it gets
//! EPIPE on its next write once `run` stopped reading).
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT do not stop the tool: the child gets the signal once
//! (passed on, to its whole tree, when a process sent it; one the kernel sent, a terminal's
//! Ctrl-C, already reached the child in the same foreground process group),
//! the tool waits for the child and reports `canceled` with the signal as
//! the reason unless the child still exited 0. The origin cannot tell a
//! `kill` of the tool's pid from one of its whole process group: a process
//! that signals the group reaches the child twice. A signal while the tool
//! waits at the end for the hub (`--flush-timeout`) ends the wait at once;
//! so does the hub refusing the token (or closing for a policy violation).
//!
//! The hub never fails or blocks the job: an unusable hub URL or an
//! operation the hub refuses is one line on stderr and the command runs
//! unreported. The tool exits with the child's code (128 + signal when it
//! was killed), whether or not the hub was reachable.
//!
//! How signals are read and the command started clean of their mask:
//! [`crate::run_signals`].

use crate::run_lines::LineFeed;
use crate::run_signals::{command_with_clean_signals, until_execd, Caught, Signals};
use crate::run_tree::signal_tree;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use hub_client::machine::Reason;
use hub_client::{OperationHandle, ProgressParser, Reporter};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
    /// `current` and `total`, or else the first group is a percentage. An
    /// invalid one is a usage error (exit 2): the command is not run.
    #[arg(long, value_parser = parse_pattern)]
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

/// How long, after the command ended, `run` still waits for the end of
/// its output once it passed on a cancel or a signal: a process that left
/// the command's tree (and so was not signalled) may hold the pipes open.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// A `--pattern` the progress parser takes (checked when the flags are
/// read, so that a bad one stops `run` before the command starts).
fn parse_pattern(s: &str) -> Result<String, String> {
    ProgressParser::with_pattern(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

/// Copy `from` to `to` unchanged, feeding a copy to the line parser. When
/// `to` is gone (our own stdout closed: `run -- yes | head`), it stops
/// reading and closes `from`, so the command gets SIGPIPE (or EPIPE) on
/// its next write, as it would without `run` in the pipeline.
async fn pump<R, W>(mut from: R, mut to: W, parser: &ProgressParser, op: Option<&OperationHandle>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut feed = LineFeed::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        feed.push(&buf[..n], parser, op);
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            break;
        }
    }
    drop(from);
    feed.finish(parser, op);
}

/// Why the hub will not take this run's reports, once it said so: it
/// refused the token (HTTP 401 or close 4001) or closed for a policy
/// violation (1008), and the client gave up; its TLS certificate was
/// refused; or it refused the operation.
fn refusal(reporter: &Reporter, op: Option<&OperationHandle>) -> Option<String> {
    let change = reporter.client().state();
    if crate::cmd_report::refused_for_good(reporter.client()) {
        let stats = reporter.connection_stats();
        return Some(match change.reason {
            Reason::AuthRejected => format!(
                "the hub at {} refused the token ({})",
                stats.url,
                stats.last_error.unwrap_or_else(|| "close code 4001".into())
            ),
            _ => crate::cmd_report::connection_refused(reporter),
        });
    }
    let op = op?;
    // The hub's words (or the client's own, for an id already taken).
    let why = op
        .refusal()
        .map(|r| match r.code.as_str() {
            hub_client::outbox::OPERATION_EXISTS => r.message,
            _ => r.to_string(),
        })
        .or_else(|| op.rejection())?;
    Some(format!(
        "the hub at {} refused operation {}: {why}",
        reporter.connection_stats().url,
        op.id()
    ))
}

/// Prints, once, why the hub does not take the reports.
#[derive(Default)]
struct RefusalNotice {
    told: bool,
}

impl RefusalNotice {
    /// Whether the hub refused; says so on stderr the first time.
    fn check(&mut self, reporter: &Reporter, op: Option<&OperationHandle>) -> bool {
        let Some(why) = refusal(reporter, op) else {
            return false;
        };
        if !self.told {
            self.told = true;
            let what = op.map_or("the command".to_owned(), |o| {
                format!("operation {}", o.id())
            });
            eprintln!("progress-hub: {why}; {what} is not reported");
        }
        true
    }
}

/// Resolves when a cancel is requested through the hub.
async fn cancel_requested(op: Option<&OperationHandle>) {
    match op {
        Some(op) => op.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Queues the operation's start; `None` (after a line on stderr) when
/// the client refuses it.
fn begin(reporter: &Reporter, args: &RunArgs) -> Option<OperationHandle> {
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
    match start.begin() {
        Ok(op) => Some(op),
        Err(e) => {
            eprintln!("progress-hub: cannot report the command: {e}; running it unreported");
            None
        }
    }
}

/// Waits, at most `timeout`, for the hub to acknowledge what is queued; a
/// caught signal or the hub's refusal ends the wait at once.
async fn finish_reporting(
    reporter: Option<&Reporter>,
    op: Option<&OperationHandle>,
    signals: &mut Signals,
    refused: &mut RefusalNotice,
    timeout: Duration,
) {
    // Unreported (no usable hub URL): nothing to wait for.
    let Some(reporter) = reporter else {
        return;
    };
    if refused.check(reporter, op) {
        return;
    }
    let flush = reporter.flush(timeout);
    let gave_up = crate::cmd_report::hub_gave_up(reporter.client());
    let slow = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(flush, gave_up, slow);
    let mut told_slow = false;
    loop {
        tokio::select! {
            biased;
            caught = signals.recv() => {
                eprintln!(
                    "progress-hub: {}; not waiting for the hub any longer ({} report(s) not acknowledged)",
                    caught.describe(),
                    reporter.connection_stats().queue_len
                );
                return;
            }
            flushed = &mut flush => {
                // A refused operation counts as flushed (its messages
                // were dropped): the refusal is said either way.
                if !refused.check(reporter, op) && !flushed {
                    let stats = reporter.connection_stats();
                    eprintln!(
                        "progress-hub: the hub at {} did not acknowledge every report ({}{})",
                        stats.url,
                        stats.state,
                        stats.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                    );
                }
                return;
            }
            () = &mut gave_up => {
                refused.check(reporter, op);
                return;
            }
            () = &mut slow, if !told_slow => {
                told_slow = true;
                eprintln!(
                    "progress-hub: waiting up to {timeout:?} for the hub at {} to acknowledge the last reports (interrupt to stop waiting)",
                    reporter.connection_stats().url
                );
            }
        }
    }
}

/// The tool's exit code for the child's status.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// How the child ended, for the operation's outcome.
fn how_it_ended(status: ExitStatus) -> String {
    match status.signal() {
        Some(s) => match Signal::try_from(s) {
            Ok(sig) => format!("killed by signal {s} ({sig})"),
            Err(_) => format!("killed by signal {s}"),
        },
        None => format!("exit code {}", exit_code(status)),
    }
}

/// Run the command; returns its exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let parser = match &args.pattern {
        Some(p) => ProgressParser::with_pattern(p).context("invalid --pattern")?,
        None => ProgressParser::new(),
    };
    let mut signals = Signals::install();
    let reporter = match Reporter::connect(args.hub.config()) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("progress-hub: {e}; running the command unreported");
            None
        }
    };
    let op = reporter.as_ref().and_then(|r| begin(r, &args));
    let mut refused = RefusalNotice::default();

    // One pipe for both when our stdout and stderr are one destination,
    // so that the command's lines keep their order.
    let merged = if crate::run_output::one_destination() {
        crate::run_output::merged_pipe().ok()
    } else {
        None
    };
    let (merged, child_out, child_err) = match merged {
        Some((reader, out, err)) => (Some(reader), out, err),
        None => (None, Stdio::piped(), Stdio::piped()),
    };
    let spawned = command_with_clean_signals(&args.command)
        .stdin(Stdio::inherit())
        .stdout(child_out)
        .stderr(child_err)
        .spawn();
    // The trampoline always starts: a command it cannot exec is found
    // here, so that the operation says why rather than "exit code 127".
    let spawned = match crate::run_output::cannot_run(&args.command[0]) {
        Some(e) => Err(e),
        None => spawned,
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let why = crate::run_output::describe(&e);
            eprintln!("progress-hub: cannot run {:?}: {why}", args.command[0]);
            if let Some(op) = &op {
                let _ = op.fail(format!("cannot run {:?}: {why}", args.command[0]));
            }
            finish_reporting(
                reporter.as_ref(),
                op.as_ref(),
                &mut signals,
                &mut refused,
                args.flush_timeout,
            )
            .await;
            return Ok(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    if let Some(pid) = pid {
        until_execd(pid).await;
    }
    let (stdout, stderr): (Box<dyn AsyncRead + Unpin + Send>, _) = match merged {
        Some(reader) => (Box::new(reader), None),
        None => (
            Box::new(child.stdout.take().context("child stdout")?),
            Some(child.stderr.take().context("child stderr")?),
        ),
    };
    let out = pump(stdout, tokio::io::stdout(), &parser, op.as_ref());
    let err = async {
        if let Some(stderr) = stderr {
            pump(stderr, tokio::io::stderr(), &parser, op.as_ref()).await;
        }
    };

    let mut canceled = false;
    let mut stopped_by: Option<Caught> = None;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let output = async { tokio::join!(out, err) };
    tokio::pin!(output);
    let mut output_done = false;
    let mut exited: Option<ExitStatus> = None;
    // Armed (to OUTPUT_GRACE) once the command ended: the end of its
    // output is not waited for longer.
    let grace = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(grace);
    let mut grace_armed = false;
    let status = loop {
        if let (Some(status), true) = (exited, output_done) {
            break status;
        }
        if exited.is_some() && !grace_armed {
            grace_armed = true;
            grace
                .as_mut()
                .reset(tokio::time::Instant::now() + OUTPUT_GRACE);
        }
        tokio::select! {
            biased;
            caught = signals.recv() => {
                stopped_by.get_or_insert(caught);
                if caught.must_pass_on() {
                    if let (Some(pid), None) = (pid, exited) {
                        signal_tree(pid, caught.signal);
                        eprintln!("progress-hub: {}; passed on to the command", caught.describe());
                    } else {
                        eprintln!("progress-hub: {}; the command had already ended", caught.describe());
                    }
                } else {
                    eprintln!("progress-hub: {}; the command got it too", caught.describe());
                }
            }
            status = child.wait(), if exited.is_none() => {
                exited = Some(status.context("waiting for the command")?);
            }
            _ = &mut output, if !output_done => output_done = true,
            () = &mut grace, if grace_armed && !output_done => {
                eprintln!(
                    "progress-hub: the command ended but its output is still held open \
                     (by a process it left behind); not waiting for it any longer"
                );
                output_done = true;
            }
            // Once the command has ended its exit code is the outcome: a
            // cancel that comes while a leftover still holds the output
            // open changes nothing.
            () = cancel_requested(op.as_ref()), if !canceled && exited.is_none() => {
                canceled = true;
                eprintln!("progress-hub: cancel requested{}; sending SIGTERM to the command and every process it started",
                    op.as_ref().and_then(|o| o.cancel_requested_by()).map(|b| format!(" by {b}")).unwrap_or_default());
                if let Some(pid) = pid {
                    signal_tree(pid, Signal::SIGTERM);
                }
            }
            _ = check.tick(), if reporter.is_some() && !refused.told => {
                if let Some(r) = &reporter {
                    refused.check(r, op.as_ref());
                }
            }
        }
    };
    // A signal that came with the child's end (the terminal's Ctrl-C it
    // died of) was the reason for it, not a request to skip the flush.
    while let Some(caught) = signals.try_recv() {
        stopped_by.get_or_insert(caught);
    }

    let code = exit_code(status);
    if let Some(op) = &op {
        let reported = if canceled {
            op.canceled(Some("canceled from the hub"))
        } else if status.success() {
            op.complete()
        } else if let Some(caught) = stopped_by {
            let why = format!("stopped by {}: {}", caught.describe(), how_it_ended(status));
            op.canceled(Some(&why))
        } else {
            op.fail(how_it_ended(status))
        };
        if let Err(e) = reported {
            if op.rejection().is_none() {
                eprintln!("progress-hub: cannot report the outcome: {e}");
            }
        }
    }
    finish_reporting(
        reporter.as_ref(),
        op.as_ref(),
        &mut signals,
        &mut refused,
        args.flush_timeout,
    )
    .await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_checked_with_the_flags() {
        assert_eq!(parse_pattern(r"(\d+)%").as_deref(), Ok(r"(\d+)%"));
        assert!(parse_pattern("(unclosed").is_err());
    }
}
