//! The client against the real hub binary at the hub's limits: merged
//! updates and re-registrations never larger than the hub's message size,
//! a hub whose limit is lower than the client thinks, a refused end that
//! the job hears about, free text cut like the hub cuts it, and a full
//! queue that still takes the end of every operation it holds.
//!
//! The binary is `$PROGRESS_HUB_BIN`, or `progress-hub` next to the test's
//! `deps/` directory (build it with `cargo build -p progress-hub`).

use hub_client::{Client, ReportError, Reporter};
use hub_testkit::{hub_bin, HubBuilder};
use serde_json::json;

mod real_common;
use real_common::*;

/// 60 KB of details: one update that the hub takes on its own.
fn big_details() -> serde_json::Value {
    json!({"log": "d".repeat(60_000)})
}

/// 4096 four-byte characters: a message the hub keeps whole (16 KB).
fn wide_message() -> String {
    "𝄞".repeat(4096)
}

/// Two updates, each valid, conflated while the hub is down: together
/// they are past the hub's 64 KiB limit. The client keeps the newest
/// values instead of building a message the hub closes the connection
/// for (before: MESSAGE_TOO_LARGE, close 1009, the same message again on
/// every reconnect, and the completion never delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflated_updates_past_the_hub_limit_are_delivered_once() {
    let addr = free_addr().await;
    let reporter = Reporter::connect(fast(&format!("ws://{addr}/ws"))).unwrap();
    let op = reporter.start("Merge").begin().unwrap();
    op.update(hub_client::ProgressFields {
        progress: Some(10.0),
        details: Some(big_details()),
        ..Default::default()
    })
    .unwrap();
    op.update(hub_client::ProgressFields {
        progress: Some(20.0),
        message: Some(wide_message()),
        ..Default::default()
    })
    .unwrap();
    op.complete().unwrap();
    let hub = HubBuilder::new(hub_bin()).listen(&addr).start().await;
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let stats = reporter.connection_stats();
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    let s = &hub_states(&hub).await[op.id()];
    assert_eq!(s["state"], "completed");
    assert_eq!(s["progress"], 100.0);
    assert_eq!(s["message"], wide_message());
}

