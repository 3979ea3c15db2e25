//! `progress-hub watch` through the real binary: `--json` output is JSON
//! only (status lines on stderr), and a frozen hub is noticed after the
//! hub's real heartbeat interval, not the client's 30 s default.

mod common;
use common::*;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running `progress-hub watch` whose stdout and stderr lines arrive on
/// channels (and are kept, for failure messages).
struct Watch {
    child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: mpsc::UnboundedReceiver<String>,
    seen_out: Vec<String>,
    seen_err: Vec<String>,
}

fn lines_of(
    r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

impl Watch {
    fn spawn(args: &[&str]) -> Watch {
        let mut child = spawn_cli("watch", args);
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Watch {
            child,
            stdout,
            stderr,
            seen_out: Vec::new(),
            seen_err: Vec::new(),
        }
    }

    /// The next stdout line matching `pred`, within `deadline`.
    async fn stdout_until(&mut self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) {
        let end = Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(end, self.stdout.recv()).await {
                Ok(Some(l)) => {
                    let hit = pred(&l);
                    self.seen_out.push(l);
                    if hit {
                        return;
                    }
                }
                _ => {
                    let err = self.drain_err();
                    panic!(
                        "no stdout line {what} within {deadline:?}; stdout {:?}, stderr {err:?}",
                        self.seen_out
                    )
                }
            }
        }
    }

    /// The next stderr line matching `pred`, within `deadline`.
    async fn stderr_until(
        &mut self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let end = Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(end, self.stderr.recv()).await {
                Ok(Some(l)) => {
                    self.seen_err.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                _ => panic!(
                    "no stderr line {what} within {deadline:?}; stderr {:?}",
                    self.seen_err
                ),
            }
        }
    }

    fn drain_err(&mut self) -> Vec<String> {
        while let Ok(l) = self.stderr.try_recv() {
            self.seen_err.push(l);
        }
        self.seen_err.clone()
    }

    /// Waits for the exit code, then collects the remaining output.
    async fn finish(&mut self, deadline: Duration) -> Option<i32> {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .expect("watch exited")
            .expect("wait");
        // The pipes end with the process: read what is left.
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(5), self.stdout.recv()).await
        {
            self.seen_out.push(l);
        }
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(5), self.stderr.recv()).await
        {
            self.seen_err.push(l);
        }
        status.code()
    }
}

#[tokio::test]
async fn json_mode_prints_only_json_lines() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    let ack = publish(&mut p, started("j1", "default"), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    publish(&mut p, progress("j1", "default", 2, 25.0), 2).await;
    publish(&mut p, started("j2", "default"), 3).await;

    let mut w = Watch::spawn(&["--json", "--url", &url, "--until-done", "j1"]);
    // The first subscription is answered with a snapshot: one
    // `operation_list` line that already holds j1 and j2.
    w.stdout_until("with the snapshot", DEADLINE, |l| {
        l.contains("\"operation_list\"")
    })
    .await;
    publish(&mut p, progress("j1", "default", 3, 60.0), 4).await;
    publish(&mut p, progress("j2", "default", 2, 10.0), 5).await;
    let done = json!({"type": "operation_completed", "namespace": "default", "operation_id": "j1", "seq": 4});
    assert_eq!(publish(&mut p, done, 6).await["type"], "ack");
    let code = w.finish(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "stderr: {:?}", w.seen_err);

    let msgs: Vec<Value> = w
        .seen_out
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}"))
        })
        .collect();
    assert!(msgs.iter().all(Value::is_object), "{msgs:?}");
    let types: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "operation_list",
            "progress_update",
            "progress_update",
            "operation_completed"
        ],
        "stdout: {:?}",
        w.seen_out
    );
    let list = &msgs[0];
    assert_eq!(list["namespace"], "default");
    assert!(list["epoch"].is_string(), "{list}");
    let snap_offset = list["offset"].as_u64().expect("offset");
    let mut ids: Vec<&str> = list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["j1", "j2"]);
    let j1 = list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation_id"] == "j1")
        .unwrap();
    assert_eq!(j1["progress"], 25.0);
    // Events exactly as the hub sent them, in offset order after the
    // snapshot.
    let mut last = snap_offset;
    for m in &msgs[1..] {
        assert_eq!(m["namespace"], "default");
        let off = m["offset"].as_u64().expect("offset");
        assert!(off > last, "{m}");
        last = off;
        assert!(m["state"].is_object(), "{m}");
    }
    assert_eq!(msgs[1]["operation_id"], "j1");
    assert_eq!(msgs[1]["state"]["progress"], 60.0);
    assert_eq!(msgs[2]["operation_id"], "j2");
    assert_eq!(msgs[3]["state"]["state"], "completed");
    // The status lines went to stderr.
    assert!(
        w.seen_err.iter().any(|l| l == "-- connecting"),
        "{:?}",
        w.seen_err
    );
    assert!(
        w.seen_err.iter().any(|l| l == "-- connected"),
        "{:?}",
        w.seen_err
    );
    assert!(
        w.seen_err
            .iter()
            .any(|l| l.starts_with("-- snapshot at offset")),
        "{:?}",
        w.seen_err
    );
}

