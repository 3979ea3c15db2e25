//! `docs/OPERATIONS.md` cannot drift from the code: its configuration
//! reference is rendered from [`Config`] (the doc comment of each field in
//! `src/config.rs` and `Config::default()`), and its metrics reference from
//! a fresh [`Metrics`] registry. This test fails when a generated section
//! differs; `UPDATE_DOCS=1 cargo test -p hub-server --test operations_doc`
//! rewrites them.

use hub_server::metrics::{KindCounters, Metrics};
use hub_server::Config;
use std::collections::BTreeMap;
use std::path::PathBuf;

const CONFIG_RS: &str = include_str!("../src/config.rs");

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/OPERATIONS.md")
}

/// `(field, doc comment)` of every field of `pub struct Config`, in order;
/// fields marked `#[serde(skip)]` are bookkeeping, not settings.
fn config_fields() -> Vec<(String, String)> {
    let start = CONFIG_RS
        .find("pub struct Config {")
        .expect("pub struct Config in config.rs");
    let body = &CONFIG_RS[start..];
    let body = &body[..body.find("\n}").expect("end of struct Config")];
    let mut out = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let mut skipped = false;
    for line in body.lines().skip(1) {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_owned());
        } else if line == "#[serde(skip)]" {
            skipped = true;
        } else if let Some(rest) = line.strip_prefix("pub ") {
            let name = rest.split(':').next().unwrap().trim().to_owned();
            if !std::mem::take(&mut skipped) {
                out.push((name, doc.join(" ")));
            }
            doc.clear();
        }
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn render_config() -> String {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut out = String::from(
        "| key (TOML) | flag | environment variable | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    let fields = config_fields();
    assert!(fields.len() >= 20, "parsed only {} fields", fields.len());
    for (name, doc) in fields {
        assert!(!doc.is_empty(), "config field `{name}` has no doc comment");
        assert!(
            hub_server::config::KEYS.contains(&name.as_str()),
            "config field `{name}` is missing from config::KEYS"
        );
        let default = match &defaults[&name] {
            serde_json::Value::Null => "(none)".to_owned(),
            serde_json::Value::String(s) if s.is_empty() => "(empty)".to_owned(),
            serde_json::Value::String(s) => format!("`{s}`"),
            v => format!("`{v}`"),
        };
        out.push_str(&format!(
            "| `{name}` | `--{}` | `PROGRESS_HUB_{}` | {} | {} |\n",
            name.replace('_', "-"),
            name.to_uppercase(),
            cell(&default),
            cell(&doc)
        ));
    }
    out
}

fn render_metrics() -> String {
    let m = Metrics::new();
    // Create one series of every labelled family, so its labels show.
    m.refused("websocket", "origin");
    m.limited("connections");
    KindCounters::default().get(&m, &std::sync::Arc::from("render"));
    // Inside a runtime, so the tokio figures are exported too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let text = rt.block_on(async { m.encode_text_004() });
    let mut kinds: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            order.push(name.to_owned());
            kinds.entry(name.to_owned()).or_default().1 = help.trim_end_matches('.').to_owned();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            kinds.entry(name.to_owned()).or_default().0 = kind.to_owned();
        } else if let Some((series, _)) = line.split_once('{') {
            let family = order.last().cloned().unwrap_or_default();
            if !series.starts_with(&family) {
                continue;
            }
            let l = labels.entry(family).or_default();
            for pair in line[series.len() + 1..]
                .split('}')
                .next()
                .unwrap()
                .split(',')
            {
                let key = pair.split('=').next().unwrap().to_owned();
                if key != "le" && !key.is_empty() && !l.contains(&key) {
                    l.push(key);
                }
            }
        }
    }
    let mut out = String::from("| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n");
    for name in order {
        let (kind, help) = &kinds[&name];
        let l = labels
            .get(&name)
            .map(|l| {
                l.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        out.push_str(&format!("| `{name}` | {kind} | {l} | {} |\n", cell(help)));
    }
    out
}

/// Replaces the text between the `BEGIN GENERATED: name` and `END
/// GENERATED: name` markers; returns whether it changed.
fn splice(doc: &mut String, name: &str, body: &str) -> bool {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let b = doc
        .find(&begin)
        .unwrap_or_else(|| panic!("docs/OPERATIONS.md lacks the marker {begin}"))
        + begin.len();
    let e = doc[b..]
        .find(&end)
        .unwrap_or_else(|| panic!("docs/OPERATIONS.md lacks the marker {end}"))
        + b;
    if &doc[b..e] == body {
        return false;
    }
    doc.replace_range(b..e, body);
    true
}

#[test]
fn generated_sections_of_operations_md_are_current() {
    let path = doc_path();
    let mut doc = std::fs::read_to_string(&path).expect("docs/OPERATIONS.md");
    let mut stale = Vec::new();
    if splice(&mut doc, "config", &render_config()) {
        stale.push("config");
    }
    if splice(&mut doc, "metrics", &render_metrics()) {
        stale.push("metrics");
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, doc).expect("write docs/OPERATIONS.md");
        return;
    }
    panic!(
        "docs/OPERATIONS.md: the generated {stale:?} section(s) are out of date; run \
         `UPDATE_DOCS=1 cargo test -p hub-server --test operations_doc` and commit the result"
    );
}
