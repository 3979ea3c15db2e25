//! Shared test helpers: the fixed clock, test keys, hand-built tokens, JWKS documents.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_auth::{mint_with_private_key, Claims};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};

/// "Now" for every test, in seconds and milliseconds.
pub const NOW_S: u64 = 1_800_000_000;
/// `NOW_S` in milliseconds.
pub const NOW_MS: u64 = NOW_S * 1000;
/// The hub secret of the HS256 tests.
pub const SECRET: &str = "test-secret-0123456789-abcdefghij";

/// A file in `tests/keys/`.
pub fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

/// The contents of a file in `tests/keys/`.
pub fn key_text(name: &str) -> String {
    std::fs::read_to_string(key(name)).unwrap()
}

/// Claims for `sub` expiring `exp_in` seconds after `NOW_S` (negative: before).
pub fn claims(sub: &str, exp_in: i64) -> Claims {
    Claims::new(sub, NOW_S.checked_add_signed(exp_in).unwrap())
}

/// Signs with the private key `tests/keys/<name>.key`.
pub fn mint_with(name: &str, kid: Option<&str>, claims: &Claims) -> String {
    mint_with_private_key(&key(&format!("{name}.key")), kid, claims).unwrap()
}

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` from raw JSON text and raw signature bytes.
pub fn raw_token(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

/// A token with the given raw header and payload, HMAC-signed with `alg`
/// (HS256/384/512) and `secret`.
pub fn hmac_token(alg: Algorithm, secret: &[u8], header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), alg)
            .unwrap();
    format!("{message}.{signature}")
}

/// The public JWK of `tests/keys/<name>.key` for `alg`, with `kid`.
pub fn jwk(name: &str, alg: Algorithm, kid: &str) -> serde_json::Value {
    let pem = std::fs::read(key(&format!("{name}.key"))).unwrap();
    let key = match alg {
        Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[serde_json::Value]) -> String {
    serde_json::json!({ "keys": keys }).to_string()
}
