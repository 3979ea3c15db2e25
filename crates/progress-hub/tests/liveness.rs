//! Heartbeats, WebSocket pings, idle timeout, stall and resume, and
//! cancellation (delivered, queued while away, and hub-made).

mod common;
use common::*;

#[tokio::test]
async fn heartbeats_arrive_and_pongs_keep_a_client_alive() {
    let h = hub()
        .args(["--heartbeat-interval", "200ms", "--idle-timeout", "1s"])
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    let first = v.next_of("heartbeat", Duration::from_secs(2)).await;
    assert!(first["timestamp"].is_u64());
    assert!(first["clients_connected"].as_u64().unwrap() >= 1);
    // The client library answers the hub's pings with pongs: that is
    // activity, so well past the idle timeout it is still connected.
    let t0 = first["timestamp"].as_u64().unwrap();
    v.until(
        |m| m["type"] == "heartbeat" && m["timestamp"].as_u64().unwrap() > t0 + 2_500,
        Duration::from_secs(6),
    )
    .await;
}

#[tokio::test]
async fn a_silent_client_gets_idle_timeout_then_1001() {
    let h = hub()
        .args(["--heartbeat-interval", "200ms", "--idle-timeout", "800ms"])
        .start()
        .await;
    // A raw client that never sends a frame, not even a pong.
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    let (texts, code) = raw.read_until_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1001));
    let last: Value = serde_json::from_str(texts.last().unwrap()).unwrap();
    assert_eq!(last["code"], "IDLE_TIMEOUT");
    assert!(texts.iter().any(|t| t.contains("\"heartbeat\"")));
}

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let h = hub().start().await;
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    raw.send_frame(1, &[b'{', 0xff, 0xfe, b'}']).await;
    let (_, code) = raw.read_until_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1007));
}

#[tokio::test]
async fn frames_that_break_rfc6455_close_1002_and_the_hub_goes_on() {
    let h = hub().start().await;
    let cases: [(&str, Vec<u8>); 4] = [
        // A text frame `{}` sent without a mask.
        ("unmasked", vec![0x81, 0x02, b'{', b'}']),
        // RSV1 set without a negotiated extension.
        ("reserved bit", vec![0xC1, 0x80, 0, 0, 0, 0]),
        // Opcode 3 is reserved.
        ("reserved opcode", vec![0x83, 0x80, 0, 0, 0, 0]),
        // A ping without FIN: control frames must not be fragmented.
        ("fragmented ping", vec![0x09, 0x80, 0, 0, 0, 0]),
    ];
    for (what, frame) in cases {
        let mut raw = RawWs::connect(&h.addr, "/ws").await;
        raw.send_bytes(&frame).await;
        let (_, code) = raw.read_until_close(Duration::from_secs(5)).await;
        assert_eq!(code, Some(1002), "{what}");
    }
    // The hub itself is unharmed.
    let (_, sub) = subscriber(&h, "default").await;
    assert_eq!(sub["type"], "subscribed");
}

#[tokio::test]
async fn stall_and_resume_events() {
    let h = hub().args(["--stall-timeout", "300ms"]).start().await;
    let (mut v, _) = subscriber(&h, "default").await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("s", "default"), 1).await;
    let st = v.next_of("operation_stalled", Duration::from_secs(5)).await;
    assert_eq!(st["state"]["state"], "stalled");
    assert_eq!(st["offset"], 2);
    let ack = publish(&mut p, progress("s", "default", 2, 10.0), 2).await;
    assert_eq!(ack["offset"], 4);
    let r = v.next_of("operation_resumed", DEADLINE).await;
    assert_eq!(r["offset"], 3);
    assert_eq!(r["state"]["state"], "running");
    let u = v.next_of("progress_update", DEADLINE).await;
    assert_eq!(u["offset"], 4);
}

/// A stalled operation keeps the hub's estimate: its rate decayed by the
/// silence, so its ETA has grown (null is for "cannot estimate" and
/// "finished" only).
#[tokio::test]
async fn a_stalled_operation_carries_its_grown_eta() {
    let h = hub().args(["--stall-timeout", "1s"]).start().await;
    let (mut v, _) = subscriber(&h, "default").await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("e", "default"), 1).await;
    let first = std::time::Instant::now();
    publish(&mut p, progress("e", "default", 2, 10.0), 2).await;
    // The estimator needs reports spanning a second: time must pass here,
    // this is not a wait for the hub.
    tokio::time::sleep_until((first + Duration::from_millis(1100)).into()).await;
    publish(&mut p, progress("e", "default", 3, 20.0), 3).await;
    let last = loop {
        let u = v.next_of("progress_update", DEADLINE).await;
        if u["state"]["progress"] == 20.0 {
            break u;
        }
    };
    let eta = last["state"]["eta_seconds"].as_f64().expect("an estimate");
    let rate = last["state"]["rate"].as_f64().expect("a rate");
    let st = v.next_of("operation_stalled", Duration::from_secs(5)).await;
    assert_eq!(st["state"]["state"], "stalled");
    let stalled_rate = st["state"]["rate"].as_f64().expect("a decayed rate");
    let stalled_eta = st["state"]["eta_seconds"].as_f64().expect("a grown ETA");
    assert!(stalled_rate < rate && stalled_eta > eta, "{last}\n{st}");
}

