//! The WebSocket protocol end to end against the real binary: every
//! producer and viewer message, every error code reachable from outside.

mod common;
use common::*;

#[tokio::test]
async fn producer_lifecycle_acks_and_events() {
    let h = hub().start().await;
    let (mut viewer, sub) = subscriber(&h, "default").await;
    assert_eq!(sub["offset"], 0);
    assert_eq!(sub["recovered"], false);
    let snap = viewer.next_of("operation_list", DEADLINE).await;
    assert_eq!(snap["offset"], 0);
    assert_eq!(snap["operations"], json!([]));

    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut p, started("r.1", "default"), 10).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["offset"], 1);
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["operation_id"], "r.1");
    assert_eq!(ack["namespace"], "default");
    assert!(ack.get("duplicate").is_none());

    let ev = viewer.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev["offset"], 1);
    assert_eq!(ev["state"]["state"], "running");
    assert_eq!(ev["state"]["name"], "Job r.1");
    for key in [
        "operation_id",
        "namespace",
        "name",
        "kind",
        "state",
        "progress",
        "current",
        "total",
        "step",
        "message",
        "details",
        "error",
        "parent_id",
        "started_at",
        "updated_at",
        "finished_at",
        "rate",
        "eta_seconds",
        "cancel_requested",
        "last_offset",
    ] {
        assert!(ev["state"].get(key).is_some(), "state lacks {key}: {ev}");
    }
    assert!(ev["timestamp"].as_u64().unwrap() > 1_600_000_000_000);

    let ack = publish(
        &mut p,
        json!({"type": "progress_update", "operation_id": "r.1", "seq": 2, "current": 25}),
        11,
    )
    .await;
    assert_eq!(ack["offset"], 2);
    let ev = viewer.next_of("progress_update", DEADLINE).await;
    assert_eq!(ev["state"]["progress"], 25.0);
    assert_eq!(ev["state"]["last_offset"], 2);

    let ack = publish(
        &mut p,
        json!({"type": "operation_completed", "operation_id": "r.1", "seq": 3}),
        12,
    )
    .await;
    assert_eq!(ack["offset"], 3);
    let ev = viewer.next_of("operation_completed", DEADLINE).await;
    assert_eq!(ev["state"]["state"], "completed");
    assert_eq!(ev["state"]["progress"], 100.0);
    assert!(ev["state"]["finished_at"].is_u64());

    let err = publish(&mut p, progress("r.1", "default", 4, 1.0), 13).await;
    assert_eq!(err["code"], "OPERATION_FINISHED");
    assert_eq!(err["data"]["operation_id"], "r.1");
    assert_eq!(err["data"]["state"], "completed", "the state it ended in");
    let dup = publish(
        &mut p,
        json!({"type": "operation_completed", "operation_id": "r.1", "seq": 3}),
        14,
    )
    .await;
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["offset"], 3);
    // A request id that is not one: no id to echo, the operation still named.
    p.send(json!({"type": "progress_update", "id": "x", "operation_id": "r.1", "seq": 4, "progress": 1}))
        .await;
    let err = p.next_of("error", DEADLINE).await;
    assert_eq!(err["code"], "BAD_MESSAGE", "{err}");
    assert_eq!(err["data"]["operation_id"], "r.1", "{err}");
    assert!(err.get("id").is_none(), "{err}");
}

#[tokio::test]
async fn errors_change_nothing_and_keep_the_connection() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    let gap = publish(&mut p, progress("a", "default", 5, 10.0), 2).await;
    assert_eq!(gap["type"], "error");
    assert_eq!(gap["code"], "SEQ_GAP");
    assert_eq!(gap["data"]["expected"], 2);
    assert_eq!(gap["data"]["operation_id"], "a");
    for key in [
        "message",
        "details",
        "timestamp",
        "component",
        "severity",
        "data",
    ] {
        assert!(gap.get(key).is_some(), "error lacks {key}");
    }
    let unknown = publish(&mut p, progress("zzz", "default", 2, 10.0), 3).await;
    assert_eq!(unknown["code"], "UNKNOWN_OPERATION");
    let bad = publish(
        &mut p,
        json!({"type": "progress_update", "operation_id": "a", "seq": 2, "progress": 150}),
        4,
    )
    .await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    let bad = publish(&mut p, json!({"type": "nonsense"}), 5).await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    let bad = publish(
        &mut p,
        json!({"type": "operation_started", "operation_id": "b", "seq": 2, "name": "x"}),
        6,
    )
    .await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    let bad = publish(
        &mut p,
        json!({"type": "progress_update", "seq": 2, "progress": 1}),
        7,
    )
    .await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    p.send_text("{not json").await;
    let bad = p.next_of("error", DEADLINE).await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    // Still open, and no offset was consumed by any of the rejections.
    let ok = publish(&mut p, progress("a", "default", 2, 10.0), 8).await;
    assert_eq!(ok["offset"], 2);
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/default/events?after=0",
        h.http()
    ))
    .await;
    assert_eq!(list["last_offset"], 2);
}

