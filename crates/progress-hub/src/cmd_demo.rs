//! `progress-hub demo`: simulated long-running operations (fractal renders
//! with steps, an import that fails, a training run that gets canceled, a
//! backup with child operations) reported to a hub — the one at `--url`, or
//! one started in-process when none answers there.

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Hub WebSocket URL; when nothing answers there, a hub is started in-process on its address.
    #[arg(
        long,
        env = "PROGRESS_HUB_URL",
        default_value = "ws://127.0.0.1:8765/ws"
    )]
    url: String,
    /// Namespace to report into.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Stop after this many rounds of demo operations (default: run until Ctrl-C).
    #[arg(long)]
    rounds: Option<u32>,
    /// Speed factor: 2 makes every operation twice as fast.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// Runs the demo; returns the exit code.
pub fn main(args: DemoArgs) -> i32 {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("progress-hub: {e}");
            return 1;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("progress-hub demo: {e:#}");
            1
        }
    }
}

/// Host and port of a `ws://host:port/path` URL.
fn authority(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .context("--url must start with ws:// or wss://")?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let addr = authority(&args.url)?;
    let mut _local = None;
    let ws = match tokio_tungstenite::connect_async(&args.url).await {
        Ok((ws, _)) => {
            println!("reporting to the hub at {}", args.url);
            ws
        }
        Err(_) => {
            let cfg = hub_server::Config {
                listen: addr.clone(),
                ..hub_server::Config::default()
            };
            let running = hub_server::start(cfg)
                .await
                .context("starting an in-process hub")?;
            println!("listening on {}", running.addr);
            let url = format!("ws://{}/ws", running.addr);
            let (ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .context("connecting to the in-process hub")?;
            _local = Some(running);
            ws
        }
    };
    println!("watch it live: http://{addr}/  (Ctrl-C to stop)");
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Value>(1024);
    let canceled: Arc<Mutex<HashSet<String>>> = Arc::default();
    // Every message carries an id; the demo ends only once each has its
    // answer, so nothing it reported is lost when it exits.
    let answered = Arc::new(tokio::sync::watch::channel(0u64).0);
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(mut m) = rx.recv().await {
            sent += 1;
            m["id"] = sent.into();
            if sink.send(Message::text(m.to_string())).await.is_err() {
                break;
            }
        }
        sent
    });
    let answers = answered.clone();
    let seen = canceled.clone();
    tokio::spawn(async move {
        while let Some(Ok(Message::Text(t))) = stream.next().await {
            for line in t.as_str().lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if v["id"].is_u64() && (v["type"] == "ack" || v["type"] == "error") {
                    answers.send_modify(|n| *n += 1);
                }
                if v["type"] == "cancel_requested" {
                    if let Some(id) = v["operation_id"].as_str() {
                        seen.lock().expect("lock").insert(id.to_owned());
                    }
                } else if v["type"] == "error" {
                    eprintln!("hub: {}", v["message"]);
                }
            }
        }
    });
    let demo = Demo {
        tx,
        ns: args.namespace.clone(),
        canceled,
        speed: args.speed.max(0.05),
    };
    let mut round = 0u32;
    loop {
        round += 1;
        let tag = format!("{:x}-{round}", std::process::id());
        let mut jobs = Vec::new();
        for i in 1..=3 {
            jobs.push(tokio::spawn(
                demo.clone().render(format!("render.{tag}.{i}"), i),
            ));
        }
        jobs.push(tokio::spawn(
            demo.clone().failing_import(format!("import.{tag}")),
        ));
        jobs.push(tokio::spawn(
            demo.clone().training(format!("train.{tag}"), addr.clone()),
        ));
        jobs.push(tokio::spawn(demo.clone().backup(format!("backup.{tag}"))));
        tokio::select! {
            _ = futures_util::future::join_all(jobs.iter_mut()) => {}
            _ = tokio::signal::ctrl_c() => {
                jobs.iter().for_each(|j| j.abort());
                break;
            }
        }
        if args.rounds.is_some_and(|r| round >= r) {
            break;
        }
    }
    drop(demo);
    let sent = writer.await.unwrap_or(0);
    let mut seen = answered.subscribe();
    let all_answered = seen.wait_for(|n| *n >= sent);
    if tokio::time::timeout(Duration::from_secs(10), all_answered)
        .await
        .is_err()
    {
        eprintln!("progress-hub demo: the hub did not acknowledge every message in time");
    }
    if let Some(h) = _local.take() {
        h.shutdown();
        h.wait().await;
    }
    Ok(())
}

#[derive(Clone)]
struct Demo {
    tx: mpsc::Sender<Value>,
    ns: String,
    canceled: Arc<Mutex<HashSet<String>>>,
    speed: f64,
}

