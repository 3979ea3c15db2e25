//! The command-line contract: config precedence, refusals with exit code 2,
//! the `listening on` line, and graceful shutdown on SIGTERM.

mod common;
use common::*;
use nix::sys::signal::Signal;

#[tokio::test]
async fn bad_values_and_unknown_keys_exit_2_naming_the_key() {
    let (code, err) = hub()
        .args(["--heartbeat-interval", "often"])
        .try_start()
        .await
        .err()
        .expect("refused");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("heartbeat_interval") && err.contains("flag"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n").unwrap();
    let (code, err) = hub()
        .args(["--config", file.to_str().unwrap()])
        .try_start()
        .await
        .err()
        .expect("refused");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bogus_key") && err.contains("hub.toml"),
        "{err}"
    );
    let (code, err) = hub()
        .listen("0.0.0.0:0")
        .try_start()
        .await
        .err()
        .expect("refused");
    assert_eq!(code, Some(2));
    assert!(err.contains("insecure-no-auth"), "{err}");
}

#[tokio::test]
async fn config_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "heartbeat_interval = \"150ms\"\n").unwrap();
    let h = hub()
        .args(["--config", file.to_str().unwrap()])
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.next_of("heartbeat", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn sigterm_sends_server_shutdown_closes_1012_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut p, started("a", "default"), 1).await;
    assert_eq!(ack["offset"], 1);
    let (mut v, _) = subscriber(&h, "default").await;
    h.signal(Signal::SIGTERM);
    let e = v.until(|m| m["code"] == "SERVER_SHUTDOWN", DEADLINE).await;
    assert_eq!(e["type"], "error");
    assert_eq!(v.closed(DEADLINE).await, Some(1012));
    let status = h.wait_exit(Duration::from_secs(15)).await.expect("exited");
    assert_eq!(status.code(), Some(0));
    // Everything acked is there after a restart.
    let h = hub().data_dir(dir.path()).start().await;
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations",
        h.http()
    ))
    .await;
    assert_eq!(list["operations"][0]["operation_id"], "a");
}
