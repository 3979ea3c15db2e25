//! Identifier rules: operation ids and namespace names.

use crate::error::ProtoError;

/// The namespace used when a message names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Longest operation id or namespace name, in characters.
pub const MAX_ID_LEN: usize = 128;

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks an operation id: 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn validate_operation_id(s: &str) -> Result<(), ProtoError> {
    if valid_id(s) {
        Ok(())
    } else {
        Err(ProtoError::bad(
            "operation_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// Checks a namespace name (same rule as operation ids).
pub fn validate_namespace(s: &str) -> Result<(), ProtoError> {
    if valid_id(s) {
        Ok(())
    } else {
        Err(ProtoError::bad(
            "namespace must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_operation_id("render.frame-1:a_b").is_ok());
        assert!(validate_operation_id("").is_err());
        assert!(validate_operation_id(&"a".repeat(128)).is_ok());
        assert!(validate_operation_id(&"a".repeat(129)).is_err());
        assert!(validate_operation_id("a b").is_err());
        assert!(validate_operation_id("é").is_err());
        assert!(validate_operation_id("a\u{0}").is_err());
        assert!(validate_namespace("team-1").is_ok());
        assert!(validate_namespace("team/1").is_err());
    }
}
