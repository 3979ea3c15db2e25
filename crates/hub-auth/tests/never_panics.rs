//! `verify` never panics, whatever it is given: arbitrary strings, token-shaped
//! strings, and correctly signed tokens with arbitrary claims and clocks.

mod common;

use std::sync::OnceLock;

use common::*;
use hub_auth::{AuthError, KeySource, Verifier};
use jsonwebtoken::Algorithm;
use proptest::prelude::*;

struct Fixture {
    verifiers: Vec<Verifier>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let jwks_path = dir.path().join("jwks.json");
        std::fs::write(
            &jwks_path,
            jwks(&[
                jwk("rsa1", Algorithm::RS256, "a"),
                jwk("ec1", Algorithm::ES256, "b"),
            ]),
        )
        .unwrap();
        Fixture {
            verifiers: vec![
                Verifier::new(KeySource::HsSecret(SECRET.into())).unwrap(),
                Verifier::new(KeySource::PublicKeyPem(key("rsa1.pub"))).unwrap(),
                Verifier::new(KeySource::PublicKeyPem(key("ec1.pub"))).unwrap(),
                Verifier::new(KeySource::JwksFile(jwks_path)).unwrap(),
            ],
            _dir: dir,
        }
    })
}

fn verify_all(token: &str, now_ms: u64) {
    for v in &fixture().verifiers {
        match v.verify(token, now_ms) {
            Ok(_) | Err(AuthError::Expired) => {}
            Err(AuthError::Required) => assert!(token.is_empty()),
            // Reasons are fixed strings: never an echo of the token.
            Err(AuthError::Failed(reason)) => assert!(reason.len() < 64, "{reason}"),
        }
    }
}

/// A JSON value of bounded depth, as text.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("sub".to_owned()),
                        Just("exp".to_owned()),
                        Just("nbf".to_owned()),
                        Just("roles".to_owned()),
                        Just("namespaces".to_owned()),
                        ".{0,4}".prop_map(String::from),
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    });
    value.prop_map(|v| v.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings(token in ".{0,300}", now_ms in any::<u64>()) {
        verify_all(&token, now_ms);
    }

    #[test]
    fn token_shaped_strings(
        a in "[A-Za-z0-9_=+/-]{0,80}",
        b in "[A-Za-z0-9_=+/-]{0,80}",
        c in "[A-Za-z0-9_=+/-]{0,80}",
        extra in prop::option::of("[A-Za-z0-9_.-]{0,20}"),
    ) {
        let mut token = format!("{a}.{b}.{c}");
        if let Some(extra) = extra {
            token.push('.');
            token.push_str(&extra);
        }
        verify_all(&token, NOW_MS);
    }

    #[test]
    fn arbitrary_headers_and_payloads(header in json_text(), payload in json_text(), sig in prop::collection::vec(any::<u8>(), 0..80)) {
        verify_all(&raw_token(&header, &payload, &sig), NOW_MS);
    }

    #[test]
    fn signed_tokens_with_arbitrary_claims(payload in json_text(), now_ms in any::<u64>()) {
        let token = hmac_token(Algorithm::HS256, SECRET.as_bytes(), r#"{"alg":"HS256"}"#, &payload);
        verify_all(&token, now_ms);
    }

    #[test]
    fn signed_tokens_with_arbitrary_times(exp in any::<u64>(), nbf in prop::option::of(any::<u64>()), now_ms in any::<u64>()) {
        let payload = match nbf {
            Some(nbf) => format!(r#"{{"sub":"s","exp":{exp},"nbf":{nbf}}}"#),
            None => format!(r#"{{"sub":"s","exp":{exp}}}"#),
        };
        let token = hmac_token(Algorithm::HS256, SECRET.as_bytes(), r#"{"alg":"HS256"}"#, &payload);
        let got = fixture().verifiers[0].verify(&token, now_ms);
        // Beyond 2^40 s, f64 milliseconds are not exact; only "no panic" is checked there.
        if exp < 1 << 40 {
            let expired = now_ms >= exp * 1000 + 5000;
            prop_assert_eq!(matches!(got, Err(AuthError::Expired)), expired);
        }
    }
}
