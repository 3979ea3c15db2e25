//! [`RawWs`]: a lean WebSocket client for the generator's viewers.
//!
//! A viewer only reads text frames, answers pings and sends a handful of
//! small messages, yet on two shared cores the generator's own CPU per
//! received frame decides how late it notices a message. This client reads
//! into one growing buffer without clearing it first, hands out each text
//! payload as a borrowed `&str` and does no per-poll waker bookkeeping
//! beyond the socket's own, so a frame costs the generator a read and a
//! header parse. Both servers are measured with it.
//!
//! It speaks RFC 6455 as a client: the opening handshake (checking
//! `Sec-WebSocket-Accept`), masked frames out, unmasked (or masked) frames
//! in, fragmented messages, ping → pong, close. No extensions, no binary
//! messages (they are skipped), messages up to [`MAX_MESSAGE`] bytes.

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

/// The largest message accepted (as the tungstenite viewers allowed).
pub const MAX_MESSAGE: usize = 64 << 20;
/// The largest HTTP response head accepted during the opening handshake.
const MAX_HEAD: usize = 16 * 1024;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// What [`RawWs::next`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A whole text message, and when its last bytes reached the socket
    /// (see [`RawWs::stamp_arrivals`]).
    Text(&'a str, Option<u64>),
    /// The server closed the connection (close frame or end of stream).
    Closed,
}

/// A client WebSocket over loopback TCP, read frame by frame.
pub struct RawWs {
    tcp: TcpStream,
    /// Bytes read and not yet consumed start at `start`.
    buf: Vec<u8>,
    start: usize,
    /// A fragmented message being assembled (`Some` once its first frame came).
    partial: Option<Vec<u8>>,
    /// Whether that message is binary (assembled, then skipped).
    partial_binary: bool,
    /// The last fragmented text message, once whole (lent out from here).
    assembled: Vec<u8>,
    out: Vec<u8>,
    /// Whether the kernel stamps each read with the arrival of its bytes.
    stamped: bool,
    /// The kernel's arrival stamp of the last read (generator clock, ns).
    arrived: Option<u64>,
}

/// One parsed frame header: where its payload is within `buf`.
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: std::ops::Range<usize>,
}