#[tokio::test]
async fn generated_ids_and_pings() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(
        &mut p,
        json!({"type": "operation_started", "seq": 1, "name": "no id"}),
        1,
    )
    .await;
    let id = ack["operation_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let ack2 = publish(
        &mut p,
        json!({"type": "operation_started", "seq": 1, "name": "no id"}),
        2,
    )
    .await;
    assert_ne!(
        ack2["operation_id"], ack["operation_id"],
        "a start without id is a new operation"
    );
    let ack = publish(&mut p, progress(&id, "default", 2, 50.0), 3).await;
    assert_eq!(ack["seq"], 2);
    let pong = p.request(json!({"type": "ping"}), 9).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong["timestamp"].is_u64());
}

#[tokio::test]
async fn abuse_closes_with_1008_after_rate_limited() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    for _ in 0..21 {
        p.send_text("garbage").await;
    }
    let err = p.until(|m| m["code"] == "RATE_LIMITED", DEADLINE).await;
    assert_eq!(err["data"]["reason"], "abuse");
    assert_eq!(err["data"]["limit"], 20, "{err}");
    assert_eq!(p.closed(DEADLINE).await, Some(1008));
}

#[tokio::test]
async fn too_large_and_binary_frames() {
    let h = hub().args(["--max-message-size", "1024"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    p.send_raw(hub_testkit::Message::binary(vec![1, 2, 3]))
        .await;
    let e = p.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "BAD_MESSAGE");
    let big = json!({"type": "operation_started", "seq": 1, "name": "x", "metadata": {"pad": "y".repeat(2000)}});
    p.send(big).await;
    let e = p.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "MESSAGE_TOO_LARGE");
    assert_eq!(e["data"]["limit"], 1024, "{e}");
    assert_eq!(p.closed(DEADLINE).await, Some(1009));
    // So is a frame whose header alone says it is too large: refused at
    // once, before any of it is sent (the hub never holds more than the
    // limit for a client), with the size the header gave.
    for declared in [1025u64, 3 << 20] {
        let mut raw = RawWs::connect(&h.addr, "/ws").await;
        raw.send_header_only(1, declared).await;
        let (texts, code) = raw.read_until_close(DEADLINE).await;
        let e: Value = serde_json::from_str(texts.last().expect("an error")).unwrap();
        assert_eq!(e["code"], "MESSAGE_TOO_LARGE");
        assert_eq!(
            (e["data"]["limit"].clone(), e["data"]["size"].clone()),
            (json!(1024), json!(declared)),
            "{e}"
        );
        assert_eq!(code, Some(1009));
    }
    // And an unfinished fragmented message as soon as its fragments pass
    // the limit (two of 600 bytes; the final fragment never comes).
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    let mut first = vec![0x01u8, 0x80 | 126, 0x02, 0x58, 0, 0, 0, 0];
    first.extend(std::iter::repeat_n(b' ', 600));
    let mut second = vec![0x00u8, 0x80 | 126, 0x02, 0x58, 0, 0, 0, 0];
    second.extend(std::iter::repeat_n(b' ', 600));
    raw.send_bytes(&first).await;
    raw.send_bytes(&second).await;
    let (texts, code) = raw.read_until_close(DEADLINE).await;
    let e: Value = serde_json::from_str(texts.last().expect("an error")).unwrap();
    assert_eq!(
        (e["code"].clone(), e["data"]["size"].clone()),
        (json!("MESSAGE_TOO_LARGE"), json!(1200)),
        "{e}"
    );
    assert_eq!(code, Some(1009));
}

/// The message limit holds for binary frames too: over it, one gets
/// MESSAGE_TOO_LARGE and 1009 like a text frame (it used to get only
/// BAD_MESSAGE up to the codec's own 1 MiB, with the connection open).
#[tokio::test]
async fn a_binary_frame_over_the_limit_is_too_large() {
    let h = hub().args(["--max-message-size", "1024"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    p.send_raw(hub_testkit::Message::binary(vec![0u8; 1024]))
        .await;
    let e = p.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "BAD_MESSAGE", "at the limit: just not JSON text");
    p.send_raw(hub_testkit::Message::binary(vec![0u8; 1025]))
        .await;
    let e = p.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "MESSAGE_TOO_LARGE");
    assert_eq!(e["data"]["limit"], 1024);
    assert_eq!(p.closed(DEADLINE).await, Some(1009));
}

