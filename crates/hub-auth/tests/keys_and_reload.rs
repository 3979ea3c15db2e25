//! Loading keys (errors name the file) and rotating them with `reload`.

mod common;

use std::path::Path;

use common::*;
use hub_auth::{ConfigError, KeySource, Verifier};
use jsonwebtoken::Algorithm;

fn load_err(source: KeySource) -> String {
    Verifier::new(source).unwrap_err().to_string()
}

fn reason(v: &Verifier, token: &str) -> &'static str {
    match v.verify(token, NOW_MS) {
        Ok(_) => "ok",
        Err(e) => e.reason_label(),
    }
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap();
}

#[test]
fn pem_reload_keeps_old_key_on_bad_file_and_picks_up_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.pub");
    write(&path, key_text("rsa1.pub"));
    let v = Verifier::new(KeySource::PublicKeyPem(path.clone())).unwrap();
    let t1 = mint_with("rsa1", None, &claims("a", 60));
    let t2 = mint_with("rsa2", None, &claims("a", 60));
    assert_eq!(reason(&v, &t1), "ok");
    assert_eq!(reason(&v, &t2), "signature");

    write(
        &path,
        "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
    );
    let err = v.reload().unwrap_err();
    assert!(err.to_string().contains("hub.pub"), "{err}");
    assert_eq!(reason(&v, &t1), "ok", "old key kept after a bad reload");

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(v.reload(), Err(ConfigError::Read { .. })));
    assert_eq!(reason(&v, &t1), "ok", "old key kept when the file is gone");

    // Rotation to an EC key changes the algorithm too.
    write(&path, key_text("ec1.pub"));
    v.reload().unwrap();
    assert_eq!(reason(&v, &t1), "algorithm");
    assert_eq!(reason(&v, &mint_with("ec1", None, &claims("a", 60))), "ok");

    write(&path, key_text("rsa2.pub"));
    v.reload().unwrap();
    assert_eq!(reason(&v, &t2), "ok");
    assert_eq!(reason(&v, &t1), "signature");
    assert_eq!(v.key_summary(), vec!["RS256".to_owned()]);
}

#[test]
fn jwks_reload_keeps_old_keys_on_bad_file_and_picks_up_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    write(
        &path,
        jwks(&[
            jwk("rsa1", Algorithm::RS256, "a"),
            jwk("ec1", Algorithm::ES256, "b"),
        ]),
    );
    let v = Verifier::new(KeySource::JwksFile(path.clone())).unwrap();
    assert_eq!(
        v.key_summary(),
        vec!["kid \"a\": RS256".to_owned(), "kid \"b\": ES256".to_owned()]
    );
    let ta = mint_with("rsa1", Some("a"), &claims("a", 60));
    let tb = mint_with("ec1", Some("b"), &claims("b", 60));
    let tc = mint_with("rsa2", Some("c"), &claims("c", 60));
    assert_eq!(reason(&v, &ta), "ok");
    assert_eq!(reason(&v, &tb), "ok");
    assert_eq!(reason(&v, &tc), "unknown_kid");

    for bad in ["{not json", r#"{"keys": []}"#, r#"{"keys": "x"}"#] {
        write(&path, bad);
        let err = v.reload().unwrap_err();
        assert!(err.to_string().contains("jwks.json"), "{err}");
        assert_eq!(reason(&v, &ta), "ok", "old keys kept after {bad:?}");
    }

    // Rotate: a retired, b kept, c added.
    write(
        &path,
        jwks(&[
            jwk("ec1", Algorithm::ES256, "b"),
            jwk("rsa2", Algorithm::RS256, "c"),
        ]),
    );
    v.reload().unwrap();
    assert_eq!(reason(&v, &ta), "unknown_kid");
    assert_eq!(reason(&v, &tb), "ok");
    assert_eq!(reason(&v, &tc), "ok");
}

#[test]
fn jwks_single_key_accepts_tokens_without_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let mut only = jwk("ed1", Algorithm::EdDSA, "x");
    only.as_object_mut().unwrap().remove("kid");
    write(&path, jwks(&[only]));
    let v = Verifier::new(KeySource::JwksFile(path)).unwrap();
    assert_eq!(reason(&v, &mint_with("ed1", None, &claims("a", 60))), "ok");
    assert_eq!(
        reason(&v, &mint_with("ed1", Some("x"), &claims("a", 60))),
        "unknown_kid"
    );
}

