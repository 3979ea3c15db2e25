//! `progress-hub demo`: simulated long-running operations (fractal renders
//! with steps, an import that fails, a training run that gets canceled, a
//! backup with child operations) reported to a hub — the one at `--url`, or
//! one started in-process when none answers there — through the client
//! library's `Reporter`, like any job would.
//!
//! Only a hub that does not answer at all (the connection is refused) is
//! replaced by an in-process one; a hub that answers but refuses the
//! demo (HTTP 401/403: a token is missing or not good enough, `--token`)
//! or answers something else is an error naming it, and so is a hub that
//! refuses the demo's reports (`FORBIDDEN`), found by a first one-message
//! operation before the jobs start.
//!
//! The training run is canceled the way a viewer would: a `cancel` over the
//! demo's own WebSocket (a producer connection is also a viewer one), so it
//! works behind TLS and under a path prefix like every other message.

use anyhow::Context;
use clap::Args;
use hub_client::{ClientConfig, Reporter, Subscriber};
use serde_json::json;
use std::time::Duration;

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Hub WebSocket URL; when nothing answers there (connection refused), a hub is started
    /// in-process on its address. A hub that refuses the demo (401/403, or its reports: FORBIDDEN) is an error.
    #[arg(
        long,
        env = "PROGRESS_HUB_URL",
        default_value = "ws://127.0.0.1:8765/ws"
    )]
    url: String,
    /// Bearer token (a JWT, with the `reporter` role, and `operator` for the
    /// training run's cancel), if the hub requires one.
    #[arg(long, env = "PROGRESS_HUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Namespace to report into.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// PEM file of extra root certificates to trust for `wss://` (a private
    /// CA, or the hub's self-signed certificate); default: `SSL_CERT_FILE`
    /// when set.
    #[arg(long, env = "PROGRESS_HUB_CA_CERT", value_parser = crate::ca_cert::parse_ca_cert)]
    ca_cert: Option<crate::ca_cert::CaCert>,
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

/// The dashboard's address for a hub's WebSocket URL: the same host and
/// path prefix, `http` for `ws` and `https` for `wss`
/// (`wss://h:1/jobs/ws` → `https://h:1/jobs/`).
fn dashboard_url(ws_url: &str) -> String {
    let (scheme, rest) = match ws_url.strip_prefix("wss://") {
        Some(rest) => ("https", rest),
        None => ("http", ws_url.strip_prefix("ws://").unwrap_or(ws_url)),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let base = rest
        .strip_suffix("/ws")
        .unwrap_or(rest)
        .trim_end_matches('/');
    format!("{scheme}://{base}/")
}

/// What answered at the hub's URL.
enum Probe {
    /// A hub took the WebSocket handshake.
    Hub,
    /// Nothing listens there (the connection itself failed).
    Nothing,
}

/// Tries the WebSocket handshake at `url` (with the token, if any): a hub,
/// nothing, or an error for a hub that refused or for anything else there.
async fn probe(url: &str, token: Option<&str>, roots: Option<&[u8]>) -> anyhow::Result<Probe> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let mut request = url.into_client_request().context("--url")?;
    if let Some(t) = token {
        let value = format!("Bearer {t}")
            .parse()
            .context("the token cannot be sent in a header")?;
        request.headers_mut().insert("authorization", value);
    }
    // The same trusted roots as the reporter's (`--ca-cert`).
    let connector = match roots {
        Some(pem) => Some(tokio_tungstenite::Connector::Rustls(
            hub_client::tls_client_config(Some(pem)).context("--ca-cert")?,
        )),
        None => None,
    };
    match tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector).await {
        Ok(_) => Ok(Probe::Hub),
        Err(Error::Io(_)) => Ok(Probe::Nothing),
        Err(Error::Http(r)) if matches!(r.status().as_u16(), 401 | 403) => {
            let status = r.status();
            let hint = if token.is_some() {
                "the token given is not accepted there"
            } else {
                "it requires a token: give --token or PROGRESS_HUB_TOKEN"
            };
            anyhow::bail!("the hub at {url} refused the demo (HTTP {status}): {hint}")
        }
        Err(e) => anyhow::bail!("something answers at {url} but is not a usable hub: {e}"),
    }
}

async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let addr = authority(&args.url)?;
    let token = args.token.as_deref().filter(|t| !t.is_empty());
    let mut local = None;
    let roots = crate::ca_cert::extra_roots(args.ca_cert.as_ref());
    let url = match probe(&args.url, token, roots.as_deref()).await? {
        Probe::Hub => {
            println!("reporting to the hub at {}", args.url);
            args.url.clone()
        }
        Probe::Nothing => {
            let cfg = hub_server::Config {
                listen: addr.clone(),
                ..hub_server::Config::default()
            };
            let running = hub_server::start(cfg)
                .await
                .context("starting an in-process hub")?;
            println!("listening on {}", running.addr);
            let url = format!("ws://{}/ws", running.addr);
            local = Some(running);
            url
        }
    };
    println!("watch it live: {}  (Ctrl-C to stop)", dashboard_url(&url));
    let mut config = ClientConfig::new(url.clone()).namespace(args.namespace.clone());
    if let Some(t) = token {
        config = config.token(t);
    }
    if let Some(pem) = roots {
        config = config.tls_root_pem(pem);
    }
    let reporter = Reporter::connect(config).context("connecting the reporter")?;
    check_reports_accepted(&reporter, &url).await?;
    let demo = Demo {
        reporter: reporter.clone(),
        viewer: reporter.client().subscriber(),
        speed: args.speed.max(0.05),
        namespace: args.namespace.clone(),
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
        jobs.push(tokio::spawn(demo.clone().training(format!("train.{tag}"))));
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
    // The reporter keeps everything until the hub acked it: wait for that.
    if !reporter.flush(Duration::from_secs(10)).await {
        eprintln!("progress-hub demo: the hub did not acknowledge every message in time");
    }
    if let Some(h) = local.take() {
        h.shutdown();
        h.wait().await;
    }
    Ok(())
}