/// One operation's reporting state (its seq).
struct Op<'a> {
    demo: &'a Demo,
    id: String,
    seq: u64,
}

impl Op<'_> {
    async fn send(&mut self, mut msg: Value) {
        self.seq += 1;
        msg["namespace"] = self.demo.ns.clone().into();
        msg["operation_id"] = self.id.clone().into();
        msg["seq"] = self.seq.into();
        let _ = self.demo.tx.send(msg).await;
    }

    fn cancel_requested(&self) -> bool {
        self.demo.canceled.lock().expect("lock").contains(&self.id)
    }
}

impl Demo {
    async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis((ms as f64 / self.speed) as u64)).await;
    }

    async fn start(&self, id: &str, name: &str, kind: &str, extra: Value) -> Op<'_> {
        let mut op = Op {
            demo: self,
            id: id.to_owned(),
            seq: 0,
        };
        let mut m = json!({"type": "operation_started", "name": name, "kind": kind});
        if let (Value::Object(m), Value::Object(e)) = (&mut m, extra) {
            m.extend(e);
        }
        op.send(m).await;
        op
    }

    async fn render(self, id: String, n: u64) {
        let tiles = 48 * n;
        let mut op = self
            .start(&id, &format!("Render Mandelbrot frame #{n}"), "render", json!({"total": tiles, "metadata": {"resolution": "3840x2160", "iterations": 500 * n}}))
            .await;
        for t in 1..=tiles {
            let step = if t * 3 < tiles {
                "tracing tiles"
            } else if t * 3 < tiles * 2 {
                "colouring"
            } else {
                "encoding PNG"
            };
            op.send(json!({"type": "progress_update", "current": t, "step": step, "message": format!("tile {t}/{tiles}")})).await;
            self.pause(250 + 40 * n).await;
        }
        op.send(
            json!({"type": "operation_completed", "details": {"output": format!("frame-{n}.png")}}),
        )
        .await;
    }

    async fn failing_import(self, id: String) {
        let mut op = self
            .start(
                &id,
                "Import customer dataset",
                "pipeline",
                json!({"total": 1000}),
            )
            .await;
        for rows in (50..=600).step_by(50) {
            op.send(json!({"type": "progress_update", "current": rows, "step": "parsing CSV"}))
                .await;
            self.pause(700).await;
        }
        op.send(json!({"type": "operation_failed", "error": "row 612: invalid date '2024-13-01'", "details": {"row": 612}})).await;
    }

    async fn training(self, id: String, addr: String) {
        let mut op = self
            .start(
                &id,
                "Train sentiment model",
                "training",
                json!({"metadata": {"epochs": 100}}),
            )
            .await;
        for epoch in 1..=100u64 {
            if epoch == 12 {
                // Someone watching decides to stop it: cancel over the HTTP API.
                let url = format!(
                    "http://{addr}/api/v1/namespaces/{}/operations/{}/cancel",
                    self.ns, op.id
                );
                let _ = http_post(&url).await;
            }
            if op.cancel_requested() {
                op.send(json!({"type": "operation_canceled", "reason": format!("stopped at epoch {epoch} on request")})).await;
                return;
            }
            op.send(json!({"type": "progress_update", "progress": epoch as f64, "step": format!("epoch {epoch}/100"), "details": {"loss": 1.0 / epoch as f64}})).await;
            self.pause(600).await;
        }
        op.send(json!({"type": "operation_completed"})).await;
    }

    async fn backup(self, id: String) {
        let mut parent = self.start(&id, "Nightly backup", "backup", json!({})).await;
        let children = [("database", 40u64), ("uploads", 60), ("config", 10)];
        let mut done = 0;
        for (i, (what, size)) in children.iter().enumerate() {
            let cid = format!("{id}.{what}");
            let mut child = self
                .start(
                    &cid,
                    &format!("Back up {what}"),
                    "backup",
                    json!({"parent_id": id, "total": size}),
                )
                .await;
            for c in 1..=*size {
                child
                    .send(json!({"type": "progress_update", "current": c}))
                    .await;
                self.pause(120).await;
            }
            child.send(json!({"type": "operation_completed"})).await;
            done += 1;
            parent
                .send(json!({"type": "progress_update", "progress": 100.0 * done as f64 / children.len() as f64, "step": format!("{}/{} parts", i + 1, children.len())}))
                .await;
        }
        parent.send(json!({"type": "operation_completed"})).await;
    }
}

/// A bodiless HTTP/1.1 POST over a plain TCP connection (the demo's one HTTP call).
async fn http_post(url: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    Ok(())
}
