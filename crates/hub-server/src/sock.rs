//! Plain-TCP connections the hub can write to from outside their task.
//!
//! [`PlainListener`] yields [`SharedTcp`] streams: a tokio `TcpStream`
//! behind an `Arc`, read and written through `&self` (tokio's readiness
//! API), so that hyper and tungstenite use it like any stream while the
//! fan-out holds a [`Wire`] to the same socket and writes a viewer's frame
//! straight to it (see `outbox.rs`).
//!
//! Two writers on one socket must never interleave inside a WebSocket
//! frame. Once a connection is a WebSocket, [`Wire::capture`] diverts every
//! write that comes through the stream (tungstenite's pings, pongs and close
//! frames) into the connection's outbox, which sends those bytes between
//! whole frames; only the outbox then writes to the socket.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Where a captured stream's writes go: whole bytes, appended in order.
pub trait Capture: Send + Sync {
    /// Takes `bytes` for sending later, between whole frames.
    fn captured(&self, bytes: &[u8]);
}

/// The socket shared by the stream and the fan-out.
pub struct Wire {
    tcp: TcpStream,
    capture: OnceLock<Weak<dyn Capture>>,
    /// How long a write may wait for a peer that takes nothing.
    stall: Duration,
}

impl Wire {
    /// Sends every later write through the stream to `to` instead of the
    /// socket (set once, when the connection becomes a WebSocket).
    pub fn capture(&self, to: Weak<dyn Capture>) {
        let _ = self.capture.set(to);
    }

    /// Writes all of `buf`, waiting for the socket to take it; fails with
    /// `TimedOut` when the socket takes no byte for the stall time.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            tokio::time::timeout(self.stall, self.tcp.writable())
                .await
                .map_err(|_| stalled())??;
            match self.tcp.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ends the hub's side of the stream (TCP FIN after everything already
    /// written) while the client's side stays open for reading: once the
    /// close frame is out, a client still reading its backlog gets all of
    /// it and then the end of the stream.
    pub fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write);
    }

    /// Reads and throws away whatever the client still sends until it
    /// ends its side or has sent nothing for `quiet` (true), or the socket
    /// fails (false). Closing a socket with unread data makes the kernel
    /// send a reset, which can destroy what the client has not read yet:
    /// the error and close frame that explain why the connection ends. A
    /// client that has gone quiet leaves nothing unread, and the close is
    /// an orderly end of the stream.
    pub async fn discard_until_quiet(&self, quiet: std::time::Duration) -> bool {
        let mut scratch = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(quiet, self.tcp.readable()).await {
                Err(_) => return true,
                Ok(Err(_)) => return false,
                Ok(Ok(())) => {}
            }
            match self.tcp.try_read(&mut scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
    }

    fn captured(&self) -> Option<Arc<dyn Capture>> {
        self.capture.get().and_then(Weak::upgrade)
    }
}

impl crate::frame::TryWrite for Wire {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.try_write(buf)
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.try_write_vectored(bufs)
    }
}

/// The error of a write that waited the stall time for a peer that takes
/// nothing.
fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer took nothing written to it within the idle timeout",
    )
}

/// A plain TCP stream that hyper, tungstenite and the fan-out share.
///
/// A write through it (like [`Wire::write_all`]) fails with `TimedOut` once
/// the socket has taken no byte for `stall`: hyper then drops the
/// connection (an SSE stream or a response to a client that reads nothing
/// would otherwise hold it for as long as the kernel keeps the connection).
pub struct SharedTcp {
    wire: Arc<Wire>,
    /// Since when a write has been waiting for the socket.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SharedTcp {
    /// Wraps an accepted stream; see the type's doc for `stall`.
    pub fn new(tcp: TcpStream, stall: Duration) -> Self {
        SharedTcp {
            wire: Arc::new(Wire {
                tcp,
                capture: OnceLock::new(),
                stall,
            }),
            waiting: None,
        }
    }

    /// The socket, for direct writes.
    pub fn wire(&self) -> &Arc<Wire> {
        &self.wire
    }
}

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let tcp = &self.wire.tcp;
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            match tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(to) = self.wire.captured() {
            to.captured(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        let this = self.get_mut();
        loop {
            if this.wire.tcp.poll_write_ready(cx)?.is_pending() {
                let stall = this.wire.stall;
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if waiting.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(stalled()));
                }
                return Poll::Pending;
            }
            this.waiting = None;
            match this.wire.tcp.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.wire.captured().is_some() {
            // The outbox owns the socket's writes; it ends the connection.
            return Poll::Ready(Ok(()));
        }
        let sock = socket2::SockRef::from(&self.wire.tcp);
        Poll::Ready(match sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

/// A stream type that may be a plain TCP socket the fan-out can write to.
pub trait DirectSocket {
    /// The shared socket, when this stream is plain TCP.
    fn wire(&self) -> Option<Weak<Wire>>;
}

impl DirectSocket for SharedTcp {
    fn wire(&self) -> Option<Weak<Wire>> {
        Some(Arc::downgrade(&self.wire))
    }
}

/// A listener whose accepted streams are [`SharedTcp`].
pub struct PlainListener {
    inner: TcpListener,
    stall: Duration,
}

impl PlainListener {
    /// Wraps a bound listener; `stall` bounds how long a write may wait
    /// for a peer that reads nothing ([`SharedTcp`]).
    pub fn new(inner: TcpListener, stall: Duration) -> Self {
        PlainListener { inner, stall }
    }
}

impl axum::serve::Listener for PlainListener {
    type Io = SharedTcp;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop (it retries, and backs off on errors such
        // as running out of file descriptors).
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (SharedTcp::new(tcp, self.stall), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
