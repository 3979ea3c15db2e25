//! The authentication matrix: every kind of key against valid, expired,
//! forged, confused and malformed tokens, as one table.

mod common;

use common::*;
use hub_auth::{
    mint_hs256, Action, AuthError, KeySource, Principal, Role, Verifier, MAX_TOKEN_LEN,
};
use jsonwebtoken::Algorithm;

/// What a row expects: the principal's `sub`, or an error code and reason label.
#[derive(Debug)]
enum Want {
    Sub(&'static str),
    Err(&'static str, &'static str),
}
use Want::*;

struct Verifiers {
    hs: Verifier,
    rsa1: Verifier,
    rsa1_pkcs1: Verifier,
    ec1: Verifier,
    ec384: Verifier,
    ed1: Verifier,
    jwks: Verifier,
}

impl Verifiers {
    fn new(dir: &tempfile::TempDir) -> Self {
        let pem = |name: &str| Verifier::new(KeySource::PublicKeyPem(key(name))).unwrap();
        let jwks_path = dir.path().join("jwks.json");
        let doc = jwks(&[
            jwk("rsa1", Algorithm::RS256, "a"),
            jwk("ec1", Algorithm::ES256, "b"),
        ]);
        std::fs::write(&jwks_path, doc).unwrap();
        Verifiers {
            hs: Verifier::new(KeySource::HsSecret(SECRET.into())).unwrap(),
            rsa1: pem("rsa1.pub"),
            rsa1_pkcs1: pem("rsa1.pkcs1.pub"),
            ec1: pem("ec1.pub"),
            ec384: pem("ec384.pub"),
            ed1: pem("ed1.pub"),
            jwks: Verifier::new(KeySource::JwksFile(jwks_path)).unwrap(),
        }
    }

