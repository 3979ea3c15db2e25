//! Background tasks: heartbeats and pings, idle and token-expiry checks,
//! and the periodic `system_status`.

use crate::app::Shared;
use crate::auth::token_expired_error;
use crate::clock::now_ms;
use hub_proto::{CloseCode, ErrorCode, ProtoError, ServerMessage};
use std::time::Duration;

/// A timer that, after the hub was not running (stopped, a paused VM, a
/// machine that could not schedule it), fires once and goes on from there,
/// instead of firing every tick it missed at once (ten heartbeats in 2 ms,
/// with one ping, after a 10 s stop).
fn timer(period: Duration) -> tokio::time::Interval {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    every
}

/// Sends `heartbeat` (and a WebSocket ping) to every connection each interval.
pub async fn heartbeats(app: Shared) {
    let mut every = timer(app.cfg.heartbeat_interval);
    every.tick().await;
    loop {
        every.tick().await;
        let conns = app.registry.all();
        let msg: std::sync::Arc<str> = ServerMessage::Heartbeat {
            timestamp: now_ms(),
            clients_connected: conns.len() as u64,
        }
        .encode()
        .into();
        for c in conns {
            c.push_control(msg.clone());
            if !c.sse {
                c.request_ping();
            }
        }
    }
}

/// Closes connections silent past the idle timeout, and those whose token
/// is past its `exp` by the clock-skew leeway (`TOKEN_EXPIRED`, 4001).
///
/// Runs at least every second, so an expired connection is closed within
/// about a second of its deadline.
///
/// Silence while the hub itself was not running (a sweep that comes much
/// later than its period: the process was stopped, or not scheduled) is
/// not the clients': the hub sent them no pings to answer meanwhile. Every
/// connection then gets a whole idle timeout from the hub's return, in
/// which the next heartbeat's ping gets its pong.
pub async fn sweeps(app: Shared) {
    let idle = app.cfg.idle_timeout.as_millis() as u64;
    let step = Duration::from_millis((idle / 4).clamp(50, 1000));
    let late = 2 * step.as_millis() as u64 + 1_000;
    let mut every = timer(step);
    let mut last = now_ms();
    let mut back_at = 0u64;
    loop {
        every.tick().await;
        let now = now_ms();
        if now.saturating_sub(last) > late {
            back_at = now;
            tracing::warn!(
                away_ms = now.saturating_sub(last),
                "the hub did not run for a while; clients get a whole idle timeout from now"
            );
        }
        last = now;
        for c in app.registry.all() {
            if !c.sse && now.saturating_sub(c.last_activity().max(back_at)) > idle {
                let e = ProtoError::new(
                    ErrorCode::IdleTimeout,
                    "no message from the client within the idle timeout",
                );
                c.close(CloseCode::Idle, e, now);
            } else if c.token_expired(now) {
                c.close(CloseCode::AuthFailure, token_expired_error(), now);
            }
        }
    }
}

/// Sends `system_status` to every connection holding a subscription.
pub async fn status(app: Shared) {
    let mut every = timer(app.cfg.status_interval);
    every.tick().await;
    loop {
        every.tick().await;
        let msg = crate::status::build(&app).await;
        for c in app.registry.all() {
            c.push_status(msg.clone());
        }
    }
}
