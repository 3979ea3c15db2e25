//! One viewer that never reads must not slow the others or the producer; it
//! is dropped with SLOW_CLIENT / 1013 once its queue passes the limit,
//! after every event up to then unless it asked for conflation.

mod common;
use common::*;

#[tokio::test]
async fn a_stuck_viewer_is_dropped_and_others_get_everything() {
    let h = hub()
        .args([
            "--conflate-after-bytes",
            "1048576",
            "--slow-client-bytes",
            "2097152",
        ])
        .start()
        .await;
    // The stuck viewer subscribes asking for conflation, then never reads
    // again; a small kernel receive buffer makes its backlog reach the hub
    // quickly.
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(
            1,
            br#"{"type":"subscribe","id":1,"namespace":"default","conflate":true}"#,
        )
        .await;
    let (mut good, _) = subscriber(&h, "default").await;
    good.next_of("operation_list", DEADLINE).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let n_ops = 50u64;
    let per_op = 40u64;
    let pad = "x".repeat(4000);
    for op in 0..n_ops {
        publish(&mut p, started(&format!("op{op}"), "default"), op).await;
    }
    // Each round the producer waits until the good viewer has everything,
    // so the good viewer is never far behind (no conflation for it), while
    // the stuck viewer's queue only grows.
    let mut last = 0u64;
    let mut id = 1000;
    for seq in 2..=per_op {
        let round = (0..n_ops).map(|op| {
            let mut m = progress(&format!("op{op}"), "default", seq, seq as f64);
            m["message"] = pad.clone().into();
            m
        });
        round_then_follow(&mut p, &mut good, round, &mut id, &mut last).await;
    }
    assert_eq!(last, n_ops * per_op);
    // Progress alone is conflated for the stuck viewer (its queue stays
    // bounded); lifecycle events are never dropped, so a flood of starts
    // pushes it past the limit.
    for r in 0..30 {
        let round = (0..50).map(|i| {
            let mut m = started(&format!("life{r}-{i}"), "default");
            m["metadata"] = json!({"pad": pad});
            m
        });
        round_then_follow(&mut p, &mut good, round, &mut id, &mut last).await;
    }
    // The stuck viewer: the hub gave up on it with SLOW_CLIENT then 1013.
    let (texts, code) = stuck.read_until_close(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1013));
    let final_msg: Value = serde_json::from_str(texts.last().unwrap()).unwrap();
    assert_eq!(final_msg["code"], "SLOW_CLIENT");
    assert_eq!(
        final_msg["data"]["limit"], 2097152,
        "names the limit: {final_msg}"
    );
    // What it did get is in offset order (conflation keeps order).
    let offsets: Vec<u64> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|m| m["type"] != "operation_list")
        .filter_map(|m| m["offset"].as_u64())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets increase");
    assert!(
        (offsets.len() as u64) < last,
        "the stuck viewer did not get everything"
    );
}

/// Sends one round of messages (numbered from `id`), waits for the last
/// ack, then reads the good viewer up to that offset, asserting that it
/// missed nothing.
async fn round_then_follow(
    p: &mut Ws,
    good: &mut Ws,
    round: impl Iterator<Item = Value>,
    id: &mut u64,
    last: &mut u64,
) {
    for mut m in round {
        *id += 1;
        m["id"] = (*id).into();
        p.send(m).await;
    }
    let want = *id;
    let ack = p.until(|m| m["id"] == want, DEADLINE).await;
    let round_end = ack["offset"].as_u64().unwrap();
    while *last < round_end {
        let m = good
            .next(DEADLINE)
            .await
            .expect("good viewer keeps receiving");
        if let (Some(o), true) = (m["offset"].as_u64(), m["type"] != "operation_list") {
            assert_eq!(o, *last + 1, "no gap for a viewer that keeps up");
            *last = o;
        }
    }
}

#[tokio::test]
async fn a_viewer_that_did_not_ask_for_conflation_misses_nothing_silently() {
    // Conflation would start at 64 KiB behind (the default), SLOW_CLIENT at 256 KiB.
    let h = hub().args(["--slow-client-bytes", "262144"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("big", "default"), 1).await;
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"default"}"#)
        .await;
    // One operation's progress only, ~16 MB of it while the viewer reads
    // nothing: far more than the kernel's socket buffers (4 MiB at most
    // here) and the queue take. A conflating viewer's queue would stay one
    // update long; this one must not lose any of it silently.
    let pad = "p".repeat(8000);
    for n in 1..=2000u64 {
        let mut m = progress("big", "default", n + 1, (n % 100) as f64);
        m["details"] = json!({ "pad": pad });
        publish(&mut p, m, n + 1).await;
    }
    let (texts, code) = stuck.read_until_close(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1013));
    let msgs: Vec<Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(msgs.last().unwrap()["code"], "SLOW_CLIENT");
    let subscribed = msgs.iter().find(|m| m["type"] == "subscribed").unwrap();
    let first = subscribed["offset"].as_u64().unwrap() + 1;
    let events: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "progress_update")
        .collect();
    for (want, m) in (first..).zip(&events) {
        assert_eq!(
            m["offset"], want,
            "every event up to the drop, none skipped"
        );
    }
    assert!(!events.is_empty(), "it got events before it fell behind");
}