#[tokio::test]
async fn a_tiny_message_limit_still_takes_what_fits() {
    // Any positive limit is accepted; a ping fits in 64 bytes, a start does not.
    let h = hub().args(["--max-message-size", "64"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let pong = p.request(json!({"type": "ping"}), 1).await;
    assert_eq!(pong["type"], "pong");
    p.send(started("a-rather-long-operation-id", "default"))
        .await;
    let e = p.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "MESSAGE_TOO_LARGE");
    assert_eq!(p.closed(DEADLINE).await, Some(1009));
}

/// A resend gets the offset its original got, however far back: the core
/// remembers the latest 256 pairs, and older ones are found in the
/// retained event log (here 600 messages of two interleaved operations).
#[tokio::test]
async fn a_resend_far_back_is_acked_with_the_original_offset() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("old", "default"), 1).await;
    publish(&mut p, started("other", "default"), 2).await;
    let mut offsets = std::collections::HashMap::new();
    for seq in 2..=301u64 {
        for op in ["old", "other"] {
            p.send(progress(op, "default", seq, (seq as f64 / 4.0).min(100.0)))
                .await;
        }
    }
    // Acks may be cumulative: read until the last one, noting each offset.
    while !offsets.contains_key(&("other", 301)) {
        let ack = p.next_of("ack", DEADLINE).await;
        let op = if ack["operation_id"] == "old" {
            "old"
        } else {
            "other"
        };
        offsets.insert(
            (op, ack["seq"].as_u64().unwrap()),
            ack["offset"].as_u64().unwrap(),
        );
    }
    for seq in [2u64, 10, 44, 300] {
        let dup = publish(&mut p, progress("old", "default", seq, 1.0), 1000 + seq).await;
        assert_eq!(dup["duplicate"], true, "{dup}");
        // Offsets: 1 and 2 are the starts, then old/other alternate.
        assert_eq!(dup["offset"], 2 * seq - 1, "seq {seq}: {dup}");
    }
}

/// In one long operation, a resend from further back than the log search
/// could once read (16,384 events from the start) still gets its own
/// offset: the search is a binary search over the retained events.
#[tokio::test]
async fn a_resend_deep_in_a_long_operation_is_acked_with_its_offset() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("long", "default"), 1).await;
    let last = 17_500u64;
    // In windows of 500, reading the acks (a producer that never reads
    // its acks is a slow client like any other).
    for window in (2..=last).collect::<Vec<_>>().chunks(500) {
        for &seq in window {
            let pct = (seq as f64 / last as f64 * 100.0).min(100.0);
            p.send(progress("long", "default", seq, pct)).await;
        }
        let end = *window.last().unwrap();
        // Acks may be cumulative: read until the window's last one.
        p.until(|m| m["type"] == "ack" && m["seq"] == end, DEADLINE)
            .await;
    }
    for seq in [2u64, 9_000, 16_900, 17_200] {
        let dup = publish(&mut p, progress("long", "default", seq, 1.0), seq).await;
        assert_eq!(dup["duplicate"], true, "{dup}");
        assert_eq!(dup["offset"], seq, "seq {seq}: {dup}");
    }
}

