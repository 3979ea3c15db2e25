//! `progress-hub watch` through the real binary under pressure: a reader
//! slower than the stream loses progress, never lifecycle events (and
//! `--until-done` still ends); a snapshot over 16 MiB is received; a
//! closed stdout ends it quietly; a subscription refused for now says why.

mod common;
use common::*;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::time::Instant;

/// `progress-hub watch ARGS` with stdout and stderr piped, not read yet.
fn spawn_watch(args: &[&str]) -> (Child, ChildStdout, ChildStderr) {
    let mut child = spawn_cli("watch", args);
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    (child, out, err)
}

/// Reads lines of `r` until one matches `pred`, within `deadline`; returns
/// every line read (the match last).
async fn read_until<R: AsyncRead + Unpin>(
    lines: &mut Lines<BufReader<R>>,
    what: &str,
    deadline: Duration,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(end, lines.next_line()).await {
            Ok(Ok(Some(l))) => {
                let hit = pred(&l);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            other => panic!(
                "no line {what} within {deadline:?} ({other:?}); last lines {:?}",
                &seen[seen.len().saturating_sub(5)..]
            ),
        }
    }
}

/// Publishes on a connection of its own: `op` started, `n` progress
/// updates (pipelined, 250 acks at a time), then failed.
async fn produce(url: String, op: String, n: u64) {
    let mut p = Ws::connect(&url).await;
    let ack = publish(&mut p, started(&op, "default"), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mut seq = 1;
    while seq <= n {
        let chunk: Vec<u64> = (seq + 1..=(seq + 250).min(n + 1)).collect();
        for s in &chunk {
            let mut m = progress(&op, "default", *s, (*s as f64 / n as f64 * 99.0).min(99.0));
            m["id"] = json!(s);
            p.send(m).await;
        }
        for _ in &chunk {
            let a = p.next_of("ack", DEADLINE).await;
            assert_eq!(a["type"], "ack", "{a}");
        }
        seq += chunk.len() as u64;
    }
    let fail = json!({"type": "operation_failed", "namespace": "default", "operation_id": op,
        "seq": n + 2, "error": "x"});
    let ack = publish(&mut p, fail, n + 2).await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

/// 8 operations × 2,000 progress updates, then each fails, while two
/// watchers do not read their stdout (more than the 10,000 updates of a
/// subscription's channel pile up): afterwards every `operation_failed`
/// is printed, and `--until-done` exits with the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_loses_progress_never_lifecycle_events() {
    let h = hub().start().await;
    let url = h.ws_url();
    let (mut all, all_out, all_err) = spawn_watch(&["--json", "--url", &url]);
    let (mut until, until_out, until_err) =
        spawn_watch(&["--json", "--url", &url, "--until-done", "op7"]);
    // Both have their snapshot (an empty one) before anything is sent.
    // Their stderr stays open, unread: watch writes little there.
    let mut errs = Vec::new();
    for err in [all_err, until_err] {
        let mut err = BufReader::new(err).lines();
        read_until(&mut err, "the snapshot", DEADLINE, |l| {
            l.starts_with("-- snapshot")
        })
        .await;
        errs.push(err);
    }
    let producers: Vec<_> = (0..8)
        .map(|i| tokio::spawn(produce(url.clone(), format!("op{i}"), 2_000)))
        .collect();
    for p in producers {
        p.await.expect("producer");
    }
    // Only now are the watchers read.
    let mut out = BufReader::new(all_out).lines();
    let mut failed = std::collections::BTreeSet::new();
    let mut last_offset = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while failed.len() < 8 {
        let line = match tokio::time::timeout_at(end, out.next_line()).await {
            Ok(Ok(Some(l))) => l,
            other => panic!("stdout ended or stalled ({other:?}); failed seen: {failed:?}"),
        };
        let m: Value = serde_json::from_str(&line).expect("JSON line");
        if m["type"] == "operation_list" {
            continue;
        }
        let off = m["offset"].as_u64().expect("offset");
        assert!(
            off > last_offset,
            "offsets in order: {off} after {last_offset}"
        );
        last_offset = off;
        if m["type"] == "operation_failed" {
            failed.insert(m["operation_id"].as_str().unwrap().to_owned());
        }
    }
    let _ = all.start_kill();
    let mut until_lines = BufReader::new(until_out).lines();
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        // Reading lets it go on; it exits once op7 failed.
        while let Ok(Some(_)) = until_lines.next_line().await {}
        until.wait().await
    })
    .await
    .expect("--until-done exited")
    .expect("wait");
    assert_eq!(status.code(), Some(1), "op7 failed");
}

