//! `system_status` and readiness: the hub's health figures, for subscribed
//! viewers, `GET /api/v1/status` and `GET /ready`.
//!
//! Each hub keeps its own [`StatusState`] (no globals: tests run several
//! hubs in one process): the previous sample for rates, the last figures
//! the engine gave (served, marked stale, when it does not answer), and
//! since when each readiness check has been failing.

use crate::app::Shared;
use crate::clock::now_ms;
use crate::engine::{Command, EngineStats};
use crate::process::ProcessFigures;
use hub_proto::ServerMessage;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long status and readiness wait for the engine before using what they have.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

/// Per-hub memory of status and readiness.
#[derive(Default)]
pub struct StatusState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Previous sample: (at ms, events, deliveries, messages sent, cpu seconds).
    prev: Option<(u64, u64, u64, u64, Option<f64>)>,
    /// Last figures from the engine, and when they were taken.
    cached: Option<(u64, EngineStats)>,
    /// Failing readiness checks and since when (ms).
    failing_since: BTreeMap<&'static str, u64>,
    /// The last message built, encoded, and when.
    last: Option<(u64, std::sync::Arc<str>)>,
}

impl StatusState {
    /// Records when shutdown started (`/ready` reports it as the `since` of `shutdown`).
    pub fn note_shutdown(&self) {
        self.inner
            .lock()
            .failing_since
            .entry("shutdown")
            .or_insert_with(now_ms);
    }

