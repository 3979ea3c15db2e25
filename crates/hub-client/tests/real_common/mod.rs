//! What the tests against the real hub binary share: a free address, a
//! client configuration with short delays, and the hub's own view of its
//! operations read over a separate raw connection.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use hub_client::ClientConfig;
use hub_testkit::{Hub, Ws};
use serde_json::json;

/// How long any one condition is waited for.
pub const WAIT: Duration = Duration::from_secs(30);

/// A loopback address nothing listens on (yet).
pub async fn free_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

/// A client configuration with short backoff and progress intervals.
pub fn fast(url: &str) -> ClientConfig {
    ClientConfig::new(url)
        .backoff(Duration::from_millis(50), Duration::from_millis(300))
        .progress_interval(Duration::from_millis(20))
}

/// The hub's own view, read over a separate raw connection.
pub async fn hub_states(hub: &Hub) -> HashMap<String, serde_json::Value> {
    let mut ws = Ws::connect(&hub.ws_url()).await;
    let reply = ws
        .request(json!({"type": "subscribe", "namespace": "default"}), 1)
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let list = ws.next_of("operation_list", WAIT).await;
    list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["operation_id"].as_str().unwrap().to_owned(), s.clone()))
        .collect()
}
