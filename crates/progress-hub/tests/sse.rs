//! The SSE fallback: same messages, `id: epoch:offset`, resume with
//! Last-Event-ID.

mod common;
use common::*;

/// Opens an SSE stream (resuming after `last_id` if given) and reads its
/// first `n` events as (id, data).
async fn read_events(url: &str, last_id: Option<&str>, n: usize) -> Vec<(Option<String>, Value)> {
    let mut sse = match last_id {
        Some(id) => Sse::resume(url, id).await,
        None => Sse::connect(url, None).await,
    }
    .expect("an event stream");
    let mut out = Vec::new();
    while out.len() < n {
        let ev = sse.next(DEADLINE).await.expect("an event in time");
        out.push((ev.id, ev.data));
    }
    out
}

#[tokio::test]
async fn sse_stream_and_resume() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    for seq in 2..=4 {
        publish(&mut p, progress("a", "default", seq, seq as f64), seq).await;
    }
    let url = format!("{}/api/v1/stream?namespace=default", h.http());
    let ev = read_events(&url, None, 2).await;
    assert_eq!(ev[0].1["type"], "subscribed");
    assert_eq!(ev[0].0, None, "subscribed carries no SSE id");
    let epoch = ev[0].1["epoch"].as_str().unwrap().to_owned();
    assert_eq!(ev[1].1["type"], "operation_list");
    assert_eq!(ev[1].0.as_deref(), Some(format!("{epoch}:4").as_str()));

    let ev = read_events(&url, Some(&format!("{epoch}:2")), 3).await;
    assert_eq!(ev[0].1["recovered"], true);
    assert_eq!(ev[1].1["offset"], 3);
    assert_eq!(ev[1].0.as_deref(), Some(format!("{epoch}:3").as_str()));
    assert_eq!(ev[2].1["offset"], 4);

    let url_q = format!("{url}&operations=b*&last_event_id={epoch}:4");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let _ = tx.send(());
        read_events(&url_q, None, 2).await
    });
    rx.await.unwrap();
    publish(&mut p, started("a2", "default"), 10).await;
    publish(&mut p, started("b1", "default"), 11).await;
    let ev = reader.await.unwrap();
    assert_eq!(ev[1].1["operation_id"], "b1", "filtered: only b*");
    // An empty namespace parameter is the default namespace, as no
    // parameter is.
    let blank = format!("{}/api/v1/stream?namespace=&operations=", h.http());
    let ev = read_events(&blank, None, 2).await;
    assert_eq!(ev[0].1["namespace"], "default", "{:?}", ev[0]);
    assert_eq!(ev[1].1["operations"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn an_sse_client_that_never_reads_is_dropped() {
    let h = hub().args(["--idle-timeout", "1s"]).start().await;
    // A small receive buffer, a request, and then never a read.
    let stuck = stuck_sse_stream(&h).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    flood_until_slow_drops(&h, &mut p, 1).await;
    drop(stuck);
}

#[tokio::test]
async fn sse_takes_conflate_as_a_switch() {
    let h = hub().start().await;
    let base = format!("{}/api/v1/stream?namespace=default", h.http());
    let mut latest = Sse::connect(&format!("{base}&conflate=true"), None)
        .await
        .expect("conflate=true is a subscription");
    latest.next_of("operation_list", DEADLINE).await;
    let mut yes = Sse::connect(&format!("{base}&conflate=yes"), None)
        .await
        .expect("switch words like the configuration's");
    yes.next_of("operation_list", DEADLINE).await;
    let (status, body) = Sse::connect(&format!("{base}&conflate=maybe"), None)
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "BAD_MESSAGE");
}

/// A `Last-Event-ID` that is not one of the hub's `epoch:offset` ids is no
/// position: the stream starts with `recovered: false` and a snapshot (as a
/// resume from an unknown epoch does), never an error, which would make an
/// EventSource stop reconnecting for good.
#[tokio::test]
async fn an_unusable_last_event_id_starts_with_a_snapshot() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    let url = format!("{}/api/v1/stream?namespace=default", h.http());
    for id in ["garbage", "epoch-only", "e:not-a-number", ":"] {
        let ev = read_events(&url, Some(id), 2).await;
        assert_eq!(ev[0].1["type"], "subscribed", "{id}");
        assert_eq!(ev[0].1["recovered"], false, "{id}");
        assert_eq!(ev[1].1["type"], "operation_list", "{id}");
        assert_eq!(ev[1].1["operations"][0]["operation_id"], "a", "{id}");
    }
}

/// A quiet stream still carries a comment line every 2 s, so clients with
/// a short read timeout (httpx's default is 5 s) and proxies do not take it
/// for dead between heartbeats and statuses (here a minute apart).
#[tokio::test]
async fn a_quiet_stream_carries_keep_alive_comments() {
    use futures_util::StreamExt;
    let h = hub()
        .args(["--heartbeat-interval", "60s", "--status-interval", "60s"])
        .start()
        .await;
    let r = reqwest::get(format!("{}/api/v1/stream?namespace=default", h.http()))
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    let start = std::time::Instant::now();
    while !seen.lines().any(|l| l.starts_with(':')) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("something within 5 s")
            .expect("the stream goes on")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(start.elapsed() < Duration::from_secs(5), "{seen}");
}

/// The stream starts with `subscribed` even when a heartbeat was queued
/// before the engine answered its subscription (a big namespace, a short
/// heartbeat interval): it came first now and then.
#[tokio::test]
async fn a_stream_starts_with_subscribed_whatever_was_queued_first() {
    let h = hub()
        .args(["--heartbeat-interval", "1ms", "--idle-timeout", "60s"])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    start_padded(&mut p, "op", 3000, 10).await;
    let url = format!("{}/api/v1/stream?namespace=default", h.http());
    let firsts = futures_util::future::join_all((0..40).map(|_| async {
        let mut sse = Sse::connect(&url, None).await.expect("an event stream");
        sse.next(DEADLINE).await.expect("a first event").data
    }))
    .await;
    for first in firsts {
        assert_eq!(first["type"], "subscribed", "{first}");
    }
}