/// A memory hub restarts and forgets: the client re-registers its
/// operation with a snapshot of every field reported so far, which must
/// fit one message too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_registration_snapshot_fits_the_hub_limit() {
    let addr = free_addr().await;
    let builder = HubBuilder::new(hub_bin()).listen(&addr);
    let hub = builder.start().await;
    let client = Client::connect(fast(&format!("ws://{addr}/ws"))).unwrap();
    let reporter = client.reporter();
    let op = reporter.start("Survivor").begin().unwrap();
    op.update(hub_client::ProgressFields {
        progress: Some(10.0),
        details: Some(big_details()),
        ..Default::default()
    })
    .unwrap();
    assert!(reporter.flush(WAIT).await);
    op.update(hub_client::ProgressFields {
        progress: Some(20.0),
        message: Some(wide_message()),
        step: Some("copy".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(reporter.flush(WAIT).await);
    hub.kill9().await;
    let hub = builder.start().await;
    op.progress(30.0);
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let stats = client.connection_stats();
    assert!(stats.resurrected >= 1, "{stats:?}");
    assert!(stats.reconnects <= 2, "a reconnect loop: {stats:?}");
    let s = &hub_states(&hub).await[op.id()];
    assert_eq!(s["state"], "running");
    assert_eq!(s["progress"], 30.0);
    assert_eq!(s["message"], wide_message());
    assert_eq!(s["step"], "copy");
    op.complete().unwrap();
    assert!(reporter.flush(WAIT).await);
}

/// A hub configured with a smaller limit than the client's: the first
/// refusal (`MESSAGE_TOO_LARGE` naming `data.limit`, then close 1009)
/// teaches the client, which cuts the message (its details) and sends it
/// again once, and says so through `refusal()`. The end goes through,
/// details cut, in its own state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_hub_limit_is_learnt_and_the_end_still_gets_through() {
    let hub = HubBuilder::new(hub_bin())
        .args(["--max-message-size", "8192"])
        .start()
        .await;
    let reporter = Reporter::connect(fast(&hub.ws_url())).unwrap();
    let op = reporter.start("Small hub").begin().unwrap();
    assert!(reporter.flush(WAIT).await);
    op.update(hub_client::ProgressFields {
        progress: Some(40.0),
        step: Some("upload".into()),
        details: Some(json!({"blob": "x".repeat(20_000)})),
        ..Default::default()
    })
    .unwrap();
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let refusal = op.refusal().expect("the cut is reported");
    assert_eq!(refusal.code, "MESSAGE_TOO_LARGE");
    let s = &hub_states(&hub).await[op.id()];
    assert_eq!(s["progress"], 40.0);
    assert_eq!(s["step"], "upload");

    op.fail_with("it broke", json!({"trace": "t".repeat(20_000)}))
        .unwrap();
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let stats = reporter.connection_stats();
    assert!(stats.reconnects <= 1, "one refusal, not a loop: {stats:?}");
    let s = &hub_states(&hub).await[op.id()];
    assert_eq!(s["state"], "failed");
    assert_eq!(s["error"], "it broke");
}

/// An end the hub refuses (`BAD_MESSAGE`: details that are not an object)
/// is not swallowed: the flush says it did not get through, the handle
/// shows the refusal, and the job can report its end again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_end_is_loud_and_can_be_reported_again() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let reporter = Reporter::connect(fast(&hub.ws_url())).unwrap();
    let op = reporter.start("Refused end").begin().unwrap();
    op.complete_with(json!(3)).unwrap();
    assert!(!reporter.flush(WAIT).await, "the refused end must not pass");
    assert_eq!(op.rejection().as_deref(), Some("BAD_MESSAGE"));
    assert_eq!(op.refusal().unwrap().code, "BAD_MESSAGE");
    assert_eq!(reporter.connection_stats().lifecycle_rejected, 1);
    assert_eq!(hub_states(&hub).await[op.id()]["state"], "running");
    // Reported once: the next flush is about what happens next.
    op.fail("could not report the details").unwrap();
    assert!(reporter.flush(WAIT).await);
    assert_eq!(hub_states(&hub).await[op.id()]["state"], "failed");
}

/// Free text is cut by the client to the hub's own limits (step 256,
/// error 4096 characters, the last one `…`), so it is never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_is_cut_like_the_hub_cuts_it() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let reporter = Reporter::connect(fast(&hub.ws_url())).unwrap();
    let op = reporter.start("Long").begin().unwrap();
    op.progress(5.0).step("s".repeat(1_000));
    op.fail("é".repeat(10_000)).unwrap();
    assert!(reporter.flush(WAIT).await);
    assert!(op.refusal().is_none());
    let s = &hub_states(&hub).await[op.id()];
    assert_eq!(s["state"], "failed");
    let error = s["error"].as_str().unwrap();
    assert_eq!(error.chars().count(), 4096);
    assert!(error.ends_with('…'));
    assert_eq!(s["step"].as_str().unwrap().chars().count(), 256);
}

/// At the queue's bound new operations are refused, but the end of every
/// operation it holds is taken (and the drop fallback too), and all of
/// it reaches the hub once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_still_takes_every_end() {
    let addr = free_addr().await;
    let reporter =
        Reporter::connect(fast(&format!("ws://{addr}/ws")).max_queued_lifecycle(3)).unwrap();
    let a = reporter.start("A").begin().unwrap();
    let b = reporter.start("B").begin().unwrap();
    let c = reporter.start("C").begin().unwrap();
    assert_eq!(
        reporter.start("D").begin().err(),
        Some(ReportError::QueueFull)
    );
    a.complete().unwrap();
    b.fail("no").unwrap();
    let c_id = c.id().to_owned();
    drop(c); // reported failed by the handle's drop
    let hub = HubBuilder::new(hub_bin()).listen(&addr).start().await;
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let states = hub_states(&hub).await;
    assert_eq!(states[a.id()]["state"], "completed");
    assert_eq!(states[b.id()]["state"], "failed");
    assert_eq!(states[&c_id]["state"], "failed");
}
