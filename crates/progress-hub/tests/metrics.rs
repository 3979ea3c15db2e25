//! `/metrics` against the real binary: drive known traffic, parse the
//! exposition with a real parser (`prometheus-parse`), and check that the
//! counters moved by exactly what the traffic implies. When `promtool` is
//! installed, the exposition must also pass `promtool check metrics`.

mod common;
use common::tokens::*;
use common::*;
use futures_util::StreamExt;
use hub_auth::{mint_hs256, Claims};
use prometheus_parse::{Sample, Scrape, Value as PValue};

/// `GET /metrics` with an optional bearer token: the status and the
/// response.
async fn get_metrics(h: &Hub, tok: Option<&str>) -> (u16, reqwest::Response) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", h.http()));
    if let Some(t) = tok {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r)
}

/// One scrape, parsed.
struct Metrics {
    samples: Vec<Sample>,
    text: String,
}

impl Metrics {
    /// Scrapes an open hub.
    async fn scrape(h: &Hub) -> Metrics {
        Metrics::scrape_as(h, None).await
    }

    /// Scrapes with a bearer token (needed when the hub has a key).
    async fn scrape_as(h: &Hub, tok: Option<&str>) -> Metrics {
        let (status, r) = get_metrics(h, tok).await;
        assert_eq!(status, 200);
        let text = r.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = Scrape::parse(lines).expect("valid exposition format");
        Metrics {
            samples: scrape.samples,
            text,
        }
    }

