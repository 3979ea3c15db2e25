//! A synchronous job that ends without flushing: the process starts an
//! operation, completes it and returns from its test (dropping every
//! handle). The client owns its thread there, so the last drop waits for
//! delivery (up to `linger`): the hub holds the completed operation when
//! the process has exited.
//!
//! The job runs in a child process (this test binary again, filtered to
//! `sync_job_child`, with `HUB_CLIENT_CHILD_URL` set); the binary is
//! `$PROGRESS_HUB_BIN`, or `progress-hub` next to the test's `deps/`.

use std::time::{Duration, Instant};

use hub_client::{ClientConfig, Reporter};
use hub_testkit::{hub_bin, HubBuilder, Ws};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const CHILD_URL: &str = "HUB_CLIENT_CHILD_URL";

/// The job itself: runs only in the child process.
#[test]
fn sync_job_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let reporter = Reporter::connect(ClientConfig::new(url)).unwrap();
    let op = reporter
        .start("Nightly")
        .id("sync-job-no-flush")
        .begin()
        .unwrap();
    op.progress(50.0).step("half");
    op.complete().unwrap();
    // No flush: the job simply ends.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_job_that_ends_without_flushing_still_delivers() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let started = Instant::now();
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sync_job_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, hub.ws_url())
        .output();
    let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
    assert!(out.status.success(), "{out:?}");
    // Delivered promptly, not by sitting out the linger time.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );

    let mut ws = Ws::connect(&hub.ws_url()).await;
    let reply = ws
        .request(json!({"type": "subscribe", "namespace": "default"}), 1)
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let list = ws.next_of("operation_list", WAIT).await;
    let op = list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operation_id"] == "sync-job-no-flush")
        .unwrap_or_else(|| panic!("nothing reached the hub: {list}"))
        .clone();
    assert_eq!(op["state"], "completed", "{op}");
}
