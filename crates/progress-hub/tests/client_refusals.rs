//! How the client commands meet a URL that can never work, through the
//! real binary: a hub answering the WebSocket upgrade with 404 (a wrong
//! path) stops `report`, `run` and `watch` at once instead of retrying
//! until their timeouts; an `http://` URL is refused with the `ws://` hint.

mod common;
use common::*;

/// Far shorter than the timeouts the commands are given: a retry until
/// them fails the test.
async fn cli(args: &[&str]) -> Output {
    cli_within(args, Duration::from_secs(30)).await
}
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const NO_WS: &str = "no progress-hub WebSocket at this URL (HTTP 404): is the path /ws?";

#[tokio::test]
async fn a_url_without_a_hub_websocket_is_refused_at_once() {
    let h = hub().start().await;
    let url = h.ws_url().replace("/ws", "/nope");
    let out = cli(&["report", "--url", &url, "--timeout", "300s", "start", "n"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(NO_WS), "{}", stderr(&out));
    assert!(!stderr(&out).contains("in time"), "{}", stderr(&out));

    let out = cli(&[
        "run",
        "--url",
        &url,
        "--flush-timeout",
        "300s",
        "--",
        "sh",
        "-c",
        "echo ran; exit 5",
    ])
    .await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(stderr(&out).contains(NO_WS), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let out = cli(&["watch", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(NO_WS), "{}", stderr(&out));
}

#[tokio::test]
async fn an_http_url_gets_the_ws_hint() {
    for (url, hint) in [
        ("http://127.0.0.1:9/ws", "use ws://HOST:PORT/ws"),
        ("https://127.0.0.1:9/ws", "use wss://HOST:PORT/ws"),
    ] {
        let out = cli(&["report", "--url", url, "start", "n"]).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(hint), "{}", stderr(&out));
    }
}

/// A namespace the protocol does not allow (also from
/// `PROGRESS_HUB_NAMESPACE`), a zero `--timeout` and a `--filter` the hub
/// would refuse are usage errors (exit 2) said before anything is sent,
/// not after a round trip with a message about a generated id. (`run`
/// runs its command whatever becomes of the reporting.)
#[tokio::test]
async fn bad_settings_are_usage_errors() {
    let url = "ws://127.0.0.1:9/ws";
    let long = "g".repeat(257);
    for (args, env, named) in [
        (
            &["report", "--url", url, "start", "n"][..],
            Some("bad ns"),
            "namespace",
        ),
        (
            &["report", "--url", url, "--namespace", "", "start", "n"],
            None,
            "namespace",
        ),
        (
            &["watch", "--url", url, "--namespace", "a/b"],
            None,
            "namespace",
        ),
        (
            &["report", "--url", url, "--timeout", "0s", "start", "n"],
            None,
            "--timeout",
        ),
        (&["watch", "--url", url, "--filter", ""], None, "--filter"),
        (
            &["watch", "--url", url, "--filter", &long],
            None,
            "--filter",
        ),
    ] {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"));
        c.args(args)
            .env_remove("PROGRESS_HUB_URL")
            .env_remove("PROGRESS_HUB_NAMESPACE");
        if let Some(ns) = env {
            c.env("PROGRESS_HUB_NAMESPACE", ns);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), c.output())
            .await
            .expect("a usage error is said at once")
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing printed, nothing sent");
    }
}

/// A report over the hub's message size limit is cut to fit and delivered:
/// the text keeps as much as fits, and `report` warns and exits 0 (it
/// said "refused" and exited 1, so a script retrying on failure sent it
/// again; the message was dropped whole).
#[tokio::test]
async fn a_report_cut_to_the_size_limit_is_delivered_with_a_warning() {
    let h = hub().args(["--max-message-size", "1024"]).start().await;
    let url = h.ws_url();
    let out = cli(&["report", "--url", &url, "start", "--id", "big", "Big"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let long = "a".repeat(2000);
    let out = cli(&[
        "report",
        "--url",
        &url,
        "progress",
        "big",
        "10",
        "--message",
        &long,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("message shortened"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["report", "--url", &url, "fail", "big", &"e".repeat(3000)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, op) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations/big",
        h.http()
    ))
    .await;
    let updates = events_of_type(&op, "progress_update");
    assert_eq!(updates.len(), 1, "{op}");
    let message = updates[0]["message"].as_str().unwrap();
    assert!(message.len() > 700 && message.ends_with('…'), "{message}");
    let error = op["operation"]["error"].as_str().unwrap();
    assert_eq!(op["operation"]["state"], "failed");
    assert!(
        error.chars().count() > 700 && error.ends_with('…'),
        "{error}"
    );
}
