//! The client subcommands through the real binary against a real hub:
//! `report`, `run` (output passthrough, exit code, progress parsing) and
//! `watch --until-done`.

mod common;
use common::*;
use std::process::Output;

#[tokio::test]
async fn report_start_progress_complete() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&[
        "report",
        "--url",
        &url,
        "start",
        "--id",
        "sh.1",
        "--total",
        "10",
        "Shell job",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sh.1"));
    let out = cli(&[
        "report",
        "--url",
        &url,
        "progress",
        "sh.1",
        "--current",
        "5",
        "--step",
        "copying",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let op = operation_detail(&h, "sh.1").await;
    assert_eq!(op["operation"]["progress"], 50.0);
    assert_eq!(op["operation"]["step"], "copying");
    let out = cli(&["report", "--url", &url, "complete", "sh.1"]).await;
    assert!(out.status.success());
    assert_eq!(
        operation_detail(&h, "sh.1").await["operation"]["state"],
        "completed"
    );
    // A retry of the same ending (its first ack lost) is fine; another
    // ending is refused with the state it ended in.
    let out = cli(&["report", "--url", &url, "complete", "sh.1"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["report", "--url", &url, "fail", "sh.1", "boom"]).await;
    assert_eq!(out.status.code(), Some(1), "reporting another ending fails");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already ended completed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn run_passes_output_through_and_reports_the_outcome() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "ok.1",
        "--name",
        "counting",
        "--",
        "sh",
        "-c",
        "echo 'step 10%'; echo '3/4 files'; echo done",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "step 10%\n3/4 files\ndone\n",
        "output passes through untouched"
    );
    let op = operation_detail(&h, "ok.1").await;
    assert_eq!(op["operation"]["state"], "completed");
    assert!(op["events"].as_array().unwrap().len() >= 2);

    let out = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "bad.1",
        "--",
        "sh",
        "-c",
        "echo half 50%; exit 3",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's exit code is the tool's"
    );
    let op = operation_detail(&h, "bad.1").await;
    assert_eq!(op["operation"]["state"], "failed");

    let out = cli(&["watch", "--url", &url, "--until-done", "bad.1"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "watch --until-done on a failed operation"
    );
    let out = cli(&["watch", "--url", &url, "--until-done", "ok.1"]).await;
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn run_forwards_a_hub_cancel_as_sigterm() {
    let h = hub().start().await;
    let url = h.ws_url();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "run",
            "--url",
            &url,
            "--id",
            "long.1",
            "--",
            "sh",
            "-c",
            "echo started; trap 'echo got-term; exit 143' TERM; while true; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the operation to run", DEADLINE, || {
        let url = format!("{}/api/v1/namespaces/default/operations/long.1", h.http());
        async move { (get_json(&url).await.0 == 200).then_some(()) }
    })
    .await;
    let (s, _) = post_json(
        &format!(
            "{}/api/v1/namespaces/default/operations/long.1/cancel",
            h.http()
        ),
        &json!({}),
    )
    .await;
    assert_eq!(s, 202);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("got-term"));
    let op = operation_detail(&h, "long.1").await;
    assert_eq!(op["operation"]["state"], "canceled");
}

/// Waiting for a hub that does not answer costs next to no CPU: `report`
/// used to spin a whole core for its `--timeout` (the flush and the
/// connection task woke each other on every turn).
#[tokio::test]
async fn waiting_for_an_unreachable_hub_does_not_spin() {
    // A port with nothing listening: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "report",
            "--url",
            &url,
            "--timeout",
            "4s",
            "start",
            "nobody listens",
        ])
        .env_remove("PROGRESS_HUB_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The scenario is two seconds of waiting; then its CPU time so far.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Clock ticks are USER_HZ, 100 a second on Linux: 40 ticks is 0.4 s
    // (spinning took the whole two seconds).
    assert!(ticks < 40, "{ticks} ticks of CPU in two seconds of waiting");
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(1), "not delivered: exit 1");
}

