//! `run`'s handling of the command's output through the real binary and a
//! real hub: with `2>&1` the command's stdout and stderr keep their order
//! (one pipe) and progress is still read from them; a command that cannot
//! be executed is reported as such, not as "exit code 127".

mod common;
use common::*;
use std::io::Read;

/// `run ARGS` with its stdout and stderr on one pipe (as `2>&1` does):
/// its exit code and everything it wrote, in order.
async fn run_merged(args: Vec<String>) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
            .arg("run")
            .args(&args)
            .env_remove("PROGRESS_HUB_URL")
            .env_remove("PROGRESS_HUB_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        (child.wait().unwrap().code(), out)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn stdout_and_stderr_keep_their_order_when_they_are_one_file() {
    let h = hub().start().await;
    let script = "i=0; while [ $i -lt 200 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done; echo 40%";
    let args = [
        "--url",
        &h.ws_url(),
        "--id",
        "merged",
        "--",
        "sh",
        "-c",
        script,
    ];
    let run = run_merged(args.iter().map(|s| s.to_string()).collect());
    let (code, out) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("run ended");
    assert_eq!(code, Some(0), "{out}");
    let mut want: String = (0..200).map(|i| format!("o{i}\ne{i}\n")).collect();
    want.push_str("40%\n");
    assert_eq!(out, want);
    let op = operation_detail(&h, "merged").await;
    assert_eq!(op["operation"]["state"], "completed", "{op}");
    let events = op["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["progress"] == 40.0),
        "progress read from the merged output: {op}"
    );
}

#[tokio::test]
async fn a_command_that_cannot_be_executed_says_why() {
    let h = hub().start().await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
            .args([
                "run",
                "--url",
                &h.ws_url(),
                "--id",
                "nx",
                "--",
                "no-such-command-xyz",
            ])
            .env_remove("PROGRESS_HUB_URL")
            .env_remove("PROGRESS_HUB_TOKEN")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert!(
        stderr.contains("cannot run \"no-such-command-xyz\": not found"),
        "{stderr}"
    );
    let op = operation_detail(&h, "nx").await;
    assert_eq!(op["operation"]["state"], "failed", "{op}");
    assert_eq!(
        op["operation"]["error"], "cannot run \"no-such-command-xyz\": not found",
        "{op}"
    );
}
