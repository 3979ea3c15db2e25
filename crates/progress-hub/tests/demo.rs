//! `progress-hub demo` against a real hub: every kind of outcome appears.

mod common;
use common::*;

#[tokio::test]
async fn demo_round_reports_every_outcome() {
    let h = hub().start().await;
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "demo",
            "--rounds",
            "1",
            "--speed",
            "40",
            "--url",
            &h.ws_url(),
        ])
        .stdout(std::process::Stdio::null())
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("demo finished")
        .unwrap();
    assert!(status.success());
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations",
        h.http()
    ))
    .await;
    let ops = list["operations"].as_array().unwrap();
    let state_of = |prefix: &str| -> Vec<String> {
        ops.iter()
            .filter(|o| o["operation_id"].as_str().unwrap().starts_with(prefix))
            .map(|o| o["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(state_of("render."), vec!["completed"; 3]);
    assert_eq!(state_of("import."), vec!["failed"]);
    assert_eq!(state_of("train."), vec!["canceled"]);
    let children: Vec<&Value> = ops.iter().filter(|o| o["parent_id"].is_string()).collect();
    assert_eq!(children.len(), 3);
    assert!(ops.iter().all(|o| o["state"] != "running"));
}

/// `demo` against a hub that requires a token: without one it says the hub
/// refused it (HTTP 401) and never tries to start a hub of its own on the
/// occupied port; with `--token` (or `PROGRESS_HUB_TOKEN`) it reports there.
#[tokio::test]
async fn demo_tells_a_refusing_hub_from_none_and_takes_a_token() {
    let h = hub()
        .args(["--jwt-secret", common::tokens::SECRET])
        .start()
        .await;
    let demo = |token: Option<String>| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"));
        c.args([
            "demo",
            "--rounds",
            "1",
            "--speed",
            "40",
            "--url",
            &h.ws_url(),
        ])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        if let Some(t) = token {
            c.env("PROGRESS_HUB_TOKEN", t);
        }
        tokio::time::timeout(Duration::from_secs(60), c.output())
    };
    let out = demo(None).await.expect("demo ended").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("in-process"), "{stderr}");

    // A token the hub accepts but that may not report: an error naming
    // the refusal (it exited 0 having recorded nothing).
    let viewer = common::tokens::token("demo", &["viewer"], &["*"]);
    let out = demo(Some(viewer)).await.expect("demo ended").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FORBIDDEN"), "{stderr}");

    let token = common::tokens::token("demo", &["reporter", "operator"], &["*"]);
    let out = demo(Some(token.clone()))
        .await
        .expect("demo ended")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces/default/operations", h.http()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!list["operations"].as_array().unwrap().is_empty(), "{list}");
}

/// `demo` against a hub serving TLS: it trusts the hub's certificate
/// (`--ca-cert`), prints the dashboard's `https://` address, and its
/// training run is canceled over the same connection (the cancel used to be
/// a plain-HTTP request, which a TLS hub never saw: the run completed).
#[tokio::test]
async fn demo_against_a_tls_hub_cancels_over_its_own_connection() {
    let tls = hub_testkit::TlsFiles::self_signed();
    let h = hub().args(tls.args()).start().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(["demo", "--rounds", "1", "--speed", "40", "--url", &url])
        .arg("--ca-cert")
        .arg(&tls.cert)
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("demo finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("watch it live: https://localhost:{port}/ ")),
        "{stdout}"
    );

    // What the hub holds, read over TLS by the client library.
    let config = hub_client::ClientConfig::new(url).tls_root_pem(tls.cert_pem.clone());
    let viewer = hub_client::Subscriber::connect(config).unwrap();
    let mut sub = viewer.subscribe("default", hub_client::Filter::all());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(hub_client::Update::Snapshot { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("no snapshot over TLS: {other:?}"),
        }
    }
    let ops = sub.operations();
    let train: Vec<_> = ops
        .values()
        .filter(|o| o.operation_id.starts_with("train."))
        .collect();
    assert_eq!(train.len(), 1, "{ops:?}");
    assert_eq!(
        train[0].state,
        hub_client::OpStatus::Canceled,
        "{:?}",
        train[0]
    );
}
