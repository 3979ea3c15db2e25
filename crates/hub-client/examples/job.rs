//! A fake job that reports its progress to a hub.
//!
//! ```text
//! progress-hub serve --memory &
//! cargo run -p hub-client --example job -- [URL] [STEPS]
//! ```
//!
//! It keeps working (and reporting into its queue) while the hub is down,
//! stops early if someone cancels it from the dashboard, and waits at the
//! end until the hub has acknowledged everything.

use std::time::Duration;

use hub_client::{ClientConfig, Reporter};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("PROGRESS_HUB_URL").ok())
        .unwrap_or_else(|| hub_client::DEFAULT_URL.to_owned());
    let steps: u32 = args.next().map_or(Ok(50), |s| s.parse())?;

    let mut config = ClientConfig::new(url);
    if let Ok(token) = std::env::var("PROGRESS_HUB_TOKEN") {
        config = config.token(token);
    }
    let reporter = Reporter::connect(config)?;
    let op = reporter
        .start("Example job")
        .kind("example")
        .total(f64::from(steps))
        .metadata(json!({"host": "localhost", "example": true}))
        .begin()?;
    println!("operation {}", op.id());

    for i in 1..=steps {
        let phase = if i <= steps / 2 {
            "download"
        } else {
            "process"
        };
        op.current(f64::from(i))
            .step(phase)
            .message(format!("item {i} of {steps}"));
        tokio::select! {
            () = op.cancelled() => {
                println!("canceled by {:?}", op.cancel_requested_by());
                op.canceled(Some("canceled from the hub"))?;
                break;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    if !op.should_cancel() {
        op.complete_with(json!({"items": steps}))?;
    }
    let delivered = reporter.flush(Duration::from_secs(10)).await;
    let stats = reporter.connection_stats();
    println!(
        "delivered: {delivered} (sent {}, acked {}, resent {}, reconnects {})",
        stats.sent, stats.acked, stats.resent, stats.reconnects
    );
    Ok(())
}
