//! The HTTP API: publish with and without seq, idempotency, listings,
//! operation detail, events paging, cancel, health, readiness and errors.

mod common;
use common::*;

#[tokio::test]
async fn publish_list_detail_events() {
    let h = hub().start().await;
    let base = format!("{}/api/v1/namespaces/jobs", h.http());
    let (s, ack) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "operation_started", "name": "Backup", "kind": "backup", "total": 10}),
    )
    .await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(
        ack,
        json!({"type": "ack", "namespace": "jobs", "operation_id": "b1", "seq": 1, "offset": 1})
    );
    let (s, ack) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "progress_update", "current": 5}),
    )
    .await;
    assert_eq!(
        (s, ack["seq"].clone(), ack["offset"].clone()),
        (200, json!(2), json!(2))
    );
    let (s, dup) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "progress_update", "seq": 2, "current": 5}),
    )
    .await;
    assert_eq!((s, dup["duplicate"].clone()), (200, json!(true)));
    let (s, e) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "progress_update", "seq": 9, "current": 5}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(e["error"]["code"], "SEQ_GAP");
    assert_eq!(e["error"]["data"]["expected"], 3);
    let (s, e) = post_json(
        &format!("{base}/operations/zz/events"),
        &json!({"type": "progress_update", "progress": 1}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (404, json!("UNKNOWN_OPERATION"))
    );
    let (s, e) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "progress_update", "progress": 1, "operation_id": "other"}),
    )
    .await;
    assert_eq!((s, e["error"]["code"].clone()), (400, json!("BAD_MESSAGE")));
    for key in ["code", "message", "details", "data"] {
        assert!(e["error"].get(key).is_some());
    }

    let (s, list) = get_json(&format!("{base}/operations")).await;
    assert_eq!(s, 200);
    assert_eq!(list["namespace"], "jobs");
    assert_eq!(list["offset"], 2);
    assert!(list["epoch"].is_string());
    assert_eq!(list["operations"][0]["progress"], 50.0);
    let (_, list) = get_json(&format!("{base}/operations?state=completed")).await;
    assert_eq!(list["operations"], json!([]));
    let (_, list) = get_json(&format!("{base}/operations?kind=backup&limit=1")).await;
    assert_eq!(list["operations"].as_array().unwrap().len(), 1);
    let (s, _) = get_json(&format!("{base}/operations?state=bogus")).await;
    assert_eq!(s, 400);
    // A limit past the maximum is clamped, however many digits it has;
    // one that is no number is refused.
    let (s, list) = get_json(&format!("{base}/operations?limit=99999999999999999999999")).await;
    assert_eq!(
        (s, list["operations"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (s, _) = get_json(&format!("{base}/operations?limit=-1")).await;
    assert_eq!(s, 400);
    // Parameters left empty (a template filled in by nobody) are absent.
    let (s, list) = get_json(&format!("{base}/operations?state=&kind=&limit=")).await;
    assert_eq!((s, list["offset"].clone()), (200, json!(2)), "{list}");
    let (s, page) = get_json(&format!("{base}/events?after=&limit=")).await;
    assert_eq!(
        (s, page["events"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{page}"
    );

    let (s, detail) = get_json(&format!("{base}/operations/b1")).await;
    assert_eq!(s, 200);
    assert_eq!(detail["operation"]["operation_id"], "b1");
    let types: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["operation_started", "progress_update"]);
    let (s, _) = get_json(&format!("{base}/operations/nope")).await;
    assert_eq!(s, 404);

    let (_, page) = get_json(&format!("{base}/events?after=1&limit=5")).await;
    assert_eq!(page["first_offset"], 1);
    assert_eq!(page["last_offset"], 2);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["offset"], 2);
    let (_, empty) = get_json(&format!("{}/api/v1/namespaces/none/events", h.http())).await;
    assert_eq!(
        (empty["first_offset"].clone(), empty["last_offset"].clone()),
        (json!(1), json!(0))
    );

    let (s, c) = post_json(&format!("{base}/operations/b1/cancel"), &json!({})).await;
    assert_eq!(s, 202);
    assert_eq!(c["operation"]["cancel_requested"], true);
    let (s, ack) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "operation_canceled"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = post_json(
        &format!("{base}/operations/b1/events"),
        &json!({"type": "progress_update", "progress": 1}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (409, json!("OPERATION_FINISHED"))
    );
    let _ = ack;
}

#[tokio::test]
async fn health_ready_not_found_and_too_large() {
    let h = hub().args(["--max-message-size", "512"]).start().await;
    assert_eq!(
        get_json(&format!("{}/health", h.http())).await,
        (200, json!({"status": "ok"}))
    );
    let (s, r) = get_json(&format!("{}/ready", h.http())).await;
    assert_eq!(s, 200, "{r}");
    let (s, e) = get_json(&format!("{}/api/v1/nothing", h.http())).await;
    assert_eq!((s, e["error"]["code"].clone()), (404, json!("NOT_FOUND")));
    // Request line and headers up to 32 KiB are read (a token of the
    // longest length the hub verifies fits, with room); past that, 431.
    let client = reqwest::Client::new();
    let with_header = |len: usize| {
        client
            .get(format!("{}/health", h.http()))
            .header("x-padding", "p".repeat(len))
            .send()
    };
    assert_eq!(with_header(30_000).await.unwrap().status(), 200);
    assert_eq!(with_header(34_000).await.unwrap().status(), 431);
    let (s, e) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations/a/events",
        h.http()
    ))
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (404, json!("NOT_FOUND")),
        "wrong method"
    );
    let (s, e) = get_json(&format!("{}/ws", h.http())).await;
    assert!((400..500).contains(&s), "{s}");
    assert_eq!(
        e["error"]["code"], "BAD_MESSAGE",
        "a plain GET of /ws gets the API's JSON error"
    );
    let big = json!({"type": "operation_started", "name": "x".repeat(100), "metadata": {"p": "y".repeat(1000)}});
    let (s, e) = post_json(
        &format!("{}/api/v1/namespaces/default/operations/a/events", h.http()),
        &big,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (413, json!("MESSAGE_TOO_LARGE"))
    );
    assert_eq!(
        e["error"]["data"]["operation_id"], "a",
        "a producer's error names its operation, even before the body is read"
    );
    let (s, st) = get_json(&format!("{}/api/v1/status", h.http())).await;
    assert_eq!(s, 200);
    assert_eq!(st["type"], "system_status");
    assert_eq!(st["is_stale"], false);
    assert!(st["data"]["connections"].is_u64());
    let text = metrics_text(&h).await;
    assert!(text.contains("# TYPE ws_updates_clients gauge"), "{text}");
    assert!(
        text.contains("ws_updates_clients{transport=\"websocket\",role=\"none\"} 0"),
        "{text}"
    );
}