#[tokio::test]
async fn cancel_reaches_the_producer_and_ends_with_canceled() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("c", "default"), 1).await;
    let (mut v, _) = subscriber(&h, "default").await;
    let ok = v
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "c"}),
            5,
        )
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let note = p.next_of("cancel_requested", DEADLINE).await;
    assert_eq!(note["operation_id"], "c");
    assert_eq!(note["requested_by"], "anonymous");
    let ack = publish(&mut p, progress("c", "default", 2, 5.0), 2).await;
    assert_eq!(ack["cancel_requested"], true);
    let ev = v.next_of("progress_update", DEADLINE).await;
    assert_eq!(ev["state"]["cancel_requested"], true);
    publish(&mut p, json!({"type": "operation_canceled", "operation_id": "c", "seq": 3, "reason": "user asked"}), 3).await;
    let ev = v.next_of("operation_canceled", DEADLINE).await;
    assert_eq!(ev["state"]["state"], "canceled");
    let e = v
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "c"}),
            6,
        )
        .await;
    assert_eq!(e["code"], "OPERATION_FINISHED");
    let e = v
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "nope"}),
            7,
        )
        .await;
    assert_eq!(e["code"], "UNKNOWN_OPERATION");
}

#[tokio::test]
async fn cancel_is_queued_while_the_producer_is_away() {
    let h = hub().args(["--stall-timeout", "5s"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("q", "default"), 1).await;
    p.close().await;
    let (status, body) = post_json(
        &format!("{}/api/v1/namespaces/default/operations/q/cancel", h.http()),
        &json!({}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["operation"]["cancel_requested"], true);
    let mut p = Ws::connect(&h.ws_url()).await;
    p.send(
        json!({"type": "progress_update", "id": 2, "operation_id": "q", "seq": 2, "progress": 3}),
    )
    .await;
    let note = p.next_of("cancel_requested", DEADLINE).await;
    assert_eq!(note["operation_id"], "q");
}

#[tokio::test]
async fn silent_producer_is_canceled_by_the_hub() {
    let h = hub().args(["--stall-timeout", "300ms"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("g", "default"), 1).await;
    p.close().await;
    let (mut v, _) = subscriber(&h, "default").await;
    let ok = v
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "g"}),
            2,
        )
        .await;
    assert_eq!(ok["type"], "ok");
    // Stalled first (no word from the producer for the stall timeout),
    // also when the hub's cancel falls due in the same tick: it used to
    // skip the stall and go straight to canceled.
    let stalled = v.next_of("operation_stalled", Duration::from_secs(5)).await;
    assert_eq!(stalled["operation_id"], "g");
    let ev = v
        .next_of("operation_canceled", Duration::from_secs(5))
        .await;
    assert_eq!(ev["state"]["state"], "canceled");
    assert_eq!(ev["offset"], stalled["offset"].as_u64().unwrap() + 1);
    assert!(ev.get("seq").is_none());
}

/// The hub cancels for a producer that is gone, not for one that is still
/// connected and taking its time to stop: that one's own report is
/// accepted however late; once a producer leaves, the hub cancels a stall
/// timeout after it left.
#[tokio::test]
async fn a_connected_producer_is_left_to_answer_a_cancel() {
    let h = hub()
        .args(["--stall-timeout", "300ms", "--heartbeat-interval", "200ms"])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("slow", "default"), 1).await;
    publish(&mut p, started("quits", "default"), 2).await;
    let (mut v, _) = subscriber(&h, "default").await;
    for (op, id) in [("slow", 2), ("quits", 3)] {
        let ok = v
            .request(
                json!({"type": "cancel", "namespace": "default", "operation_id": op}),
                id,
            )
            .await;
        assert_eq!(ok["type"], "ok", "{ok}");
        let note = p.next_of("cancel_requested", DEADLINE).await;
        assert_eq!(note["operation_id"], op);
    }
    // Four heartbeats: more than two stall timeouts with the producer
    // connected and silent. Nothing is canceled meanwhile.
    let mut beats = 0;
    while beats < 4 {
        let m = v.next(DEADLINE).await.expect("a message");
        assert_ne!(m["type"], "operation_canceled", "{m}");
        beats += usize::from(m["type"] == "heartbeat");
    }
    let done = json!({"type": "operation_canceled", "namespace": "default", "operation_id": "slow", "seq": 2, "reason": "stopped cleanly"});
    let ack = publish(&mut p, done, 4).await;
    assert_eq!(
        ack["type"], "ack",
        "the producer's own report is taken: {ack}"
    );
    let ev = v.next_of("operation_canceled", DEADLINE).await;
    assert_eq!(
        (&ev["operation_id"], &ev["reason"]),
        (&json!("slow"), &json!("stopped cleanly"))
    );
    // The producer goes: the hub cancels what it left, a stall timeout later.
    let left = std::time::Instant::now();
    p.close().await;
    let ev = v.next_of("operation_canceled", DEADLINE).await;
    assert!(
        left.elapsed() >= Duration::from_millis(300),
        "{:?}",
        left.elapsed()
    );
    assert_eq!(ev["operation_id"], "quits");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap()
            .starts_with("canceled by the hub"),
        "{ev}"
    );
}