/// Several `report` processes on one operation at once: each learns the
/// next seq from the hub, and the ones that lose a race for a seq move
/// past it instead of taking the other's duplicate ack for their own.
#[tokio::test]
async fn concurrent_reports_on_one_operation_all_land() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&["report", "--url", &url, "start", "shared", "--id", "shared"]).await;
    assert!(out.status.success(), "{out:?}");
    let runs = (1..=8).map(|i| {
        let url = url.clone();
        async move {
            let pct = (i * 10).to_string();
            cli(&["report", "--url", &url, "progress", "shared", &pct]).await
        }
    });
    for out in futures_util::future::join_all(runs).await {
        assert!(out.status.success(), "{out:?}");
    }
    let done = cli(&["report", "--url", &url, "complete", "shared"]).await;
    assert!(done.status.success(), "{done:?}");
    let op = operation_detail(&h, "shared").await;
    let events = op["events"].as_array().unwrap();
    assert_eq!(events_of_type(&op, "progress_update").len(), 8, "{op}");
    assert_eq!(op["operation"]["state"], "completed");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
}

/// `start` prints the operation's id even when the hub never answered (it
/// is the client's own), so a script that carries on can still name it.
#[tokio::test]
async fn report_start_prints_the_id_even_when_undelivered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let out = cli(&[
        "report",
        "--url",
        &url,
        "--timeout",
        "300ms",
        "start",
        "x",
        "--id",
        "mine",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "mine");
    // Also when the URL is not one the client can use.
    let out = cli(&["report", "--url", "http://x", "start", "x", "--id", "mine"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "mine");
}

/// Lines read from a child's pipe as they come.
fn lines_of<R>(pipe: R) -> tokio::sync::mpsc::UnboundedReceiver<String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    use tokio::io::AsyncBufReadExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most `DEADLINE`) for a line containing `needle`; every line
/// read is kept in `seen`.
async fn line_with(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
) {
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(l) = rx.recv().await {
            let hit = l.contains(needle);
            seen.push(l);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no line with {needle:?}; saw {seen:?}"
    );
}

/// The rest of the lines, once the pipe closed.
async fn rest(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, seen: &mut Vec<String>) {
    while let Ok(Some(l)) = tokio::time::timeout(DEADLINE, rx.recv()).await {
        seen.push(l);
    }
}

/// `run` with piped stdout and stderr (and no hub settings from the
/// environment).
fn spawn_run(args: &[&str]) -> tokio::process::Child {
    spawn_cli("run", args)
}

/// A command that prints `started`, then counts the SIGINTs and SIGTERMs
/// it gets until the file `$1` exists, and exits 130.
const COUNTS_SIGNALS: &str =
    "trap 'echo got-int' INT; trap 'echo got-term' TERM; trap 'echo got-hup' HUP; \
     trap 'echo got-quit' QUIT; echo started; \
     while [ ! -e \"$1\" ]; do sleep 0.05; done; exit 130";

/// Whether `sig` is ignored in this process (so in the processes it
/// starts), per `/proc/self/status`.
fn ignored_here(sig: nix::sys::signal::Signal) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig as i32 - 1)) != 0)
}