/// A path segment that does not decode to UTF-8 gets the API's JSON
/// `BAD_MESSAGE`, on every route that takes one (it was axum's plain text).
#[tokio::test]
async fn a_path_segment_that_is_not_utf8_gets_a_json_error() {
    let h = hub().start().await;
    let base = format!("{}/api/v1/namespaces", h.http());
    let start = json!({"type": "operation_started", "name": "n"});
    for url in [
        format!("{base}/ns/operations/%FF/events"),
        format!("{base}/x%C3/operations/a/events"),
        format!("{base}/ns/operations/%FF/cancel"),
    ] {
        let (s, e) = post_json(&url, &start).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (400, json!("BAD_MESSAGE")),
            "{url}: {e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{e}"
        );
    }
    for url in [
        format!("{base}/%FF/operations"),
        format!("{base}/ns/operations/%FF"),
        format!("{base}/%FF/events"),
    ] {
        let (s, e) = get_json(&url).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (400, json!("BAD_MESSAGE")),
            "{url}: {e}"
        );
    }
    let (_, list) = get_json(&format!("{base}/ns/operations")).await;
    assert_eq!(list["offset"], 0, "nothing was recorded: {list}");
}

/// Over HTTP a start may leave out `seq`: it is always seq 1, so posting the
/// same start again (a `curl` retry) is a resend, re-acked and not applied.
#[tokio::test]
async fn a_start_posted_twice_without_seq_is_a_resend() {
    let h = hub().start().await;
    let url = format!(
        "{}/api/v1/namespaces/default/operations/job1/events",
        h.http()
    );
    let start = json!({"type": "operation_started", "name": "Job 1"});
    let (s, first) = post_json(&url, &start).await;
    assert_eq!(
        (s, first["seq"].clone(), first["offset"].clone()),
        (200, json!(1), json!(1)),
        "{first}"
    );
    let (s, again) = post_json(&url, &start).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        again,
        json!({"type": "ack", "namespace": "default", "operation_id": "job1", "seq": 1, "offset": 1, "duplicate": true})
    );
    // Progress without seq still takes the next one.
    let (s, next) = post_json(&url, &json!({"type": "progress_update", "progress": 5})).await;
    assert_eq!(
        (s, next["seq"].clone(), next["offset"].clone()),
        (200, json!(2), json!(2)),
        "{next}"
    );
}

