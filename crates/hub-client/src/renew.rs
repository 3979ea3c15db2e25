//! Renewing the token of a live connection: when to ask the token
//! provider again and send `refresh`, so that a connection outlives its
//! token without a disconnect.
//!
//! The client reads the token's `exp` claim without verifying it (the hub
//! verifies) and renews a fifth of the remaining lifetime before it (at
//! least 1 s, at most 60 s before). A token that is not a JWT, or has no
//! `exp`, is never renewed in place; a new one is still fetched on every
//! reconnect. Pure: the current time is an argument.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The claims of a JWT, read without verifying it (the hub verifies);
/// `None` when the token is not a JWT with a JSON payload.
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim (seconds since the Unix epoch) of a JWT, if it has one.
pub fn token_exp(token: &str) -> Option<u64> {
    let claims = unverified_claims(token)?;
    let exp = claims.get("exp")?;
    exp.as_u64().or_else(|| {
        exp.as_f64()
            .filter(|e| e.is_finite() && *e >= 0.0)
            .map(|e| e as u64)
    })
}

/// How long from `now_unix_ms` until a token expiring at `exp_s` should be
/// renewed: a fifth of what is left, between 1 s and 60 s before `exp`
/// (at once when less than that is left).
pub fn renew_in_ms(exp_s: u64, now_unix_ms: u64) -> u64 {
    let left = exp_s.saturating_mul(1000).saturating_sub(now_unix_ms);
    let margin = (left / 5).clamp(1_000, 60_000);
    left.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_exp_and_refuses_what_is_not_a_jwt_with_exp() {
        assert_eq!(
            token_exp(&jwt(r#"{"sub":"a","exp":1700000000}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(
            token_exp(&jwt(r#"{"exp":1700000000.5}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(token_exp(&jwt(r#"{"sub":"a"}"#)), None);
        assert_eq!(token_exp(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(token_exp(&jwt(r#"{"exp":-5}"#)), None);
        assert_eq!(token_exp("opaque-api-key"), None);
        assert_eq!(token_exp("a.!!!.c"), None);
        assert_eq!(token_exp(&jwt("not json")), None);
    }

    #[test]
    fn renews_a_fifth_before_within_bounds() {
        let now = 1_000_000_000_000;
        let exp = |left_ms: u64| (now + left_ms) / 1000;
        assert_eq!(renew_in_ms(exp(3_600_000), now), 3_540_000);
        assert_eq!(renew_in_ms(exp(100_000), now), 80_000);
        assert_eq!(renew_in_ms(exp(3_000), now), 2_000);
        assert_eq!(renew_in_ms(exp(500), now), 0);
        assert_eq!(renew_in_ms(0, now), 0, "already expired: at once");
    }

    proptest! {
        #[test]
        fn always_before_expiry_and_never_too_early(left in 0u64..10_000_000_000, now in 0u64..4_000_000_000_000) {
            let exp_s = (now + left) / 1000;
            let left = (exp_s * 1000).saturating_sub(now);
            let r = renew_in_ms(exp_s, now);
            prop_assert!(r <= left);
            prop_assert!(left - r <= 60_000 || r == 0);
            prop_assert!(left - r >= 1_000.min(left));
        }
    }
}
