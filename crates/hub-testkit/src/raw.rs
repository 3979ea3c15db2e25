//! Bare-bones clients over raw TCP sockets, for what a real client
//! library will not do: a WebSocket that stays silent (no automatic
//! pongs) and sends malformed frames (invalid UTF-8); an HTTP request
//! whose answer is never read, or whose body stops half-way.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TCP connection to `host:port`, with a kernel receive buffer of
/// `recv_buffer` bytes when given (a small one makes a peer that stops
/// reading back up into the hub quickly).
async fn tcp(addr: &str, recv_buffer: Option<u32>) -> TcpStream {
    let sock_addr: std::net::SocketAddr = addr.parse().expect("socket address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket.connect(sock_addr).await.expect("connect")
}

/// A raw HTTP/1.1 connection that has sent what the test wrote (a whole
/// request, or headers and part of a body) and reads nothing: dropping it
/// closes the connection.
pub struct RawHttp {
    /// Held open, never read.
    _stream: TcpStream,
}

impl RawHttp {
    /// Connects to `host:port` (with a receive buffer of `recv_buffer`
    /// bytes when given) and writes `bytes`.
    pub async fn send(addr: &str, recv_buffer: Option<u32>, bytes: &[u8]) -> RawHttp {
        let mut stream = tcp(addr, recv_buffer).await;
        stream.write_all(bytes).await.expect("write the request");
        RawHttp { _stream: stream }
    }
}

/// A raw WebSocket connection (after the HTTP upgrade).
pub struct RawWs {
    stream: TcpStream,
}

impl RawWs {
    /// Connects to `host:port` and upgrades `path`.
    pub async fn connect(addr: &str, path: &str) -> RawWs {
        Self::connect_with_buffer(addr, path, None).await
    }

    /// Like [`RawWs::connect`], with a small kernel receive buffer so that a
    /// client that stops reading backs up into the hub quickly.
    pub async fn connect_with_buffer(addr: &str, path: &str, recv_buffer: Option<u32>) -> RawWs {
        let mut stream = tcp(addr, recv_buffer).await;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.expect("handshake");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        RawWs { stream }
    }

    /// Sends one masked frame with the given opcode (1 text, 2 binary).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.try_send_frame(opcode, payload)
            .await
            .expect("send frame");
    }

    /// Like [`RawWs::send_frame`], saying whether the write failed (a
    /// reset connection) instead of panicking.
    pub async fn try_send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).await
    }

    /// Writes `bytes` to the socket as they are (a frame the caller built,
    /// e.g. one that breaks RFC 6455).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send bytes");
    }

    /// Sends only the header of a masked frame announcing `len` bytes (a
    /// client about to send more than the hub takes); none of the payload.
    pub async fn send_header_only(&mut self, opcode: u8, len: u64) {
        let mut f = vec![0x80 | opcode, 0x80 | 127];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(&[0x12u8, 0x34, 0x56, 0x78]);
        self.stream.write_all(&f).await.expect("send frame header");
    }

    /// Reads frames without ever answering pings, until the server closes.
    /// Returns the text messages seen (split on `\n`) and the close code.
    pub async fn read_until_close(&mut self, deadline: Duration) -> (Vec<String>, Option<u16>) {
        let mut texts = Vec::new();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let frame = tokio::time::timeout_at(end, self.read_frame())
                .await
                .expect("server did not close in time");
            match frame {
                None => return (texts, None),
                Some((1, p)) => texts.extend(
                    String::from_utf8_lossy(&p)
                        .split('\n')
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                ),
                Some((8, p)) => {
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    return (texts, code);
                }
                Some(_) => {}
            }
        }
    }

    /// The next frame (opcode, payload) within `deadline`; None when the
    /// connection ends. Panics on a timeout.
    pub async fn next_frame(&mut self, deadline: Duration) -> Option<(u8, Vec<u8>)> {
        tokio::time::timeout(deadline, self.read_frame())
            .await
            .expect("no frame in time")
    }

    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 2];
        self.stream.read_exact(&mut h).await.ok()?;
        let opcode = h[0] & 0x0f;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.stream.read_exact(&mut b).await.ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.stream.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((opcode, payload))
    }
}