/// An operation's whole retained history, and a page of the namespace's
/// events, come back as one valid document with a true `Content-Length`
/// however many chunks the hub streams them in.
#[tokio::test]
async fn long_histories_come_back_whole_and_in_order() {
    let h = hub().args(["--max-messages-per-second", "0"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("long", "default"), 1).await;
    let n = 1_500u64;
    for seq in 2..=n {
        p.send(progress("long", "default", seq, (seq % 100) as f64))
            .await;
    }
    // The last ack acks them all.
    p.until(|m| m["type"] == "ack" && m["seq"] == n, DEADLINE)
        .await;
    let base = format!("{}/api/v1/namespaces/default", h.http());
    let r = reqwest::get(format!("{base}/operations/long"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert!(declared > 200_000, "several chunks' worth: {declared}");
    assert_eq!(body.len(), declared);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let offsets: Vec<u64> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (1..=n).collect::<Vec<_>>());
    assert_eq!(doc["operation"]["last_offset"], n);
    let (s, page) = get_json(&format!("{base}/events?after=100&limit=1000")).await;
    assert_eq!(s, 200);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1000);
    assert_eq!(events[0]["offset"], 101);
    assert_eq!(page["last_offset"], n);
}

/// Reads are answered on the engine's task: clients polling a big
/// namespace's list must starve neither producers' acks nor the engine's
/// clock (a running operation still stalls on time). The list picked and
/// copied every operation for each request and the engine served requests
/// before its timers, so a few pollers stopped stalls altogether.
#[tokio::test]
async fn polling_a_big_namespace_starves_neither_acks_nor_stalls() {
    let h = hub().args(["--stall-timeout", "1s"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let n = 10_000u64;
    for chunk in 0..n / 1000 {
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let start = json!({"type": "operation_started", "namespace": "big", "operation_id": format!("b{i}"), "seq": 1, "name": "x", "id": i});
            p.send(start).await;
        }
        let last = (chunk + 1) * 1000 - 1;
        p.until(
            |m| m["type"] == "ack" && m["id"] == last,
            Duration::from_secs(60),
        )
        .await;
    }
    let (mut v, _) = subscriber(&h, "small").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("{}/api/v1/namespaces/big/operations?limit=1", h.http());
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, url) = (stop.clone(), url.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut polls = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http.get(&url).send().await.expect("poll");
                    assert_eq!(r.status(), 200);
                    polls += 1;
                }
                polls
            })
        })
        .collect();
    let mut w = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut w, started("w", "small"), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let stalled = v.next_of("operation_stalled", DEADLINE).await;
    assert_eq!(stalled["operation_id"], "w");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in pollers {
        assert!(p.await.unwrap() > 0, "the pollers polled");
    }
}