/// SIGINT, SIGTERM, SIGHUP or SIGQUIT sent to `run` alone (a process sent
/// it, so the child did not get it) is passed on to the child once; `run` waits for it,
/// reports `canceled` naming the signal and exits with the child's code.
#[tokio::test]
async fn run_passes_a_signal_from_a_process_on_once_and_reports_canceled() {
    use nix::sys::signal::{kill, Signal};
    let h = hub().start().await;
    let url = h.ws_url();
    for (sig, id, got) in [
        (Signal::SIGINT, "int.1", "got-int"),
        (Signal::SIGTERM, "term.1", "got-term"),
        (Signal::SIGHUP, "hup.1", "got-hup"),
        (Signal::SIGQUIT, "quit.1", "got-quit"),
    ] {
        if ignored_here(sig) {
            // Under `nohup` (SIGHUP ignored, inherited by run and the
            // command) run rightly leaves the signal ignored.
            eprintln!("skipped {sig}: ignored in this process");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let done_s = done.to_str().unwrap();
        let mut child = spawn_run(&[
            "--url",
            &url,
            "--id",
            id,
            "--",
            "sh",
            "-c",
            COUNTS_SIGNALS,
            "sh",
            done_s,
        ]);
        let mut out = lines_of(child.stdout.take().unwrap());
        let mut err = lines_of(child.stderr.take().unwrap());
        let (mut so, mut se) = (Vec::new(), Vec::new());
        line_with(&mut out, &mut so, "started").await;
        let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
        kill(pid, sig).unwrap();
        line_with(&mut out, &mut so, got).await;
        line_with(&mut err, &mut se, "passed on to the command").await;
        std::fs::write(&done, "").unwrap();
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap();
        rest(&mut out, &mut so).await;
        assert_eq!(status.code(), Some(130), "{sig}: {so:?} {se:?}");
        assert_eq!(
            so.iter().filter(|l| l.starts_with("got-")).count(),
            1,
            "{sig} reached the command once: {so:?}"
        );
        let op = operation_detail(&h, id).await;
        assert_eq!(op["operation"]["state"], "canceled", "{op}");
        assert!(op["events"].to_string().contains(sig.as_str()), "{op}");
    }
}

/// A Ctrl-C on the terminal reaches the whole foreground process group,
/// the command too: `run` does not send it a second one, and still waits
/// for the command and reports the stop. (Runs under `script`, which gives
/// the processes a terminal; skipped where it is missing.)
#[tokio::test]
async fn run_does_not_pass_on_a_ctrl_c_from_the_terminal() {
    use tokio::io::AsyncWriteExt;
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) to give the test a terminal");
        return;
    }
    let h = hub().start().await;
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let inner = format!(
        "{} run --url {} --id tty.1 -- sh -c '{}' sh {}",
        env!("CARGO_BIN_EXE_progress-hub"),
        h.ws_url(),
        COUNTS_SIGNALS.replace('\'', "'\\''"),
        done.to_str().unwrap()
    );
    let mut script = tokio::process::Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut tty_in = script.stdin.take().unwrap();
    let mut out = lines_of(script.stdout.take().unwrap());
    let mut seen = Vec::new();
    line_with(&mut out, &mut seen, "started").await;
    // ^C, as typed: the terminal sends SIGINT to the foreground group.
    tty_in.write_all(b"\x03").await.unwrap();
    tty_in.flush().await.unwrap();
    line_with(
        &mut out,
        &mut seen,
        "SIGINT from the terminal; the command got it too",
    )
    .await;
    std::fs::write(&done, "").unwrap();
    let status = tokio::time::timeout(DEADLINE, script.wait())
        .await
        .unwrap()
        .unwrap();
    rest(&mut out, &mut seen).await;
    assert_eq!(
        seen.iter().filter(|l| l.contains("got-int")).count(),
        1,
        "one Ctrl-C, one SIGINT for the command: {seen:?}"
    );
    assert_eq!(status.code(), Some(130), "{seen:?}");
    let op = operation_detail(&h, "tty.1").await;
    assert_eq!(op["operation"]["state"], "canceled", "{op}");
}

/// While `run` waits at the end for a hub that does not answer, SIGTERM or
/// SIGINT ends the wait at once, with the command's exit code.
#[tokio::test]
async fn a_signal_ends_the_wait_for_the_hub() {
    use nix::sys::signal::{kill, Signal};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut child = spawn_run(&[
            "--url",
            &url,
            "--flush-timeout",
            "120s",
            "--",
            "sh",
            "-c",
            "echo done; exit 3",
        ]);
        let mut err = lines_of(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        line_with(&mut err, &mut seen, "waiting up to").await;
        kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), sig).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the wait for the hub ended")
            .unwrap();
        assert_eq!(status.code(), Some(3), "{sig}");
        line_with(&mut err, &mut seen, "not waiting for the hub any longer").await;
    }
}

/// A hub URL the client cannot use (`--url` or `PROGRESS_HUB_URL`) is one
/// warning: the command runs anyway, unreported, with its exit code.
#[tokio::test]
async fn run_with_an_unusable_hub_url_runs_the_command_anyway() {
    for (flag, env) in [(Some("not a url"), None), (None, Some("http://x"))] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"));
        cmd.arg("run")
            .env_remove("PROGRESS_HUB_URL")
            .env_remove("PROGRESS_HUB_TOKEN");
        if let Some(u) = flag {
            cmd.args(["--url", u]);
        }
        if let Some(u) = env {
            cmd.env("PROGRESS_HUB_URL", u);
        }
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            cmd.args(["--", "sh", "-c", "echo ran; exit 3"]).output(),
        )
        .await
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
        assert_eq!(stderr.lines().count(), 1, "one warning: {stderr}");
        assert!(stderr.contains("invalid hub URL"), "{stderr}");
    }
}

