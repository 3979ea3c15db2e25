//! The accept loop: each accepted connection is served by hyper (HTTP/1
//! with upgrades; HTTP/2 is not spoken, as with `axum::serve` before, and
//! TLS offers only `http/1.1`) with the router, under bounds that
//! `axum::serve` cannot set:
//!
//! - **idle keep-alive connections close**: HTTP/1's header-read timeout
//!   (`handshake_timeout`) runs whenever a connection waits for a request's
//!   headers, the first one and every later one on a kept-alive connection,
//!   so a plain HTTP connection left open, or trickling its headers, goes;
//! - **a bounded read buffer** ([`MAX_READ_BUFFER`]), so a request body
//!   being received costs about its own size, and headers are at most
//!   that long;
//! - **a cap on TCP connections being served as HTTP**
//!   ([`http_connection_cap`]): past it the loop stops accepting until one
//!   ends (the kernel's backlog holds the rest). WebSocket and SSE
//!   connections count under `max_connections` as well, once upgraded.
//!
//! Every request carries [`ConnectInfo<Remote>`](axum::extract::ConnectInfo):
//! the peer address and, on plain TCP, the socket for direct writes.

use crate::deadline::DeadlineListener;
use crate::sock::DirectSocket;
use crate::Remote;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The most a connection's read buffer grows to, and so the longest
/// request line and headers the hub takes (longer gets 431): 32 KiB, room
/// for the longest token the hub verifies (`hub_auth::MAX_TOKEN_LEN`,
/// 16 KiB) in the query or a header next to a browser's usual headers and
/// cookies. hyper's default (about 400 KiB) let the buffer double from
/// 8 KiB while a body arrived, each size left behind in the allocator: a
/// 60 KB event body held about 200 KiB until it was answered, about
/// 100 KiB with a 16 KiB bound.
pub const MAX_READ_BUFFER: usize = 2 * hub_auth::MAX_TOKEN_LEN;

/// How many connections may be served as HTTP at once: twice
/// `max_connections` (plus 16), room for the short requests (health
/// checks, scrapes, the API) next to the WebSocket and SSE connections.
pub fn http_connection_cap(max_connections: usize) -> usize {
    max_connections.saturating_mul(2).saturating_add(16)
}

/// Spawns the task that serves `app` on `listener` (behind the first
/// request's header deadline, [`DeadlineListener`]) with the bounds of
/// `cfg`, until `stop`; it ends once the connections still being served
/// have (the caller bounds that wait).
pub fn spawn<L>(
    listener: L,
    app: axum::Router,
    stop: watch::Receiver<bool>,
    cfg: &crate::Config,
) -> tokio::task::JoinHandle<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: DirectSocket,
{
    tokio::spawn(serve(
        DeadlineListener::new(listener, cfg.handshake_timeout),
        app,
        stop,
        cfg.handshake_timeout,
        crate::open_files::http_cap(
            http_connection_cap(cfg.max_connections),
            crate::open_files::limit(),
        ),
    ))
}

async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    header_timeout: Duration,
    cap: usize,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: DirectSocket,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    let cap = u32::try_from(cap.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(cap as usize));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok(permit) = permit else { break };
        let (io, addr) = tokio::select! {
            conn = listener.accept() => conn,
            _ = stop.wait_for(|s| *s) => break,
        };
        let remote = Remote(addr, io.wire());
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(remote.clone()));
            tower::ServiceExt::oneshot(router.clone(), req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // Closed by the peer, timed out or refused: nothing to tell.
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    // Finish the request in progress, take no other.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every connection returns its permit when it ends.
    let _ = permits.acquire_many(cap).await;
}