#[tokio::test]
async fn an_operation_abandoned_by_its_producer_is_failed_by_the_hub() {
    let h = hub()
        .args(["--stall-timeout", "200ms", "--abandon-timeout", "700ms"])
        .start()
        .await;
    let (mut v, _) = subscriber(&h, "default").await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("gone", "default"), 1).await;
    publish(&mut p, progress("gone", "default", 2, 30.0), 2).await;
    let st = v.next_of("operation_stalled", Duration::from_secs(5)).await;
    assert_eq!(st["offset"], 3);
    let ev = v.next_of("operation_failed", Duration::from_secs(5)).await;
    assert_eq!(ev["offset"], 4);
    assert_eq!(ev["state"]["state"], "failed");
    assert_eq!(ev["state"]["progress"], 30.0);
    assert!(
        ev["error"].as_str().unwrap().starts_with("abandoned"),
        "{ev}"
    );
    assert_eq!(ev["state"]["error"], ev["error"]);
    assert!(ev["state"]["finished_at"].is_u64());
    // The producer that comes back is told the operation is over.
    let late = publish(&mut p, progress("gone", "default", 3, 31.0), 3).await;
    assert_eq!(late["code"], "OPERATION_FINISHED", "{late}");
    let url = format!("{}/api/v1/namespaces/default/operations/gone", h.http());
    let (status, got) = get_json(&url).await;
    assert_eq!(
        (status, &got["operation"]["state"]),
        (200, &json!("failed"))
    );
    let metrics = metrics_text(&h).await;
    for line in [
        "progress_hub_operations_ended_by_hub_total{reason=\"abandoned\"} 1",
        "progress_hub_operations_ended_by_hub_total{reason=\"producer_gone\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

/// A client that was not reading when the hub closed it for silence (a
/// synchronous test that sleeps past the idle timeout while heartbeat
/// pings pile up) still reads everything when it comes back, answering
/// those pings as libraries do: the hub keeps the socket for a few seconds
/// after its close frame, so the pongs do not meet a reset that would
/// destroy the error and the close frame before they are read.
#[tokio::test]
async fn a_client_back_after_an_idle_close_still_reads_why() {
    let h = hub()
        .args(["--heartbeat-interval", "300ms", "--idle-timeout", "1s"])
        .start()
        .await;
    let mut c = RawWs::connect(&h.addr, "/ws").await;
    // Away: past the idle close and the second after it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut texts = Vec::new();
    let code = loop {
        match c.next_frame(DEADLINE).await {
            Some((9, ping)) => c.send_frame(10, &ping).await,
            Some((1, text)) => texts.push(String::from_utf8(text).unwrap()),
            Some((8, p)) => break (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])),
            Some(_) => {}
            None => panic!("the connection ended before the close frame; read {texts:?}"),
        }
    };
    assert_eq!(code, Some(1001));
    let last: Value = serde_json::from_str(texts.last().expect("the error")).unwrap();
    assert_eq!(last["code"], "IDLE_TIMEOUT");
}

/// A hub that was stopped (SIGSTOP, a paused VM) for longer than the idle
/// timeout sent no pings meanwhile: its clients' silence is its own. When
/// it runs again they get a whole idle timeout (in which they answer the
/// next ping) instead of IDLE_TIMEOUT at once, and one heartbeat instead of
/// every one it missed in a burst.
#[tokio::test]
async fn after_the_hub_was_stopped_its_clients_are_not_idle_and_heartbeats_do_not_burst() {
    use nix::sys::signal::Signal;
    let h = hub()
        .args(["--heartbeat-interval", "500ms", "--idle-timeout", "2s"])
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.next_of("heartbeat", DEADLINE).await;
    h.signal(Signal::SIGSTOP);
    // The length of the stop (not a synchronisation): past the idle
    // timeout and seven heartbeat intervals.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    h.signal(Signal::SIGCONT);
    let end = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut beats = Vec::new();
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        match v.next(left).await {
            Ok(m) if m["type"] == "heartbeat" => beats.push(m["timestamp"].as_u64().unwrap()),
            Ok(m) => assert_ne!(m["type"], "error", "{m}"),
            Err(WsError::Timeout) => break,
            Err(e) => panic!("closed after the hub came back: {e:?}"),
        }
    }
    assert!(beats.len() >= 4, "heartbeats go on: {beats:?}");
    for w in beats.windows(2) {
        assert!(
            w[1] >= w[0] + 200,
            "no burst of missed heartbeats: {beats:?}"
        );
    }
}
