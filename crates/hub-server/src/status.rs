//! `system_status`: the hub's health figures, for subscribed viewers and
//! `GET /api/v1/status`.

use crate::app::Shared;
use crate::clock::now_ms;
use crate::engine::Command;
use hub_proto::ServerMessage;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

static LAST_EVENTS: AtomicU64 = AtomicU64::new(0);
static LAST_DELIVERIES: AtomicU64 = AtomicU64::new(0);
static LAST_AT: AtomicU64 = AtomicU64::new(0);
static LAST_CPU_TICKS: AtomicU64 = AtomicU64::new(0);

/// Resident memory and CPU ticks of this process (Linux `/proc`), if readable.
fn process_figures() -> (Option<u64>, Option<u64>) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
                .map(|pages| pages * 4096)
        });
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some(utime + stime)
        });
    (rss, ticks)
}

/// Builds a `system_status` message (rates since the previous call).
pub async fn build(app: &Shared) -> ServerMessage {
    let now = now_ms();
    let (tx, rx) = oneshot::channel();
    let stats = if app.engine.send(Command::Stats(tx)).await {
        rx.await.ok()
    } else {
        None
    };
    let (rss, ticks) = process_figures();
    let prev_at = LAST_AT.swap(now, Ordering::Relaxed);
    let dt = now.saturating_sub(prev_at).max(1) as f64 / 1000.0;
    let rate = |counter: &AtomicU64, v: u64| {
        let prev = counter.swap(v, Ordering::Relaxed);
        if prev_at == 0 {
            0.0
        } else {
            v.saturating_sub(prev) as f64 / dt
        }
    };
    let cpu = ticks.map(|t| {
        let prev = LAST_CPU_TICKS.swap(t, Ordering::Relaxed);
        if prev_at == 0 {
            0.0
        } else {
            (t.saturating_sub(prev) as f64 / 100.0) / dt * 100.0
        }
    });
    let mut error = None;
    let data = match stats {
        Some(s) => {
            if let Some(e) = &s.store_failed {
                error = Some(format!("store: {e}"));
            }
            json!({
                "connections": app.registry.len(),
                "subscriptions": s.subscriptions,
                "namespaces": s.namespaces,
                "operations": {
                    "running": s.by_state[0], "stalled": s.by_state[1], "completed": s.by_state[2],
                    "failed": s.by_state[3], "canceled": s.by_state[4],
                },
                "events_total": s.events_total,
                "events_per_second": rate(&LAST_EVENTS, s.events_total),
                "deliveries_per_second": rate(&LAST_DELIVERIES, s.deliveries_total),
                "store": {"ok": s.store_failed.is_none(), "in_flight_batches": s.in_flight_batches, "error": s.store_failed},
                "backplane": null,
                "upstream": null,
                "cpu_percent": cpu,
                "memory_bytes": rss,
                "uptime_seconds": now.saturating_sub(app.started_at) / 1000,
                "epoch": app.epoch,
            })
        }
        None => json!({"connections": app.registry.len()}),
    };
    ServerMessage::SystemStatus {
        data,
        is_stale: error.is_some(),
        cached_at: None,
        error,
    }
}
