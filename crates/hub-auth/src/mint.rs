//! Minting tokens (for `progress-hub token` and tests): HS256 with the hub's
//! secret, or RS256 / ES256 / ES384 / EdDSA with a PKCS#8 private key PEM
//! whose public half the hub is given.

use std::path::Path;

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

use crate::claims::Claims;
use crate::error::ConfigError;

/// Signs `claims` with HS256 and `secret` (its UTF-8 bytes, as the hub's
/// `--jwt-secret` uses them).
///
/// ```
/// use hub_auth::{mint_hs256, Claims, KeySource, Verifier};
/// let token = mint_hs256("s3cret", &Claims::new("ci", 2_000_000_000)).unwrap();
/// let verifier = Verifier::new(KeySource::HsSecret("s3cret".into())).unwrap();
/// let who = verifier.verify(&token, 1_900_000_000_000).unwrap();
/// assert_eq!(who.sub, "ci");
/// ```
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::EmptySecret);
    }
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| ConfigError::Sign(e.to_string()))
}

/// Signs `claims` with the private key in the PEM file `path` (PKCS#8
/// `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY`): RS256 for RSA, ES256 for P-256,
/// ES384 for P-384, EdDSA for Ed25519. `kid` goes into the header, for hubs
/// using a JWKS.
pub fn mint_with_private_key(
    path: &Path,
    kid: Option<&str>,
    claims: &Claims,
) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad_key = |reason: String| ConfigError::Pem {
        path: path.to_owned(),
        reason,
    };
    if !String::from_utf8_lossy(&bytes).contains("PRIVATE KEY-----") {
        return Err(bad_key(
            "expected a private key, not a public key or certificate".into(),
        ));
    }
    let (alg, key) = parse_private_pem(&bytes).ok_or_else(|| {
        bad_key("expected a PKCS#8 RSA, EC (P-256/P-384) or Ed25519 private key".into())
    })?;
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).map_err(|e| bad_key(format!("cannot sign with it: {e}")))
}

fn parse_private_pem(bytes: &[u8]) -> Option<(Algorithm, EncodingKey)> {
    if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
        return Some((Algorithm::RS256, key));
    }
    if let Ok(key) = EncodingKey::from_ec_pem(bytes) {
        let utils = &DEFAULT_PROVIDER.key_utils;
        for alg in [Algorithm::ES256, Algorithm::ES384] {
            if (utils.ec_pub_components_from_private_key)(key.as_bytes(), alg).is_ok() {
                return Some((alg, key));
            }
        }
        return None;
    }
    EncodingKey::from_ed_pem(bytes)
        .ok()
        .map(|key| (Algorithm::EdDSA, key))
}