impl RawWs {
    /// Connects to `url` (`ws://HOST:PORT/PATH?QUERY`) and runs the opening
    /// handshake; `capacity` is the read buffer's starting size.
    pub async fn connect(url: &str, capacity: usize) -> anyhow::Result<RawWs> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("not a ws:// URL: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let tcp = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connect to {authority}"))?;
        tcp.set_nodelay(true)?;
        let mut ws = RawWs {
            tcp,
            buf: Vec::with_capacity(capacity.max(MAX_HEAD)),
            start: 0,
            partial: None,
            partial_binary: false,
            assembled: Vec::new(),
            out: Vec::new(),
            stamped: false,
            arrived: None,
        };
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        ws.tcp.write_all(request.as_bytes()).await?;
        let head_len = loop {
            if let Some(i) = memchr::memmem::find(&ws.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if ws.buf.len() >= MAX_HEAD {
                bail!("the handshake response from {url} has no end within {MAX_HEAD} bytes");
            }
            if ws.read_more().await? == 0 {
                bail!("{url} closed the connection during the handshake");
            }
        };
        let head = String::from_utf8_lossy(&ws.buf[..head_len]).into_owned();
        check_response(&head, &derive_accept_key(key.as_bytes()))
            .with_context(|| format!("websocket handshake with {url}"))?;
        ws.start = head_len;
        Ok(ws)
    }

    /// Sends one text message (masked, as a client must).
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(OP_TEXT, text.as_bytes()).await
    }

    /// Sends a close frame (normal closure).
    pub async fn close(&mut self) -> anyhow::Result<()> {
        self.send(OP_CLOSE, &1000u16.to_be_bytes()).await
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        encode_frame(&mut self.out, opcode, payload, rand::random());
        self.tcp.write_all(&self.out).await?;
        Ok(())
    }

    /// Reads until a whole text message is in, answering pings on the way.
    /// Cancel-safe: dropping the future loses no bytes.
    pub async fn next(&mut self) -> anyhow::Result<Incoming<'_>> {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.capacity() / 2)
        {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        loop {
            let Some(h) = parse_header(&self.buf[self.start..])? else {
                if self.read_more().await? == 0 {
                    return Ok(Incoming::Closed);
                }
                continue;
            };
            let (base, end) = (self.start + h.payload.start, self.start + h.payload.end);
            self.start = end;
            if let Some(key) = h.mask {
                unmask(&mut self.buf[base..end], key);
            }
            match h.opcode {
                OP_TEXT if h.fin && self.partial.is_none() => {
                    let text = std::str::from_utf8(&self.buf[base..end])
                        .context("a text message is not UTF-8")?;
                    return Ok(Incoming::Text(text, self.arrived));
                }
                // The first frame of a fragmented message.
                OP_TEXT | OP_BINARY if self.partial.is_none() && !h.fin => {
                    self.partial_binary = h.opcode == OP_BINARY;
                    self.partial = Some(self.buf[base..end].to_vec());
                }
                OP_BINARY if self.partial.is_none() => {} // not for viewers
                OP_CONT if self.partial.is_some() => {
                    let p = self.partial.as_mut().expect("checked");
                    p.extend_from_slice(&self.buf[base..end]);
                    if p.len() > MAX_MESSAGE {
                        bail!("a message is larger than {MAX_MESSAGE} bytes");
                    }
                    if h.fin {
                        self.assembled = self.partial.take().expect("checked");
                        if !self.partial_binary {
                            let text = std::str::from_utf8(&self.assembled)
                                .context("a text message is not UTF-8")?;
                            return Ok(Incoming::Text(text, self.arrived));
                        }
                    }
                }
                OP_CLOSE => return Ok(Incoming::Closed),
                OP_PING => {
                    let payload = self.buf[base..end].to_vec();
                    self.send(0xA, &payload).await?;
                }
                OP_TEXT | OP_BINARY | OP_CONT => {
                    bail!("a fragmented message was interrupted by another");
                }
                _ => {} // pong or a reserved control opcode
            }
        }
    }

    /// From now on, notes when the bytes of each read reached the socket
    /// (the kernel's receive stamp, `SO_TIMESTAMPNS`, on the generator's
    /// clock), handed out with each text message.
    pub fn stamp_arrivals(&mut self) -> anyhow::Result<()> {
        nix::sys::socket::setsockopt(
            &self.tcp,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .context("SO_TIMESTAMPNS")?;
        self.stamped = true;
        Ok(())
    }

    async fn read_more(&mut self) -> anyhow::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(self.buf.capacity().max(4096));
        }
        if !self.stamped {
            return Ok(self.tcp.read_buf(&mut self.buf).await?);
        }
        loop {
            self.tcp.readable().await?;
            let (tcp, buf) = (&self.tcp, &mut self.buf);
            match tcp.try_io(tokio::io::Interest::READABLE, || read_stamped(tcp, buf)) {
                Ok((n, stamp)) => {
                    self.arrived = stamp.map(crate::clock::from_realtime);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// One `recvmsg` into the spare capacity of `buf` (at most 4 KiB), with the
/// kernel's receive stamp (ns since the Unix epoch) if it gave one.
fn read_stamped(tcp: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(usize, Option<u64>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut chunk = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let (n, stamp) = {
        let mut iov = [std::io::IoSliceMut::new(&mut chunk)];
        let msg = recvmsg::<()>(
            tcp.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )?;
        let stamp = msg.cmsgs()?.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(t) => {
                Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            }
            _ => None,
        });
        (msg.bytes, stamp)
    };
    buf.extend_from_slice(&chunk[..n]);
    Ok((n, stamp))
}

/// Checks the status line and the accept key of a handshake response head.
fn check_response(head: &str, accept: &str) -> anyhow::Result<()> {
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        bail!("the server answered {status:?}, not 101 Switching Protocols");
    }
    let got = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    match got {
        Some(v) if v == accept => Ok(()),
        other => bail!("Sec-WebSocket-Accept is {other:?}, expected {accept:?}"),
    }
}

/// Parses the frame header at the start of `b`: `None` until the whole
/// frame (header and payload) is there.
fn parse_header(b: &[u8]) -> anyhow::Result<Option<Header>> {
    if b.len() < 2 {
        return Ok(None);
    }
    let (fin, opcode, masked) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0);
    if b[0] & 0x70 != 0 {
        bail!("a frame uses reserved bits (no extension was negotiated)");
    }
    let (len, mut at) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().expect("8")), 10),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > MAX_MESSAGE as u64 {
        bail!("a frame of {len} bytes is larger than {MAX_MESSAGE}");
    }
    let mask = if masked {
        if b.len() < at + 4 {
            return Ok(None);
        }
        at += 4;
        Some(b[at - 4..at].try_into().expect("4"))
    } else {
        None
    };
    let end = at + len as usize;
    Ok((b.len() >= end).then_some(Header {
        fin,
        opcode,
        mask,
        payload: at..end,
    }))
}

/// Writes a masked client frame (FIN set) into `out`.
fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.clear();
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let at = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[at..], key);
}

/// XORs `data` with the masking key (masking and unmasking are the same).
fn unmask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_parser() {
        let mut out = Vec::new();
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            encode_frame(&mut out, OP_TEXT, &payload, [1, 2, 3, 4]);
            let h = parse_header(&out).unwrap().expect("whole frame");
            assert!(h.fin && h.opcode == OP_TEXT);
            assert_eq!(h.payload.len(), len);
            let mut body = out[h.payload.clone()].to_vec();
            unmask(&mut body, h.mask.expect("client frames are masked"));
            assert_eq!(body, payload);
            // Any strict prefix is incomplete, never misread.
            for cut in [0, 1, h.payload.start.saturating_sub(1), out.len() - 1] {
                if cut < out.len() {
                    assert!(
                        parse_header(&out[..cut]).unwrap().is_none(),
                        "len {len} cut {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(parse_header(&[0x81 | 0x40, 0]).is_err(), "reserved bit");
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse_header(&huge).is_err(), "oversized");
    }

    #[test]
    fn handshake_response_is_checked() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: abc\r\n\r\n";
        assert!(check_response(ok, "abc").is_ok());
        assert!(check_response(ok, "abd").is_err());
        let refused = "HTTP/1.1 503 Service Unavailable\r\n\r\n";
        let e = check_response(refused, "abc").unwrap_err().to_string();
        assert!(e.contains("503"), "{e}");
    }
}