/// A body whose `Content-Length` is over `--max-message-size` is refused
/// with 413 from its headers: at once, without waiting for a body that
/// may never come (it waited for the body timeout, then answered 408),
/// and instead of inviting it with `100 Continue`.
#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub().args(["--max-message-size", "1000"]).start().await;
    let addr = h.http().trim_start_matches("http://").to_owned();
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/namespaces/default/operations/big/events HTTP/1.1\r\n\
             Host: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: 2000\r\n{expect}\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Well under the 10 s the hub gives a body to arrive.
        let read = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if n == 0 || text.contains("\"error\"") {
                    break;
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(read.is_ok(), "no answer within 3 s ({expect:?}): {text}");
        assert!(text.starts_with("HTTP/1.1 413"), "{expect:?}: {text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(text.contains("MESSAGE_TOO_LARGE"), "{text}");
        assert!(text.contains("\"limit\":1000"), "{text}");
        // The unread body is still in the connection, which ends with this
        // answer: said so, so a keep-alive client does not reuse it.
        assert!(
            text.to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{text}"
        );
    }
    // The hub goes on serving.
    let (s, _) = get_json(&format!("{}/health", h.http())).await;
    assert_eq!(s, 200);
}

/// `progress_hub_rate_limited_total{limit}` from the hub's `/metrics`.
async fn rate_limited(h: &Hub, limit: &str) -> u64 {
    let prefix = format!("progress_hub_rate_limited_total{{limit=\"{limit}\"}} ");
    let text = metrics_text(h).await;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in the metrics"));
    line.trim().parse().expect("a count")
}

/// An operations listing is one document of a whole namespace (tens of
/// MiB for a big one), made for each request: while the listings and
/// snapshots that clients have not read add up past
/// `--max-snapshot-bytes`, another listing gets 429 `RATE_LIMITED`
/// (`snapshots`) with `Retry-After`, as a subscribe that needs a snapshot
/// does; once those clients are gone, listing works again. (Before, each
/// request built its answer outside any bound: 12 unread listings of a
/// 60 MB namespace held about 1 GB.)
#[tokio::test]
async fn unread_listings_count_against_the_snapshot_budget() {
    let h = hub()
        .args(["--max-snapshot-bytes", "30000000"])
        .start()
        .await;
    // About 12 MB per listing: more than the kernel buffers between the
    // hub and a client that does not read. Two fit in the budget, the
    // third does not.
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "big", 200, 60_000).await;
    let path = "/api/v1/namespaces/default/operations?limit=10000";
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", h.addr);
    let url = format!("{}{path}", h.http());
    // One more reader that never reads, then one listing read whole, until
    // that one is refused: a listing read here may still be held when a
    // reader's request arrives and get that one refused instead, so the
    // count of readers it takes is not fixed (two when nothing races).
    let end = tokio::time::Instant::now() + DEADLINE;
    let mut readers = Vec::new();
    let refused = loop {
        assert!(
            tokio::time::Instant::now() < end && readers.len() < 20,
            "no listing refused with {} unread ones",
            readers.len()
        );
        readers.push(RawHttp::send(&h.addr, Some(4096), request.as_bytes()).await);
        let r = reqwest::get(&url).await.expect("GET");
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    };
    assert!(readers.len() >= 2, "two listings fit: {}", readers.len());
    let e = rate_limited_answer(refused, "snapshots", 30_000_000).await;
    assert!(e["error"]["data"]["retry_after_ms"].is_u64(), "{e}");
    // Counted like every refusal: this one, and any reader refused
    // because a listing read here was held when its request came.
    let refusals = readers.len() as u64 - 1;
    eventually("every refusal counted", DEADLINE, || async {
        (rate_limited(&h, "snapshots").await == refusals).then_some(())
    })
    .await;
    // The stream is not held up meanwhile.
    let ack = publish(&mut p, progress("big1", "default", 2, 5.0), 500).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    drop(readers);
    let list = eventually("a listing once the readers are gone", DEADLINE, || {
        let url = url.clone();
        async move {
            let (s, list) = get_json(&url).await;
            (s == 200).then_some(list)
        }
    })
    .await;
    assert_eq!(list["operations"].as_array().map(Vec::len), Some(200));
    assert_eq!(
        list["operations"][0]["metadata"]["pad"]
            .as_str()
            .map(str::len),
        Some(60_000)
    );
}