    fn get(&self, name: &str) -> &Verifier {
        match name {
            "hs" => &self.hs,
            "rsa1" => &self.rsa1,
            "rsa1_pkcs1" => &self.rsa1_pkcs1,
            "ec1" => &self.ec1,
            "ec384" => &self.ec384,
            "ed1" => &self.ed1,
            "jwks" => &self.jwks,
            other => panic!("no verifier {other}"),
        }
    }
}

fn hs(claims: &hub_auth::Claims) -> String {
    mint_hs256(SECRET, claims).unwrap()
}

/// A well-formed HS256 header with `payload`, signed with the hub secret.
fn hs_payload(payload: &str) -> String {
    hmac_token(
        Algorithm::HS256,
        SECRET.as_bytes(),
        r#"{"alg":"HS256","typ":"JWT"}"#,
        payload,
    )
}

#[test]
fn auth_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let v = Verifiers::new(&dir);
    let valid = claims("alice", 3600);
    let exp = NOW_S + 3600;
    // A minimal valid payload, for hand-built headers.
    let body = format!(r#"{{"sub":"a","exp":{exp}}}"#);

    let rs1 = mint_with("rsa1", None, &valid);
    let rs1_kid_a = mint_with("rsa1", Some("a"), &valid);
    let ec1_kid_b = mint_with("ec1", Some("b"), &valid);

    // Swap the payload of a genuine token: the signature no longer matches.
    let tampered = {
        let parts: Vec<&str> = rs1.split('.').collect();
        let forged = format!(r#"{{"sub":"alice","exp":{exp},"roles":["admin"]}}"#);
        format!("{}.{}.{}", parts[0], b64(forged), parts[2])
    };

    #[rustfmt::skip]
    let rows: Vec<(&str, &str, String, Want)> = vec![
        // --- HS256 secret ---
        ("valid HS256", "hs", hs(&valid), Sub("alice")),
        ("expired long ago", "hs", hs(&claims("alice", -3600)), Err("TOKEN_EXPIRED", "expired")),
        ("expired 4 s ago: within leeway", "hs", hs(&claims("alice", -4)), Sub("alice")),
        ("expired exactly 5 s ago", "hs", hs(&claims("alice", -5)), Err("TOKEN_EXPIRED", "expired")),
        ("expired 6 s ago", "hs", hs(&claims("alice", -6)), Err("TOKEN_EXPIRED", "expired")),
        ("missing exp", "hs", hs_payload(r#"{"sub":"alice"}"#), Err("AUTH_FAILED", "missing_exp")),
        ("negative exp: before 1970, so past", "hs", hs_payload(r#"{"sub":"alice","exp":-1}"#), Err("TOKEN_EXPIRED", "expired")),
        ("exp null: missing", "hs", hs_payload(r#"{"sub":"alice","exp":null}"#), Err("AUTH_FAILED", "missing_exp")),
        ("HS256 token with a kid at a secret hub: the secret has none", "hs", hmac_token(Algorithm::HS256, SECRET.as_bytes(), r#"{"alg":"HS256","kid":"zz"}"#, &body), Err("AUTH_FAILED", "unknown_kid")),
        ("exp is a string", "hs", hs_payload(&format!(r#"{{"sub":"alice","exp":"{exp}"}}"#)), Err("AUTH_FAILED", "claims")),
        ("fractional exp", "hs", hs_payload(&format!(r#"{{"sub":"alice","exp":{exp}.5}}"#)), Sub("alice")),
        ("missing sub: the unnamed subject", "hs", hs_payload(&format!(r#"{{"exp":{exp}}}"#)), Sub("")),
        ("roles not strings", "hs", hs_payload(&format!(r#"{{"sub":"a","exp":{exp},"roles":[1]}}"#)), Err("AUTH_FAILED", "claims")),
        ("payload not JSON", "hs", hmac_token(Algorithm::HS256, SECRET.as_bytes(), r#"{"alg":"HS256"}"#, "not json"), Err("AUTH_FAILED", "claims")),
        ("nbf in the future", "hs", hs_payload(&format!(r#"{{"sub":"a","exp":{exp},"nbf":{}}}"#, NOW_S + 60)), Err("AUTH_FAILED", "not_yet_valid")),
        ("nbf within leeway", "hs", hs_payload(&format!(r#"{{"sub":"a","exp":{exp},"nbf":{}}}"#, NOW_S + 4)), Sub("a")),
        ("wrong secret", "hs", mint_hs256("another-secret", &valid).unwrap(), Err("AUTH_FAILED", "signature")),
        ("expired and wrong secret: signature first", "hs", mint_hs256("another-secret", &claims("alice", -3600)).unwrap(), Err("AUTH_FAILED", "signature")),
        ("HS384 with the right secret", "hs", hmac_token(Algorithm::HS384, SECRET.as_bytes(), r#"{"alg":"HS384"}"#, &body), Err("AUTH_FAILED", "algorithm")),
        ("RS256 token at an HS hub", "hs", rs1.clone(), Err("AUTH_FAILED", "algorithm")),
        ("crit header", "hs", hmac_token(Algorithm::HS256, SECRET.as_bytes(), r#"{"alg":"HS256","crit":["ext"],"ext":1}"#, &body), Err("AUTH_FAILED", "crit")),
        // --- alg none, garbage ---
        ("alg none, empty signature", "hs", format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&body)), Err("AUTH_FAILED", "malformed")),
        ("alg None", "hs", raw_token(r#"{"alg":"None"}"#, &body, b""), Err("AUTH_FAILED", "malformed")),
        ("alg none at a PEM hub", "rsa1", raw_token(r#"{"alg":"none"}"#, &body, b""), Err("AUTH_FAILED", "malformed")),
        ("alg none at a JWKS hub", "jwks", raw_token(r#"{"alg":"none","kid":"a"}"#, &body, b""), Err("AUTH_FAILED", "malformed")),
        ("empty token", "hs", String::new(), Err("AUTH_REQUIRED", "required")),
        ("not a JWT", "hs", "hello".into(), Err("AUTH_FAILED", "malformed")),
        ("three empty segments", "hs", "..".into(), Err("AUTH_FAILED", "malformed")),
        ("bad base64", "hs", "a.b.c".into(), Err("AUTH_FAILED", "malformed")),
        ("header not JSON", "hs", raw_token("nope", "{}", b"x"), Err("AUTH_FAILED", "malformed")),
        ("too large", "hs", "a".repeat(MAX_TOKEN_LEN + 1), Err("AUTH_FAILED", "too_large")),
        // --- PEM public keys ---
        ("valid RS256", "rsa1", rs1.clone(), Sub("alice")),
        ("valid RS256, PKCS#1 public key file", "rsa1_pkcs1", rs1.clone(), Sub("alice")),
        ("RS256 token with a kid at a PEM hub: the key has none", "rsa1", rs1_kid_a.clone(), Err("AUTH_FAILED", "unknown_kid")),
        ("RS256 signed by another key", "rsa1", mint_with("rsa2", None, &valid), Err("AUTH_FAILED", "signature")),
        ("RS256 expired", "rsa1", mint_with("rsa1", None, &claims("alice", -60)), Err("TOKEN_EXPIRED", "expired")),
        ("RS256 tampered payload", "rsa1", tampered, Err("AUTH_FAILED", "signature")),
        ("HS/RS confusion: HS256 keyed with the public PEM", "rsa1", mint_hs256(&key_text("rsa1.pub"), &valid).unwrap(), Err("AUTH_FAILED", "algorithm")),
        ("HS/RS confusion, PKCS#1 PEM", "rsa1_pkcs1", mint_hs256(&key_text("rsa1.pkcs1.pub"), &valid).unwrap(), Err("AUTH_FAILED", "algorithm")),
        ("HS/EC confusion", "ec1", mint_hs256(&key_text("ec1.pub"), &valid).unwrap(), Err("AUTH_FAILED", "algorithm")),
        ("PS256 header at an RS256 hub", "rsa1", raw_token(r#"{"alg":"PS256"}"#, &body, b"sig"), Err("AUTH_FAILED", "algorithm")),
        ("valid ES256", "ec1", mint_with("ec1", None, &valid), Sub("alice")),
        ("ES256 signed by another key", "ec1", mint_with("ec2", None, &valid), Err("AUTH_FAILED", "signature")),
        ("ES256 token at an RS256 hub", "rsa1", mint_with("ec1", None, &valid), Err("AUTH_FAILED", "algorithm")),
        ("RS256 token at an ES256 hub", "ec1", rs1.clone(), Err("AUTH_FAILED", "algorithm")),
        ("valid ES384", "ec384", mint_with("ec384", None, &valid), Sub("alice")),
        ("ES256 token at an ES384 hub", "ec384", mint_with("ec1", None, &valid), Err("AUTH_FAILED", "algorithm")),
        ("valid EdDSA", "ed1", mint_with("ed1", None, &valid), Sub("alice")),
        // --- JWKS ---
        ("JWKS kid a (RS256)", "jwks", rs1_kid_a.clone(), Sub("alice")),
        ("JWKS kid b (ES256)", "jwks", ec1_kid_b.clone(), Sub("alice")),
        ("JWKS unknown kid", "jwks", mint_with("rsa1", Some("zzz"), &valid), Err("AUTH_FAILED", "unknown_kid")),
        ("JWKS no kid, several keys", "jwks", rs1.clone(), Err("AUTH_FAILED", "missing_kid")),
        ("JWKS kid a, signed by another RSA key", "jwks", mint_with("rsa2", Some("a"), &valid), Err("AUTH_FAILED", "signature")),
        ("JWKS kid b (EC) on an RS256 token", "jwks", mint_with("rsa1", Some("b"), &valid), Err("AUTH_FAILED", "algorithm")),
        ("JWKS HS256 token naming an RSA kid", "jwks", hmac_token(Algorithm::HS256, b"anything", r#"{"alg":"HS256","kid":"a"}"#, &body), Err("AUTH_FAILED", "algorithm")),
        ("JWKS expired", "jwks", mint_with("ec1", Some("b"), &claims("alice", -60)), Err("TOKEN_EXPIRED", "expired")),
    ];

    let mut failures = Vec::new();
    for (name, verifier, token, want) in &rows {
        let got = v.get(verifier).verify(token, NOW_MS);
        let ok = match (want, &got) {
            (Sub(sub), Ok(p)) => p.sub == *sub,
            (Err(code, label), Result::Err(e)) => e.code() == *code && e.reason_label() == *label,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn claims_become_the_principal() {
    let v = Verifier::new(KeySource::HsSecret(SECRET.into())).unwrap();
    let mut c = claims("ci-bot", 60);
    c.roles = Some(vec![
        "reporter".into(),
        "superuser".into(),
        "operator".into(),
    ]);
    c.namespaces = Some(vec!["ci-*".into(), "nightly".into()]);
    let p = v.verify(&hs(&c), NOW_MS).unwrap();
    assert_eq!(p.sub, "ci-bot");
    assert_eq!(p.roles, vec![Role::Reporter, Role::Operator]);
    assert_eq!(p.namespaces, vec!["ci-*".to_owned(), "nightly".to_owned()]);
    assert_eq!(p.expires_at, Some((NOW_S + 60) * 1000));
    assert!(!p.anonymous && !p.is_admin());
    assert!(p.allows(Action::Publish, "ci-main"));
    assert!(p.allows(Action::Cancel, "nightly"));
    assert!(!p.allows(Action::Publish, "default"));
    assert!(!p.is_expired(NOW_MS + 64_999));
    assert!(p.is_expired(NOW_MS + 65_000));

    // Defaults: viewer of "default".
    let p = v.verify(&hs(&claims("someone", 60)), NOW_MS).unwrap();
    assert_eq!(p.roles, vec![Role::Viewer]);
    assert_eq!(p.namespaces, vec!["default".to_owned()]);
    assert!(p.allows(Action::View, "default"));
    assert!(!p.allows(Action::View, "other"));

    // Only unknown roles: authenticated, but allowed nothing.
    let mut c = claims("ghost", 60);
    c.roles = Some(vec!["root".into()]);
    c.namespaces = Some(vec!["*".into()]);
    let p: Principal = v.verify(&hs(&c), NOW_MS).unwrap();
    assert!(p.roles.is_empty());
    for action in [Action::View, Action::Publish, Action::Cancel] {
        assert!(!p.allows(action, "default"));
    }
}

#[test]
fn error_codes_and_labels() {
    assert_eq!(AuthError::Required.code(), "AUTH_REQUIRED");
    assert_eq!(AuthError::Expired.code(), "TOKEN_EXPIRED");
    assert_eq!(AuthError::Failed("whatever".into()).code(), "AUTH_FAILED");
    assert_eq!(
        AuthError::Failed("whatever".into()).reason_label(),
        "invalid"
    );
    assert_eq!(AuthError::Expired.to_string(), "token expired");
}

#[test]
fn minted_tokens_round_trip_with_kid() {
    let c = claims("x", 60);
    let token = mint_with("ec1", Some("b"), &c);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("b"));
    assert!(matches!(
        hub_auth::mint_hs256("", &c),
        Result::Err(hub_auth::ConfigError::EmptySecret)
    ));
    let err = hub_auth::mint_with_private_key(&key("rsa1.pub"), None, &c).unwrap_err();
    assert!(err.to_string().contains("rsa1.pub"), "{err}");
}
