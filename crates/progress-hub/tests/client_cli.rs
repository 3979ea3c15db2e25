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
