//! Subscribe and resume: exact replay with no gap or duplicate (also for
//! events published while the replay is sent), snapshots otherwise, and
//! filters.

mod common;
use common::*;

async fn publish_n(p: &mut Ws, op: &str, from_seq: u64, n: u64) {
    for i in 0..n {
        let seq = from_seq + i;
        let ack = publish(
            p,
            progress(op, "default", seq, (seq % 100) as f64),
            1000 + seq,
        )
        .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_then_live() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    publish_n(&mut p, "a", 2, 9).await; // offsets 1..=10
    let (mut v, sub) = subscriber(&h, "default").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    assert_eq!(sub["offset"], 10);
    let snap = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(snap["offset"], 10);
    assert_eq!(snap["operations"][0]["last_offset"], 10);
    v.close().await;

    publish_n(&mut p, "a", 11, 5).await; // offsets 11..=15 while away

    let mut v = Ws::connect(&h.ws_url()).await;
    v.send(json!({"type": "subscribe", "id": 2, "namespace": "default", "resume": {"epoch": epoch, "offset": 7}})).await;
    // Publish concurrently with the replay: still no gap and no duplicate.
    let producer = tokio::spawn(async move {
        publish_n(&mut p, "a", 16, 20).await; // offsets 16..=35
        p
    });
    let sub = v.next_of("subscribed", DEADLINE).await;
    assert_eq!(sub["recovered"], true);
    let at = sub["offset"].as_u64().unwrap();
    assert!(at >= 15);
    let mut offsets = Vec::new();
    while offsets.last() != Some(&35) {
        let m = v.next(DEADLINE).await.expect("event");
        assert_ne!(
            m["type"], "operation_list",
            "no snapshot on an exact resume"
        );
        if let Some(o) = m["offset"]
            .as_u64()
            .filter(|_| m["type"] == "progress_update")
        {
            offsets.push(o);
        }
    }
    assert_eq!(offsets, (8..=35).collect::<Vec<_>>());
    producer.await.unwrap();
}

#[tokio::test]
async fn snapshot_when_epoch_changed_or_too_far_behind() {
    let h = hub().args(["--replay-limit", "5"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    publish_n(&mut p, "a", 2, 9).await; // offsets 1..=10
    let (_, sub) = subscriber(&h, "default").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();

    let mut v = Ws::connect(&h.ws_url()).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": "other", "offset": 9}}), 1).await;
    assert_eq!(s["recovered"], false);
    let snap = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(snap["offset"], s["offset"]);
    assert_eq!(snap["epoch"], epoch.as_str());
    assert_eq!(snap["operations"][0]["progress"], 10.0);

    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": epoch, "offset": 4}}), 2).await;
    assert_eq!(
        s["recovered"], false,
        "6 events behind with --replay-limit 5"
    );
    v.next_of("operation_list", DEADLINE).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": epoch, "offset": 5}}), 3).await;
    assert_eq!(s["recovered"], true);
}

#[tokio::test]
async fn history_size_bounds_replay() {
    let h = hub().args(["--history-size", "3"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    publish_n(&mut p, "a", 2, 5).await; // offsets 1..=6; retained 4..=6
    let (_, sub) = subscriber(&h, "default").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    let mut v = Ws::connect(&h.ws_url()).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": epoch, "offset": 2}}), 1).await;
    assert_eq!(s["recovered"], false);
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": epoch, "offset": 3}}), 2).await;
    assert_eq!(s["recovered"], true);
    let (_, page) = get_json(&format!(
        "{}/api/v1/namespaces/default/events?after=0",
        h.http()
    ))
    .await;
    assert_eq!(page["first_offset"], 4);
    assert_eq!(page["last_offset"], 6);
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn filters_by_glob_and_kind() {
    let h = hub().start().await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.request(json!({"type": "subscribe", "namespace": "default", "filter": {"operations": ["render.*"], "kinds": ["render"]}}), 1).await;
    v.next_of("operation_list", DEADLINE).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("backup.1", "default"), 1).await;
    let mut other_kind = started("render.2", "default");
    other_kind["kind"] = "upload".into();
    publish(&mut p, other_kind, 2).await;
    publish(&mut p, started("render.1", "default"), 3).await;
    let ev = v.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev["operation_id"], "render.1");
    // A snapshot is filtered the same way.
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "filter": {"operations": ["backup.?"]}}), 2).await;
    assert_eq!(s["recovered"], false);
    let snap = v.next_of("operation_list", DEADLINE).await;
    let ids: Vec<&str> = snap["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["backup.1"]);
    let ok = v
        .request(json!({"type": "unsubscribe", "namespace": "default"}), 3)
        .await;
    assert_eq!(ok["type"], "ok");
}

/// Any kind an operation may have (1-128 characters, of any script) can be
/// named in a filter, over the WebSocket and over SSE alike; one character
/// more is refused by both.
#[tokio::test]
async fn a_filter_can_name_the_longest_kind() {
    let h = hub().start().await;
    let kind = "\u{1f680}".repeat(128); // 512 bytes
    let mut p = Ws::connect(&h.ws_url()).await;
    let mut start = started("rocket", "default");
    start["kind"] = kind.clone().into();
    assert_eq!(publish(&mut p, start, 1).await["type"], "ack");
    let mut v = Ws::connect(&h.ws_url()).await;
    let sub = |kinds: Vec<String>| json!({"type": "subscribe", "namespace": "default", "filter": {"kinds": kinds}});
    let ok = v.request(sub(vec![kind.clone()]), 1).await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    let snap = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(snap["operations"][0]["operation_id"], "rocket", "{snap}");
    let refused = v.request(sub(vec![format!("{kind}x")]), 2).await;
    assert_eq!(refused["code"], "BAD_MESSAGE", "{refused}");
    let glob = v
        .request(
            json!({"type": "subscribe", "namespace": "default",
        "filter": {"operations": ["*".repeat(257)]}}),
            3,
        )
        .await;
    assert_eq!(glob["code"], "BAD_MESSAGE", "{glob}");

    let url = |k: &str| {
        let mut u = reqwest::Url::parse(&format!("{}/api/v1/stream", h.http())).unwrap();
        u.query_pairs_mut()
            .append_pair("namespace", "default")
            .append_pair("kinds", k);
        u.to_string()
    };
    let mut sse = Sse::connect(&url(&kind), None).await.expect("sse");
    let snap = sse.next_of("operation_list", DEADLINE).await;
    assert_eq!(snap.data["operations"][0]["operation_id"], "rocket");
    let status = Sse::connect(&url(&format!("{kind}x")), None)
        .await
        .err()
        .map(|e| e.0);
    assert_eq!(status, Some(400));
}

#[tokio::test]
async fn namespaces_are_separate_streams() {
    let h = hub().start().await;
    let (mut v, _) = subscriber(&h, "team-b").await;
    v.next_of("operation_list", DEADLINE).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let a = publish(&mut p, started("x", "team-a"), 1).await;
    let b = publish(&mut p, started("x", "team-b"), 2).await;
    assert_eq!(a["offset"], 1);
    assert_eq!(b["offset"], 1);
    let ev = v.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev["namespace"], "team-b");
}

/// A long replay (3,000 events, about 2 MB) reaches a resuming viewer in
/// frames of at most 256 KiB, complete and in order: one frame of
/// everything would be refused by clients that cap messages at 1 MiB, as
/// Python's `websockets` does by default.
#[tokio::test]
async fn a_long_replay_comes_in_frames_a_client_can_take() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    let pad = "r".repeat(500);
    for seq in 2..=3000u64 {
        let mut m = progress("a", "default", seq, (seq % 100) as f64);
        m["message"] = pad.clone().into();
        p.send(m).await;
    }
    let epoch = loop {
        let ack = p.next_of("ack", DEADLINE).await;
        if ack["seq"] == 3000 {
            let (_, sub) = subscriber(&h, "default").await;
            break sub["epoch"].as_str().unwrap().to_owned();
        }
    };
    let mut v = RawWs::connect(&h.addr, "/ws").await;
    let sub = json!({"type": "subscribe", "id": 1, "namespace": "default", "resume": {"epoch": epoch, "offset": 0}});
    v.send_frame(1, sub.to_string().as_bytes()).await;
    let mut offsets = Vec::new();
    let mut frames = 0;
    while offsets.last() != Some(&3000) {
        let (op, payload) = v.next_frame(DEADLINE).await.expect("a frame");
        if op != 1 {
            continue;
        }
        frames += 1;
        assert!(
            payload.len() <= 256 * 1024,
            "a frame of {} bytes",
            payload.len()
        );
        for line in String::from_utf8(payload).unwrap().split('\n') {
            let m: Value = serde_json::from_str(line).unwrap();
            // Events carry the operation's state; `subscribed` does not.
            if let Some(o) = m["offset"].as_u64().filter(|_| m.get("state").is_some()) {
                offsets.push(o);
            }
        }
    }
    assert!(
        offsets.iter().copied().eq(1..=3000),
        "{} events, first {:?}",
        offsets.len(),
        &offsets[..offsets.len().min(5)]
    );
    assert!(frames >= 8, "{frames} frames for ~2 MB");
}