/// Past `--finished-retention` an operation leaves snapshots and the HTTP
/// API, but its id stays finished: resends are still re-acked with their
/// original offsets, anything new gets `OPERATION_FINISHED`, and a start is
/// a resend, not a new operation.
#[tokio::test]
async fn a_dropped_operation_stays_finished() {
    let h = hub().args(["--finished-retention", "1s"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let url = complete_and_wait_until_dropped(&h, &mut p, "z").await;
    let done = json!({"type": "operation_completed", "operation_id": "z", "seq": 2});
    assert_reacked(&publish(&mut p, done, 3).await, 2);
    assert_reacked(&publish(&mut p, started("z", "default"), 4).await, 1);
    let e = publish(&mut p, progress("z", "default", 3, 5.0), 5).await;
    assert_eq!(e["code"], "OPERATION_FINISHED", "{e}");
    let cancel = json!({"type": "cancel", "namespace": "default", "operation_id": "z"});
    let e = p.request(cancel, 6).await;
    assert_eq!(e["code"], "OPERATION_FINISHED", "a cancel too: {e}");
    let (status, body) = post_json(&format!("{url}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(get_json(&url).await.0, 404, "no new operation");
}

/// On a connection that both publishes and subscribes, the answer to a
/// message (its ack) comes before the event it made.
#[tokio::test]
async fn the_ack_comes_before_the_event_on_the_same_connection() {
    let h = hub().start().await;
    let (mut c, _) = subscriber(&h, "default").await;
    c.next_of("operation_list", DEADLINE).await;
    for (i, msg) in [
        started("both", "default"),
        progress("both", "default", 2, 5.0),
    ]
    .into_iter()
    .enumerate()
    {
        c.send({
            let mut m = msg;
            m["id"] = json!(i + 1);
            m
        })
        .await;
        let first = c
            .until(|m| m["type"] == "ack" || m.get("state").is_some(), DEADLINE)
            .await;
        assert_eq!(first["type"], "ack", "{first}");
        let ev = c.until(|m| m.get("state").is_some(), DEADLINE).await;
        assert_eq!(ev["offset"], first["offset"], "{ev}");
    }
}

/// The answer to `subscribe` and the snapshot after it come in frames of
/// their own (one JSON document each), even with a heartbeat or events
/// queued around them; events may still share frames.
#[tokio::test]
async fn subscribed_and_the_snapshot_are_one_message_per_frame() {
    let h = hub().args(["--heartbeat-interval", "100ms"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    for round in 0..5u64 {
        let mut v = RawWs::connect(&h.addr, "/ws").await;
        v.send_frame(1, br#"{"type":"subscribe","id":7,"namespace":"default"}"#)
            .await;
        p.send(progress("a", "default", 2 + round, round as f64))
            .await;
        let mut whole = Vec::new();
        while whole.len() < 2 {
            let (op, payload) = v.next_frame(DEADLINE).await.expect("a frame");
            if op != 1 {
                continue;
            }
            let text = String::from_utf8(payload).unwrap();
            if text.contains("\"subscribed\"") || text.contains("\"operation_list\"") {
                let m: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"));
                whole.push(m["type"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(whole, ["subscribed", "operation_list"]);
    }
}

/// A report of only `progress` moves `current` with it through the total
/// (and only `current` moves `progress`): no state shows 80% beside an
/// older 50 of 200 units.
#[tokio::test]
async fn progress_and_current_never_disagree() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let mut start = started("u", "default");
    start["total"] = 200.into();
    publish(&mut p, start, 1).await;
    let (mut v, _) = subscriber(&h, "default").await;
    v.next_of("operation_list", DEADLINE).await;
    let units = json!({"type": "progress_update", "operation_id": "u", "seq": 2, "current": 50});
    publish(&mut p, units, 2).await;
    let s = v.next_of("progress_update", DEADLINE).await["state"].clone();
    assert_eq!(
        (s["progress"].as_f64(), s["current"].as_f64()),
        (Some(25.0), Some(50.0)),
        "{s}"
    );
    publish(&mut p, progress("u", "default", 3, 80.0), 3).await;
    let s = v.next_of("progress_update", DEADLINE).await["state"].clone();
    assert_eq!(
        (s["progress"].as_f64(), s["current"].as_f64()),
        (Some(80.0), Some(160.0)),
        "{s}"
    );
}

/// Free text past its limit is kept cut, not refused: a producer failing
/// with a long stack trace still ends its operation, over WebSocket and
/// HTTP alike, and an empty `error` is an error too.
#[tokio::test]
async fn a_long_error_still_ends_the_operation() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("t", "default"), 1).await;
    let long_message = "m".repeat(5000);
    let update = json!({"type": "progress_update", "operation_id": "t", "seq": 2,
        "progress": 10, "message": long_message, "step": "s".repeat(300)});
    publish(&mut p, update, 2).await;
    let trace = "at frame\n".repeat(2000);
    let failed = json!({"type": "operation_failed", "operation_id": "t", "seq": 3, "error": trace});
    let ack = publish(&mut p, failed, 3).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (status, body) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations/t",
        h.http()
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let s = &body["operation"];
    assert_eq!(s["state"], "failed", "{s}");
    let error = s["error"].as_str().unwrap();
    assert_eq!(error.chars().count(), 4096, "{error}");
    assert!(error.starts_with("at frame\nat frame") && error.ends_with('…'));
    assert_eq!(s["message"].as_str().unwrap().chars().count(), 4096);
    assert_eq!(s["step"].as_str().unwrap().chars().count(), 256);
    // Over HTTP: the same cut, and an empty error ends an operation too.
    let ops = format!("{}/api/v1/namespaces/default/operations", h.http());
    for (op, error, len) in [("h1", "e".repeat(9000), 4096), ("h2", String::new(), 0)] {
        let (status, _) = post_json(
            &format!("{ops}/{op}/events"),
            &json!({"type": "operation_started", "seq": 1, "name": "n"}),
        )
        .await;
        assert_eq!(status, 200);
        let (status, ack) = post_json(
            &format!("{ops}/{op}/events"),
            &json!({"type": "operation_failed", "seq": 2, "error": error}),
        )
        .await;
        assert_eq!(status, 200, "{ack}");
        let (_, body) = get_json(&format!("{ops}/{op}")).await;
        assert_eq!(body["operation"]["state"], "failed");
        assert_eq!(
            body["operation"]["error"].as_str().unwrap().chars().count(),
            len
        );
    }
}