/// A namespace whose snapshot frame is over tungstenite's default 16 MiB
/// limit is received, not dropped and asked for again forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_16_mib_is_received() {
    let h = hub().args(["--max-message-size", "100000"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let pad = "m".repeat(50_000);
    for i in 0..360u64 {
        let start = json!({"type": "operation_started", "namespace": "many",
            "operation_id": format!("m{i}"), "seq": 1, "name": "big", "metadata": {"pad": pad}});
        let ack = p.request(start, i + 1).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let (mut w, out, _err) = spawn_watch(&["--url", &h.ws_url(), "--namespace", "many"]);
    let mut out = BufReader::new(out).lines();
    let seen = read_until(
        &mut out,
        "with the snapshot",
        Duration::from_secs(60),
        |l| l.starts_with("-- snapshot at offset") || l.starts_with("-- reconnecting"),
    )
    .await;
    let last = seen.last().unwrap();
    assert!(last.ends_with(": 360 operations"), "{seen:?}");
    let _ = w.start_kill();
}

/// `watch | head -2`: once its reader is gone, watch ends with 0 and
/// without a panic message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_watch_quietly() {
    let h = hub().start().await;
    let url = h.ws_url();
    let (mut w, out, err) = spawn_watch(&["--url", &url]);
    let mut out = BufReader::new(out).lines();
    read_until(&mut out, "-- connecting", DEADLINE, |_| true).await;
    read_until(&mut out, "-- connected", DEADLINE, |l| l == "-- connected").await;
    drop(out);
    // Watch writes again (the snapshot line, then events) into the closed pipe.
    let mut p = Ws::connect(&url).await;
    let mut id = 0;
    let status = loop {
        id += 1;
        publish(&mut p, started(&format!("j{id}"), "default"), id).await;
        if let Ok(s) = tokio::time::timeout(Duration::from_millis(100), w.wait()).await {
            break s.expect("wait");
        }
        assert!(id < 300, "watch never noticed its closed stdout");
    };
    let mut stderr = String::new();
    let mut err = err;
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr)
        .await
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// A subscription the hub refuses for now (`RATE_LIMITED`, reason
/// `snapshots`: another viewer holds a big snapshot unread) is a plain
/// stderr line, not a silent "connected".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_refused_for_now_says_why() {
    let h = hub().args(["--max-snapshot-bytes", "100000"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let pad = "m".repeat(50_000);
    for i in 0..120u64 {
        let start = json!({"type": "operation_started", "namespace": "big",
            "operation_id": format!("big{i}"), "seq": 1, "name": "big", "metadata": {"pad": pad}});
        let ack = p.request(start, i + 1).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let mut stuck = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"big"}"#)
        .await;
    // Until the hub refuses a subscribe, the stuck viewer's snapshot is not
    // held yet (the probe reads each snapshot it is given).
    let mut probe = Ws::connect(&h.ws_url()).await;
    let end = Instant::now() + Duration::from_secs(30);
    for id in 1.. {
        let r = probe
            .request(json!({"type": "subscribe", "namespace": "big"}), id)
            .await;
        if r["type"] == "error" {
            assert_eq!(r["data"]["reason"], "snapshots", "{r}");
            break;
        }
        probe.next_of("operation_list", DEADLINE).await;
        assert!(Instant::now() < end, "the big snapshot was never held");
    }
    let (mut w, _out, err) = spawn_watch(&["--url", &h.ws_url(), "--namespace", "big"]);
    let mut err = BufReader::new(err).lines();
    let seen = read_until(&mut err, "explaining the refusal", DEADLINE, |l| {
        l.starts_with("-- subscription refused for now")
    })
    .await;
    let line = seen.last().unwrap();
    assert!(line.contains("RATE_LIMITED (snapshots)"), "{line}");
    assert!(line.contains("retrying in"), "{line}");
    let _ = w.start_kill();
    drop(stuck);
}
