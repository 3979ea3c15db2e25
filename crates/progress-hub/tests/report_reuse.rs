//! Reusing and retrying operation ids through the real binary against a
//! real hub: `run --id X` and `report start --id X` when the hub already
//! has X (refused, not silently merged into the other run's operation),
//! a retried `report start` while X runs (taken as a retry), a retried
//! `report complete`/`fail` whose first ack was lost, and the usage
//! errors checked before anything is sent.

mod common;
use common::*;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A CI retry with the same `--id`: the second `run` must not report into
/// the first run's (failed) operation. It says so once and runs the
/// command unreported, with its own exit code; the hub keeps the first
/// run's outcome.
#[tokio::test]
async fn run_with_the_id_of_a_finished_operation_is_refused() {
    let h = hub().start().await;
    let url = h.ws_url();
    let first = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "ci-job",
        "--name",
        "attempt 1",
        "--",
        "sh",
        "-c",
        "echo 1/3; exit 1",
    ])
    .await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let second = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "ci-job",
        "--name",
        "attempt 2",
        "--",
        "sh",
        "-c",
        "echo 3/3; exit 0",
    ])
    .await;
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&second.stdout), "3/3\n");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("operation ci-job already exists on the hub; pick another id"),
        "{err}"
    );
    let op = operation_detail(&h, "ci-job").await;
    assert_eq!(op["operation"]["name"], "attempt 1");
    assert_eq!(op["operation"]["state"], "failed");
}

/// Two `run`s with one id at once: the second is refused and leaves the
/// first one's operation alone, which ends with the first run's outcome.
#[tokio::test]
async fn run_with_the_id_of_a_running_operation_is_refused() {
    let h = hub().start().await;
    let url = h.ws_url();
    // It runs until its stdin closes.
    let mut long = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "run",
            "--url",
            &url,
            "--id",
            "shared",
            "--name",
            "long job",
            "--",
            "sh",
            "-c",
            "read line; echo failing; exit 9",
        ])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The long run's operation is on the hub before the short one starts.
    eventually("the long run's operation", DEADLINE, || async {
        (operation_detail(&h, "shared").await["operation"]["state"] == "running").then_some(())
    })
    .await;
    let short = cli(&[
        "run",
        "--url",
        &url,
        "--id",
        "shared",
        "--name",
        "short job",
        "--",
        "true",
    ])
    .await;
    let err = stderr(&short);
    assert_eq!(short.status.code(), Some(0), "{err}");
    assert!(err.contains("already exists on the hub"), "{err}");
    let op = operation_detail(&h, "shared").await;
    assert_eq!(op["operation"]["name"], "long job");
    assert_eq!(op["operation"]["state"], "running", "{op}");
    // The long run ends (its stdin closed) and reports its own outcome.
    drop(long.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(30), long.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(9));
    let op = operation_detail(&h, "shared").await;
    assert_eq!(op["operation"]["name"], "long job");
    assert_eq!(op["operation"]["state"], "failed", "{op}");
}

/// `report start --id X`: X finished is refused with its state (exit 1);
/// X still running is taken as a retry of its start (exit 0), as when a
/// script retries after a timeout.
#[tokio::test]
async fn report_start_tells_a_retry_from_a_reuse() {
    let h = hub().start().await;
    let url = h.ws_url();
    let start = |name: &'static str| {
        let url = url.clone();
        async move { cli(&["report", "--url", &url, "start", "--id", "job.7", name]).await }
    };
    let out = start("first").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let retry = start("first").await;
    assert_eq!(retry.status.code(), Some(0), "{}", stderr(&retry));
    assert!(
        stderr(&retry).contains("taken as a retry"),
        "{}",
        stderr(&retry)
    );
    let out = cli(&["report", "--url", &url, "complete", "job.7"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reuse = start("second").await;
    let err = stderr(&reuse);
    assert_eq!(reuse.status.code(), Some(1), "{err}");
    assert!(
        err.contains("job.7 already exists on the hub and ended completed; pick another id"),
        "{err}"
    );
    let op = operation_detail(&h, "job.7").await;
    assert_eq!(op["operation"]["name"], "first");
    assert_eq!(op["operation"]["state"], "completed");
}

/// `report complete`/`fail` retried after the first one landed (its ack
/// lost): the same ending again is fine (0, said on stderr); another
/// ending is refused with the state the operation ended in (1).
#[tokio::test]
async fn a_retried_ending_is_fine_and_another_ending_is_refused() {
    let h = hub().start().await;
    let url = h.ws_url();
    for (id, first, again, other) in [
        (
            "r.c",
            &["complete"][..],
            &["complete"][..],
            &["fail", "x"][..],
        ),
        (
            "r.f",
            &["fail", "boom"][..],
            &["fail", "boom"][..],
            &["complete"][..],
        ),
    ] {
        let out = cli(&["report", "--url", &url, "start", "--id", id, "n"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let with = |words: &[&str]| {
            let mut a = vec!["report", "--url", url.as_str(), words[0], id];
            a.extend_from_slice(&words[1..]);
            a.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let run = |a: Vec<String>| async move {
            cli(&a.iter().map(String::as_str).collect::<Vec<_>>()).await
        };
        let out = run(with(first)).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = run(with(again)).await;
        assert_eq!(out.status.code(), Some(0), "{id}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("had already ended"),
            "{}",
            stderr(&out)
        );
        let out = run(with(other)).await;
        assert_eq!(out.status.code(), Some(1), "{id}: {}", stderr(&out));
        let ended = if first[0] == "complete" {
            "completed"
        } else {
            "failed"
        };
        assert!(
            stderr(&out).contains(&format!("already ended {ended}")),
            "{}",
            stderr(&out)
        );
    }
}

/// Values the hub would refuse are usage errors (exit 2) caught before
/// anything is sent: no hub needed.
#[tokio::test]
async fn bad_ids_names_and_kinds_are_usage_errors() {
    let long_name = "n".repeat(257);
    let long_kind = "k".repeat(129);
    let url = "ws://127.0.0.1:9/ws";
    for args in [
        vec!["report", "--url", url, "start", "--id", "bad id!", "n"],
        vec!["report", "--url", url, "start", long_name.as_str()],
        vec!["report", "--url", url, "start", "--parent", "bad!", "n"],
        vec![
            "report",
            "--url",
            url,
            "start",
            "--kind",
            long_kind.as_str(),
            "n",
        ],
        vec!["report", "--url", url, "complete", "bad id!"],
    ] {
        let out = cli(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing printed: {args:?}");
    }
    let help = cli(&["report", "progress", "--help"]).await;
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("<ID> <PERCENT|"), "{text}");
}

/// `PROGRESS_HUB_NAMESPACE` is the default namespace.
#[tokio::test]
async fn the_namespace_comes_from_the_environment() {
    let h = hub().start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "report",
            "--url",
            &h.ws_url(),
            "start",
            "--id",
            "in.ns",
            "n",
        ])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .env("PROGRESS_HUB_NAMESPACE", "team-a")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (status, op) = get_json(&format!(
        "{}/api/v1/namespaces/team-a/operations/in.ns",
        h.http()
    ))
    .await;
    assert_eq!(status, 200, "{op}");
}
