//! `progress-hub watch [--namespace N] [--filter GLOB] [--until-done ID]`:
//! a line-mode live view for terminals and logs.
//!
//! One line per change (`HH:MM:SS.mmmZ KIND ID STATE PROGRESS% [step]
//! message`, the hub's time in UTC), the snapshot as `=` lines, connection
//! changes as `--` lines, all on stdout in order. Producer text is escaped
//! ([`text`]): a message cannot forge a line or send the terminal a control
//! sequence. With `--json` stdout carries only JSON, one message per line
//! (each event re-encoded from what the client decoded, each snapshot as an
//! `operation_list` message) and the `--` status lines go to stderr. It
//! resumes exactly after reconnects (no line twice).
//! With `--until-done ID` it exits when that operation finishes: 0 if it
//! completed, 1 if it failed, 3 if it was canceled (also when a slow reader
//! made it skip the final event: the subscription's map is exact). It also
//! exits 1 when the hub refuses the subscription or the credentials; a
//! refusal for now (`RATE_LIMITED`, ...) is a `--` line on stderr and
//! retried. A stdout whose reader went away (`watch | head`) ends it with
//! 0, noticed without writing ([`reader`]). A hub silent for more than one
//! heartbeat interval gets a `-- no word from the hub ...` line
//! ([`quiet`]), long before the connection is declared dead. A reader too
//! slow for the stream loses superseded progress updates
//! (`-- N updates skipped`), never lifecycle events.

mod quiet;
mod reader;
mod text;

use anyhow::Context;
use hub_client::machine::Reason;
use std::io::{self, Write};

use hub_client::{
    ConnState, Filter, OpStatus, OperationState, StateChange, Subscriber, Subscription, Update,
};

use crate::cmd_report::HubArgs;

/// Follow operations live, one line per change.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 when stdout's reader went away (`watch | head`);
with --until-done 0/1/3 as the operation completed/failed/was canceled;
1 when the hub refuses the subscription or the credentials for good;
2 for a usage error. Interrupted (Ctrl-C, SIGINT, SIGTERM) it dies of the
signal, like `tail -f` (a shell reports 130 for SIGINT): an interrupted
--until-done did not see its operation finish.
A reader too slow for the stream loses superseded progress updates
(`-- N updates skipped`), never lifecycle events.
Times in change lines are the hub's, in UTC (`HH:MM:SS.mmmZ`).
A hub silent for more than one heartbeat interval (plus slack) gets one
`-- no word from the hub for N s; data may be stale` line, and
`-- the hub is heard again` once it talks again.")]
pub struct WatchArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// Only operations whose id matches this glob (`*`, `?`; repeatable;
    /// 1 to 256 characters, at most 64 of them).
    #[arg(long = "filter", value_name = "GLOB", value_parser = glob)]
    filters: Vec<String>,
    /// Only operations of this kind (repeatable; at most 64).
    #[arg(long = "kind", value_parser = kind)]
    kinds: Vec<String>,
    /// Exit when this operation finishes (0 completed, 1 failed, 3 canceled).
    /// An id not in the namespace yet is waited for (said once on stderr).
    #[arg(long, value_name = "ID", value_parser = operation_id)]
    until_done: Option<String>,
    /// Print JSON only on stdout, one message per line: each event with
    /// the fields and values the hub sent, re-encoded as compact JSON (keys
    /// sorted; number spelling and string escapes may differ from the
    /// hub's own text), and each snapshot (first subscription, or a resume the
    /// hub could not replay) as one `operation_list` message {type,
    /// namespace, epoch, offset, operations} that replaces every state seen
    /// so far. Connection status lines (`-- ...`) go to stderr.
    #[arg(long)]
    json: bool,
}

/// How often the connection's health is looked at for a silent hub.
const HEALTH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Exit code for an awaited operation that was canceled.
const EXIT_CANCELED: i32 = 3;

/// A valid operation id (an invalid one could never finish: a usage error).
fn operation_id(s: &str) -> Result<String, String> {
    hub_proto::validate_operation_id(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.message)
}

