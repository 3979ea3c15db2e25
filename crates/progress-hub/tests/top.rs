//! `progress-hub top` under a real pseudo-terminal (a private tmux server)
//! against a real hub: rows appear; `c` + `y` cancels an operation whose
//! producer then gets `cancel_requested` and reports canceled; killing the
//! hub turns the indicator to reconnecting; restarting it on the same port
//! brings it back, resumed from where it was. Every wait polls the screen
//! (every 100 ms) against a deadline; nothing sleeps a fixed time.

mod common;

use common::*;
use std::process::Command;
use std::time::Instant;

/// A tmux session on a private server socket (so nothing else is touched),
/// killed when dropped.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let tag = format!("phtop-{}-{}", std::process::id(), rand_suffix());
        let t = Tmux {
            socket: tag.clone(),
            session: tag,
        };
        // The shell keeps the pane open after `top` exits, so a failure
        // stays on screen for the assertion message.
        let script = format!("{command}; echo \"[top exited: $?]\"; sleep 600");
        let ok = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-s", &t.session, "-x", "120", "-y", "30"])
            .args(["sh", "-c", &script])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is installed")
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux")
    }

    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success(), "send-keys {keys:?}");
    }

    /// Text typed literally (no key-name lookup).
    fn type_text(&self, text: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", &self.session, "-l", text])
            .status
            .success());
    }

    /// Polls the screen every 100 ms until `pred` holds; panics with the
    /// last screen after `deadline`.
    async fn wait(&self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + deadline;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() >= end {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The status bar (last non-empty line).
    fn status_line(screen: &str) -> &str {
        screen
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-session", "-t", &self.session]);
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn row<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_cancels_and_survives_a_hub_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = hub().data_dir(dir.path()).start().await;
    let addr = h.addr.clone();

    // A producer with two running operations.
    let mut producer = Ws::connect(&h.ws_url()).await;
    for (i, op) in ["tui.cancel", "tui.keep"].into_iter().enumerate() {
        let id = 10 * i as u64;
        let ack = publish(&mut producer, started(op, "default"), id + 1).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let ack = publish(&mut producer, progress(op, "default", 2, 25.0), id + 2).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }

    let bin = env!("CARGO_BIN_EXE_progress-hub");
    let tmux = Tmux::start(&format!(
        "'{bin}' top --url ws://{addr}/ws --namespace default"
    ));

    // Rows appear, connected.
    tmux.wait("both rows, connected", DEADLINE, |s| {
        s.contains("Job tui.cancel")
            && s.contains("Job tui.keep")
            && Tmux::status_line(s).contains("● connected")
    })
    .await;

    // Select tui.cancel with the filter, then c + y.
    tmux.keys(&["/"]);
    tmux.type_text("tui.cancel");
    tmux.keys(&["Enter"]);
    tmux.wait("the filter to leave one row", DEADLINE, |s| {
        s.contains("1/2 ops") && !s.contains("Job tui.keep")
    })
    .await;
    tmux.keys(&["c"]);
    tmux.wait("the cancel prompt", DEADLINE, |s| {
        s.contains("Cancel operation")
    })
    .await;
    tmux.keys(&["y"]);

    // The producer is asked to stop, and reports canceled.
    let req = producer
        .until(|m| m["type"] == "cancel_requested", DEADLINE)
        .await;
    assert_eq!(req["operation_id"], "tui.cancel", "{req}");
    let ack = publish(
        &mut producer,
        json!({"type": "operation_canceled", "namespace": "default", "operation_id": "tui.cancel", "seq": 3, "reason": "asked from top"}),
        30,
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    tmux.wait("the row to show canceled", DEADLINE, |s| {
        row(s, "Job tui.cancel").is_some_and(|r| r.contains("canceled") && r.contains('⊘'))
    })
    .await;
    tmux.keys(&["Escape"]); // clear the filter
    tmux.wait("both rows again", DEADLINE, |s| s.contains("Job tui.keep"))
        .await;

    // Kill the hub: the indicator turns to reconnecting, rows go stale.
    h.kill9().await;
    tmux.wait("reconnecting", DEADLINE, |s| {
        let st = Tmux::status_line(s);
        st.contains('◐') && (st.contains("reconnecting") || st.contains("connecting"))
    })
    .await;
    tmux.wait("stale rows", DEADLINE, |s| {
        row(s, "Job tui.keep").is_some_and(|r| r.contains("stale"))
    })
    .await;

    // Restart on the same port with the same data: back to connected, and
    // the missed update arrives through the resume.
    let h2 = hub()
        .data_dir(dir.path())
        .listen(addr.clone())
        .start()
        .await;
    let mut producer = Ws::connect(&h2.ws_url()).await;
    let ack = publish(&mut producer, progress("tui.keep", "default", 3, 80.0), 40).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let s = tmux
        .wait(
            "connected again with the new progress",
            Duration::from_secs(45),
            |s| {
                Tmux::status_line(s).contains("● connected")
                    && row(s, "Job tui.keep")
                        .is_some_and(|r| r.contains("80%") && !r.contains("stale"))
            },
        )
        .await;
    assert!(
        row(&s, "Job tui.cancel").is_some_and(|r| r.contains("canceled")),
        "{s}"
    );
    // Same store, same epoch: the viewer resumed instead of reloading (the
    // toast stays five seconds).
    tmux.wait("the reconnect toast", DEADLINE, |s| {
        s.contains("Reconnected — ") && !s.contains("Reloaded from snapshot")
    })
    .await;

    // q quits and restores the terminal (the shell prints the exit code).
    tmux.keys(&["q"]);
    tmux.wait("top to exit cleanly", DEADLINE, |s| {
        s.contains("[top exited: 0]")
    })
    .await;
}