    /// Updates the failing checks; returns each failing check's `since`.
    fn track(&self, failing: &[(&'static str, String)], now: u64) -> Vec<u64> {
        let mut inner = self.inner.lock();
        inner
            .failing_since
            .retain(|k, _| failing.iter().any(|(f, _)| f == k));
        failing
            .iter()
            .map(|(k, _)| *inner.failing_since.entry(k).or_insert(now))
            .collect()
    }
}

/// Asks the engine for its figures, bounded by [`ENGINE_TIMEOUT`].
pub async fn engine_stats(app: &Shared) -> Option<EngineStats> {
    let ask = async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !app.engine.send(Command::Stats(tx)).await {
            return None;
        }
        rx.await.ok()
    };
    tokio::time::timeout(ENGINE_TIMEOUT, ask)
        .await
        .ok()
        .flatten()
}

/// The latest `system_status`, encoded: the one the periodic task built if
/// it is younger than the status interval (so HTTP polling does not shorten
/// the window rates are measured over), else a new one.
pub async fn latest(app: &Shared) -> std::sync::Arc<str> {
    let max_age = app.cfg.status_interval.as_millis() as u64;
    if let Some((at, msg)) = &app.status.inner.lock().last {
        if now_ms().saturating_sub(*at) < max_age {
            return msg.clone();
        }
    }
    build(app).await
}

/// Builds and remembers a `system_status` message, encoded (rates since the
/// previous one).
pub async fn build(app: &Shared) -> std::sync::Arc<str> {
    let msg: std::sync::Arc<str> = build_message(app).await.encode().into();
    app.status.inner.lock().last = Some((now_ms(), msg.clone()));
    msg
}

/// Builds a `system_status` message (rates since the previous fresh one).
pub async fn build_message(app: &Shared) -> ServerMessage {
    let now = now_ms();
    let fresh = engine_stats(app).await;
    let proc = ProcessFigures::read();
    let sent = app.metrics.messages_sent.get();
    let st = &app.status;
    let mut inner = st.inner.lock();
    // Where the engine's figures come from: now, an earlier answer (then
    // `cached_at` says when), or nowhere yet.
    let (stats, cached_at) = match fresh {
        Some(s) => {
            inner.cached = Some((now, s.clone()));
            (Some(s), None)
        }
        None => match &inner.cached {
            Some((at, s)) => (Some(s.clone()), Some(*at)),
            None => (None, None),
        },
    };
    let fresh = stats.is_some() && cached_at.is_none();
    let events = stats.as_ref().map_or(0, |s| s.events_total);
    let deliveries = stats.as_ref().map_or(0, |s| s.deliveries_total);
    let prev = if fresh {
        inner
            .prev
            .replace((now, events, deliveries, sent, proc.cpu_seconds))
    } else {
        inner.prev
    };
    drop(inner);
    let rate = |cur: u64, before: u64, at: u64| {
        let dt = now.saturating_sub(at).max(1) as f64 / 1000.0;
        cur.saturating_sub(before) as f64 / dt
    };
    let (events_rate, deliveries_rate, sent_rate, cpu) = match prev {
        Some((at, e, d, m, c)) if fresh => (
            Some(rate(events, e, at)),
            Some(rate(deliveries, d, at)),
            Some(rate(sent, m, at)),
            match (c, proc.cpu_seconds) {
                (Some(before), Some(c)) => {
                    let dt = now.saturating_sub(at).max(1) as f64 / 1000.0;
                    Some(((c - before).max(0.0) / dt * 1000.0).round() / 10.0)
                }
                _ => None,
            },
        ),
        // The first report: since the hub started (its counters and CPU
        // time start with the process).
        None if fresh => (
            Some(rate(events, 0, app.started_at)),
            Some(rate(deliveries, 0, app.started_at)),
            Some(rate(sent, 0, app.started_at)),
            proc.cpu_seconds.map(|c| {
                let dt = now.saturating_sub(app.started_at).max(1) as f64 / 1000.0;
                (c / dt * 1000.0).round() / 10.0
            }),
        ),
        _ => (None, None, None, None),
    };
    let known = stats.is_some();
    let s = stats.unwrap_or_default();
    let error = if !fresh {
        Some(match cached_at {
            Some(at) => format!(
                "the engine did not answer within {}s; operation figures are from {at}",
                ENGINE_TIMEOUT.as_secs()
            ),
            None => "the engine did not answer; operation figures are unknown".to_string(),
        })
    } else {
        s.store_failed.as_ref().map(|e| format!("store: {e}"))
    };
    let known = |v: Value| if known { v } else { Value::Null };
    let data = json!({
        "connections": app.registry.len(),
        // Places taken under `max_connections`: also the upgrades admitted
        // and not yet serving (the cap counts a connection from then on).
        "connection_places": app.limits.connections(),
        "subscriptions": known(json!(s.subscriptions)),
        "namespaces": known(json!(s.namespaces)),
        "history_bytes": known(json!(s.history_bytes)),
        "operations": known(json!({
            "running": s.by_state[0], "stalled": s.by_state[1], "completed": s.by_state[2],
            "failed": s.by_state[3], "canceled": s.by_state[4],
        })),
        "events_total": known(json!(s.events_total)),
        "events_per_second": events_rate,
        "deliveries_per_second": deliveries_rate,
        "messages_sent_per_second": sent_rate,
        "store": known(json!({"ok": s.store_failed.is_none(), "in_flight_batches": s.in_flight_batches, "error": s.store_failed})),
        "backplane": null,
        "upstream": null,
        "cpu_percent": cpu,
        "memory_bytes": proc.resident_bytes,
        "uptime_seconds": now.saturating_sub(app.started_at) / 1000,
        "epoch": app.epoch,
        // What a client needs to judge liveness and what the hub still
        // holds: the heartbeat it should expect, how long finished
        // operations stay.
        "heartbeat_interval_ms": app.cfg.heartbeat_interval.as_millis() as u64,
        "finished_retention_ms": app.cfg.finished_retention.as_millis() as u64,
    });
    ServerMessage::SystemStatus {
        data,
        is_stale: !fresh,
        cached_at,
        error,
    }
}

/// The readiness verdict: whether the hub is ready, and the JSON body of
/// `GET /ready` (`status`, `checks`, and `failing` with each failing
/// check's `error` and `since`, a ms timestamp).
pub async fn readiness(app: &Shared) -> (bool, Value) {
    let now = now_ms();
    let mut failing: Vec<(&'static str, String)> = Vec::new();
    if app.is_stopping() {
        failing.push(("shutdown", "the hub is shutting down".into()));
    }
    let mut store_error = app.store.check_writable().err().map(|e| e.to_string());
    match engine_stats(app).await {
        Some(stats) => {
            if let Some(e) = stats.store_failed {
                store_error.get_or_insert(format!("a commit failed: {e}"));
            }
        }
        None if !app.is_shutting_down() => failing.push((
            "engine",
            format!(
                "the engine did not answer within {}s",
                ENGINE_TIMEOUT.as_secs()
            ),
        )),
        None => {}
    }
    if let Some(e) = store_error {
        failing.push(("store", e));
    }
    let since = app.status.track(&failing, now);
    let mut checks = serde_json::Map::new();
    for name in ["store", "engine", "shutdown"] {
        let state = if failing.iter().any(|(f, _)| *f == name) {
            "failing"
        } else {
            "ok"
        };
        checks.insert(name.into(), json!(state));
    }
    let ready = failing.is_empty();
    let failing: Vec<Value> = failing
        .iter()
        .zip(since)
        .map(|((check, error), since)| json!({"check": check, "error": error, "since": since}))
        .collect();
    app.metrics.ready.set(i64::from(ready));
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
        "failing": failing,
        "timestamp": now,
    });
    (ready, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_checks_keep_their_first_since_until_they_recover() {
        let st = StatusState::default();
        let store = ("store", "disk full".to_string());
        assert_eq!(st.track(std::slice::from_ref(&store), 100), vec![100]);
        assert_eq!(st.track(std::slice::from_ref(&store), 200), vec![100]);
        let engine = ("engine", "slow".to_string());
        assert_eq!(
            st.track(&[engine.clone(), store.clone()], 300),
            vec![300, 100]
        );
        assert!(st.track(&[], 400).is_empty());
        assert_eq!(
            st.track(&[store], 500),
            vec![500],
            "a new failure, a new since"
        );
        st.note_shutdown();
        let shutdown = ("shutdown", "bye".to_string());
        let at = st.track(&[shutdown], 600)[0];
        assert!(
            at > 1_000_000_000_000,
            "since is when shutdown started: {at}"
        );
    }
}