/// The hub's timestamp (ms since the epoch) as UTC time of day, marked `Z`.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// One human line for an operation state. Producer text (step, name,
/// message, error, even the id) is [escaped](text::escape): it cannot
/// break the line or reach the terminal as a control sequence.
pub fn describe(s: &OperationState) -> String {
    let mut line = format!("{} {}", text::escape(&s.operation_id), s.state.as_str());
    if let Some(p) = s.progress {
        line.push_str(&format!(" {p:.1}%"));
    }
    if let (Some(c), Some(t)) = (s.current, s.total) {
        line.push_str(&format!(" ({c}/{t})"));
    }
    if let Some(eta) = s.eta_seconds.filter(|_| !s.state.is_terminal()) {
        line.push_str(&format!(" eta {eta:.0}s"));
    }
    if let Some(step) = &s.step {
        line.push_str(&format!(" [{}]", text::escape(step)));
    }
    if let Some(name) = &s.name {
        line.push_str(&format!(" \"{}\"", text::escape(name)));
    }
    if let Some(m) = &s.message {
        line.push_str(&format!(" - {}", text::escape(m)));
    }
    if let Some(e) = &s.error {
        line.push_str(&format!(" error: {}", text::escape(e)));
    }
    if s.cancel_requested == Some(true) && !s.state.is_terminal() {
        line.push_str(" (cancel requested)");
    }
    line
}

/// `last_error`: the client's last connection error, which says more
/// than the reason for a refused TLS certificate.
fn describe_connection(c: &StateChange, last_error: Option<&str>) -> String {
    let why = why(c, last_error);
    match (c.state, c.next_delay_ms) {
        (ConnState::Reconnecting, Some(d)) => format!(
            "-- reconnecting in {:.1}s (attempt {}, {why})",
            d as f64 / 1000.0,
            c.attempt
        ),
        (ConnState::Connected, _) => "-- connected".into(),
        (ConnState::Connecting, _) if c.attempt == 0 => "-- connecting".into(),
        (ConnState::Connecting, _) => format!("-- connecting (retry {})", c.attempt),
        (state, _) => format!("-- {state} ({why})"),
    }
}

/// Why the connection changed, in words.
fn why(c: &StateChange, last_error: Option<&str>) -> String {
    match c.reason {
        Reason::ConnectFailed(None)
            if last_error.is_some_and(|e| e.contains("TLS certificate")) =>
        {
            last_error.unwrap_or_default().to_owned()
        }
        Reason::Closed(Some(code)) => format!("closed {code}"),
        Reason::Closed(None) => "connection lost".into(),
        Reason::ConnectFailed(Some(status)) => format!("refused: HTTP {status}"),
        Reason::ConnectFailed(None) => "hub unreachable".into(),
        Reason::ConnectTimeout => "connect timeout".into(),
        Reason::HeartbeatTimeout => "no heartbeat".into(),
        Reason::AuthRejected => "credentials refused".into(),
        Reason::PolicyViolation => "closed for policy violation".into(),
        Reason::RetriesExhausted => "gave up".into(),
        Reason::UpgradeRefused(404) => {
            "no progress-hub WebSocket at this URL (HTTP 404): is the path /ws?".into()
        }
        Reason::UpgradeRefused(status) => format!("refused for good: HTTP {status}"),
        r => format!("{r:?}").to_lowercase(),
    }
}

/// The snapshot as the `operation_list` message it came from (the states
/// as the client decoded them).
fn operation_list(
    namespace: &str,
    epoch: &str,
    offset: u64,
    operations: &[&OperationState],
) -> serde_json::Value {
    serde_json::json!({
        "type": "operation_list",
        "namespace": namespace,
        "epoch": epoch,
        "offset": offset,
        "operations": operations,
    })
}

/// Where lines go: everything on stdout, or (`--json`) JSON on stdout and
/// status lines on stderr. A write error (a reader that went away) ends
/// the watch.
struct Out {
    json: bool,
}

impl Out {
    /// A data line on stdout.
    fn line(&self, line: impl std::fmt::Display) -> io::Result<()> {
        writeln!(io::stdout().lock(), "{line}")
    }