/// A first, one-message operation ("Demo session started") acked or
/// refused before the jobs begin: a hub that accepts the connection but
/// refuses the token's reports (`FORBIDDEN`: no `reporter` role, another
/// namespace) is an error, not a demo that silently records nothing.
async fn check_reports_accepted(reporter: &Reporter, url: &str) -> anyhow::Result<()> {
    let Ok(op) = reporter.start("Demo session started").kind("demo").begin() else {
        return Ok(());
    };
    let _ = op.complete();
    // A hub that is slow to answer is not an error: the jobs just queue.
    reporter.flush(Duration::from_secs(5)).await;
    if let Some(r) = op.refusal() {
        anyhow::bail!(
            "the hub at {url} refused the demo's reports: {r} (the token needs the \
             `reporter` role on this namespace)"
        );
    }
    Ok(())
}

#[derive(Clone)]
struct Demo {
    reporter: Reporter,
    /// The same connection as a viewer: sends the demo's cancel.
    viewer: Subscriber,
    speed: f64,
    namespace: String,
}

/// Reports are queued, never awaited: a demo job cannot fail on them.
fn ignore<T>(_: Result<T, hub_client::ReportError>) {}

impl Demo {
    async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis((ms as f64 / self.speed) as u64)).await;
    }

    async fn render(self, id: String, n: u64) {
        let tiles = 48 * n;
        let Ok(op) = self
            .reporter
            .start(format!("Render Mandelbrot frame #{n}"))
            .id(id)
            .kind("render")
            .total(tiles as f64)
            .metadata(json!({"resolution": "3840x2160", "iterations": 500 * n}))
            .begin()
        else {
            return;
        };
        for t in 1..=tiles {
            let step = if t * 3 < tiles {
                "tracing tiles"
            } else if t * 3 < tiles * 2 {
                "colouring"
            } else {
                "encoding PNG"
            };
            op.current(t as f64)
                .step(step)
                .message(format!("tile {t}/{tiles}"));
            self.pause(250 + 40 * n).await;
        }
        ignore(op.complete_with(json!({"output": format!("frame-{n}.png")})));
    }

    async fn failing_import(self, id: String) {
        let Ok(op) = self
            .reporter
            .start("Import customer dataset")
            .id(id)
            .kind("pipeline")
            .total(1000.0)
            .begin()
        else {
            return;
        };
        for rows in (50..=600).step_by(50) {
            op.current(rows as f64).step("parsing CSV");
            self.pause(700).await;
        }
        ignore(op.fail_with("row 612: invalid date '2024-13-01'", json!({"row": 612})));
    }

    async fn training(self, id: String) {
        let Ok(op) = self
            .reporter
            .start("Train sentiment model")
            .id(id.clone())
            .kind("training")
            .metadata(json!({"epochs": 100}))
            .begin()
        else {
            return;
        };
        for epoch in 1..=100u64 {
            if epoch == 12 {
                // Someone watching decides to stop it (with a token that
                // may not cancel, the hub refuses and the run goes on).
                self.viewer.cancel(self.namespace.clone(), id.clone());
            }
            if op.should_cancel() {
                ignore(op.canceled(Some(&format!("stopped at epoch {epoch} on request"))));
                return;
            }
            op.progress(epoch as f64)
                .step(format!("epoch {epoch}/100"))
                .details(json!({"loss": 1.0 / epoch as f64}));
            self.pause(600).await;
        }
        ignore(op.complete());
    }

    async fn backup(self, id: String) {
        let Ok(parent) = self
            .reporter
            .start("Nightly backup")
            .id(id.clone())
            .kind("backup")
            .begin()
        else {
            return;
        };
        let children = [("database", 40u64), ("uploads", 60), ("config", 10)];
        for (i, (what, size)) in children.iter().enumerate() {
            let Ok(child) = self
                .reporter
                .start(format!("Back up {what}"))
                .id(format!("{id}.{what}"))
                .kind("backup")
                .parent(id.clone())
                .total(*size as f64)
                .begin()
            else {
                return;
            };
            for c in 1..=*size {
                child.current(c as f64);
                self.pause(120).await;
            }
            ignore(child.complete());
            parent
                .progress(100.0 * (i + 1) as f64 / children.len() as f64)
                .step(format!("{}/{} parts", i + 1, children.len()));
        }
        ignore(parent.complete());
    }
}

#[cfg(test)]
mod tests {
    use super::dashboard_url;

    #[test]
    fn the_dashboard_is_served_where_the_websocket_is() {
        assert_eq!(
            dashboard_url("ws://127.0.0.1:8765/ws"),
            "http://127.0.0.1:8765/"
        );
        assert_eq!(
            dashboard_url("wss://hub.example:443/ws"),
            "https://hub.example:443/"
        );
        assert_eq!(dashboard_url("wss://h:1/jobs/ws?x=1"), "https://h:1/jobs/");
        assert_eq!(dashboard_url("ws://h:1"), "http://h:1/");
        assert_eq!(dashboard_url("ws://h:1/"), "http://h:1/");
    }
}
