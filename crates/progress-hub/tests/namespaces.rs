//! Idle namespaces are forgotten: `--max-namespaces` counts the ones in
//! use (operations or viewers), not every name ever written to, and a
//! forgotten name comes back as a new stream under a new epoch, so an old
//! position gets a snapshot, also after a restart.

mod common;
use common::*;

/// Starts and completes `op` in `ns` on `p` (request ids `id`, `id + 1`).
async fn run_one(p: &mut Ws, op: &str, ns: &str, id: u64) -> Value {
    publish(p, started(op, ns), id).await;
    let done =
        json!({"type": "operation_completed", "namespace": ns, "operation_id": op, "seq": 2});
    let ack = publish(p, done, id + 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

/// Waits until `ns` lists no operation (its finished ones were dropped).
async fn wait_until_empty(h: &Hub, ns: &str) {
    let url = format!("{}/api/v1/namespaces/{ns}/operations", h.http());
    eventually("the finished operations to be dropped", DEADLINE, || {
        let url = url.clone();
        async move {
            let (_, body) = get_json(&url).await;
            (body["operations"].as_array().is_some_and(Vec::is_empty)).then_some(())
        }
    })
    .await;
}

/// The value of a counter in `/metrics` (0 when absent).
async fn counter(h: &Hub, name: &str) -> u64 {
    metrics_text(h)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Subscribes `v` to "jobs" from `(epoch, offset)`; the `subscribed` reply.
async fn resume_jobs(v: &mut Ws, epoch: &str, offset: u64) -> Value {
    let resume = json!({"epoch": epoch, "offset": offset});
    v.request(
        json!({"type": "subscribe", "namespace": "jobs", "resume": resume}),
        1,
    )
    .await
}

#[tokio::test]
async fn the_cap_counts_namespaces_in_use() {
    // An idle namespace would go by itself 2 s after its last operation
    // was dropped; the cap makes one go at once.
    let h = hub()
        .args(["--max-namespaces", "3", "--finished-retention", "2s"])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    run_one(&mut p, "x", "old", 1).await;
    run_one(&mut p, "y", "watched", 3).await;
    let (_viewer, _) = subscriber(&h, "watched").await;
    publish(&mut p, started("z", "busy"), 5).await;
    wait_until_empty(&h, "old").await;
    wait_until_empty(&h, "watched").await;

    // "old" holds nothing and nobody watches it: it makes room.
    let ack = publish(&mut p, started("n", "new"), 6).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["offset"], 1);
    // "watched" has a viewer, "busy" and "new" a running operation: no
    // room now, and the refusal names the limit.
    let e = publish(&mut p, started("w", "another"), 7).await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["data"]["reason"], "namespaces", "{e}");
    assert_eq!(e["data"]["limit"], 3, "{e}");
    assert_eq!(
        counter(&h, "progress_hub_namespaces_forgotten_total").await,
        1
    );
}

#[tokio::test]
async fn a_forgotten_namespace_returns_under_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    // Idle namespaces go after the longer of the two.
    let args = [
        "--finished-retention",
        "300ms",
        "--abandon-timeout",
        "300ms",
    ];
    let h = hub().data_dir(dir.path()).args(args).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    run_one(&mut p, "first", "jobs", 1).await;
    let (v, sub) = subscriber(&h, "jobs").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    assert_eq!(sub["offset"], 2);
    v.close().await;
    // A viewer waits for a namespace that does not exist yet, and is told
    // the epoch it will have.
    let (mut waiting, told) = subscriber(&h, "later").await;
    assert_eq!(told["epoch"], epoch.as_str());
    eventually("the idle namespace to be forgotten", DEADLINE, || async {
        (counter(&h, "progress_hub_namespaces_forgotten_total").await == 1).then_some(())
    })
    .await;
    // Created after the forget, it still has the epoch its viewer was
    // told: the viewer's position stays good (SSE ids too).
    publish(&mut p, started("l", "later"), 10).await;
    assert_eq!(
        waiting.next_of("operation_started", DEADLINE).await["offset"],
        1
    );
    let later = format!("{}/api/v1/stream?namespace=later", h.http());
    let mut sse = Sse::resume(&later, &format!("{epoch}:0")).await.unwrap();
    let ev = sse.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev.id.as_deref(), Some(format!("{epoch}:1").as_str()));
    drop(sse);
    let mut again = Ws::connect(&h.ws_url()).await;
    let resume = json!({"epoch": epoch, "offset": 1});
    let s = again
        .request(
            json!({"type": "subscribe", "namespace": "later", "resume": resume}),
            1,
        )
        .await;
    assert_eq!(
        (s["epoch"].as_str(), s["recovered"].clone()),
        (Some(epoch.as_str()), json!(true)),
        "{s}"
    );

    // The name comes back as a new stream: offsets from 1, a new epoch.
    let ack = publish(&mut p, started("second", "jobs"), 3).await;
    assert_eq!(ack["offset"], 1, "{ack}");
    let mut v = Ws::connect(&h.ws_url()).await;
    let s = resume_jobs(&mut v, &epoch, 2).await;
    let new_epoch = s["epoch"].as_str().unwrap().to_owned();
    assert_ne!(new_epoch, epoch, "{s}");
    assert_eq!(
        (s["recovered"].clone(), s["offset"].clone()),
        (json!(false), json!(1)),
        "{s}"
    );
    let list = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(list["epoch"], new_epoch.as_str());
    let ids: Vec<&str> = list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["second"], "{list}");
    // SSE ids carry the namespace's own epoch.
    let url = format!("{}/api/v1/stream?namespace=jobs", h.http());
    let mut sse = Sse::resume(&url, &format!("{new_epoch}:0")).await.unwrap();
    let ev = sse.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev.id.as_deref(), Some(format!("{new_epoch}:1").as_str()));
    drop(sse);
    h.kill9().await;

    // The new epoch, and the count behind it, survive a restart.
    let h = hub().data_dir(dir.path()).args(args).start().await;
    let mut v = Ws::connect(&h.ws_url()).await;
    let s = resume_jobs(&mut v, &new_epoch, 0).await;
    assert_eq!(
        (s["epoch"].as_str(), s["recovered"].clone()),
        (Some(new_epoch.as_str()), json!(true)),
        "{s}"
    );
    let ev = v.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev["operation_id"], "second");
    // A namespace first written to now is in the same generation.
    let s = v
        .request(json!({"type": "subscribe", "namespace": "fresh"}), 2)
        .await;
    assert_eq!(s["epoch"].as_str(), Some(new_epoch.as_str()), "{s}");
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "fresh"), 1).await;
    let (_, page) = get_json(&format!("{}/api/v1/namespaces/fresh/events", h.http())).await;
    assert_eq!(page["epoch"].as_str(), Some(new_epoch.as_str()), "{page}");
}

