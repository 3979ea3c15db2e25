//! Errors: [`AuthError`] for a refused request (what the client is told) and
//! [`ConfigError`] for keys that cannot be loaded or tokens that cannot be minted
//! (what the operator is told).
//!
//! An [`AuthError::Failed`] reason is always one of the fixed strings in
//! [`reason`], never anything taken from the token, so it is safe to log and to
//! send back to the client, and [`AuthError::reason_label`] stays a small set.

use std::path::PathBuf;

/// The fixed reasons carried by [`AuthError::Failed`].
pub mod reason {
    /// Not three base64url segments, a header that is not JSON, or an
    /// unsupported `alg` (this is where `alg: none` ends up).
    pub const MALFORMED: &str = "malformed token";
    /// Longer than [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) bytes.
    pub const TOO_LARGE: &str = "token too large";
    /// The header's `alg` is not the one the key is for.
    pub const ALGORITHM: &str = "algorithm not allowed for this key";
    /// The header's `kid` names no key the hub has (a JWKS key's `kid`;
    /// a single secret or PEM key has none).
    pub const UNKNOWN_KID: &str = "unknown key id";
    /// The JWKS has several keys and the header names none.
    pub const MISSING_KID: &str = "token has no key id";
    /// The header lists `crit` extensions, none of which this hub understands.
    pub const CRIT: &str = "unsupported critical header";
    /// The signature does not match.
    pub const SIGNATURE: &str = "invalid signature";
    /// No `exp` claim.
    pub const MISSING_EXP: &str = "missing exp claim";
    /// A claim has the wrong type (e.g. `exp` as a string, `roles` not a list of strings).
    pub const CLAIMS: &str = "invalid claims";
    /// `nbf` is in the future (beyond the leeway).
    pub const NOT_YET_VALID: &str = "token not yet valid";
    /// Anything else jsonwebtoken refused.
    pub const INVALID: &str = "invalid token";
}

/// Why a request is not authenticated. Maps one to one onto the wire codes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token was presented and the action needs one (`AUTH_REQUIRED`).
    #[error("authentication required")]
    Required,
    /// The token's `exp` is past, beyond the allowed clock skew (`TOKEN_EXPIRED`).
    #[error("token expired")]
    Expired,
    /// The token was refused (`AUTH_FAILED`). The reason is one of [`reason`]'s
    /// constants and never contains the token.
    #[error("authentication failed: {0}")]
    Failed(String),
}

impl AuthError {
    /// Builds a [`AuthError::Failed`] from one of the [`reason`] constants.
    pub(crate) fn failed(reason: &'static str) -> Self {
        AuthError::Failed(reason.to_owned())
    }

    /// The protocol error code: `AUTH_REQUIRED`, `TOKEN_EXPIRED` or `AUTH_FAILED`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Required => "AUTH_REQUIRED",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::Failed(_) => "AUTH_FAILED",
        }
    }

    /// A short, bounded label for metrics (e.g. `auth_failures_total{reason=...}`):
    /// `required`, `expired`, `malformed`, `too_large`, `algorithm`, `unknown_kid`,
    /// `missing_kid`, `crit`, `signature`, `missing_exp`, `claims`,
    /// `not_yet_valid`, or `invalid` for anything else.
    pub fn reason_label(&self) -> &'static str {
        match self {
            AuthError::Required => "required",
            AuthError::Expired => "expired",
            AuthError::Failed(r) => match r.as_str() {
                reason::MALFORMED => "malformed",
                reason::TOO_LARGE => "too_large",
                reason::ALGORITHM => "algorithm",
                reason::UNKNOWN_KID => "unknown_kid",
                reason::MISSING_KID => "missing_kid",
                reason::CRIT => "crit",
                reason::SIGNATURE => "signature",
                reason::MISSING_EXP => "missing_exp",
                reason::CLAIMS => "claims",
                reason::NOT_YET_VALID => "not_yet_valid",
                _ => "invalid",
            },
        }
    }
}

/// A key that cannot be loaded, or a token that cannot be minted. The message
/// names the file (never the secret) so it can go straight to stderr.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The PEM file holds no usable key.
    #[error("{}: not a usable PEM key: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWKS file is not a JWK set or holds no usable signing key.
    #[error("{}: not a usable JWKS: {reason}", path.display())]
    Jwks {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HS256 secret is empty.
    #[error("the JWT secret is empty")]
    EmptySecret,
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(String),
}
