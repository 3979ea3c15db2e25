//! Where verification keys come from ([`KeySource`]) and how they are loaded
//! into a [`KeySet`]: every key is pinned to exactly one algorithm when it is
//! loaded, so a token can never choose how it is checked (no HS/RS confusion).
//!
//! - secret: HS256;
//! - PEM public key: RS256 for RSA (at least 2048 bits), ES256 for P-256,
//!   ES384 for P-384, EdDSA for Ed25519;
//! - JWKS: each key with the `alg` it states, or the one its type implies
//!   (RSA: RS256, EC: by curve, OKP Ed25519: EdDSA, oct: HS256). Keys for
//!   encryption (`use: "enc"`, RSA-OAEP...) or of unsupported types/curves are
//!   skipped; a malformed signing key, an `alg` that contradicts the key type,
//!   a duplicate `kid`, or a missing `kid` in a set of several keys is an error.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};

use crate::error::{reason, AuthError, ConfigError};

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Where the hub's verification keys come from (`--jwt-secret`,
/// `--jwt-public-key`, `--jwks-file`). `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A shared secret: tokens must be HS256, signed with its UTF-8 bytes.
    HsSecret(String),
    /// A PEM public key file (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`);
    /// the key type decides the algorithm.
    PublicKeyPem(PathBuf),
    /// A JWK Set file (`{"keys": [...]}`); tokens pick a key by `kid`.
    JwksFile(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::HsSecret(_) => f.write_str("HsSecret(<redacted>)"),
            KeySource::PublicKeyPem(p) => f.debug_tuple("PublicKeyPem").field(p).finish(),
            KeySource::JwksFile(p) => f.debug_tuple("JwksFile").field(p).finish(),
        }
    }
}

/// One key, pinned to one algorithm, with its ready-made validation rules.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    pub(crate) validation: Validation,
}

impl VerifyKey {
    fn new(kid: Option<String>, alg: Algorithm, key: DecodingKey) -> Self {
        let mut validation = Validation::new(alg);
        // Time is checked by the caller against `now_ms`, not the system
        // clock, and so is the presence of `exp` (the library would take a
        // negative `exp`, a time in the past, for a missing one).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        // The hub has no audience of its own: the key is what binds a token to it.
        validation.validate_aud = false;
        VerifyKey {
            kid,
            alg,
            key,
            validation,
        }
    }
}

/// The keys currently trusted.
pub(crate) struct KeySet {
    keys: Vec<VerifyKey>,
    /// JWKS: tokens are matched to keys by `kid`. Otherwise the single key
    /// has no `kid`, and a token that names one names an unknown key.
    by_kid: bool,
}

impl KeySet {
    /// Reads and parses the keys of `source`.
    pub(crate) fn load(source: &KeySource) -> Result<KeySet, ConfigError> {
        match source {
            KeySource::HsSecret(secret) => {
                if secret.is_empty() {
                    return Err(ConfigError::EmptySecret);
                }
                let key = DecodingKey::from_secret(secret.as_bytes());
                Ok(KeySet {
                    keys: vec![VerifyKey::new(None, Algorithm::HS256, key)],
                    by_kid: false,
                })
            }
            KeySource::PublicKeyPem(path) => {
                let bytes = read(path)?;
                let (alg, key) = parse_pem(&bytes).map_err(|reason| ConfigError::Pem {
                    path: path.clone(),
                    reason,
                })?;
                Ok(KeySet {
                    keys: vec![VerifyKey::new(None, alg, key)],
                    by_kid: false,
                })
            }
            KeySource::JwksFile(path) => {
                let bytes = read(path)?;
                let keys = parse_jwks(&bytes).map_err(|reason| ConfigError::Jwks {
                    path: path.clone(),
                    reason,
                })?;
                Ok(KeySet { keys, by_kid: true })
            }
        }
    }

    /// The key a token with header `kid` must be checked with.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyKey, AuthError> {
        match (self.by_kid, kid, self.keys.as_slice()) {
            (false, None, [key, ..]) => Ok(key),
            (false, Some(_), _) => Err(AuthError::failed(reason::UNKNOWN_KID)),
            (true, Some(kid), keys) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| AuthError::failed(reason::UNKNOWN_KID)),
            (true, None, [only]) => Ok(only),
            (true, None, _) => Err(AuthError::failed(reason::MISSING_KID)),
            (false, _, []) => Err(AuthError::failed(reason::INVALID)),
        }
    }

    /// One line per key, e.g. `kid "a": RS256`, for the startup log.
    pub(crate) fn summary(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| match &k.kid {
                Some(kid) => format!("kid {kid:?}: {:?}", k.alg),
                None => format!("{:?}", k.alg),
            })
            .collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A PEM public key and the one algorithm it verifies.
