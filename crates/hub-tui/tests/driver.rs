//! The driver (hub-client's Subscriber adapted to the model) against a real
//! in-process hub: rows arrive, a cancel reaches the producer, a hub restart
//! is seen as reconnecting and then as a reload (a memory hub's new epoch).
//! Every wait has a deadline; nothing sleeps a fixed time.

use futures_util::{SinkExt, StreamExt};
use hub_tui::driver::{self, DriverConfig, Request};
use hub_tui::{App, AppConfig, ConnStatus, OpStatus, Update};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
const DEADLINE: Duration = Duration::from_secs(15);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn hub(listen: &str) -> hub_server::Running {
    let cfg = hub_server::Config {
        listen: listen.to_owned(),
        memory: true,
        ..hub_server::Config::default()
    };
    hub_server::start(cfg).await.expect("hub starts")
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// Reads until a message matches `pred`.
async fn until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let msg = tokio::time::timeout_at(end, ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = msg {
            for line in t.as_str().split('\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_str(line).expect("json");
                if pred(&v) {
                    return v;
                }
            }
        }
    }
}

/// Applies updates to `app` until `done` holds.
async fn pump(
    app: &mut App,
    rx: &mut mpsc::Receiver<Update>,
    what: &str,
    done: impl Fn(&App) -> bool,
) {
    let end = Instant::now() + DEADLINE;
    while !done(app) {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(u)) => app.apply(u, now()),
            Ok(None) => panic!("driver stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}; conn {:?}", app.conn()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_feeds_the_model_cancels_and_reconnects() {
    let running = hub("127.0.0.1:0").await;
    let addr = running.addr.to_string();
    let url = format!("ws://{addr}/ws");

    let (mut producer, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("producer");
    send(&mut producer, json!({"type": "operation_started", "id": 1, "operation_id": "t.1", "seq": 1, "name": "Test job", "metadata": {"host": "h1"}})).await;
    send(&mut producer, json!({"type": "progress_update", "id": 2, "operation_id": "t.1", "seq": 2, "progress": 40.0, "step": "working"})).await;
    until(&mut producer, |m| m["type"] == "ack" && m["seq"] == 2).await;

    let (tx, mut rx) = mpsc::channel(1024);
    let d = driver::spawn(
        DriverConfig {
            url: url.clone(),
            token: None,
            namespace: "default".into(),
            tls_root_pem: None,
        },
        tx,
    )
    .expect("driver");
    let mut app = App::new(AppConfig::new(&url, "default"));
    pump(&mut app, &mut rx, "the operation, live", |a| {
        !a.is_stale() && a.op("t.1").is_some_and(|e| e.state.progress == Some(40.0))
    })
    .await;
    // The first view is a snapshot: its states carry the metadata too.
    assert_eq!(
        app.op("t.1").expect("op").state.metadata,
        Some(json!({"host": "h1"}))
    );

    // A live event carries the metadata through to the model.
    send(&mut producer, json!({"type": "progress_update", "id": 3, "operation_id": "t.1", "seq": 3, "progress": 50.0})).await;
    pump(&mut app, &mut rx, "the live update", |a| {
        a.op("t.1")
            .is_some_and(|e| e.state.progress == Some(50.0) && e.recent.len() == 1)
    })
    .await;
    let e = app.op("t.1").expect("op");
    assert_eq!(e.state.metadata, Some(json!({"host": "h1"})));
    assert_eq!(e.state.name, "Test job");

    // Cancel reaches the producer; its answer reaches the model.
    d.request(Request::Cancel("t.1".into()));
    let req = until(&mut producer, |m| m["type"] == "cancel_requested").await;
    assert_eq!(req["operation_id"], "t.1");
    send(&mut producer, json!({"type": "operation_canceled", "id": 4, "operation_id": "t.1", "seq": 4, "reason": "asked"})).await;
    pump(&mut app, &mut rx, "canceled", |a| {
        a.op("t.1")
            .is_some_and(|e| e.state.state == OpStatus::Canceled)
    })
    .await;
    assert_eq!(
        app.op("t.1")
            .expect("op")
            .recent
            .back()
            .map(|r| r.summary.as_str()),
        Some("asked")
    );

    // Canceling a finished operation: the hub refuses, the model says so.
    d.request(Request::Cancel("t.1".into()));
    pump(&mut app, &mut rx, "the refused cancel", |a| {
        a.toasts().live(now()).any(|t| {
            t.text
                .starts_with("Cancel of Test job refused (OPERATION_FINISHED)")
        })
    })
    .await;

    // The hub goes away: reconnecting, stale.
    running.shutdown();
    running.wait().await;
    pump(&mut app, &mut rx, "reconnecting", |a| {
        matches!(
            a.conn(),
            ConnStatus::Reconnecting { .. } | ConnStatus::Connecting { .. }
        )
    })
    .await;
    assert!(app.is_stale());

    // A new memory hub on the same port: new epoch, so a snapshot reload
    // (the old operation is gone from the new hub).
    let again = hub(&addr).await;
    d.request(Request::Reconnect);
    pump(&mut app, &mut rx, "the reload", |a| {
        !a.is_stale() && a.op("t.1").is_none()
    })
    .await;
    assert!(app
        .toasts()
        .live(now())
        .any(|t| t.text == "Reloaded from snapshot"));

    d.shutdown().await;
    again.shutdown();
    again.wait().await;
}

/// A refused token says which refusal it was (the 401's code): no token,
/// an expired one, or a bad one, so the user knows what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_says_why() {
    const SECRET: &str = "a-test-secret-of-some-length-0123";
    let cfg = hub_server::Config {
        listen: "127.0.0.1:0".to_owned(),
        memory: true,
        jwt_secret: Some(SECRET.to_owned()),
        ..hub_server::Config::default()
    };
    let running = hub_server::start(cfg).await.expect("hub starts");
    let url = format!("ws://{}/ws", running.addr);
    let exp = now() / 1000;
    let expired = hub_auth::mint_hs256(SECRET, &hub_auth::Claims::new("u", exp - 60)).unwrap();
    let foreign =
        hub_auth::mint_hs256("another-secret", &hub_auth::Claims::new("u", exp + 60)).unwrap();
    for (token, says) in [
        (None, "AUTH_REQUIRED"),
        (Some(expired), "token expired (TOKEN_EXPIRED)"),
        (Some(foreign), "token rejected (AUTH_FAILED)"),
    ] {
        let (tx, mut rx) = mpsc::channel(1024);
        let _d = driver::spawn(
            DriverConfig {
                url: url.clone(),
                token,
                namespace: "default".into(),
                tls_root_pem: None,
            },
            tx,
        )
        .expect("driver");
        let mut app = App::new(AppConfig::new(&url, "default"));
        pump(&mut app, &mut rx, "the refusal", |a| {
            matches!(a.conn(), ConnStatus::Failed { .. })
        })
        .await;
        match app.conn() {
            ConnStatus::Failed { reason } => assert!(reason.contains(says), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
