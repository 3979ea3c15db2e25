//! A synchronous job that ends without flushing: the process starts an
//! operation, completes it and returns from its test (dropping every
//! handle). The client owns its thread there, so the last drop waits for
//! delivery (up to `linger`): the hub holds the completed operation when
//! the process has exited.
//!
//! The job runs in a child process (this test binary again, filtered to
//! `sync_job_child`, with `HUB_CLIENT_CHILD_URL` set); the binary is
//! `$PROGRESS_HUB_BIN`, or `progress-hub` next to the test's `deps/`.

use std::time::Duration;

use hub_client::{ClientConfig, Reporter};
use hub_testkit::{hub_bin, HubBuilder};

mod real_common;
use real_common::*;

const CHILD_URL: &str = "HUB_CLIENT_CHILD_URL";

/// The job itself: runs only in the child process.
#[test]
fn sync_job_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    // A linger far past the parent's wait: the drop must end when the
    // events are delivered, not when the linger runs out.
    let config = ClientConfig::new(url).linger(Duration::from_secs(300));
    let reporter = Reporter::connect(config).unwrap();
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
    // Within WAIT, far less than the linger: the drop waited for the
    // delivery only.
    let states = hub_states(&hub).await;
    let op = states
        .get("sync-job-no-flush")
        .unwrap_or_else(|| panic!("nothing reached the hub: {states:?}"));
    assert_eq!(op["state"], "completed", "{op}");
}