/// A viewer that pauses reading for longer than the idle timeout (and
/// sends nothing meanwhile) is not dropped with a reset: when it reads
/// again it gets what was queued, then the error that explains the close
/// (`SLOW_CLIENT`: its queue passed the limit, or `IDLE_TIMEOUT`: it was
/// silent) as the last message, then the matching close code.
#[tokio::test]
async fn a_viewer_that_pauses_past_the_idle_timeout_still_learns_why_it_was_closed() {
    let h = hub()
        .args([
            "--idle-timeout",
            "1s",
            "--heartbeat-interval",
            "300ms",
            "--conflate-after-bytes",
            "65536",
            "--slow-client-bytes",
            "262144",
        ])
        .start()
        .await;
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"default"}"#)
        .await;
    // Subscribed (its snapshot read) before the flood, so every event of
    // it is live for this viewer.
    loop {
        let (_, payload) = stuck.next_frame(DEADLINE).await.expect("the snapshot");
        if String::from_utf8_lossy(&payload).contains("\"operation_list\"") {
            break;
        }
    }
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "flood", 300, 8000).await;
    // The pause itself (not a synchronisation): twice the idle timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (texts, code) = stuck.read_until_close(Duration::from_secs(30)).await;
    let last: Value = serde_json::from_str(texts.last().expect("messages")).unwrap();
    assert_eq!(
        last["type"], "error",
        "the error is the last message: {last}"
    );
    let expected = match last["code"].as_str() {
        Some("SLOW_CLIENT") => 1013,
        Some("IDLE_TIMEOUT") => 1001,
        other => panic!("unexpected error {other:?}: {last}"),
    };
    assert_eq!(code, Some(expected), "{last}");
    // Before it, events in offset order from the start, with no gap.
    let offsets: Vec<u64> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|m| m["type"] == "operation_started")
        .filter_map(|m| m["offset"].as_u64())
        .collect();
    assert!(!offsets.is_empty(), "it got events before it fell behind");
    assert!(
        offsets.iter().zip(1..).all(|(o, i)| *o == i),
        "no gap: {offsets:?}"
    );
}

/// A viewer with nothing waiting is not behind, however large one event
/// is: with `--max-message-size` raised, a 700 KB message (its event
/// carries it twice, past the 1 MiB slow-client limit) still reaches a
/// viewer that reads, instead of dropping it as slow.
#[tokio::test]
async fn one_large_event_is_not_a_slow_viewer() {
    let h = hub().args(["--max-message-size", "2000000"]).start().await;
    let (mut v, _) = subscriber(&h, "default").await;
    v.next_of("operation_list", DEADLINE).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("big", "default"), 1).await;
    let mut m = progress("big", "default", 2, 50.0);
    m["details"] = json!({ "blob": "b".repeat(700_000) });
    assert_eq!(publish(&mut p, m, 2).await["type"], "ack");
    let ev = v.next_of("progress_update", DEADLINE).await;
    assert_eq!(
        ev["state"]["details"]["blob"].as_str().map(str::len),
        Some(700_000)
    );
    publish(&mut p, progress("big", "default", 3, 60.0), 3).await;
    let ev = v.next_of("progress_update", DEADLINE).await;
    assert_eq!(ev["offset"], 3, "still subscribed");
}

