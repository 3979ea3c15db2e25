//! Opening WebSocket connections (loopback TCP, no Nagle, small buffers)
//! and running a protocol's handshake steps on them; opening many at once
//! with bounded concurrency.

use crate::adapter::{engineio, Matched, Proto, Step};
use crate::raw::{Incoming, RawWs};
use anyhow::{anyhow, bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket over plain loopback TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// How long one connection may take to connect and finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Connects to `url` (`ws://HOST:PORT/PATH`) with a read buffer of `read_buffer` bytes.
pub async fn connect(url: &str, read_buffer: usize) -> anyhow::Result<Ws> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .ok_or_else(|| anyhow!("not a ws:// URL: {url}"))?;
    let tcp = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connect to {authority}"))?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .with_context(|| format!("websocket handshake with {url}"))?;
    Ok(ws)
}

/// What the opening handshake needs of a socket: send a text message, and
/// read the next one.
pub trait TextSocket: Send {
    /// Sends one text message.
    fn send_text(&mut self, text: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The next message: `Some` text, `None` for a frame that is not text;
    /// an error once the connection is closed.
    fn recv_text(&mut self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
}

impl TextSocket for Ws {
    async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(Message::Text(text.into())).await?;
        Ok(())
    }

    async fn recv_text(&mut self) -> anyhow::Result<Option<String>> {
        match self.next().await.ok_or_else(|| anyhow!("closed"))?? {
            Message::Text(t) => Ok(Some(t.as_str().to_owned())),
            Message::Close(c) => bail!("closed: {c:?}"),
            _ => Ok(None),
        }
    }
}

impl TextSocket for RawWs {
    async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        RawWs::send_text(self, text).await
    }

    async fn recv_text(&mut self) -> anyhow::Result<Option<String>> {
        match self.next().await? {
            Incoming::Text(t, _) => Ok(Some(t.to_owned())),
            Incoming::Closed => bail!("closed"),
        }
    }
}

/// Runs handshake `steps` on `ws`, answering Engine.IO pings on the way.
pub async fn handshake<S: TextSocket>(
    ws: &mut S,
    proto: Proto,
    steps: Vec<Step>,
) -> anyhow::Result<()> {
    for step in steps {
        match step {
            Step::Send(text) => ws.send_text(&text).await?,
            Step::Await(expect) => loop {
                let text = match ws.recv_text().await {
                    Ok(Some(text)) => text,
                    Ok(None) => continue,
                    Err(e) => return Err(e.context(format!("during the handshake ({expect:?})"))),
                };
                if proto == Proto::SocketIo && text == "2" {
                    ws.send_text(engineio::PONG).await?;
                    continue;
                }
                match proto.check(expect, &text) {
                    Matched::Yes => break,
                    Matched::No => {}
                    Matched::Refused(why) => bail!("refused during the handshake: {why}"),
                }
            },
        }
    }
    Ok(())
}

/// Connects `url` and runs `steps`, all within [`HANDSHAKE_TIMEOUT`].
pub async fn open(
    url: &str,
    read_buffer: usize,
    proto: Proto,
    steps: Vec<Step>,
) -> anyhow::Result<Ws> {
    within_handshake_timeout(url, async {
        let mut ws = connect(url, read_buffer).await?;
        handshake(&mut ws, proto, steps).await?;
        Ok(ws)
    })
    .await
}

/// As [`open`], with the lean viewer client ([`RawWs`]); `stamp_arrivals`
/// has the kernel stamp each read ([`RawWs::stamp_arrivals`]).
pub async fn open_raw(
    url: &str,
    read_buffer: usize,
    proto: Proto,
    steps: Vec<Step>,
    stamp_arrivals: bool,
) -> anyhow::Result<RawWs> {
    within_handshake_timeout(url, async {
        let mut ws = RawWs::connect(url, read_buffer).await?;
        if stamp_arrivals {
            ws.stamp_arrivals()?;
        }
        handshake(&mut ws, proto, steps).await?;
        Ok(ws)
    })
    .await
}

async fn within_handshake_timeout<T>(
    url: &str,
    f: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("connect + handshake with {url} took over {HANDSHAKE_TIMEOUT:?}"))?
}

/// Runs `make(0..n)` with at most `concurrency` in flight and returns the
/// results in index order; fails with the first error (after all finished).
pub async fn open_many<T, F, Fut>(n: usize, concurrency: usize, make: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let fut = make(i);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut first_err = None;
    let mut failed = 0usize;
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined?;
        match r {
            Ok(v) => out[i] = Some(v),
            Err(e) => {
                failed += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e.context(format!("{failed} of {n} connections failed")));
    }
    Ok(out.into_iter().flatten().collect())
}