/// Request bodies being received are bounded hub-wide
/// (`max_body_bytes_in_flight`, here from its variable): a POST reserves
/// its `Content-Length` before reading the body, so connections that send
/// the headers and part of a body and then nothing hold only that much,
/// and once they hold it all the next POST gets 429 `RATE_LIMITED`
/// (`bodies`) with `Retry-After` at once, instead of one more body held
/// until `--handshake-timeout`. When they close, POSTs go through again.
/// (Before, 10,000 such connections held 2 GB for 10 s.)
#[tokio::test]
async fn bodies_being_received_are_bounded_hub_wide() {
    // Four bodies of 65,000 bytes fill the budget exactly; the long
    // handshake timeout keeps the stalled ones from being answered 408
    // during the test.
    let h = hub()
        .env("PROGRESS_HUB_MAX_BODY_BYTES_IN_FLIGHT", "260000")
        .args(["--handshake-timeout", "60s"])
        .start()
        .await;
    let stall = |i: usize| {
        let head = format!(
            "POST /api/v1/namespaces/default/operations/slow{i}/events HTTP/1.1\r\n\
             Host: {}\r\nContent-Type: application/json\r\nContent-Length: 65000\r\n\r\n",
            h.addr
        );
        let mut bytes = head.into_bytes();
        bytes.extend(std::iter::repeat_n(b' ', 60_000));
        let addr = h.addr.clone();
        async move { RawHttp::send(&addr, None, &bytes).await }
    };
    let post = |n: usize| {
        let url = format!(
            "{}/api/v1/namespaces/default/operations/quick{n}/events",
            h.http()
        );
        async move {
            let body = json!({"type": "operation_started", "name": "quick"});
            reqwest::Client::new()
                .post(url)
                .json(&body)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .expect("an answer well before the body timeout")
        }
    };
    // One more stalled body, then one POST, until that one is refused: a
    // POST may still be in flight when a stalled body's head arrives and
    // get that one refused instead, so the count it takes is not fixed
    // (four when nothing races).
    let end = tokio::time::Instant::now() + DEADLINE;
    let mut stalled = Vec::new();
    let mut n = 0;
    let refused = loop {
        assert!(
            tokio::time::Instant::now() < end && stalled.len() < 40,
            "no POST refused with {} stalled bodies",
            stalled.len()
        );
        stalled.push(stall(stalled.len()).await);
        n += 1;
        let r = post(n).await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
    };
    assert!(stalled.len() >= 4, "four bodies fit: {}", stalled.len());
    let e = rate_limited_answer(refused, "bodies", 260_000).await;
    assert_eq!(
        e["error"]["data"]["operation_id"],
        format!("quick{n}"),
        "{e}"
    );
    // Counted like every refusal: this one, and any stalled body refused
    // because a POST was in flight when its head came.
    let refusals = stalled.len() as u64 - 3;
    eventually("every refusal counted", DEADLINE, || async {
        (rate_limited(&h, "bodies").await == refusals).then_some(())
    })
    .await;
    // Reads are not bodies: they go on.
    let (s, _) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations",
        h.http()
    ))
    .await;
    assert_eq!(s, 200);
    drop(stalled);
    eventually("a POST once the stalled bodies are gone", DEADLINE, || {
        n += 1;
        let sent = post(n);
        async move { (sent.await.status() == 200).then_some(()) }
    })
    .await;
}

/// Checks that `r` is a 429 `RATE_LIMITED` naming `reason` and `limit`,
/// with `Retry-After: 1`; returns its JSON body.
async fn rate_limited_answer(r: reqwest::Response, reason: &str, limit: u64) -> Value {
    assert_eq!(
        r.headers()["retry-after"].to_str().ok(),
        Some("1"),
        "{:?}",
        r.headers()
    );
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["error"]["data"]["reason"], reason, "{e}");
    assert_eq!(e["error"]["data"]["limit"], limit, "{e}");
    e
}
