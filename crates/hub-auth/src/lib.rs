//! progress-hub authentication: who is asking ([`Principal`]), what they may
//! do ([`Principal::allows`]), verifying bearer tokens ([`Verifier`]) and
//! minting them ([`mint_hs256`], [`mint_with_private_key`]).
//!
//! A pure, synchronous library: no sockets, no async runtime, no clock (time
//! is an argument). It reads key files only in [`Verifier::new`] and
//! [`Verifier::reload`].
//!
//! The contract it implements (PROTOCOL, "Authentication contract"):
//! - keys: `--jwt-secret` (HS256), `--jwt-public-key` (RS256/ES256 by key
//!   type), `--jwks-file` (key by `kid`, algorithm from the JWK);
//! - claims: `sub`, `exp` (required, seconds, 5 s leeway), `roles` (absent:
//!   `["viewer"]`; unknown names ignored), `namespaces` (globs; absent:
//!   `["default"]`);
//! - errors: no token `AUTH_REQUIRED`, past `exp` `TOKEN_EXPIRED`, anything
//!   else `AUTH_FAILED` ([`AuthError::code`]).
//!
//! ```
//! use hub_auth::{mint_hs256, Action, Claims, KeySource, Verifier};
//!
//! let verifier = Verifier::new(KeySource::HsSecret("s3cret".into()))?;
//! let mut claims = Claims::new("build-42", 1_700_000_060);
//! claims.roles = Some(vec!["reporter".into()]);
//! claims.namespaces = Some(vec!["ci-*".into()]);
//! let token = mint_hs256("s3cret", &claims)?;
//!
//! let who = verifier.verify(&token, 1_700_000_000_000).unwrap();
//! assert!(who.allows(Action::Publish, "ci-main"));
//! assert!(!who.allows(Action::Publish, "default"));
//! assert!(!who.allows(Action::Cancel, "ci-main"));
//! assert_eq!(verifier.verify(&token, 1_700_000_066_000).unwrap_err().code(), "TOKEN_EXPIRED");
//! # Ok::<(), hub_auth::ConfigError>(())
//! ```

mod claims;
mod error;
mod keys;
mod mint;
mod principal;
mod verifier;

pub use claims::Claims;
pub use error::{reason, AuthError, ConfigError};
/// Namespace globs (`*` any run, `?` one character): the same matcher the
/// hub uses for subscription filters.
pub use hub_core::glob::glob_match;
pub use keys::KeySource;
pub use mint::{mint_hs256, mint_with_private_key};
pub use principal::{past_exp, Action, Principal, Role, EXP_LEEWAY_MS};
pub use verifier::{Verifier, MAX_TOKEN_LEN};