/// Snapshots and replays do not count against the slow-client limit (a
/// viewer may resume from far back), but a peer that subscribes again and
/// again without reading cannot pile them up: once more than 16 MiB of
/// them wait, the hub reads no more of its messages until it reads. One
/// that reads gets every answer, however fast it subscribed.
#[tokio::test]
async fn subscribing_again_and_again_without_reading_stalls_only_that_connection() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "big", 300, 8000).await;
    // Each snapshot is about 2.5 MB.
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    for id in 1..=40u64 {
        let sub = format!(r#"{{"type":"subscribe","id":{id},"namespace":"default"}}"#);
        stuck.send_frame(1, sub.as_bytes()).await;
    }
    let subscribes = || async {
        let text = reqwest::get(format!("{}/metrics", h.http()))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let total = text
            .lines()
            .filter(|l| l.starts_with("progress_hub_resumes_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        Some(total as u64)
    };
    // The first subscribes are taken (until the writer is stuck on this
    // peer's full socket, or 16 MiB of snapshots wait)...
    eventually("the first subscribe to be taken", DEADLINE, || async {
        subscribes().await.filter(|n| *n >= 1)
    })
    .await;
    // ... and not the forty, however long the hub is given (bounded here).
    let all = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if subscribes().await.unwrap_or(0) >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        all.is_err(),
        "the hub queued a snapshot for every subscribe"
    );
    assert!(subscribes().await.unwrap() <= 10);
    // Reading, it gets all forty answers and no error.
    let mut answered = 0;
    while answered < 40 {
        let (op, payload) = stuck.next_frame(DEADLINE).await.expect("a frame");
        assert_eq!(op, 1, "no close");
        let text = String::from_utf8_lossy(&payload).into_owned();
        assert!(
            !text.lines().any(|l| l.starts_with("{\"type\":\"error\"")),
            "{}",
            &text[..text.len().min(300)]
        );
        answered += text
            .lines()
            .filter(|l| l.starts_with("{\"type\":\"subscribed\""))
            .count();
    }
}

/// A snapshot does not count against a viewer's slow limit, so viewers
/// that subscribe and never read could hold one each, hub-wide without
/// bound: past `--max-snapshot-bytes` of unread snapshots a subscribe that
/// needs one is refused (the refused connection keeps what it had), and
/// once the stuck viewer is gone its snapshot no longer counts.
#[tokio::test]
async fn unread_snapshots_are_bounded_hub_wide() {
    let h = hub()
        .args(["--max-snapshot-bytes", "1000000"])
        .start()
        .await;
    // About 8 MB of operations: more than the kernel buffers between the
    // hub and a viewer that does not read.
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "big", 160, 50_000).await;
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"default"}"#)
        .await;
    // Its subscription (and so its snapshot) first: were the other
    // viewer's snapshot made first and still unread, the stuck one would
    // be the one refused, and hold nothing.
    wait_for_subscriptions(&h, 1, "the stuck viewer's subscription").await;
    let mut v = Ws::connect(&h.ws_url()).await;
    let e = subscribe_until(&mut v, "error", "the big snapshot to be held").await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["data"]["reason"], "snapshots", "{e}");
    assert_eq!(e["data"]["limit"], 1_000_000, "{e}");
    assert!(e["data"]["retry_after_ms"].is_u64(), "{e}");
    // Counted once (the engine and the outbox each counted it before).
    let metrics = metrics_text(&h).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"progress_hub_rate_limited_total{limit="snapshots"} 1"#),
        "{metrics}"
    );
    // The producer is not held up meanwhile.
    let ack = publish(&mut p, progress("big1", "default", 2, 5.0), 500).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    drop(stuck);
    let s = subscribe_until(
        &mut v,
        "subscribed",
        "a snapshot once the stuck viewer is gone",
    )
    .await;
    assert_eq!(s["recovered"], false);
    let list = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(list["operations"].as_array().map(Vec::len), Some(160));
}

/// The same bound holds for SSE viewers: the stream copies a snapshot
/// into its event, and the snapshot still counts until the client has
/// taken that event (it stopped counting at the copy, so 40 unread SSE
/// streams held 2 GB past a 512 MiB bound).
#[tokio::test]
async fn unread_sse_snapshots_are_bounded_too() {
    let h = hub()
        .args(["--max-snapshot-bytes", "1000000"])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "big", 160, 50_000).await;
    let stuck = stuck_sse_stream(&h).await;
    wait_for_subscriptions(&h, 1, "the stuck stream's subscription").await;
    let mut v = Ws::connect(&h.ws_url()).await;
    let e = subscribe_until(&mut v, "error", "the SSE snapshot to be held").await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["data"]["reason"], "snapshots", "{e}");
    // Another SSE request meanwhile is refused before its stream starts,
    // as an HTTP 429 (it was a 200 stream that said RATE_LIMITED once and
    // then carried nothing, for ever: EventSource never retried).
    let stream_url = format!("{}/api/v1/stream?namespace=default", h.http());
    let r = reqwest::get(&stream_url).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["error"]["data"]["reason"], "snapshots", "{body}");
    // Refused, so never counted as accepted (only the stuck stream is).
    let metrics = metrics_text(&h).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"progress_hub_connections_accepted_total{transport="sse"} 1"#),
        "{metrics}"
    );
    drop(stuck);
    let s = subscribe_until(&mut v, "subscribed", "a snapshot once the stream is gone").await;
    assert_eq!(s["recovered"], false);
    // Once that snapshot is read too, there is room for a stream's.
    v.next_of("operation_list", DEADLINE).await;
    let r = reqwest::get(&stream_url).await.unwrap();
    assert_eq!(r.status(), 200, "a stream once there is room");
}

/// Subscribes `v` to `default` again and again until the reply's type is
/// `ty`; panics after the deadline.
async fn subscribe_until(v: &mut Ws, ty: &str, what: &str) -> Value {
    let end = tokio::time::Instant::now() + DEADLINE;
    for id in 1.. {
        let r = v
            .request(json!({"type": "subscribe", "namespace": "default"}), id)
            .await;
        if r["type"] == ty {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}
