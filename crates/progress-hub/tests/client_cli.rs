//! The client subcommands through the real binary against a real hub:
//! `report`, `run` (output passthrough, exit code, progress parsing) and
//! `watch --until-done`.

mod common;
use common::*;
use std::process::Output;

async fn cli(args: &[&str]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(args)
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("finished")
        .unwrap()
}

async fn state_of(h: &Hub, id: &str) -> Value {
    get_json(&format!(
        "{}/api/v1/namespaces/default/operations/{id}",
        h.http()
    ))
    .await
    .1
}

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
    let op = state_of(&h, "sh.1").await;
    assert_eq!(op["operation"]["progress"], 50.0);
    assert_eq!(op["operation"]["step"], "copying");
    let out = cli(&["report", "--url", &url, "complete", "sh.1"]).await;
    assert!(out.status.success());
    assert_eq!(
        state_of(&h, "sh.1").await["operation"]["state"],
        "completed"
    );
    let out = cli(&["report", "--url", &url, "complete", "sh.1"]).await;
    assert!(
        !out.status.success(),
        "reporting on a finished operation fails"
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
    let op = state_of(&h, "ok.1").await;
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
    let op = state_of(&h, "bad.1").await;
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
    let op = state_of(&h, "long.1").await;
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
    let op = state_of(&h, "shared").await;
    let events = op["events"].as_array().unwrap();
    let updates = events
        .iter()
        .filter(|e| e["type"] == "progress_update")
        .count();
    assert_eq!(updates, 8, "{op}");
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
}
