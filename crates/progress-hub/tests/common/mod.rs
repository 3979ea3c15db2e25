//! Shared by the integration tests: the hub binary under test.

#![allow(dead_code, unused_imports)]

pub mod tokens;

pub use hub_testkit::{
    eventually, Hub, HubBuilder, RawHttp, RawWs, Sse, SseEnd, SseEvent, Ws, WsError, DEADLINE,
};
pub use serde_json::{json, Value};
pub use std::time::Duration;

/// A builder for the hub binary this package built.
pub fn hub() -> HubBuilder {
    HubBuilder::new(env!("CARGO_BIN_EXE_progress-hub"))
}

/// `progress-hub SUBCOMMAND ARGS` as a child process with stdin closed,
/// stdout and stderr piped (not read yet), no hub settings or log level
/// from the environment, killed when dropped.
pub fn spawn_cli(subcommand: &str, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .arg(subcommand)
        .args(args)
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {subcommand}: {e}"))
}

/// A WebSocket subscribed to `ns` (returns the `subscribed` reply).
pub async fn subscriber(h: &Hub, ns: &str) -> (Ws, Value) {
    let mut ws = Ws::connect(&h.ws_url()).await;
    let sub = ws
        .request(json!({"type": "subscribe", "namespace": ns}), 1)
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    (ws, sub)
}

/// `operation_started` JSON.
pub fn started(op: &str, ns: &str) -> Value {
    json!({"type": "operation_started", "namespace": ns, "operation_id": op, "seq": 1, "name": format!("Job {op}"), "kind": "render", "total": 100})
}

/// `progress_update` JSON.
pub fn progress(op: &str, ns: &str, seq: u64, pct: f64) -> Value {
    json!({"type": "progress_update", "namespace": ns, "operation_id": op, "seq": seq, "progress": pct, "step": "rendering"})
}

/// Publishes and waits for the ack (or error) with the given request id.
pub async fn publish(ws: &mut Ws, msg: Value, id: u64) -> Value {
    ws.request(msg, id).await
}