/// A hub that refuses `run`'s token: one clear line naming the refusal, no
/// wait for the flush timeout, the command's exit code. A token the hub
/// accepts but that may not report is refused per operation: the same.
#[tokio::test]
async fn run_says_the_hub_refused_its_token_and_does_not_wait() {
    let h = hub()
        .args(["--jwt-secret", common::tokens::SECRET])
        .start()
        .await;
    let url = h.ws_url();
    let viewer = common::tokens::token("vic", &["viewer"], &["default"]);
    for (token, expect) in [
        ("not-a-jwt", "refused the token (upgrade refused: HTTP 401"),
        (
            viewer.as_str(),
            "FORBIDDEN: the token does not allow this action",
        ),
    ] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
                .args([
                    "run",
                    "--url",
                    &url,
                    "--token",
                    token,
                    "--flush-timeout",
                    "300s",
                    "--",
                    "sh",
                    "-c",
                    "echo ran; exit 4",
                ])
                .env_remove("PROGRESS_HUB_URL")
                .env_remove("PROGRESS_HUB_TOKEN")
                .output(),
        )
        .await
        .expect("no wait for the flush timeout once the hub refused")
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.contains("refused")).count(),
            1,
            "{stderr}"
        );
    }
}

/// The command starts with no signal blocked (run blocks them in its own
/// threads for the signalfd, and a child inherits that mask), so a program
/// that keeps the default actions dies of a passed-on SIGTERM. A shell
/// hid this: it clears its mask itself.
#[tokio::test]
async fn the_command_starts_with_no_signal_blocked_and_dies_of_sigterm() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&[
        "run",
        "--url",
        &url,
        "--",
        "grep",
        "SigBlk",
        "/proc/self/status",
    ])
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "SigBlk:\t0000000000000000",
        "{out:?}"
    );
    let mut child = spawn_run(&["--url", &url, "--id", "sleeper", "--", "sleep", "30"]);
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    eventually("the operation to start", DEADLINE, || {
        let h = &h;
        async move {
            (operation_detail(h, "sleeper").await["operation"]["state"] == "running").then_some(())
        }
    })
    .await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("sleep died of the SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(143));
    let op = operation_detail(&h, "sleeper").await;
    assert_eq!(op["operation"]["state"], "canceled", "{op}");
}

/// A hub that refuses report's token ends the wait at once: exit 1 with the
/// refusal on stderr, not after the whole `--timeout`.
#[tokio::test]
async fn report_does_not_wait_for_a_hub_that_refused_its_token() {
    let h = hub()
        .args(["--jwt-secret", "a-secret-of-the-hub-0123456789"])
        .start()
        .await;
    let url = h.ws_url();
    let started = std::time::Instant::now();
    let out = cli(&[
        "report",
        "--url",
        &url,
        "--token",
        "not-a-token",
        "--timeout",
        "120s",
        "start",
        "x",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
}

/// An output line without a percentage still reaches viewers as the
/// operation's message: the update carries the latest progress, as the
/// protocol wants, and the hub refuses nothing.
#[tokio::test]
async fn output_lines_without_a_percentage_reach_the_hub() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "noisy",
        "--",
        "sh",
        "-c",
        "echo 30%; sleep 0.3; echo oops >&2; sleep 0.3; exit 3",
    ])
    .await;
    assert_eq!(out.status.code(), Some(3));
    let op = operation_detail(&h, "noisy").await;
    let updates = events_of_type(&op, "progress_update");
    assert!(
        updates
            .iter()
            .any(|e| e["message"] == "oops" && e["progress"] == 30.0),
        "{op}"
    );
    // The last line unfinished (no newline) and without a percentage: it
    // went out bare right before the end, and the hub refused it.
    let out = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "tail",
        "--",
        "sh",
        "-c",
        "echo 10%; printf tail; exit 4",
    ])
    .await;
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("refused"), "{stderr}");
    let op = operation_detail(&h, "tail").await;
    assert_eq!(op["operation"]["state"], "failed", "{op}");
    assert_eq!(op["operation"]["message"], "tail", "{op}");
    assert_eq!(op["operation"]["progress"], 10.0, "{op}");
    let metrics = metrics_text(&h).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "progress_hub_errors_sent_total{code=\"BAD_MESSAGE\"} 0"),
        "the hub refused nothing: {metrics}"
    );
}