fn parse_pem(bytes: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    // jsonwebtoken would take an RSA private key's bytes for a public key.
    if String::from_utf8_lossy(bytes).contains("PRIVATE KEY-----") {
        return Err("this is a private key; give the hub the public key".into());
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        check_rsa(&key)?;
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        // Uncompressed (0x04 || x || y) or compressed SEC1 point.
        let alg = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65 | 33) => Algorithm::ES256,
            Ok(97 | 49) => Algorithm::ES384,
            _ => return Err("unsupported elliptic curve (use P-256 or P-384)".into()),
        };
        return Ok((alg, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        return Ok((Algorithm::EdDSA, key));
    }
    Err("expected an RSA, EC (P-256/P-384) or Ed25519 public key in PEM".into())
}

/// Refuses RSA keys that do not parse or are shorter than 2048 bits.
fn check_rsa(key: &DecodingKey) -> Result<(), String> {
    let modulus = match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            (DEFAULT_PROVIDER
                .key_utils
                .rsa_pub_components_from_public_key)(der)
            .map_err(|e| format!("bad RSA public key: {e}"))?
            .0
        }
        DecodingKeyKind::RsaModulusExponent { n, .. } => n.clone(),
    };
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant < MIN_RSA_MODULUS_BYTES {
        return Err(format!(
            "RSA key of {} bits is too short (at least 2048)",
            significant * 8
        ));
    }
    Ok(())
}

/// The signing keys of a JWK Set document.
fn parse_jwks(bytes: &[u8]) -> Result<Vec<VerifyKey>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_slice(bytes).map_err(|e| format!("expected {{\"keys\": [...]}}: {e}"))?;
    let mut keys: Vec<VerifyKey> = Vec::new();
    let mut kids = HashSet::new();
    let mut skipped = 0;
    for (i, value) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("key #{i}: {e}"))?;
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key #{i} (kid {kid:?})"),
            None => format!("key #{i}"),
        };
        let Some(alg) = jwk_algorithm(&jwk).map_err(|e| format!("{name}: {e}"))? else {
            skipped += 1;
            continue;
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{name}: {e}"))?;
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => check_rsa(&key).map_err(|e| format!("{name}: {e}"))?,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                if key.try_get_as_bytes().is_ok_and(<[u8]>::is_empty) =>
            {
                return Err(format!("{name}: empty secret"));
            }
            _ => {}
        }
        if let Some(kid) = &jwk.common.key_id {
            if !kids.insert(kid.clone()) {
                return Err(format!("{name}: duplicate kid"));
            }
        }
        keys.push(VerifyKey::new(jwk.common.key_id.clone(), alg, key));
    }
    if keys.is_empty() {
        return Err(format!("no usable signing key ({skipped} skipped)"));
    }
    if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
        return Err("every key needs a \"kid\" when the set has several".into());
    }
    Ok(keys)
}

/// The algorithm a JWK verifies: `Ok(None)` to skip a key that is not for
/// signatures or not supported, `Err` when `alg` contradicts the key type.
fn jwk_algorithm(jwk: &Jwk) -> Result<Option<Algorithm>, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Ok(None);
        }
    }
    let stated = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256) => {
            return Ok(None);
        }
        Some(alg) => match Algorithm::try_from(alg) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
    };
    let (default, allowed): (Algorithm, &[Algorithm]) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            Algorithm::RS256,
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        ),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => (Algorithm::ES256, &[Algorithm::ES256]),
            EllipticCurve::P384 => (Algorithm::ES384, &[Algorithm::ES384]),
            _ => return Ok(None),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => (Algorithm::EdDSA, &[Algorithm::EdDSA]),
            _ => return Ok(None),
        },
        AlgorithmParameters::OctetKey(_) => (
            Algorithm::HS256,
            &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        ),
        _ => return Ok(None),
    };
    match stated {
        None => Ok(Some(default)),
        Some(alg) if allowed.contains(&alg) => Ok(Some(alg)),
        Some(alg) => Err(format!("alg {alg:?} does not fit this key type")),
    }
}
