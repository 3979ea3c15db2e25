//! [`Verifier`]: turns a bearer token into a [`Principal`] or an [`AuthError`].
//!
//! Order of checks: size, header (shape, `crit`), key selection (`kid`), the
//! key's pinned algorithm, signature, then claims (`exp` with 5 s leeway
//! against the caller's `now_ms`, `nbf`, `sub`, roles, namespaces). The
//! signature is checked before `exp`, so only a genuine token can be told it
//! is expired. The system clock is never read.

use std::fmt;
use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header};

use crate::claims::TokenClaims;
use crate::error::{reason, AuthError, ConfigError};
use crate::keys::{KeySet, KeySource};
use crate::principal::Principal;

/// Longest token accepted, in bytes; longer ones fail without being parsed.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies tokens against the configured keys. `Send + Sync`: share one
/// behind an `Arc`; [`reload`](Self::reload) swaps keys without blocking
/// verifications for longer than a pointer copy.
pub struct Verifier {
    source: KeySource,
    keys: RwLock<Arc<KeySet>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("source", &self.source)
            .field("keys", &self.key_summary())
            .finish()
    }
}

impl Verifier {
    /// Loads the keys now. Errors name the file and say what is wrong with it.
    pub fn new(source: KeySource) -> Result<Self, ConfigError> {
        let keys = KeySet::load(&source)?;
        Ok(Verifier {
            source,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// Re-reads a PEM or JWKS file (key rotation on SIGHUP or file change).
    /// If the new file is unreadable or bad, the error is returned and the
    /// keys in use stay as they were. A no-op for a secret.
    pub fn reload(&self) -> Result<(), ConfigError> {
        if matches!(self.source, KeySource::HsSecret(_)) {
            return Ok(());
        }
        let keys = Arc::new(KeySet::load(&self.source)?);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    /// The key source this verifier reads.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// One line per trusted key (`HS256`, `RS256`, `kid "a": ES256`...), for logs.
    pub fn key_summary(&self) -> Vec<String> {
        self.current().summary()
    }

    /// Verifies `token` (the bare JWT, without `Bearer `) at time `now_ms`
    /// (milliseconds since the Unix epoch).
    ///
    /// - empty token: [`AuthError::Required`];
    /// - `exp` more than 5 s in the past: [`AuthError::Expired`];
    /// - everything else wrong (`alg: none` or any algorithm other than the
    ///   key's, bad signature, unknown `kid`, missing `exp` or `sub`, malformed
    ///   token or claims, `nbf` in the future): [`AuthError::Failed`].
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Required);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::failed(reason::TOO_LARGE));
        }
        let header = decode_header(token).map_err(|_| AuthError::failed(reason::MALFORMED))?;
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(AuthError::failed(reason::CRIT));
        }
        let keys = self.current();
        let key = keys.select(header.kid.as_deref())?;
        if header.alg != key.alg {
            return Err(AuthError::failed(reason::ALGORITHM));
        }
        let data = decode::<TokenClaims>(token, &key.key, &key.validation).map_err(map_error)?;
        data.claims.into_principal(now_ms)
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn map_error(error: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::failed(match error.kind() {
        ErrorKind::InvalidSignature => reason::SIGNATURE,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => reason::ALGORITHM,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => reason::MISSING_EXP,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => reason::CLAIMS,
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => reason::MALFORMED,
        _ => reason::INVALID,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Verifier>();
    }

    #[test]
    fn debug_hides_the_secret() {
        let v = Verifier::new(KeySource::HsSecret("hunter2-hunter2".into())).unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("HS256"), "{shown}");
    }
}