/// `report progress` with only a message, a step or details lands: a fresh
/// process has no value of its own to repeat, so it repeats the hub's
/// (the protocol wants one in every update).
#[tokio::test]
async fn report_progress_with_only_text_lands() {
    let h = hub().start().await;
    let url = h.ws_url();
    let ok = |out: &Output| assert!(out.status.success(), "{out:?}");
    ok(&cli(&["report", "--url", &url, "start", "--id", "d1", "x"]).await);
    ok(&cli(&[
        "report",
        "--url",
        &url,
        "progress",
        "d1",
        "--message",
        "hello",
    ])
    .await);
    ok(&cli(&["report", "--url", &url, "progress", "d1", "30"]).await);
    ok(&cli(&[
        "report",
        "--url",
        &url,
        "progress",
        "d1",
        "--step",
        "s2",
        "--details",
        r#"{"a":1}"#,
    ])
    .await);
    let op = operation_detail(&h, "d1").await;
    assert_eq!(op["operation"]["message"], "hello", "{op}");
    assert_eq!(op["operation"]["step"], "s2", "{op}");
    assert_eq!(op["operation"]["progress"], 30.0, "the value stays: {op}");
    assert_eq!(op["operation"]["details"]["a"], 1, "{op}");

    ok(&cli(&[
        "report", "--url", &url, "start", "--id", "t1", "--total", "10", "y",
    ])
    .await);
    ok(&cli(&["report", "--url", &url, "progress", "t1", "--current", "4"]).await);
    ok(&cli(&["report", "--url", &url, "progress", "t1", "--message", "m"]).await);
    let op = operation_detail(&h, "t1").await;
    assert_eq!(
        (
            op["operation"]["progress"].clone(),
            op["operation"]["message"].clone()
        ),
        (json!(40.0), json!("m")),
        "{op}"
    );
    // A percentage reported after units is what stays: repeating only the
    // units would have the hub derive 40 % again from 4 / 10. (The hub
    // moves the units with it: 75 % of 10.)
    ok(&cli(&["report", "--url", &url, "progress", "t1", "75"]).await);
    ok(&cli(&["report", "--url", &url, "progress", "t1", "--message", "n"]).await);
    let op = operation_detail(&h, "t1").await;
    let op = &op["operation"];
    assert_eq!(
        (
            op["progress"].clone(),
            op["current"].clone(),
            op["message"].clone()
        ),
        (json!(75.0), json!(7.5), json!("n")),
        "{op}"
    );

    let out = cli(&[
        "report",
        "--url",
        &url,
        "--timeout",
        "5s",
        "progress",
        "nope",
        "--message",
        "m",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not on the hub"),
        "{out:?}"
    );
}

/// An update the hub refuses is never a success: exit 1 with the hub's
/// words. A value out of range is refused before anything is sent (a
/// usage error, exit 2).
#[tokio::test]
async fn report_exits_1_for_a_refused_update_and_2_for_a_bad_value() {
    let h = hub().start().await;
    let url = h.ws_url();
    let out = cli(&["report", "--url", &url, "start", "--id", "r1", "x"]).await;
    assert!(out.status.success(), "{out:?}");
    // Details nested past the hub's 64 levels: valid JSON the hub refuses.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(70), "}".repeat(70));
    let out = cli(&[
        "report",
        "--url",
        &url,
        "progress",
        "r1",
        "50",
        "--details",
        &deep,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("BAD_MESSAGE"),
        "{stderr}"
    );
    for bad in [
        &["nan"][..],
        &["inf"],
        &["150"],
        &["--current", "nan"],
        &["--current=-3"],
        // Nothing to report at all: a usage error too (it exited 1).
        &[],
    ] {
        let mut args = vec!["report", "--url", &url, "progress", "r1"];
        args.extend_from_slice(bad);
        let out = cli(&args).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
    let op = operation_detail(&h, "r1").await;
    assert_eq!(
        op["events"].as_array().unwrap().len(),
        1,
        "nothing but the start: {op}"
    );
}
