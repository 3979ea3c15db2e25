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
