//! The protocol adapters: everything that differs between the hub's wire
//! protocol and Socket.IO v4, as pure functions over text (no IO), so the
//! connection, viewer and producer code is the same for both targets.
//!
//! - hub: `subscribe` / `subscribed`; a producer sends `operation_started`
//!   (seq 1), then `progress_update`s (seq 2, 3, ...) and reads cumulative
//!   `ack`s; viewer frames hold several messages separated by `\n`.
//! - Socket.IO: Engine.IO open, `40` / `40{..}`, viewers emit
//!   `421["join",room]` and wait for `431[..]`; producers emit
//!   `42SEQ["progress",{..}]` and read `43SEQ[..]`; one event per frame;
//!   server pings `2` are answered with `3`.

pub mod engineio;
pub mod scan;

use engineio::{EioPacket, SioKind};
use std::fmt::Write as _;

/// Which protocol a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Proto {
    /// progress-hub, protocol v1 at `ws://HOST:PORT/ws`.
    Hub,
    /// Socket.IO v4 (Engine.IO v4 over a raw WebSocket) at `http://HOST:PORT`.
    #[value(name = "socketio")]
    SocketIo,
}

/// A step of a connection's handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this text frame.
    Send(String),
    /// Read frames until one matches.
    Await(Expect),
}

/// What a handshake waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A hub message of this type (`subscribed`).
    HubType(&'static str),
    /// A hub `ack` of at least this seq.
    HubAck(u64),
    /// The Engine.IO open packet.
    EioOpen,
    /// The Socket.IO connect packet of the default namespace.
    SioConnect,
    /// The Socket.IO ack with this id.
    SioAck(u64),
}

/// The outcome of checking a frame against an [`Expect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    /// The awaited frame.
    Yes,
    /// Something else; keep reading.
    No,
    /// The peer refused (an error message or a connect error).
    Refused(String),
}

/// What a producer learned from one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerScan {
    /// The highest seq acknowledged in the frame (acks are cumulative).
    pub acked: Option<u64>,
    /// Error messages in the frame.
    pub errors: u32,
    /// Whether the frame was a ping to answer with [`engineio::PONG`].
    pub ping: bool,
}

/// What a viewer learned from one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerScan {
    /// Progress messages in the frame.
    pub messages: u32,
    /// Error messages in the frame (e.g. `SLOW_CLIENT`).
    pub errors: u32,
    /// Whether the frame was a ping to answer with [`engineio::PONG`].
    pub ping: bool,
}

/// The ack id viewers use to join their room.
const JOIN_ACK: u64 = 1;