#[tokio::test]
async fn json_mode_snapshot_of_a_finished_operation_exits_at_once() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    publish(&mut p, started("f1", "default"), 1).await;
    let fail = json!({"type": "operation_failed", "namespace": "default", "operation_id": "f1", "seq": 2, "error": "disk full"});
    assert_eq!(publish(&mut p, fail, 2).await["type"], "ack");

    let mut w = Watch::spawn(&["--json", "--url", &url, "--until-done", "f1"]);
    let code = w.finish(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1), "failed operation; stderr {:?}", w.seen_err);
    assert_eq!(w.seen_out.len(), 1, "{:?}", w.seen_out);
    let list: Value = serde_json::from_str(&w.seen_out[0]).expect("JSON");
    assert_eq!(list["type"], "operation_list");
    assert_eq!(list["operations"][0]["operation_id"], "f1");
    assert_eq!(list["operations"][0]["state"], "failed");
    assert_eq!(list["operations"][0]["error"], "disk full");
}

/// Resumes a stopped hub when dropped, so a failing test never leaves a
/// frozen process behind (the hub itself is killed on drop).
struct Continue<'a>(&'a Hub);

impl Drop for Continue<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0.pid(), Signal::SIGCONT);
    }
}

#[tokio::test]
async fn frozen_hub_is_noticed_after_its_own_heartbeat_interval() {
    let h = hub().args(["--heartbeat-interval", "300ms"]).start().await;
    let url = h.ws_url();
    let mut w = Watch::spawn(&["--json", "--url", &url]);
    w.stderr_until("-- connected", DEADLINE, |l| l == "-- connected")
        .await;
    // The hub beats on one timer for every connection: once a connection
    // opened after watch's has seen three heartbeats, watch has seen at
    // least two and learned the 300 ms interval.
    let mut probe = Ws::connect(&url).await;
    for _ in 0..3 {
        probe.next_of("heartbeat", DEADLINE).await;
    }
    drop(probe);

    let frozen = Continue(&h);
    nix::sys::signal::kill(h.pid(), Signal::SIGSTOP).expect("SIGSTOP");
    let stopped_at = Instant::now();
    // 2 x 300 ms + 500 ms of slack; far from the 60 s of the 30 s default.
    let line = w
        .stderr_until(
            "reporting the dead connection",
            Duration::from_secs(5),
            |l| l.contains("no heartbeat"),
        )
        .await;
    let took = stopped_at.elapsed();
    assert!(line.starts_with("-- reconnecting"), "{line}");
    assert!(
        took < Duration::from_secs(5),
        "noticed after {took:?}: {line}"
    );
    assert!(
        took >= Duration::from_millis(500),
        "dead before two intervals could pass ({took:?})"
    );
    drop(frozen);
    // Thawed, the hub answers the pending attempt (or the next one).
    w.stderr_until("-- connected again", Duration::from_secs(30), |l| {
        l == "-- connected"
    })
    .await;
    let out: Vec<String> = std::mem::take(&mut w.seen_out);
    assert!(out.iter().all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

/// Characters line mode must never print raw: C0, DEL, C1, the line and
/// paragraph separators, bidi embeddings/overrides/isolates.
fn unsafe_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

const FORGED: &str =
    "line1\n12:00:00.000 operation_completed deploy-prod completed 100.0% \"Deploy\"\u{1b}[31m";

/// Publishes `inj`'s start (name with a bidi override), a progress update
/// whose message forges a line, and a failure whose error spans lines and
/// holds a C1 CSI.
async fn publish_injection(p: &mut Ws) {
    let mut start = started("inj", "default");
    start["name"] = json!("Deploy \u{202e}gnp.exe");
    assert_eq!(publish(p, start, 1).await["type"], "ack");
    let mut upd = progress("inj", "default", 2, 10.0);
    upd["message"] = json!(FORGED);
    upd["step"] = json!("copy\tfiles\r");
    assert_eq!(publish(p, upd, 2).await["type"], "ack");
    let fail = json!({"type": "operation_failed", "namespace": "default", "operation_id": "inj",
        "seq": 3, "error": "err\nsecond line\u{9b}2J\u{2028}x"});
    assert_eq!(publish(p, fail, 3).await["type"], "ack");
}

#[tokio::test]
async fn line_mode_escapes_producer_text_one_line_per_change() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    let mut w = Watch::spawn(&["--url", &url, "--until-done", "inj"]);
    w.stdout_until("with the snapshot", DEADLINE, |l| {
        l.starts_with("-- snapshot")
    })
    .await;
    publish_injection(&mut p).await;
    let code = w.finish(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1), "failed; stdout {:?}", w.seen_out);
    let out = &w.seen_out;
    for l in out {
        assert!(!l.chars().any(unsafe_char), "raw control in {l:?}");
    }
    // One line per change: started, progress, failed, and nothing forged.
    let events: Vec<&String> = out.iter().filter(|l| l.contains(" inj ")).collect();
    assert_eq!(events.len(), 3, "{out:#?}");
    assert!(
        !out.iter()
            .any(|l| l.starts_with("12:00:00.000") || l.starts_with("second line")),
        "{out:#?}"
    );
    let all = out.join("\n");
    for shown in [
        "\\n12:00:00.000 operation_completed deploy-prod",
        "\\u{1b}[31m",
        "[copy\\tfiles\\r]",
        "\"Deploy \\u{202e}gnp.exe\"",
        "error: err\\nsecond line\\u{9b}2J\\u{2028}x",
    ] {
        assert!(all.contains(shown), "{shown:?} not in {out:#?}");
    }
}

