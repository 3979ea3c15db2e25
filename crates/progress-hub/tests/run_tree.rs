//! `run` and the processes around it, through the real binary: a cancel or
//! a passed-on signal reaches the command's whole tree (a `sh -c` wrapper's
//! grandchild too) and `run` ends promptly; a pipeline reader that goes
//! away (`run -- yes | head`) stops the command with SIGPIPE.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;

/// `run ARGS` with piped stdout and stderr and no hub settings from the
/// environment.
fn spawn_run(args: &[&str]) -> tokio::process::Child {
    spawn_cli("run", args)
}

async fn state_of(h: &Hub, id: &str) -> Value {
    let url = format!("{}/api/v1/namespaces/default/operations/{id}", h.http());
    get_json(&url).await.1
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').unwrap_or(0) + 1..].split_whitespace().next();
        state != Some("Z")
    })
}

/// A shell that starts `sleep 60` as its own child (the command's
/// grandchild under `run`), prints its pid and waits for it.
const WRAPS_A_SLEEP: &str = "sleep 60 & echo \"grandchild $!\"; wait";

/// After a cancel from the hub, or a SIGTERM a process sent `run`, the
/// wrapper's grandchild is gone too, and the operation ends `canceled`
/// promptly (it used to keep running, orphaned, and `run` waited for the
/// end of its output, a minute later).
#[tokio::test]
async fn a_cancel_or_a_signal_reaches_the_commands_grandchildren() {
    let h = hub().start().await;
    let url = h.ws_url();
    for (id, by_cancel) in [("tree.cancel", true), ("tree.signal", false)] {
        let mut child = spawn_run(&["--url", &url, "--id", id, "--", "sh", "-c", WRAPS_A_SLEEP]);
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the wrapper printed its child's pid")
            .unwrap()
            .unwrap();
        let grandchild: i32 = line.strip_prefix("grandchild ").unwrap().parse().unwrap();
        assert!(alive(grandchild));
        eventually("the operation to run", DEADLINE, || {
            let h = &h;
            async move { (state_of(h, id).await["operation"]["state"] == "running").then_some(()) }
        })
        .await;
        if by_cancel {
            let cancel = format!(
                "{}/api/v1/namespaces/default/operations/{id}/cancel",
                h.http()
            );
            assert_eq!(post_json(&cancel, &json!({})).await.0, 202);
        } else {
            let pid = Pid::from_raw(child.id().unwrap() as i32);
            kill(pid, Signal::SIGTERM).unwrap();
        }
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap_or_else(|_| panic!("{id}: run did not end after the grandchild's end"))
            .unwrap();
        assert_eq!(status.code(), Some(143), "{id}");
        eventually("the grandchild to be gone", DEADLINE, || async move {
            (!alive(grandchild)).then_some(())
        })
        .await;
        let op = state_of(&h, id).await;
        assert_eq!(op["operation"]["state"], "canceled", "{op}");
    }
}

/// `run -- yes | head -2`: once the reader of run's stdout is gone, the
/// command gets SIGPIPE as without `run`, and `run` ends with 141 (it used
/// to drain `yes` for ever, burning a core); the operation fails, killed
/// by SIGPIPE.
#[tokio::test]
async fn a_reader_that_goes_away_stops_the_command_with_sigpipe() {
    let h = hub().start().await;
    let url = h.ws_url();
    let mut child = spawn_run(&["--url", &url, "--id", "yes.1", "--", "yes"]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let line = tokio::time::timeout(DEADLINE, lines.next_line()).await;
        assert_eq!(line.unwrap().unwrap().as_deref(), Some("y"));
    }
    drop(lines);
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("run ended once its stdout was gone")
        .unwrap();
    assert_eq!(status.code(), Some(141));
    let op = state_of(&h, "yes.1").await;
    assert_eq!(op["operation"]["state"], "failed", "{op}");
    assert_eq!(
        op["operation"]["error"], "killed by signal 13 (SIGPIPE)",
        "{op}"
    );
}

/// A command that exits on its own and leaves a process holding its
/// output: `run` waits at most 2 s more for that output, as its help says
/// (it waited for the leftover, however long it lived), and the operation
/// is completed.
#[tokio::test]
async fn a_leftover_holding_the_output_is_not_waited_for() {
    let h = hub().start().await;
    let url = h.ws_url();
    let script = "sleep 60 & echo \"leftover $!\"; exit 0";
    let started = std::time::Instant::now();
    let mut child = spawn_run(&["--url", &url, "--id", "left", "--", "sh", "-c", script]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the script printed its leftover's pid")
        .unwrap()
        .unwrap();
    let leftover: i32 = line.trim_start_matches("leftover ").parse().unwrap();
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("run ends within the grace, not with the leftover")
        .unwrap();
    let took = started.elapsed();
    if alive(leftover) {
        let _ = kill(Pid::from_raw(leftover), Signal::SIGKILL);
    }
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    eventually("the operation completed", DEADLINE, || async {
        (state_of(&h, "left").await["operation"]["state"] == "completed").then_some(())
    })
    .await;
}

/// The pid on the next line, after `prefix`.
async fn next_pid(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
) -> i32 {
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the script printed a pid")
        .unwrap()
        .unwrap();
    line.strip_prefix(prefix).unwrap().parse().unwrap()
}

/// A cancel that arrives after the command ended (while `run` still waits
/// for output a leftover holds open) does not change the outcome: the
/// command's exit code stands, and `run` signals nothing (it used to
/// report `canceled`, and say it sent SIGTERM to a tree it never touched).
#[tokio::test]
async fn a_cancel_after_the_command_ended_does_not_change_its_outcome() {
    let h = hub().start().await;
    let url = h.ws_url();
    let script = "echo \"pid $$\"; sleep 60 & echo \"leftover $!\"; exit 3";
    let mut child = spawn_run(&["--url", &url, "--id", "late", "--", "sh", "-c", script]);
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let shell = next_pid(&mut lines, "pid ").await;
    let leftover = next_pid(&mut lines, "leftover ").await;
    eventually("the command to end", DEADLINE, || async move {
        (!alive(shell)).then_some(())
    })
    .await;
    eventually("the operation to be known", DEADLINE, || {
        let h = &h;
        async move { (state_of(h, "late").await["operation"]["state"] == "running").then_some(()) }
    })
    .await;
    let cancel = format!(
        "{}/api/v1/namespaces/default/operations/late/cancel",
        h.http()
    );
    assert_eq!(post_json(&cancel, &json!({})).await.0, 202);
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("run ends")
        .unwrap();
    let leftover_alive = alive(leftover);
    if leftover_alive {
        let _ = kill(Pid::from_raw(leftover), Signal::SIGKILL);
    }
    assert_eq!(status.code(), Some(3));
    assert!(leftover_alive, "nothing was sent to what the command left");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(!stderr.contains("sending SIGTERM"), "{stderr}");
    eventually(
        "the operation failed with the exit code",
        DEADLINE,
        || async {
            let op = state_of(&h, "late").await;
            (op["operation"]["state"] == "failed").then_some(op)
        },
    )
    .await;
    let op = state_of(&h, "late").await;
    assert!(
        op["operation"]["error"].as_str().unwrap().contains('3'),
        "{op}"
    );
}