    /// A status line (`-- ...`).
    fn status(&self, line: &str) -> io::Result<()> {
        if self.json {
            eprintln!("{line}");
            Ok(())
        } else {
            self.line(line)
        }
    }
}

fn exit_code(status: OpStatus) -> Option<i32> {
    match status {
        OpStatus::Completed => Some(0),
        OpStatus::Failed => Some(1),
        OpStatus::Canceled => Some(EXIT_CANCELED),
        _ => None,
    }
}

/// The stderr line for an awaited operation the first snapshot lacks.
fn not_there_yet(id: &str, namespace: &str, filtered: bool) -> String {
    let outside = if filtered {
        " (or it is outside --filter/--kind)"
    } else {
        ""
    };
    format!(
        "-- operation {} is not in namespace {} yet; waiting for it to start{outside}",
        text::escape(id),
        text::escape(namespace)
    )
}

/// The stderr line for a subscription the hub refused for now.
fn refused_for_now(code: &str, reason: Option<&str>, retry_after_ms: u64) -> String {
    let reason = reason
        .map(|r| format!(" ({})", text::escape(r)))
        .unwrap_or_default();
    let code = text::escape(code);
    format!("-- subscription refused for now: {code}{reason}, retrying in {retry_after_ms} ms")
}

/// Watch until interrupted (or until the awaited operation finishes). A
/// closed stdout (`watch | head`) ends it quietly with 0. No signal is
/// handled: SIGINT or SIGTERM end the process by the signal, so a script
/// running `watch --until-done` sees an interruption, not success.
pub async fn run(args: WatchArgs) -> anyhow::Result<i32> {
    if let Some(code) = args.hub.namespace_usage_error() {
        return Ok(code);
    }
    let most = hub_proto::FilterSpec::MAX_ENTRIES;
    if args.filters.len() > most || args.kinds.len() > most {
        eprintln!("progress-hub: at most {most} --filter and {most} --kind");
        return Ok(2);
    }
    let subscriber = Subscriber::connect(args.hub.config()).context("invalid hub settings")?;
    match follow(&args, &subscriber).await {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        other => Ok(other.context("writing to stdout")?),
    }
}

/// The next update; with `--until-done`, `Some(Err(code))` once the
/// awaited operation is terminal in the subscription's exact map and
/// every update delivered so far was read (its event may have been
/// skipped by a slow reader).
async fn next(sub: &mut Subscription, until_done: Option<&str>) -> Option<Result<Update, i32>> {
    if let Some(id) = until_done {
        // The map first: the update that made it terminal was delivered
        // (or skipped) before, so draining what is ready prints it.
        let done = sub.get(id).and_then(|s| exit_code(s.state));
        if let Some(u) = sub.try_recv() {
            return Some(Ok(u));
        }
        if let Some(code) = done {
            return Some(Err(code));
        }
    }
    sub.recv().await.map(Ok)
}