#[tokio::test]
async fn json_mode_writes_no_raw_terminal_controls() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    let mut w = Watch::spawn(&["--json", "--url", &url, "--until-done", "inj"]);
    w.stderr_until("-- snapshot", DEADLINE, |l| l.starts_with("-- snapshot"))
        .await;
    publish_injection(&mut p).await;
    assert_eq!(w.finish(Duration::from_secs(30)).await, Some(1));
    let out = &w.seen_out;
    assert_eq!(out.len(), 4, "{out:#?}");
    for l in out {
        assert!(!l.chars().any(unsafe_char), "raw control in {l:?}");
    }
    // The same values: JSON escapes mean the same characters.
    let msgs: Vec<Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(msgs[1]["state"]["name"], "Deploy \u{202e}gnp.exe");
    assert_eq!(msgs[2]["state"]["message"], FORGED);
    assert_eq!(msgs[3]["error"], "err\nsecond line\u{9b}2J\u{2028}x");
}

#[tokio::test]
async fn json_mode_on_a_quiet_namespace_ends_with_0_when_its_reader_leaves() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut child = spawn_cli("watch", &["--json", "--url", &url, "--namespace", "quiet"]);
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, out.next_line())
        .await
        .expect("a first line")
        .expect("read")
        .expect("a line");
    assert!(first.contains("\"operation_list\""), "{first}");
    // `| head -1`: the reader leaves; nothing more is written to stdout
    // (the namespace is quiet and status lines go to stderr).
    drop(out);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("watch ended after its reader left")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn a_silent_hub_is_reported_after_one_heartbeat_and_again_when_heard() {
    // 4 s: hub-client calls a silence unhealthy after the announced 4 s,
    // watch waits out 1 s of slack, the connection is dead only after 8 s.
    let h = hub().args(["--heartbeat-interval", "4s"]).start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    let mut w = Watch::spawn(&["--url", &url]);
    w.stdout_until("-- connected", DEADLINE, |l| l == "-- connected")
        .await;
    // Once a connection opened after watch's has seen three heartbeats,
    // watch has seen two and learned the 4 s interval.
    let mut probe = Ws::connect(&url).await;
    for _ in 0..3 {
        probe.next_of("heartbeat", Duration::from_secs(12)).await;
    }
    drop(probe);

    let frozen = Continue(&h);
    nix::sys::signal::kill(h.pid(), Signal::SIGSTOP).expect("SIGSTOP");
    let stopped_at = Instant::now();
    w.stdout_until("saying the hub is quiet", Duration::from_secs(8), |l| {
        l.starts_with("-- no word from the hub for ")
    })
    .await;
    let took = stopped_at.elapsed();
    drop(frozen);
    let quiet = w.seen_out.last().unwrap().clone();
    assert!(quiet.ends_with("; data may be stale"), "{quiet}");
    // The silence it names is at least the 4 s interval (hub-client
    // calls a silence past the announced interval unhealthy; watch then
    // waits out the interval's slack).
    let secs: f64 = quiet
        .trim_start_matches("-- no word from the hub for ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("seconds in {quiet:?}"));
    assert!(
        secs >= 4.0,
        "quiet too early: {quiet} ({took:?} after SIGSTOP)"
    );
    // Thawed, the hub talks again before the connection is given up.
    let ack = publish(&mut p, started("after", "default"), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    w.stdout_until("saying the hub is heard again", DEADLINE, |l| {
        l.starts_with("-- the hub is heard again")
    })
    .await;
    // The event and the health poll's line may come in either order.
    if !w.seen_out.iter().any(|l| l.contains(" after ")) {
        w.stdout_until("with the event", DEADLINE, |l| l.contains(" after "))
            .await;
    }
    let out = &w.seen_out;
    let quiet_lines = out.iter().filter(|l| l.starts_with("-- no word")).count();
    assert_eq!(quiet_lines, 1, "once per silence: {out:#?}");
    assert!(
        !out.iter().any(|l| l.starts_with("-- reconnecting")),
        "the connection survived: {out:#?}"
    );
}

/// `watch` interrupted dies of the signal, like `tail -f` (a script's
/// `watch --until-done` was not done), and its help says so.
#[tokio::test]
async fn sigint_ends_watch_by_the_signal_as_its_help_says() {
    use std::os::unix::process::ExitStatusExt;
    let h = hub().start().await;
    let url = h.ws_url();
    let mut w = Watch::spawn(&["--url", &url, "--until-done", "never"]);
    w.stdout_until("-- connected", DEADLINE, |l| l == "-- connected")
        .await;
    let pid = nix::unistd::Pid::from_raw(w.child.id().expect("running") as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).expect("SIGINT");
    let status = tokio::time::timeout(DEADLINE, w.child.wait())
        .await
        .expect("watch ended")
        .expect("wait");
    assert_eq!(status.signal(), Some(Signal::SIGINT as i32), "{status:?}");

    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(["watch", "--help"])
        .output()
        .await
        .expect("watch --help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    assert!(!text.contains("0 when interrupted"), "{text}");
    assert!(text.contains("dies of the signal"), "{text}");
}

#[tokio::test]
async fn an_invalid_until_done_id_is_a_usage_error() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut w = Watch::spawn(&["--url", &url, "--until-done", "bad id!"]);
    let code = w.finish(DEADLINE).await;
    assert_eq!(code, Some(2), "stderr {:?}", w.seen_err);
    let err = w.seen_err.join("\n");
    assert!(err.contains("--until-done"), "{err}");
    assert!(err.contains("operation_id must be"), "{err}");
}

#[tokio::test]
async fn an_awaited_operation_not_started_yet_is_said_once_then_waited_for() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut p = Ws::connect(&url).await;
    publish(&mut p, started("other", "default"), 1).await;
    let mut w = Watch::spawn(&["--url", &url, "--until-done", "ghost"]);
    w.stderr_until("saying ghost is not there yet", DEADLINE, |l| {
        l == "-- operation ghost is not in namespace default yet; waiting for it to start"
    })
    .await;
    assert_eq!(
        publish(&mut p, started("ghost", "default"), 2).await["type"],
        "ack"
    );
    let done = json!({"type": "operation_completed", "namespace": "default", "operation_id": "ghost", "seq": 2});
    assert_eq!(publish(&mut p, done, 3).await["type"], "ack");
    assert_eq!(w.finish(Duration::from_secs(30)).await, Some(0));
    let warned = w
        .seen_err
        .iter()
        .filter(|l| l.contains("not in namespace"))
        .count();
    assert_eq!(warned, 1, "{:?}", w.seen_err);
    // Change lines carry the hub's time in UTC, marked Z.
    let ghost: Vec<&String> = w
        .seen_out
        .iter()
        .filter(|l| l.contains(" ghost "))
        .collect();
    assert_eq!(ghost.len(), 2, "{:?}", w.seen_out);
    for l in ghost {
        let (time, rest) = l.split_once(' ').unwrap();
        let b = time.as_bytes();
        let shape = b.len() == 13
            && [2, 5].iter().all(|&i| b[i] == b':')
            && b[8] == b'.'
            && b[12] == b'Z'
            && b.iter()
                .enumerate()
                .all(|(i, c)| [2, 5, 8, 12].contains(&i) || c.is_ascii_digit());
        assert!(shape, "time {time:?} in {l:?}");
        assert!(rest.starts_with("operation_"), "{l}");
    }
}

/// `--json` re-encodes each event (hub-client hands over the decoded
/// message, not its text): the help must not promise the hub's bytes.
#[tokio::test]
async fn the_json_help_says_events_are_re_encoded() {
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(["watch", "--help"])
        .output()
        .await
        .expect("watch --help");
    let text = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!text.contains("as the hub sent it"), "{text}");
    assert!(text.contains("re-encoded as compact JSON"), "{text}");
}
