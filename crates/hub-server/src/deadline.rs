//! A header-read deadline against slowloris: a connection whose first
//! request's headers (everything up to the first blank line) have not
//! arrived within `handshake_timeout` of the accept is dropped.
//!
//! axum's `serve` installs no timer, so hyper's own `header_read_timeout`
//! cannot be used; this wraps the accepted stream instead. Only the first
//! request is timed: a keep-alive connection that later sends headers
//! slowly is bounded by the connection caps (and `idle_timeout` once it is
//! a WebSocket).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A listener whose streams must deliver their first request's headers in time.
pub struct DeadlineListener<L> {
    inner: L,
    timeout: Duration,
}

impl<L> DeadlineListener<L> {
    /// Wraps `inner`; `timeout` counts from the accept.
    pub fn new(inner: L, timeout: Duration) -> Self {
        DeadlineListener { inner, timeout }
    }
}

impl<L> axum::serve::Listener for DeadlineListener<L>
where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    type Io = HeaderDeadline<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (HeaderDeadline::new(io, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A stream that fails its reads once the deadline passes before the end of
/// the first request's headers (`\r\n\r\n`) was read.
pub struct HeaderDeadline<T> {
    inner: T,
    /// Until the headers are in.
    sleep: Option<Pin<Box<Sleep>>>,
    /// How much of `\r\n\r\n` the bytes read so far end with.
    matched: usize,
}

impl<T> HeaderDeadline<T> {
    /// Wraps `inner`, starting the clock now.
    pub fn new(inner: T, timeout: Duration) -> Self {
        HeaderDeadline {
            inner,
            sleep: Some(Box::pin(tokio::time::sleep(timeout))),
            matched: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Feeds read bytes to the end-of-headers matcher; true once found.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            self.matched = if b == END[self.matched] {
                self.matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.matched == END.len() {
                return true;
            }
        }
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeaderDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request headers did not arrive within the handshake timeout",
                )));
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.sleep.is_some() && matches!(result, Poll::Ready(Ok(()))) {
            let filled = buf.filled()[before..].to_vec();
            if this.scan(&filled) {
                this.sleep = None;
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeaderDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T: crate::sock::DirectSocket> crate::sock::DirectSocket for HeaderDeadline<T> {
    fn wire(&self) -> Option<std::sync::Weak<crate::sock::Wire>> {
        self.inner.wire()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn slow_headers_time_out_and_complete_ones_do_not() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = HeaderDeadline::new(server, Duration::from_millis(50));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);

        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = HeaderDeadline::new(server, Duration::from_millis(50));
        // The end of the headers split across reads.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 26);
        client.write_all(b"\nbody").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 5);
        tokio::time::sleep(Duration::from_millis(80)).await;
        client.write_all(b"later").await.unwrap();
        assert_eq!(
            s.read(&mut buf).await.unwrap(),
            5,
            "no deadline after the headers"
        );
    }

    #[tokio::test]
    async fn matcher_restarts_on_cr() {
        let mut s = HeaderDeadline::new(tokio::io::empty(), Duration::from_secs(1));
        assert!(!s.scan(b"a\r\r\n\r"));
        assert!(s.scan(b"\n"));
    }
}