/// `--max-operations-per-namespace` and `--max-operations` (all namespaces
/// together): a start past either is `RATE_LIMITED` naming the limit, over
/// WebSocket and HTTP (429 with `Retry-After`), and changes nothing;
/// resent starts and the operations already held go on; a place comes
/// back when a finished operation is dropped; a restart counts what the
/// store holds.
#[tokio::test]
async fn operation_caps_per_namespace_and_hub_wide() {
    let dir = tempfile::tempdir().unwrap();
    let builder = hub().data_dir(dir.path()).args([
        "--max-operations-per-namespace",
        "2",
        "--max-operations",
        "3",
        "--finished-retention",
        "1s",
    ]);
    let h = builder.start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "x"), 1).await;
    publish(&mut p, started("b", "x"), 2).await;
    let e = publish(&mut p, started("c", "x"), 3).await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["data"]["reason"], "operations_per_namespace", "{e}");
    let ack = publish(&mut p, started("c", "y"), 4).await;
    assert_eq!(ack["offset"], 1, "{ack}");

    // The hub holds 3: a new start anywhere is refused, also in a new
    // namespace, which is not created.
    for (op, ns) in [("d", "y"), ("d", "z")] {
        let e = publish(&mut p, started(op, ns), 5).await;
        assert_eq!(e["code"], "RATE_LIMITED", "{e}");
        assert_eq!(e["data"]["reason"], "operations", "{e}");
        assert_eq!(e["data"]["limit"], 3, "{e}");
        assert_eq!(e["data"]["operation_id"], op, "{e}");
    }
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/namespaces/y/operations/d/events",
            h.http()
        ))
        .json(&json!({"type": "operation_started", "name": "D"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "operations", "{body}");
    assert_eq!(
        get_json(&format!("{}/api/v1/namespaces/z/events", h.http()))
            .await
            .1["last_offset"],
        0
    );
    // What is held goes on: a resent start is re-acked, updates apply.
    assert_reacked(&publish(&mut p, started("a", "x"), 6).await, 1);
    let ack = publish(&mut p, progress("a", "x", 2, 50.0), 7).await;
    assert_eq!(ack["offset"], 3, "{ack}");
    assert!(metrics_text(&h).await.lines().any(|l| l
        .starts_with("progress_hub_rate_limited_total{limit=\"operations\"} ")
        && !l.ends_with(" 0")));

    // a finishes and is dropped after the retention: one place again.
    let done =
        json!({"type": "operation_completed", "namespace": "x", "operation_id": "a", "seq": 3});
    publish(&mut p, done, 8).await;
    eventually("a to be dropped", DEADLINE, || {
        let url = format!("{}/api/v1/namespaces/x/operations/a", h.http());
        async move { (get_json(&url).await.0 == 404).then_some(()) }
    })
    .await;
    assert_reacked(&publish(&mut p, started("a", "x"), 9).await, 1);
    let ack = publish(&mut p, started("d", "z"), 10).await;
    assert_eq!(ack["offset"], 1, "{ack}");
    h.kill9().await;

    // After a restart the hub counts what its store holds: b, c, d.
    let h = builder.start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let e = publish(&mut p, started("e", "w"), 1).await;
    assert_eq!(e["data"]["reason"], "operations", "{e}");
    // A full hub is the hub's state, not abuse: a producer resending a
    // backlog of starts through it is refused each time, never closed.
    for i in 0..30u64 {
        let e = publish(&mut p, started(&format!("n{i}"), "w"), 100 + i).await;
        assert_eq!(e["data"]["reason"], "operations", "{e}");
    }
    let pong = p.request(json!({"type": "ping"}), 999).await;
    assert_eq!(pong["type"], "pong", "still open: {pong}");
}
