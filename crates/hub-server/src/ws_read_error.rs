//! What a failed WebSocket read means for the connection, told by the
//! type of tungstenite's error (the one axum's `WebSocket` wraps), not by
//! the words of its message.
//!
//! axum and this crate must use the same tungstenite for the type to be
//! recognised: the integration tests of 1007, 1009 (with `data.size`) and
//! 1002 closes fail if they ever drift apart, since an unrecognised error
//! is [`ReadFailure::Other`].

use tungstenite::error::{CapacityError, Error as WsError};

/// Why reading the next message failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// A text message (or close reason) that is not UTF-8: close 1007.
    InvalidUtf8,
    /// A frame or fragmented message past `max_message_size`: close 1009.
    /// `size` is what the frame's header (or the fragments so far) said.
    TooLarge {
        /// The declared size, when the codec gave it.
        size: Option<u64>,
    },
    /// A frame that breaks RFC 6455 (unmasked, reserved bits or opcodes, a
    /// fragmented control frame): close 1002 with this reason, cut to
    /// what a close frame may carry.
    Protocol(String),
    /// Anything else (the socket reset, closed, ...): no close frame.
    Other(String),
}

/// Classifies the error of a failed `WebSocket::recv`.
pub fn classify(e: axum::Error) -> ReadFailure {
    match e.into_inner().downcast::<WsError>() {
        Ok(e) => from_tungstenite(*e),
        Err(other) => ReadFailure::Other(other.to_string()),
    }
}

fn from_tungstenite(e: WsError) -> ReadFailure {
    match e {
        WsError::Utf8(_) => ReadFailure::InvalidUtf8,
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => ReadFailure::TooLarge {
            size: Some(size as u64),
        },
        WsError::Capacity(_) => ReadFailure::TooLarge { size: None },
        WsError::Protocol(p) => ReadFailure::Protocol(close_reason_text(&p.to_string())),
        other => ReadFailure::Other(other.to_string()),
    }
}

/// `text` cut to the 123 bytes a close frame's reason may hold.
fn close_reason_text(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::ProtocolError;

    fn through_axum(e: WsError) -> ReadFailure {
        classify(axum::Error::new(e))
    }

    #[test]
    fn each_kind_of_failure_is_told_by_its_type() {
        assert_eq!(
            through_axum(WsError::Utf8("bad".into())),
            ReadFailure::InvalidUtf8
        );
        assert_eq!(
            through_axum(WsError::Capacity(CapacityError::MessageTooLong {
                size: 70_000,
                max_size: 65_536
            })),
            ReadFailure::TooLarge { size: Some(70_000) }
        );
        assert_eq!(
            through_axum(WsError::Protocol(ProtocolError::UnmaskedFrameFromClient)),
            ReadFailure::Protocol(ProtocolError::UnmaskedFrameFromClient.to_string())
        );
        assert!(matches!(
            through_axum(WsError::ConnectionClosed),
            ReadFailure::Other(_)
        ));
        assert!(matches!(
            classify(axum::Error::new(std::io::Error::other("reset"))),
            ReadFailure::Other(t) if t == "reset"
        ));
    }

    #[test]
    fn a_close_reason_is_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let cut = close_reason_text(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut));
        assert_eq!(cut.len(), 122);
    }
}
