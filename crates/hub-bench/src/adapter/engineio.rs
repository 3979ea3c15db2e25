//! Engine.IO v4 / Socket.IO v4 packets as they travel over a raw WebSocket
//! (one packet per frame, text only): just enough parsing for a load
//! generator, borrowing from the frame and never allocating.
//!
//! An Engine.IO packet is one type digit and its data: `0{...}` open,
//! `1` close, `2` ping, `3` pong, `4...` message. A Socket.IO packet is the
//! data of an Engine.IO message: a type digit (`0` connect, `1` disconnect,
//! `2` event, `3` ack, `4` connect error), an optional `/nsp,`, an optional
//! ack id (digits) and the JSON payload.

/// One Engine.IO packet, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0{...}`: the handshake (sid, pingInterval, ...).
    Open(&'a str),
    /// `1`: the server closes the session.
    Close,
    /// `2`: a heartbeat ping; the client answers [`PONG`].
    Ping,
    /// `3`: a pong.
    Pong,
    /// `4...`: a Socket.IO packet.
    Message(SioPacket<'a>),
    /// Anything else (upgrade, noop, garbage).
    Other,
}

/// The Socket.IO packet kinds this generator cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SioKind {
    /// `0`: namespace joined.
    Connect,
    /// `1`: namespace left.
    Disconnect,
    /// `2`: an event `["name", data...]`.
    Event,
    /// `3`: the answer to an event sent with an ack id.
    Ack,
    /// `4`: the namespace refused the connection.
    ConnectError,
    /// Binary events and acks, or an unknown digit.
    Other,
}

/// One Socket.IO packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SioPacket<'a> {
    /// Its kind.
    pub kind: SioKind,
    /// The ack id, when the packet carries one.
    pub ack_id: Option<u64>,
    /// The JSON payload (may be empty).
    pub data: &'a str,
}

/// The frame a client answers a ping with.
pub const PONG: &str = "3";
/// The frame that joins the default namespace.
pub const CONNECT: &str = "40";

/// Parses one frame.
pub fn parse(frame: &str) -> EioPacket<'_> {
    let bytes = frame.as_bytes();
    match bytes.first() {
        Some(b'0') => EioPacket::Open(&frame[1..]),
        Some(b'1') => EioPacket::Close,
        Some(b'2') => EioPacket::Ping,
        Some(b'3') => EioPacket::Pong,
        Some(b'4') => EioPacket::Message(parse_sio(&frame[1..])),
        _ => EioPacket::Other,
    }
}

/// Parses the Socket.IO packet inside an Engine.IO message.
pub fn parse_sio(packet: &str) -> SioPacket<'_> {
    let bytes = packet.as_bytes();
    let kind = match bytes.first() {
        Some(b'0') => SioKind::Connect,
        Some(b'1') => SioKind::Disconnect,
        Some(b'2') => SioKind::Event,
        Some(b'3') => SioKind::Ack,
        Some(b'4') => SioKind::ConnectError,
        _ => SioKind::Other,
    };
    let mut i = usize::from(!bytes.is_empty());
    // A namespace other than "/" comes as "/nsp," before the ack id.
    if bytes.get(i) == Some(&b'/') {
        match memchr::memchr(b',', &bytes[i..]) {
            Some(comma) => i += comma + 1,
            None => i = bytes.len(),
        }
    }
    let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let ack_id = if digits > 0 && digits <= 19 {
        packet[i..i + digits].parse().ok()
    } else {
        None
    };
    SioPacket {
        kind,
        ack_id,
        data: &packet[i + digits..],
    }
}

/// An event frame `42["name",data]`, or `42ID["name",data]` when it wants
/// an ack; `data_json` must be valid JSON.
pub fn event_frame(buf: &mut String, ack_id: Option<u64>, name: &str, data_json: &str) {
    use std::fmt::Write as _;
    buf.push_str("42");
    if let Some(id) = ack_id {
        let _ = write!(buf, "{id}");
    }
    buf.push_str("[\"");
    buf.push_str(name);
    buf.push_str("\",");
    buf.push_str(data_json);
    buf.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engineio_packets() {
        assert_eq!(
            parse("0{\"sid\":\"x\"}"),
            EioPacket::Open("{\"sid\":\"x\"}")
        );
        assert_eq!(parse("1"), EioPacket::Close);
        assert_eq!(parse("2"), EioPacket::Ping);
        assert_eq!(parse("3"), EioPacket::Pong);
        assert_eq!(parse("6"), EioPacket::Other);
        assert_eq!(parse(""), EioPacket::Other);
    }

    #[test]
    fn socketio_connect_and_events() {
        let EioPacket::Message(p) = parse("40{\"sid\":\"abc\"}") else {
            panic!("not a message")
        };
        assert_eq!(
            (p.kind, p.ack_id, p.data),
            (SioKind::Connect, None, "{\"sid\":\"abc\"}")
        );
        let EioPacket::Message(p) = parse("42[\"progress\",{\"seq\":3}]") else {
            panic!("not a message")
        };
        assert_eq!((p.kind, p.ack_id), (SioKind::Event, None));
        assert_eq!(p.data, "[\"progress\",{\"seq\":3}]");
    }

    #[test]
    fn socketio_acks_and_namespaces() {
        let EioPacket::Message(p) = parse("43123[]") else {
            panic!("not a message")
        };
        assert_eq!((p.kind, p.ack_id, p.data), (SioKind::Ack, Some(123), "[]"));
        let EioPacket::Message(p) = parse("43/admin,7[\"ok\"]") else {
            panic!("not a message")
        };
        assert_eq!(
            (p.kind, p.ack_id, p.data),
            (SioKind::Ack, Some(7), "[\"ok\"]")
        );
        let EioPacket::Message(p) = parse("41") else {
            panic!("not a message")
        };
        assert_eq!((p.kind, p.ack_id, p.data), (SioKind::Disconnect, None, ""));
        assert_eq!(
            parse_sio("44{\"message\":\"no\"}").kind,
            SioKind::ConnectError
        );
    }

    #[test]
    fn event_frames() {
        let mut buf = String::new();
        event_frame(&mut buf, Some(9), "progress", "{\"a\":1}");
        assert_eq!(buf, "429[\"progress\",{\"a\":1}]");
        buf.clear();
        event_frame(&mut buf, None, "join", "\"room\"");
        assert_eq!(buf, "42[\"join\",\"room\"]");
    }
}