async fn follow(args: &WatchArgs, subscriber: &Subscriber) -> io::Result<i32> {
    let filter = Filter {
        operations: args.filters.clone(),
        kinds: args.kinds.clone(),
    };
    let mut sub = subscriber.subscribe(&args.hub.namespace, filter);
    let out = Out { json: args.json };
    // A reader that left is noticed without writing (`--json` on a quiet
    // namespace writes nothing to stdout for hours).
    let reader_gone = reader::stdout_closed();
    tokio::pin!(reader_gone);
    // A hub that stopped talking (frozen, a dead link) is only declared
    // dead after about two heartbeat intervals; say so after one.
    let mut silence = quiet::Quiet::default();
    // Whether the awaited operation's absence from a snapshot was said.
    let mut warned_absent = false;
    let started = std::time::Instant::now();
    let mut health = tokio::time::interval(HEALTH_POLL);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            biased;
            () = &mut reader_gone => return Ok(0),
            _ = health.tick() => {
                let st = subscriber.client().connection_stats();
                let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let connected = st.state == ConnState::Connected;
                if let Some(change) = silence.observe(now, connected, st.healthy, st.frames_received) {
                    out.status(&change.line())?;
                }
                continue;
            }
            n = next(&mut sub, args.until_done.as_deref()) => n,
        };
        let Some(next) = next else { break };
        let update = match next {
            Ok(u) => u,
            Err(code) => return Ok(code),
        };
        let mut finished: Option<&OperationState> = None;
        match &update {
            Update::Connection(c) => {
                let last_error = subscriber.client().connection_stats().last_error;
                out.status(&describe_connection(c, last_error.as_deref()))?;
                if c.state == ConnState::Failed {
                    let why = why(c, last_error.as_deref());
                    eprintln!("progress-hub: giving up on {}: {why}", args.hub.url);
                    return Ok(1);
                }
            }
            Update::Subscribed {
                epoch,
                offset,
                recovered,
            } => {
                if *recovered {
                    out.status(&format!(
                        "-- resumed (epoch {}, hub at offset {offset})",
                        text::escape(epoch)
                    ))?;
                }
            }
            Update::Snapshot {
                epoch,
                operations,
                offset,
            } => {
                out.status(&format!(
                    "-- snapshot at offset {offset}: {} operations",
                    operations.len()
                ))?;
                let mut ops: Vec<&OperationState> = operations.iter().collect();
                ops.sort_by_key(|s| (s.started_at, s.operation_id.clone()));
                if args.json {
                    let list = operation_list(&args.hub.namespace, epoch, *offset, &ops);
                    out.line(text::json_safe(list.to_string()))?;
                }
                let mut awaited_seen = false;
                for s in ops {
                    if !args.json {
                        out.line(format_args!("= {}", describe(s)))?;
                    }
                    if args.until_done.as_deref() == Some(s.operation_id.as_str()) {
                        finished = Some(s);
                        awaited_seen = true;
                    }
                }
                if let (Some(id), false, false) =
                    (args.until_done.as_deref(), awaited_seen, warned_absent)
                {
                    warned_absent = true;
                    let filtered = !args.filters.is_empty() || !args.kinds.is_empty();
                    eprintln!("{}", not_there_yet(id, &args.hub.namespace, filtered));
                }
            }
            Update::Event(e) => {
                if args.json {
                    out.line(text::json_safe(e.raw.to_string()))?;
                } else {
                    out.line(format_args!(
                        "{} {} {}",
                        clock(e.timestamp),
                        text::escape(&e.kind),
                        describe(&e.state)
                    ))?;
                }
                if args.until_done.as_deref() == Some(e.operation_id()) {
                    finished = Some(&e.state);
                }
            }
            Update::Lagged(n) => {
                out.status(&format!("-- {n} updates skipped (output too slow)"))?;
            }
            // Hub health is not part of an operation stream; its
            // heartbeat interval sets how long a silence is waited out.
            Update::SystemStatus { data, .. } => {
                let announced = data.get("heartbeat_interval_ms");
                if let Some(ms) = announced.and_then(serde_json::Value::as_u64) {
                    silence.hub_interval(ms);
                }
            }
            Update::CancelResult { .. } => {}
            Update::Refused { code, message } => {
                eprintln!(
                    "progress-hub: subscription refused: {}: {}",
                    text::escape(code),
                    text::escape(message)
                );
                return Ok(1);
            }
            Update::RefusedForNow {
                code,
                reason,
                retry_after_ms,
                ..
            } => eprintln!(
                "{}",
                refused_for_now(code, reason.as_deref(), *retry_after_ms)
            ),
            Update::MessageTooLarge { size, limit } => eprintln!(
                "progress-hub: the hub sent a message of {size} bytes, over this client's \
                 limit of {limit} bytes; dropped the connection (it will be retried)"
            ),
        }
        if let Some(code) = finished.and_then(|s| exit_code(s.state)) {
            return Ok(code);
        }
    }
    Ok(0)
}

/// A `--filter` glob the hub takes.
fn glob(s: &str) -> Result<String, String> {
    one_entry(s, "operations")
}

/// A `--kind` the hub takes.
fn kind(s: &str) -> Result<String, String> {
    one_entry(s, "kinds")
}