    /// The value of the sample `name` whose labels include `labels`
    /// (counters, gauges and untyped; a histogram gives its count).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let hist = name.strip_suffix("_count");
        self.samples
            .iter()
            .filter(|s| s.metric == name || Some(s.metric.as_str()) == hist)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .find_map(|s| match &s.value {
                PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => Some(*v),
                PValue::Histogram(b) => b.iter().map(|c| c.count).reduce(f64::max),
                _ => None,
            })
    }

    /// Like [`Metrics::get`], 0 when absent (a labelled series not created yet).
    fn val(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

fn started_kind(op: &str, ns: &str, kind: &str) -> Value {
    json!({"type": "operation_started", "namespace": ns, "operation_id": op, "seq": 1, "name": op, "kind": kind})
}

/// Waits until the viewer has seen the event at `offset`.
async fn seen(v: &mut Ws, offset: u64) {
    v.until(
        |m| m["offset"].as_u64() == Some(offset) && m["type"] != "subscribed",
        DEADLINE,
    )
    .await;
}

#[tokio::test]
async fn counters_move_by_exactly_the_traffic() {
    let h = hub().args(["--heartbeat-interval", "200ms"]).start().await;
    let before = Metrics::scrape(&h).await;
    assert_eq!(before.val("progress_hub_events_total", &[]), 0.0);
    assert_eq!(
        before.val(
            "ws_updates_clients",
            &[("transport", "websocket"), ("role", "none")]
        ),
        0.0
    );
    // Labelled counters an alert watches are there at 0 before they move.
    for limit in ["messages", "abuse", "connections"] {
        assert_eq!(
            before.get("progress_hub_rate_limited_total", &[("limit", limit)]),
            Some(0.0),
            "{limit}"
        );
    }

    let (mut v, sub) = subscriber(&h, "m").await;
    assert_eq!(sub["recovered"], false);
    let mut p = Ws::connect(&h.ws_url()).await;
    let ns = "m";
    // Operation a: started, three updates, completed (5 events).
    assert_eq!(publish(&mut p, started("a", ns), 1).await["offset"], 1);
    for seq in 2..=4 {
        let ack = publish(&mut p, progress("a", ns, seq, seq as f64 * 10.0), seq).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    // A resend of seq 4: acked again as a duplicate, no event.
    let dup = publish(&mut p, progress("a", ns, 4, 40.0), 20).await;
    assert_eq!(dup["duplicate"], true, "{dup}");
    let done =
        json!({"type": "operation_completed", "namespace": ns, "operation_id": "a", "seq": 5});
    assert_eq!(publish(&mut p, done, 5).await["offset"], 5);
    // Operation b: started, failed (2 events).
    publish(&mut p, started("b", ns), 6).await;
    let failed = json!({"type": "operation_failed", "namespace": ns, "operation_id": "b", "seq": 2, "error": "boom"});
    assert_eq!(publish(&mut p, failed, 7).await["offset"], 7);
    // Operation c of another kind: started (1 event), then two seq gaps.
    assert_eq!(
        publish(&mut p, started_kind("c", ns, "etl"), 8).await["offset"],
        8
    );
    for id in [9, 10] {
        let e = publish(&mut p, progress("c", ns, 7, 5.0), id).await;
        assert_eq!(e["code"], "SEQ_GAP", "{e}");
    }
    // One message that is not JSON.
    p.send_text("{nope").await;
    let bad = p.next_of("error", DEADLINE).await;
    assert_eq!(bad["code"], "BAD_MESSAGE");
    seen(&mut v, 8).await;

    // A second viewer resumes from offset 3: offsets 4..=8 are replayed.
    let mut v2 = Ws::connect(&h.ws_url()).await;
    let epoch = sub["epoch"].as_str().unwrap();
    let r = v2
        .request(
            json!({"type": "subscribe", "namespace": ns, "resume": {"epoch": epoch, "offset": 3}}),
            1,
        )
        .await;
    assert_eq!(r["recovered"], true, "{r}");
    seen(&mut v2, 8).await;

    // A browser from a foreign origin is refused at the upgrade.
    let refused = Ws::connect_with(&h.ws_url(), &[("Origin", "http://evil.example")]).await;
    assert_eq!(refused.err().map(|(s, _)| s), Some(403));

    let m = Metrics::scrape(&h).await;
    let d = |name: &str, labels: &[(&str, &str)]| m.val(name, labels) - before.val(name, labels);
    assert_eq!(d("progress_hub_events_total", &[]), 8.0);
    assert_eq!(
        d("progress_hub_deliveries_total", &[]),
        8.0,
        "one live viewer"
    );
    assert_eq!(
        d("progress_hub_errors_sent_total", &[("code", "SEQ_GAP")]),
        2.0
    );
    assert_eq!(
        d("progress_hub_errors_sent_total", &[("code", "BAD_MESSAGE")]),
        1.0
    );
    let received = |t: &str| d("progress_hub_messages_received_total", &[("type", t)]);
    assert_eq!(received("operation_started"), 3.0);
    assert_eq!(received("progress_update"), 3.0 + 1.0 + 2.0);
    assert_eq!(received("operation_completed"), 1.0);
    assert_eq!(received("operation_failed"), 1.0);
    assert_eq!(received("subscribe"), 2.0);
    assert_eq!(
        d("progress_hub_ack_latency_seconds_count", &[]),
        9.0,
        "8 acks and a duplicate ack"
    );
    assert_eq!(
        d(
            "progress_hub_operations_started_total",
            &[("kind", "render")]
        ),
        2.0
    );
    assert_eq!(
        d("progress_hub_operations_started_total", &[("kind", "etl")]),
        1.0
    );
    let finished = |kind: &str, outcome: &str| {
        d(
            "progress_hub_operations_finished_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(finished("render", "completed"), 1.0);
    assert_eq!(finished("render", "failed"), 1.0);
    assert_eq!(finished("etl", "completed"), 0.0);
    let state = |s: &str| m.val("progress_hub_operations", &[("state", s)]);
    assert_eq!(
        (state("running"), state("completed"), state("failed")),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(m.val("progress_hub_namespaces", &[]), 1.0);
    assert_eq!(m.val("progress_hub_subscriptions", &[]), 2.0);
    assert_eq!(d("progress_hub_replayed_events_total", &[]), 5.0);
    assert_eq!(
        d("progress_hub_resumes_total", &[("outcome", "recovered")]),
        1.0
    );
    assert_eq!(
        d("progress_hub_resumes_total", &[("outcome", "no_resume")]),
        1.0
    );
    let clients = |role: &str| {
        m.val(
            "ws_updates_clients",
            &[("transport", "websocket"), ("role", role)],
        )
    };
    assert_eq!(
        (clients("none"), clients("viewer"), clients("producer")),
        (0.0, 2.0, 1.0)
    );
    assert_eq!(
        d(
            "progress_hub_connections_accepted_total",
            &[("transport", "websocket")]
        ),
        3.0
    );
    assert_eq!(
        d(
            "progress_hub_handshake_seconds_count",
            &[("transport", "websocket")]
        ),
        3.0
    );
    assert_eq!(
        d(
            "progress_hub_connections_refused_total",
            &[("transport", "websocket"), ("reason", "origin")]
        ),
        1.0
    );
    // Frames and batching agree with each other.
    assert_eq!(
        d("progress_hub_messages_per_frame_count", &[]),
        d("progress_hub_frames_sent_total", &[])
    );
    assert!(d("progress_hub_messages_sent_total", &[]) >= 8.0 * 2.0 + 9.0);
    assert!(
        d(
            "progress_hub_messages_sent_by_type_total",
            &[("type", "ack")]
        ) >= 9.0
    );
    assert!(d("progress_hub_end_to_end_latency_seconds_count", &[]) >= 1.0);
    assert!(d("progress_hub_store_commit_seconds_count", &[]) >= 1.0);
    assert_eq!(m.val("progress_hub_ready", &[]), 1.0);
    // Process and runtime figures.
    assert!(m.val("process_resident_memory_bytes", &[]) > 0.0);
    assert!(m.val("process_open_fds", &[]) > 0.0);
    assert!(m.get("process_cpu_seconds_total", &[]).is_some());
    assert!(m.val("progress_hub_tokio_workers", &[]) >= 1.0);

    // An SSE viewer is counted while connected, then leaves.
    let resp = reqwest::get(format!("{}/api/v1/stream?namespace={ns}", h.http()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(DEADLINE, body.next()).await.unwrap();
    assert!(first.is_some());
    let sse = |m: &Metrics| {
        m.val(
            "ws_updates_clients",
            &[("transport", "sse"), ("role", "viewer")],
        )
    };
    eventually("the SSE viewer counted", DEADLINE, || async {
        (sse(&Metrics::scrape(&h).await) == 1.0).then_some(())
    })
    .await;
    drop(body);
    // The hub notices at its next write (heartbeats every 200 ms).
    eventually("the SSE viewer gone", DEADLINE, || async {
        let m = Metrics::scrape(&h).await;
        (sse(&m) == 0.0
            && m.val(
                "ws_updates_disconnections_total",
                &[("reason", "client_close")],
            ) == 1.0)
            .then_some(())
    })
    .await;
    check_with_promtool(&m.text);
}

#[tokio::test]
async fn auth_failures_refusals_and_idle_disconnections() {
    let h = hub()
        .args([
            "--jwt-secret",
            SECRET,
            "--heartbeat-interval",
            "200ms",
            "--idle-timeout",
            "800ms",
        ])
        .start()
        .await;
    let exp = now_s() + 3600;
    let scraper = token("prometheus", &["viewer"], &["*"]);
    let token = token("alice", &["viewer"], &["default"]);
    // Refused: no token, a malformed one, a wrongly signed one.
    for (query, code) in [
        ("", "AUTH_REQUIRED"),
        ("?token=not-a-jwt", "AUTH_FAILED"),
        (
            &format!(
                "?token={}",
                mint_hs256("another-secret-123456", &Claims::new("x", exp)).unwrap()
            )[..],
            "AUTH_FAILED",
        ),
    ] {
        let r = Ws::connect_with(&format!("{}{query}", h.ws_url()), &[]).await;
        let (status, body) = r.err().expect("refused");
        assert_eq!(status, 401);
        assert!(body.contains(code), "{body}");
    }
    // An accepted raw client that never answers pings: idle timeout.
    let mut raw = RawWs::connect(&h.addr, &format!("/ws?token={token}")).await;
    let (_, code) = raw.read_until_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1001));
    let m = eventually("the idle disconnection counted", DEADLINE, || async {
        let m = Metrics::scrape_as(&h, Some(&scraper)).await;
        (m.val(
            "ws_updates_disconnections_total",
            &[("reason", "idle_timeout")],
        ) == 1.0)
            .then_some(m)
    })
    .await;
    let auth = |r: &str| m.val("progress_hub_auth_failures_total", &[("reason", r)]);
    assert_eq!(
        (auth("required"), auth("malformed"), auth("signature")),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(
        m.val(
            "progress_hub_connections_refused_total",
            &[("transport", "websocket"), ("reason", "auth")]
        ),
        3.0
    );
    assert_eq!(
        m.val(
            "progress_hub_errors_sent_total",
            &[("code", "IDLE_TIMEOUT")]
        ),
        1.0
    );
    assert_eq!(
        m.val("progress_hub_errors_sent_total", &[("code", "AUTH_FAILED")]),
        2.0,
        "HTTP error responses count too"
    );
    assert_eq!(
        m.val(
            "ws_updates_clients",
            &[("transport", "websocket"), ("role", "none")]
        ),
        0.0
    );
    assert_eq!(
        m.val(
            "progress_hub_connections_accepted_total",
            &[("transport", "websocket")]
        ),
        1.0
    );
}

/// The code of a JSON error response.
async fn error_code(r: reqwest::Response) -> Value {
    let v: Value = r.json().await.unwrap_or(Value::Null);
    v["error"]["code"].clone()
}

/// With a key configured `/metrics` needs a valid token, like every HTTP
/// call but `/health`, `/ready` and the dashboard's files, with a role
/// that may view (whatever its namespaces: the figures are hub-wide).
#[tokio::test]
async fn metrics_need_a_viewing_token_when_auth_is_on() {
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    let expired = mint_hs256(SECRET, &Claims::new("old", now_s() - 60)).unwrap();
    for (tok, code) in [
        (None, "AUTH_REQUIRED"),
        (Some("not-a-jwt"), "AUTH_FAILED"),
        (Some(expired.as_str()), "TOKEN_EXPIRED"),
    ] {
        let (status, r) = get_metrics(&h, tok).await;
        assert_eq!((status, error_code(r).await), (401, json!(code)), "{tok:?}");
    }
    let viewer = token("prometheus", &["viewer"], &["*"]);
    let m = Metrics::scrape_as(&h, Some(&viewer)).await;
    assert_eq!(
        m.val(
            "progress_hub_auth_failures_total",
            &[("reason", "required")]
        ),
        1.0,
        "the refused scrape was counted"
    );
    // The query token works too (as on every HTTP call).
    let r = reqwest::get(format!("{}/metrics?token={viewer}", h.http()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Any viewing role will do, whatever its namespaces.
    for tok in [
        token("p", &["viewer"], &["default"]),
        token("p", &["operator"], &["team-*"]),
    ] {
        assert_eq!(get_metrics(&h, Some(&tok)).await.0, 200);
    }
    // Tokens without a role that may view are refused.
    for (tok, what) in [
        (token("p", &[], &["*"]), "roles: []"),
        (token("p", &["superuser"], &["*"]), "an unknown role"),
    ] {
        let (status, r) = get_metrics(&h, Some(&tok)).await;
        assert_eq!(
            (status, error_code(r).await),
            (403, json!("FORBIDDEN")),
            "{what}"
        );
    }
    // An admin may scrape whatever its globs.
    let admin = token("root", &["admin"], &["prod-*"]);
    assert_eq!(get_metrics(&h, Some(&admin)).await.0, 200);
}

/// `--allow-anonymous-read` lets tokenless GETs read, `/metrics` included;
/// a bad token is still refused.
#[tokio::test]
async fn anonymous_read_opens_metrics() {
    let h = hub()
        .args(["--jwt-secret", SECRET, "--allow-anonymous-read"])
        .start()
        .await;
    Metrics::scrape(&h).await;
    // A token never allows less than no token.
    for tok in [
        token("p", &["viewer"], &["default"]),
        token("p", &[], &["default"]),
    ] {
        assert_eq!(get_metrics(&h, Some(&tok)).await.0, 200);
    }
    let (status, r) = get_metrics(&h, Some("not-a-jwt")).await;
    assert_eq!((status, error_code(r).await), (401, json!("AUTH_FAILED")));
}

/// `promtool check metrics` (lint and format), when promtool is installed.
fn check_with_promtool(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipping `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every metric name the Grafana dashboard and the alert rules use is one
/// the hub exports (so a renamed metric cannot silently blank a panel).
#[tokio::test]
async fn dashboards_and_alerts_use_only_exported_metrics() {
    let h = hub().args(["--max-namespaces", "1"]).start().await;
    // Families whose series appear with their first event: an operation
    // that starts and completes, a refused origin, a rate limit.
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "one"), 1).await;
    let done =
        json!({"type": "operation_completed", "namespace": "one", "operation_id": "a", "seq": 2});
    publish(&mut p, done, 2).await;
    let e = publish(&mut p, started("b", "two"), 3).await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    let refused = Ws::connect_with(&h.ws_url(), &[("Origin", "http://evil.example")]).await;
    assert!(refused.is_err());
    let m = Metrics::scrape(&h).await;
    let mut known = std::collections::BTreeSet::new();
    for line in m.text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            known.insert(name.to_owned());
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    known.insert(format!("{name}{s}"));
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let files = [
        root.join("grafana/progress-hub.json"),
        root.join("prometheus/alerts.yml"),
    ];
    let mut used = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for w in words {
            let ours = ["progress_hub_", "ws_updates_", "process_"]
                .iter()
                .any(|p| w.starts_with(p));
            // Prose mentions like `progress_hub_queue_depth_bytes` count too.
            if ours {
                used += 1;
                assert!(
                    known.contains(w),
                    "{} uses `{w}`, which /metrics does not export",
                    f.display()
                );
            }
        }
    }
    assert!(used > 40, "only {used} metric references found");
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).expect("valid JSON");
    assert_eq!(dash["templating"]["list"][0]["type"], "datasource");
    for p in dash["panels"].as_array().unwrap() {
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
}
