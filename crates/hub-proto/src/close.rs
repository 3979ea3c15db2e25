//! WebSocket close codes the hub uses, and what each tells a client.

/// A close code the hub sends, with its meaning for reconnect logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 1001: idle timeout; reconnect.
    Idle,
    /// 1002: a frame that breaks RFC 6455 (unmasked, reserved bits or
    /// opcodes, a fragmented control frame, a stray continuation).
    ProtocolError,
    /// 1007: a text frame that is not valid UTF-8.
    InvalidPayload,
    /// 1008: repeated abuse; do not reconnect at once.
    Abuse,
    /// 1009: a frame over `--max-message-size`.
    TooLarge,
    /// 1012: the hub is restarting; reconnect.
    ServiceRestart,
    /// 1013: slow client; reconnect and resume from the last offset.
    TryAgainLater,
    /// 4001: authentication failed or expired; do not retry with the same token.
    AuthFailure,
}

impl CloseCode {
    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Idle => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Abuse => 1008,
            CloseCode::TooLarge => 1009,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::AuthFailure => 4001,
        }
    }

    /// A short reason string sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Idle => "idle timeout",
            CloseCode::ProtocolError => "websocket protocol error",
            CloseCode::InvalidPayload => "invalid utf-8",
            CloseCode::Abuse => "too many rejected messages",
            CloseCode::TooLarge => "message too large",
            CloseCode::ServiceRestart => "server shutdown",
            CloseCode::TryAgainLater => "slow client",
            CloseCode::AuthFailure => "authentication failed",
        }
    }
}
