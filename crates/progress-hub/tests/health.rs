//! Health, readiness and `system_status` against the real binary: `/ready`
//! names its checks; on SIGTERM it turns 503 at once, says which check
//! fails and since when, and stays answerable through the shutdown grace
//! period while clients, new ones included, are still served; `system_status` has
//! every field the dashboard reads and goes only to connections holding a
//! subscription.

mod common;
use common::*;
use nix::sys::signal::Signal;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn ready_is_503_with_the_failing_check_and_since_during_shutdown() {
    // The grace period is the window in which /ready must be seen as 503:
    // long enough that a busy machine does not let the test miss it.
    let mut h = hub().args(["--shutdown-grace", "4s"]).start().await;
    let client = reqwest::Client::new();
    let ready = |c: &reqwest::Client| {
        let url = format!("{}/ready", h.http());
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<Value>().await.ok()?))
        }
    };
    let (s, body) = ready(&client).await.unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"],
        json!({"engine": "ok", "shutdown": "ok", "store": "ok"})
    );
    assert_eq!(body["failing"], json!([]));

    let (mut v, _) = subscriber(&h, "default").await;
    let before = now_ms();
    h.signal(Signal::SIGTERM);
    let body = eventually("/ready to turn 503", DEADLINE, || {
        let f = ready(&client);
        async move { f.await.filter(|(s, _)| *s == 503).map(|(_, b)| b) }
    })
    .await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["shutdown"], "failing");
    assert_eq!(body["checks"]["store"], "ok");
    let failing = body["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{body}");
    assert_eq!(failing[0]["check"], "shutdown");
    assert!(failing[0]["error"]
        .as_str()
        .unwrap()
        .contains("shutting down"));
    let since = failing[0]["since"].as_u64().unwrap();
    assert!(since >= before && since <= now_ms(), "{since} vs {before}");

    // Within the grace period: still alive, the same `since`, and everyone
    // is still served, new clients and HTTP producers included (a load
    // balancer may send some until it sees /ready fail).
    let (s, h200) = get_json(&format!("{}/health", h.http())).await;
    assert_eq!((s, h200["status"].clone()), (200, json!("ok")));
    let (s, again) = ready(&client).await.unwrap();
    assert_eq!(s, 503);
    assert_eq!(again["failing"][0]["since"].as_u64(), Some(since));
    let (mut late_viewer, _) = subscriber(&h, "default").await;
    let url = format!(
        "{}/api/v1/namespaces/default/operations/late/events",
        h.http()
    );
    let (s, ack) = post_json(&url, &started("late", "default")).await;
    assert_eq!((s, &ack["type"]), (200, &json!("ack")), "{ack}");
    late_viewer.next_of("operation_started", DEADLINE).await;
    let pong = v.request(json!({"type": "ping"}), 7).await;
    assert_eq!(pong["type"], "pong");

    // Then the connections are told and closed, and the process exits 0.
    let e = v.until(|m| m["code"] == "SERVER_SHUTDOWN", DEADLINE).await;
    assert_eq!(e["type"], "error");
    assert!(
        now_ms() >= before + 4000,
        "closed only after the grace period"
    );
    // While the hub waits (up to a second) for this client's close frame,
    // new clients and HTTP producers are turned away with SERVER_SHUTDOWN,
    // the producer's operation named.
    let refused = Ws::connect_with(&h.ws_url(), &[]).await.err().unwrap();
    assert_eq!(refused.0, 503);
    assert!(refused.1.contains("SERVER_SHUTDOWN"), "{}", refused.1);
    let later = format!(
        "{}/api/v1/namespaces/default/operations/later/events",
        h.http()
    );
    let r = reqwest::Client::new()
        .post(&later)
        .json(&started("later", "default"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..]),
        "a 503 says when to come back"
    );
    let s = r.status().as_u16();
    let refused: Value = r.json().await.unwrap();
    assert_eq!(s, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "SERVER_SHUTDOWN");
    assert_eq!(
        refused["error"]["data"]["operation_id"], "later",
        "{refused}"
    );
    assert_eq!(v.closed(DEADLINE).await, Some(1012));
    late_viewer
        .until(|m| m["code"] == "SERVER_SHUTDOWN", DEADLINE)
        .await;
    assert_eq!(late_viewer.closed(DEADLINE).await, Some(1012));
    let status = h.wait_exit(Duration::from_secs(15)).await.expect("exited");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn system_status_has_every_field_the_dashboard_reads() {
    let h = hub().args(["--status-interval", "200ms"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("s1", "default"), 1).await;
    let (mut v, _) = subscriber(&h, "default").await;
    let pushed = v.next_of("system_status", DEADLINE).await;
    let (s, polled) = get_json(&format!("{}/api/v1/status", h.http())).await;
    assert_eq!(s, 200);
    for msg in [&pushed, &polled] {
        assert_eq!(msg["type"], "system_status");
        assert_eq!(msg["is_stale"], false, "{msg}");
        assert!(msg.get("error").is_none(), "{msg}");
        let d = &msg["data"];
        for key in [
            "connections",
            "subscriptions",
            "namespaces",
            "events_total",
            "events_per_second",
            "deliveries_per_second",
            "messages_sent_per_second",
            "cpu_percent",
            "memory_bytes",
            "uptime_seconds",
            "heartbeat_interval_ms",
            "finished_retention_ms",
        ] {
            assert!(d[key].is_number(), "{key} in {d}");
        }
        assert!(d["epoch"].is_string());
        assert!(d["backplane"].is_null() && d["upstream"].is_null());
        assert_eq!(d["store"]["ok"], true);
        assert!(d["store"]["in_flight_batches"].is_u64());
        for state in ["running", "stalled", "completed", "failed", "canceled"] {
            assert!(d["operations"][state].is_u64(), "{state} in {d}");
        }
        assert_eq!(d["operations"]["running"], 1);
        assert_eq!(d["events_total"], 1);
        assert!(d["memory_bytes"].as_u64().unwrap() > 1_000_000);
    }
}

/// The first `system_status` has no previous report to measure from: its
/// rates are over the time since the hub started (they read 0, however
/// busy the hub had been).
#[tokio::test]
async fn the_first_system_status_has_rates_since_the_start() {
    let h = hub().args(["--status-interval", "3s"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("r", "default"), 1).await;
    for seq in 2..=20 {
        publish(&mut p, progress("r", "default", seq, seq as f64), seq).await;
    }
    let (mut v, _) = subscriber(&h, "default").await;
    let first = v.next_of("system_status", DEADLINE).await;
    let d = &first["data"];
    assert_eq!(d["events_total"], 20, "the first report: {d}");
    assert!(d["events_per_second"].as_f64().unwrap() > 0.0, "{d}");
    assert!(d["deliveries_per_second"].as_f64().is_some(), "{d}");
}

/// Reads `n` heartbeats (the hub's clock, one per interval) and panics if
/// a `system_status` arrives meanwhile.
async fn no_status_for_heartbeats(ws: &mut Ws, n: usize) {
    for _ in 0..n {
        let m = ws
            .until(
                |m| m["type"] == "heartbeat" || m["type"] == "system_status",
                DEADLINE,
            )
            .await;
        assert_eq!(m["type"], "heartbeat", "not subscribed, yet got {m}");
    }
}

/// `system_status` goes to connections that hold a subscription: it stops
/// once the last one is dropped with `unsubscribe` and comes back with the
/// next `subscribe`; a connection that never subscribed gets none.
#[tokio::test]
async fn system_status_stops_after_the_last_unsubscribe() {
    let h = hub()
        .args([
            "--status-interval",
            "200ms",
            "--heartbeat-interval",
            "200ms",
        ])
        .start()
        .await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    let mut idle = Ws::connect(&h.ws_url()).await;
    let unsubscribe = |ns: &str| json!({"type": "unsubscribe", "namespace": ns});
    for (id, ns) in [(1, "default"), (2, "other")] {
        let sub = ws
            .request(json!({"type": "subscribe", "namespace": ns}), id)
            .await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
    }
    ws.next_of("system_status", DEADLINE).await;
    assert_eq!(ws.request(unsubscribe("default"), 3).await["type"], "ok");
    ws.next_of("system_status", DEADLINE).await;
    assert_eq!(ws.request(unsubscribe("other"), 4).await["type"], "ok");
    // Five heartbeats span four status intervals at least.
    no_status_for_heartbeats(&mut ws, 5).await;
    no_status_for_heartbeats(&mut idle, 5).await;
    let sub = ws
        .request(json!({"type": "subscribe", "namespace": "default"}), 5)
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    ws.next_of("system_status", DEADLINE).await;
}

/// An SSE stream is a subscription for its whole life: it gets
/// `system_status` every interval.
#[tokio::test]
async fn an_sse_stream_gets_system_status() {
    let h = hub().args(["--status-interval", "200ms"]).start().await;
    let url = format!("{}/api/v1/stream?namespace=default", h.http());
    let mut sse = Sse::connect(&url, None).await.expect("accepted");
    for _ in 0..2 {
        let st = sse.next_of("system_status", DEADLINE).await;
        assert_eq!(st.id, None, "status carries no SSE id");
    }
}