/// Starts operations `{prefix}1..={prefix}{n}` in the default namespace,
/// each with `pad_bytes` of metadata (big snapshots and listings), each
/// acked before the next.
pub async fn start_padded(p: &mut Ws, prefix: &str, n: u64, pad_bytes: usize) {
    let pad = "m".repeat(pad_bytes);
    for i in 1..=n {
        let mut start = started(&format!("{prefix}{i}"), "default");
        start["metadata"] = json!({ "pad": pad });
        let ack = publish(p, start, i).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
}

/// Starts and completes `op` in the default namespace (seqs 1 and 2, on
/// `p` with request ids 1 and 2), then waits until `--finished-retention`
/// has dropped it (its HTTP URL, returned, answers 404).
pub async fn complete_and_wait_until_dropped(h: &Hub, p: &mut Ws, op: &str) -> String {
    publish(p, started(op, "default"), 1).await;
    let done = json!({"type": "operation_completed", "operation_id": op, "seq": 2});
    let ack = publish(p, done, 2).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let url = format!("{}/api/v1/namespaces/default/operations/{op}", h.http());
    eventually("the operation to be dropped", DEADLINE, || {
        let url = url.clone();
        async move { (get_json(&url).await.0 == 404).then_some(()) }
    })
    .await;
    url
}

/// Asserts that `ack` re-acks a resend: a duplicate with the original offset.
pub fn assert_reacked(ack: &Value, offset: u64) {
    assert_eq!(
        (ack["duplicate"].clone(), ack["offset"].clone()),
        (json!(true), json!(offset)),
        "{ack}"
    );
}

/// The hub's `/metrics` text.
pub async fn metrics_text(h: &Hub) -> String {
    reqwest::get(format!("{}/metrics", h.http()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text")
}

/// An SSE stream of `default` opened with a 4 KiB receive buffer and then
/// never read (a stuck client).
pub async fn stuck_sse_stream(h: &Hub) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(h.addr.parse().unwrap()).await.unwrap();
    let req = format!(
        "GET /api/v1/stream?namespace=default HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        h.addr
    );
    stuck.write_all(req.as_bytes()).await.unwrap();
    stuck
}

/// Waits until the hub holds `n` subscriptions (`/metrics`).
pub async fn wait_for_subscriptions(h: &Hub, n: usize, what: &str) {
    let line = format!("progress_hub_subscriptions {n}");
    eventually(what, DEADLINE, || async {
        metrics_text(h)
            .await
            .lines()
            .any(|l| l == line)
            .then_some(())
    })
    .await;
}

/// GET a JSON document.
pub async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET /api/v1/namespaces/default/operations/{id}`: `{operation, events}`
/// (an error document for an unknown one).
pub async fn operation_detail(h: &Hub, id: &str) -> Value {
    get_json(&format!(
        "{}/api/v1/namespaces/default/operations/{id}",
        h.http()
    ))
    .await
    .1
}

/// Runs the binary with `args` and no hub settings from the environment
/// (URL, token, namespace, CA, log filter), and its output; the child is
/// killed if it outlives `deadline` (the test then fails).
pub async fn cli_within(args: &[&str], deadline: Duration) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(args)
        .kill_on_drop(true)
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .env_remove("PROGRESS_HUB_NAMESPACE")
        .env_remove("PROGRESS_HUB_CA_CERT")
        .env_remove("SSL_CERT_FILE")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output();
    tokio::time::timeout(deadline, out)
        .await
        .expect("the command ended within the test's deadline")
        .unwrap()
}

/// [`cli_within`] a minute.
pub async fn cli(args: &[&str]) -> std::process::Output {
    cli_within(args, Duration::from_secs(60)).await
}

/// The events of type `ty` in an operation's detail document
/// (`GET .../operations/{id}`: `{operation, events}`).
pub fn events_of_type<'a>(op: &'a Value, ty: &str) -> Vec<&'a Value> {
    op["events"]
        .as_array()
        .map(|events| events.iter().filter(|e| e["type"] == ty).collect())
        .unwrap_or_default()
}

/// POST JSON.
pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A producer connection that sends a message and waits for its reply.
pub trait Publisher {
    /// Sends `msg` (with `id`) and waits for the reply to it.
    fn publish(&mut self, msg: Value, id: u64) -> impl std::future::Future<Output = ()>;

    /// The hub's `/metrics` text, over the same kind of connection.
    fn metrics(&self, h: &Hub) -> impl std::future::Future<Output = Option<String>> {
        let url = format!("{}/metrics", h.http());
        async move { reqwest::get(url).await.ok()?.text().await.ok() }
    }
}

impl Publisher for Ws {
    async fn publish(&mut self, msg: Value, id: u64) {
        publish(self, msg, id).await;
    }
}

/// Publishes `operation_started` events padded to ~8 KB on `p`, 50 at a
/// time, until the hub has dropped `n` connections as slow clients
/// (`ws_updates_disconnections_total{reason="slow_client"}`); panics after
/// 60 s.
pub async fn flood_until_slow_drops(h: &Hub, p: &mut impl Publisher, n: u64) {
    let pad = "f".repeat(8000);
    let drops = |text: Option<String>| {
        let text = text?;
        let line = text
            .lines()
            .find(|l| l.starts_with("ws_updates_disconnections_total{reason=\"slow_client\"}"))?;
        line.rsplit(' ').next()?.parse::<u64>().ok()
    };
    let mut id = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while drops(p.metrics(h).await).unwrap_or(0) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub did not drop {n} slow client(s) within 60 s"
        );
        for _ in 0..50 {
            id += 1;
            let mut m = started(&format!("flood{id}"), "default");
            m["metadata"] = json!({ "pad": pad });
            p.publish(m, id).await;
        }
    }
}