#[test]
fn jwks_uses_the_alg_the_jwk_states_and_skips_non_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let mut enc = jwk("rsa2", Algorithm::RS256, "enc");
    enc["use"] = "enc".into();
    let mut oaep = jwk("rsa2", Algorithm::RS256, "oaep");
    oaep["alg"] = "RSA-OAEP".into();
    let p521 =
        serde_json::json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"});
    let other = serde_json::json!({"kty": "AKP", "kid": "pq", "pub": "AA"});
    let secret = serde_json::json!({"kty": "oct", "kid": "hs", "alg": "HS512", "k": b64(SECRET)});
    write(
        &path,
        jwks(&[
            jwk("rsa1", Algorithm::PS256, "ps"),
            enc,
            oaep,
            p521,
            other,
            secret,
        ]),
    );
    let v = Verifier::new(KeySource::JwksFile(path)).unwrap();
    assert_eq!(
        v.key_summary(),
        vec![
            "kid \"ps\": PS256".to_owned(),
            "kid \"hs\": HS512".to_owned()
        ]
    );
    let exp = NOW_S + 60;
    let payload = format!(r#"{{"sub":"a","exp":{exp}}}"#);
    let hs512 = hmac_token(
        Algorithm::HS512,
        SECRET.as_bytes(),
        r#"{"alg":"HS512","kid":"hs"}"#,
        &payload,
    );
    assert_eq!(reason(&v, &hs512), "ok");
    let hs256 = hmac_token(
        Algorithm::HS256,
        SECRET.as_bytes(),
        r#"{"alg":"HS256","kid":"hs"}"#,
        &payload,
    );
    assert_eq!(reason(&v, &hs256), "algorithm");
    // An RS256 token for the PS256 key is refused: the JWK's alg is the only one.
    assert_eq!(
        reason(&v, &mint_with("rsa1", Some("ps"), &claims("a", 60))),
        "algorithm"
    );
    assert_eq!(
        reason(&v, &mint_with("rsa2", Some("enc"), &claims("a", 60))),
        "unknown_kid"
    );
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = load_err(KeySource::PublicKeyPem(missing));
    assert!(
        err.contains("nope.pem") && err.contains("cannot read"),
        "{err}"
    );

    let err = load_err(KeySource::PublicKeyPem(key("rsa1.key")));
    assert!(
        err.contains("rsa1.key") && err.contains("private key"),
        "{err}"
    );

    let err = load_err(KeySource::PublicKeyPem(key("rsa1024.pub")));
    assert!(
        err.contains("rsa1024.pub") && err.contains("1024 bits"),
        "{err}"
    );

    let err = load_err(KeySource::PublicKeyPem(key("README.md")));
    assert!(err.contains("README.md"), "{err}");

    assert!(matches!(
        Verifier::new(KeySource::HsSecret(String::new())),
        Err(ConfigError::EmptySecret)
    ));

    let jwks_err = |name: &str, doc: String| {
        let path = dir.path().join(name);
        write(&path, doc);
        let err = load_err(KeySource::JwksFile(path));
        assert!(err.contains(name), "{err}");
        err
    };
    let a = jwk("rsa1", Algorithm::RS256, "a");
    let err = jwks_err("dup.json", jwks(&[a.clone(), a.clone()]));
    assert!(err.contains("duplicate kid"), "{err}");
    let mut wrong_alg = a.clone();
    wrong_alg["alg"] = "ES256".into();
    let err = jwks_err("mismatch.json", jwks(&[wrong_alg]));
    assert!(err.contains("does not fit"), "{err}");
    let mut enc_only = a.clone();
    enc_only["use"] = "enc".into();
    let err = jwks_err("enc.json", jwks(&[enc_only]));
    assert!(err.contains("no usable signing key (1 skipped)"), "{err}");
    let mut no_kid = jwk("ec1", Algorithm::ES256, "b");
    no_kid.as_object_mut().unwrap().remove("kid");
    let err = jwks_err("nokid.json", jwks(&[a.clone(), no_kid]));
    assert!(err.contains("kid"), "{err}");
    let mut bad_n = a.clone();
    bad_n["n"] = "!!!".into();
    jwks_err("bad-n.json", jwks(&[bad_n]));
}

#[test]
fn reload_is_a_no_op_for_a_secret() {
    let v = Verifier::new(KeySource::HsSecret(SECRET.into())).unwrap();
    v.reload().unwrap();
    assert_eq!(v.key_summary(), vec!["HS256".to_owned()]);
}

#[test]
fn reload_while_verifying_from_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let both = jwks(&[
        jwk("ec1", Algorithm::ES256, "b"),
        jwk("ec2", Algorithm::ES256, "c"),
    ]);
    write(&path, &both);
    let v = std::sync::Arc::new(Verifier::new(KeySource::JwksFile(path.clone())).unwrap());
    let tb = mint_with("ec1", Some("b"), &claims("a", 60));
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (v, tb) = (v.clone(), tb.clone());
            s.spawn(move || {
                for _ in 0..200 {
                    assert_eq!(reason(&v, &tb), "ok");
                }
            });
        }
        for _ in 0..20 {
            write(&path, &both);
            v.reload().unwrap();
        }
    });
}