impl Proto {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Hub => "progress-hub",
            Proto::SocketIo => "socket.io",
        }
    }

    /// The WebSocket URL to dial for a base URL (`ws://127.0.0.1:P/ws` or
    /// `http://127.0.0.1:P`). Only loopback hosts are accepted.
    pub fn ws_url(self, base: &str) -> Result<String, String> {
        let (scheme, rest) = base
            .split_once("://")
            .ok_or_else(|| format!("`{base}`: expected ws://HOST:PORT/... or http://HOST:PORT"))?;
        if !matches!(scheme, "ws" | "http") {
            return Err(format!(
                "`{base}`: only ws:// and http:// (loopback) are supported"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "`{base}`: the benchmark only connects to loopback addresses"
            ));
        }
        Ok(match self {
            Proto::Hub if path.is_empty() || path == "/" => format!("ws://{authority}/ws"),
            Proto::Hub => format!("ws://{authority}{path}"),
            Proto::SocketIo => format!("ws://{authority}/socket.io/?EIO=4&transport=websocket"),
        })
    }

    /// The seq of a producer's first `progress` message.
    pub fn first_seq(self) -> u64 {
        match self {
            Proto::Hub => 2,
            Proto::SocketIo => 1,
        }
    }

    /// A viewer's handshake: connected and subscribed to `room`.
    pub fn viewer_handshake(self, room: &str) -> Vec<Step> {
        match self {
            Proto::Hub => vec![
                Step::Send(format!(
                    r#"{{"type":"subscribe","id":1,"namespace":"{room}","conflate":true}}"#
                )),
                Step::Await(Expect::HubType("subscribed")),
            ],
            Proto::SocketIo => {
                let mut join = String::new();
                engineio::event_frame(&mut join, Some(JOIN_ACK), "join", &format!("\"{room}\""));
                vec![
                    Step::Await(Expect::EioOpen),
                    Step::Send(engineio::CONNECT.into()),
                    Step::Await(Expect::SioConnect),
                    Step::Send(join),
                    Step::Await(Expect::SioAck(JOIN_ACK)),
                ]
            }
        }
    }

    /// A producer's handshake: connected, and on the hub its operation started.
    pub fn producer_handshake(self, room: &str, op: &str) -> Vec<Step> {
        match self {
            Proto::Hub => vec![
                Step::Send(format!(
                    r#"{{"type":"operation_started","namespace":"{room}","operation_id":"{op}","seq":1,"name":"bench {op}","kind":"bench"}}"#
                )),
                Step::Await(Expect::HubAck(1)),
            ],
            Proto::SocketIo => vec![
                Step::Await(Expect::EioOpen),
                Step::Send(engineio::CONNECT.into()),
                Step::Await(Expect::SioConnect),
            ],
        }
    }

    /// Writes one progress message with seq `seq` and send stamp `stamp`
    /// (nanoseconds) into `buf` (cleared first).
    pub fn publish(self, buf: &mut String, room: &str, op: &str, seq: u64, stamp: u64) {
        buf.clear();
        let progress = seq % 100;
        match self {
            Proto::Hub => {
                let _ = write!(
                    buf,
                    r#"{{"type":"progress_update","namespace":"{room}","operation_id":"{op}","seq":{seq},"progress":{progress},"message":"t={stamp}"}}"#
                );
            }
            Proto::SocketIo => {
                let data = format!(
                    r#"{{"room":"{room}","operation_id":"{op}","seq":{seq},"progress":{progress},"message":"t={stamp}"}}"#
                );
                engineio::event_frame(buf, Some(seq), "progress", &data);
            }
        }
    }

    /// The message that ends a producer's operation, if the protocol has one.
    pub fn finish(self, room: &str, op: &str, seq: u64) -> Option<String> {
        match self {
            Proto::Hub => Some(format!(
                r#"{{"type":"operation_completed","namespace":"{room}","operation_id":"{op}","seq":{seq}}}"#
            )),
            Proto::SocketIo => None,
        }
    }

    /// Checks a handshake frame.
    pub fn check(self, expect: Expect, frame: &str) -> Matched {
        match (self, expect) {
            (Proto::Hub, _) => {
                for line in scan::lines(frame) {
                    if scan::has_type(line, "error") {
                        return Matched::Refused(line.to_owned());
                    }
                    let hit = match expect {
                        Expect::HubType(ty) => scan::has_type(line, ty),
                        Expect::HubAck(seq) => {
                            scan::has_type(line, "ack")
                                && scan::number_after(line.as_bytes(), b"\"seq\":")
                                    .is_some_and(|s| s >= seq)
                        }
                        _ => false,
                    };
                    if hit {
                        return Matched::Yes;
                    }
                }
                Matched::No
            }
            (Proto::SocketIo, _) => match (engineio::parse(frame), expect) {
                (EioPacket::Open(_), Expect::EioOpen) => Matched::Yes,
                (EioPacket::Close, _) => Matched::Refused("engine.io close".into()),
                (EioPacket::Message(p), _) if p.kind == SioKind::ConnectError => {
                    Matched::Refused(frame.to_owned())
                }
                (EioPacket::Message(p), Expect::SioConnect) if p.kind == SioKind::Connect => {
                    Matched::Yes
                }
                (EioPacket::Message(p), Expect::SioAck(id))
                    if p.kind == SioKind::Ack && p.ack_id == Some(id) =>
                {
                    Matched::Yes
                }
                _ => Matched::No,
            },
        }
    }

    /// Scans a frame a producer received.
    pub fn scan_producer(self, frame: &str) -> ProducerScan {
        let mut out = ProducerScan::default();
        match self {
            Proto::Hub => {
                for line in scan::lines(frame) {
                    if scan::has_type(line, "ack") {
                        let seq = scan::number_after(line.as_bytes(), b"\"seq\":");
                        out.acked = out.acked.max(seq);
                    } else if scan::has_type(line, "error") {
                        out.errors += 1;
                    }
                }
            }
            Proto::SocketIo => match engineio::parse(frame) {
                EioPacket::Ping => out.ping = true,
                EioPacket::Message(p) if p.kind == SioKind::Ack => out.acked = p.ack_id,
                EioPacket::Message(p) if p.kind == SioKind::ConnectError => out.errors += 1,
                _ => {}
            },
        }
        out
    }

    /// Scans a frame a viewer received, calling `on_stamp` with the send
    /// stamp of each progress message when `stamps` is set.
    pub fn scan_viewer(
        self,
        frame: &str,
        stamps: bool,
        mut on_stamp: impl FnMut(u64),
    ) -> ViewerScan {
        let mut out = ViewerScan::default();
        match self {
            Proto::Hub => {
                for line in scan::lines(frame) {
                    if scan::has_type(line, "progress_update") {
                        out.messages += 1;
                        if stamps {
                            if let Some(t) = scan::stamp(line.as_bytes()) {
                                on_stamp(t);
                            }
                        }
                    } else if scan::has_type(line, "error") {
                        out.errors += 1;
                    }
                }
            }
            Proto::SocketIo => match engineio::parse(frame) {
                EioPacket::Ping => out.ping = true,
                EioPacket::Message(p) if p.kind == SioKind::Event => {
                    out.messages = 1;
                    if stamps {
                        if let Some(t) = scan::stamp(p.data.as_bytes()) {
                            on_stamp(t);
                        }
                    }
                }
                EioPacket::Message(p) if p.kind == SioKind::ConnectError => out.errors += 1,
                _ => {}
            },
        }
        out
    }
}

#[cfg(test)]
mod tests;
