//! Structured logs against the real binary: with `--log-format json` every
//! stderr line is a JSON object; HTTP lines carry the request id (the
//! client's `X-Request-Id`, echoed back, or a generated one); connection
//! lines carry the connection id, remote address and subject, over
//! WebSocket and SSE alike; operation lines carry namespace and operation
//! id; and no line ever contains a token, even one sent in `?token=`.

mod common;
use common::tokens::*;
use common::*;
use futures_util::StreamExt;

/// Every stderr line so far, each parsed as JSON (panics on a line that is not).
fn json_lines(all: &mut Vec<Value>, h: &mut Hub) {
    for l in h.stderr_lines() {
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        all.push(v);
    }
}

/// The value of `field` in the line's fields or any of its spans.
fn field<'a>(line: &'a Value, field: &str) -> Option<&'a Value> {
    line["fields"].get(field).or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|s| s.get(field))
    })
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn json_lines_carry_ids_and_never_the_token() {
    let mut h = hub()
        .args([
            "--jwt-secret",
            SECRET,
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .start()
        .await;
    let token = token("alice", &["reporter"], &["default"]);
    let signature = token.rsplit('.').next().unwrap().to_owned();

    // An HTTP call with the token in the query and a request id.
    let client = reqwest::Client::new();
    let r = client
        .get(format!(
            "{}/api/v1/namespaces/default/operations?token={token}",
            h.http()
        ))
        .header("X-Request-Id", "req-7-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-7-abc");
    // Without one, the hub makes one up and says which.
    let r = client
        .get(format!("{}/api/v1/nothing?token={token}", h.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 16, "{generated}");
    // A page the dashboard does not have: the same code in the log.
    let r = client
        .get(format!("{}/no-such-page", h.http()))
        .header("x-request-id", "req-page-404")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A 20 KB URI: its log line carries the first 1024 characters only
    // (the log queue is bounded in lines, so lines are bounded in bytes).
    let r = client
        .get(format!(
            "{}/api/v1/status?pad={}",
            h.http(),
            "p".repeat(20_000)
        ))
        .header("x-request-id", "req-long-uri")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The parameter's name percent-encoded: the hub decodes it (and takes
    // the token), the log must not print it either.
    let r = client
        .get(format!(
            "{}/api/v1/namespaces/default/operations?tok%65n={token}",
            h.http()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A refused token is logged as a refusal, without the token.
    let r = client
        .get(format!("{}/api/v1/status?token={token}x", h.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A WebSocket connection with the token in the query; it reports an
    // operation that fails (an info line about the operation).
    let mut ws = Ws::connect(&format!("{}?token={token}", h.ws_url())).await;
    publish(&mut ws, started("job-1", "default"), 1).await;
    let failed = json!({"type": "operation_failed", "operation_id": "job-1", "seq": 2, "error": "disk full"});
    assert_eq!(publish(&mut ws, failed, 2).await["type"], "ack");
    ws.close().await;

    // An SSE connection, also with the token in the query.
    let resp = client
        .get(format!(
            "{}/api/v1/stream?namespace=default&token={token}",
            h.http()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    assert!(tokio::time::timeout(DEADLINE, body.next())
        .await
        .unwrap()
        .is_some());
    drop(body);

    let mut lines = Vec::new();
    let want = |lines: &Vec<Value>| {
        let has = |m: &str| lines.iter().any(|l| message(l) == m);
        has("websocket connected")
            && has("websocket closed")
            && has("sse connected")
            && has("operation event")
            && lines
                .iter()
                .any(|l| field(l, "request_id").and_then(Value::as_str) == Some("req-7-abc"))
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        json_lines(&mut lines, &mut h);
        if want(&lines) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing log lines; got:\n{lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    json_lines(&mut lines, &mut h);

    // No line carries the token or any part of its signature.
    for l in &lines {
        let text = l.to_string();
        assert!(!text.contains(&token), "token in a log line: {text}");
        assert!(
            !text.contains(&signature),
            "signature in a log line: {text}"
        );
    }
    // The HTTP line: request id, method, the URI with the token redacted, status.
    let req = lines
        .iter()
        .find(|l| {
            message(l) == "request"
                && field(l, "request_id").and_then(Value::as_str) == Some("req-7-abc")
        })
        .expect("a request line with the client's id");
    assert_eq!(field(req, "method").unwrap(), "GET");
    assert_eq!(
        field(req, "uri").unwrap(),
        "/api/v1/namespaces/default/operations?token=REDACTED"
    );
    assert_eq!(field(req, "status").unwrap(), 200);
    assert!(lines.iter().any(|l| message(l) == "request"
        && field(l, "request_id").and_then(Value::as_str) == Some(generated.as_str())
        && field(l, "code").and_then(Value::as_str) == Some("NOT_FOUND")));
    let long = lines
        .iter()
        .find(|l| {
            message(l) == "request"
                && field(l, "request_id").and_then(Value::as_str) == Some("req-long-uri")
        })
        .expect("the long URI's request line");
    let uri = field(long, "uri").and_then(Value::as_str).unwrap();
    assert!(
        uri.chars().count() == 1024
            && uri.starts_with("/api/v1/status?pad=ppp")
            && uri.ends_with('…'),
        "{uri}"
    );
    assert!(lines.iter().any(|l| message(l) == "request"
        && field(l, "request_id").and_then(Value::as_str) == Some("req-page-404")
        && field(l, "code").and_then(Value::as_str) == Some("NOT_FOUND")));
    assert!(lines.iter().any(|l| message(l) == "request"
        && field(l, "status") == Some(&json!(401))
        && field(l, "code").and_then(Value::as_str) == Some("AUTH_FAILED")));
    // Connection lines: id, remote, subject, transport.
    for (m, transport) in [
        ("websocket connected", "websocket"),
        ("websocket closed", "websocket"),
        ("sse connected", "sse"),
    ] {
        let l = lines.iter().find(|l| message(l) == m).unwrap();
        assert!(field(l, "id").unwrap().as_u64().unwrap() >= 1, "{l}");
        assert!(
            field(l, "remote")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{l}"
        );
        assert_eq!(field(l, "sub").unwrap(), "alice", "{l}");
        assert_eq!(field(l, "transport").unwrap(), transport, "{l}");
    }
    // The operation line: namespace and operation id.
    let op = lines
        .iter()
        .find(|l| {
            message(l) == "operation event"
                && field(l, "event").and_then(Value::as_str) == Some("operation_failed")
        })
        .expect("an info line for the failed operation");
    assert_eq!(op["level"], "INFO");
    assert_eq!(field(op, "namespace").unwrap(), "default");
    assert_eq!(field(op, "operation_id").unwrap(), "job-1");
}

#[tokio::test]
async fn text_logs_by_default_are_plain_lines() {
    let mut h = hub().start().await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces/default/operations", h.http()))
        .header("X-Request-Id", "plain-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "plain-1");
    let line = eventually("the request line", DEADLINE, || {
        let lines = h.stderr_lines();
        async move { lines.into_iter().find(|l| l.contains("plain-1")) }
    })
    .await;
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    assert!(line.contains("request_id=plain-1"), "{line}");
    assert!(
        !line.contains('\u{1b}'),
        "no colours when not a terminal: {line}"
    );
}

/// A stderr nobody reads (a pipe a test harness or supervisor opened and
/// never drains) must not stop the hub: once the pipe's buffer is full,
/// log lines are dropped instead of blocking the hub's threads. 1,500
/// requests log ~280 KB, four times what a pipe holds.
#[tokio::test]
async fn an_unread_stderr_pipe_never_stops_the_hub() {
    use tokio::io::AsyncBufReadExt;
    let mut child = spawn_cli("serve", &["--listen", "127.0.0.1:0", "--memory"]);
    // Held, never read.
    let _stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("listening line in time")
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .expect("listening on")
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0..1500 {
        let r = http
            .get(format!(
                "http://{addr}/api/v1/namespaces/default/operations"
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        assert_eq!(r.status(), 200, "request {i}");
    }
    let mut ws = Ws::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(ws.request(json!({"type": "ping"}), 1).await["type"], "pong");
}

/// Many producers falling silent at once give one `info` line per
/// namespace and tick, not one per operation (a storm of thousands filled
/// the log queue and pushed other lines out).
#[tokio::test]
async fn stalls_are_summed_up_per_namespace() {
    let mut h = hub()
        .args(["--log-format", "json", "--stall-timeout", "500ms"])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    for i in 0..5u64 {
        publish(&mut p, started(&format!("quiet{i}"), "default"), i).await;
    }
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let summed = loop {
        json_lines(&mut lines, &mut h);
        let total: u64 = lines
            .iter()
            .filter(|l| message(l) == "operations stalled")
            .filter_map(|l| field(l, "stalled")?.as_u64())
            .sum();
        if total >= 5 {
            break total;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stall summary: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(summed, 5);
    let summary = lines
        .iter()
        .find(|l| message(l) == "operations stalled")
        .unwrap();
    assert_eq!(summary["level"], "INFO");
    assert_eq!(field(summary, "namespace").unwrap(), "default");
    assert!(
        !lines.iter().any(|l| message(l) == "operation event"
            && field(l, "event").and_then(Value::as_str) == Some("operation_stalled")),
        "no line per stalled operation at info"
    );
}

/// Even at `--log-level trace`, a token sent in a `refresh` message never
/// reaches the log: the WebSocket library's trace lines print every
/// received message in full, and they are dropped whatever the level.
#[tokio::test]
async fn trace_logs_never_carry_a_refreshed_token() {
    let mut h = hub()
        .args(["--jwt-secret", SECRET, "--log-level", "trace"])
        .start()
        .await;
    let first = token("alice", &["viewer"], &["default"]);
    let mut ws = ws_as(&h, &first).await;
    let fresh = token("alice", &["viewer"], &["default", "ci"]);
    assert_ne!(first, fresh);
    let signature = fresh.rsplit('.').next().unwrap().to_owned();
    let ok = ws
        .request(json!({"type": "refresh", "token": fresh}), 7)
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let pong = ws.request(json!({"type": "ping"}), 8).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    ws.close().await;
    // Everything written up to a clean exit.
    h.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(h.wait_exit(DEADLINE).await.is_some_and(|s| s.success()));
    let lines = h.stderr_lines();
    assert!(
        lines.iter().any(|l| l.contains("TRACE")),
        "trace lines are written at this level: {lines:#?}"
    );
    for l in &lines {
        assert!(
            !l.contains(&signature),
            "the refreshed token in a log line: {l}"
        );
    }
}
