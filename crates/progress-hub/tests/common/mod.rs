//! Shared by the integration tests: the hub binary under test.

#![allow(dead_code, unused_imports)]

pub mod tokens;

pub use hub_testkit::{eventually, Hub, HubBuilder, RawWs, Ws, WsError, DEADLINE};
pub use serde_json::{json, Value};
pub use std::time::Duration;

/// A builder for the hub binary this package built.
pub fn hub() -> HubBuilder {
    HubBuilder::new(env!("CARGO_BIN_EXE_progress-hub"))
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

/// GET a JSON document.
pub async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
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