/// `s` as the one entry of a filter list, checked by the protocol's rules.
fn one_entry(s: &str, list: &str) -> Result<String, String> {
    let mut spec = hub_proto::FilterSpec::default();
    match list {
        "operations" => spec.operations.push(s.to_owned()),
        _ => spec.kinds.push(s.to_owned()),
    }
    spec.validate()
        .map(|()| s.to_owned())
        .map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let s: OperationState = serde_json::from_value(serde_json::json!({
            "operation_id": "render.1", "name": "Render", "state": "running",
            "progress": 42.0, "current": 42.0, "total": 100.0, "step": "encode",
            "message": "frame 42", "eta_seconds": 12.4, "cancel_requested": true
        }))
        .unwrap();
        assert_eq!(
            describe(&s),
            "render.1 running 42.0% (42/100) eta 12s [encode] \"Render\" - frame 42 (cancel requested)"
        );
        assert_eq!(clock(3_723_004), "01:02:03.004Z");
        assert_eq!(
            operation_id("deploy-2.a_b:c").as_deref(),
            Ok("deploy-2.a_b:c")
        );
        assert!(operation_id("bad id!").is_err());
        assert!(operation_id("").is_err());
        assert_eq!(
            not_there_yet("ghost", "default", false),
            "-- operation ghost is not in namespace default yet; waiting for it to start"
        );
        assert!(not_there_yet("g", "n", true).ends_with(" (or it is outside --filter/--kind)"));
        assert_eq!(
            refused_for_now("RATE_LIMITED", Some("snapshots"), 250),
            "-- subscription refused for now: RATE_LIMITED (snapshots), retrying in 250 ms"
        );
        assert_eq!(exit_code(OpStatus::Failed), Some(1));
        assert_eq!(exit_code(OpStatus::Running), None);
        let c = StateChange {
            state: ConnState::Reconnecting,
            reason: Reason::Closed(Some(1012)),
            attempt: 2,
            next_delay_ms: Some(1500),
        };
        assert_eq!(
            describe_connection(&c, None),
            "-- reconnecting in 1.5s (attempt 2, closed 1012)"
        );
        let c = StateChange {
            reason: Reason::ConnectFailed(None),
            ..c
        };
        assert_eq!(
            describe_connection(&c, Some("IO error: Connection refused")),
            "-- reconnecting in 1.5s (attempt 2, hub unreachable)"
        );
        assert_eq!(
            describe_connection(&c, Some("the hub's TLS certificate has expired")),
            "-- reconnecting in 1.5s (attempt 2, the hub's TLS certificate has expired)"
        );
    }

    #[test]
    fn producer_text_stays_on_one_line() {
        let s: OperationState = serde_json::from_value(serde_json::json!({
            "operation_id": "j1", "name": "N\u{202e}x", "state": "failed",
            "step": "a\tb", "message": "m\n12:00:00.000 operation_completed x\u{1b}[31m",
            "error": "e\r\u{9b}2J"
        }))
        .unwrap();
        let line = describe(&s);
        assert_eq!(
            line,
            "j1 failed [a\\tb] \"N\\u{202e}x\" - m\\n12:00:00.000 operation_completed \
             x\\u{1b}[31m error: e\\r\\u{9b}2J"
        );
        assert!(!line.chars().any(text::is_unsafe));
    }

    #[test]
    fn snapshot_as_operation_list() {
        let s: OperationState = serde_json::from_value(serde_json::json!({
            "operation_id": "j1", "state": "completed", "progress": 100.0
        }))
        .unwrap();
        let msg = operation_list("default", "E1", 7, &[&s]);
        assert_eq!(msg["type"], "operation_list");
        assert_eq!(msg["namespace"], "default");
        assert_eq!(msg["epoch"], "E1");
        assert_eq!(msg["offset"], 7);
        assert_eq!(msg["operations"][0]["operation_id"], "j1");
        assert_eq!(msg["operations"][0]["state"], "completed");
        assert!(!msg.to_string().contains('\n'), "one line");
    }
}
