//! The token's claims: [`Claims`] as minted, and how verified claims become a
//! [`Principal`].
//!
//! Defaults (from the protocol): `roles` absent (or `null`) means `["viewer"]`;
//! `namespaces` absent (or `null`) means `["default"]`. Unknown role strings are
//! ignored, so a token whose roles are all unknown has no role and may do
//! nothing (it still authenticates). An explicit empty list means no role / no
//! namespace. `exp` is seconds since the Unix epoch (JWT NumericDate; a
//! fractional value is accepted); `sub` absent is the unnamed subject `""`.

use serde::{Deserialize, Serialize};

use crate::error::{reason, AuthError};
use crate::principal::{past_exp, Principal, Role, EXP_LEEWAY_MS};

/// Claims of a hub token, for [`mint_hs256`](crate::mint_hs256) and
/// [`mint_with_private_key`](crate::mint_with_private_key).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// Who the token is for; empty: a token without `sub` (an unnamed
    /// subject).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// Expiry, in SECONDS since the Unix epoch.
    pub exp: u64,
    /// Role names (`viewer`, `operator`, `reporter`, `admin`); absent means `["viewer"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Namespace globs; absent means `["default"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Issued at, in seconds (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// Claims for `sub` expiring at `exp` (seconds), with default roles and namespaces.
    pub fn new(sub: impl Into<String>, exp: u64) -> Self {
        Claims {
            sub: sub.into(),
            exp,
            roles: None,
            namespaces: None,
            iat: None,
        }
    }
}

/// What the verifier reads from a token; lenient where the JWT spec is
/// (fractional NumericDate), strict on types.
#[derive(Deserialize)]
pub(crate) struct TokenClaims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    roles: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
}

/// Seconds (NumericDate) to milliseconds, `None` if not a number of
/// seconds. A time before 1970 is a time in the past (0): a negative `exp`
/// has expired, a negative `nbf` is long reached.
fn seconds_to_ms(secs: f64) -> Option<u64> {
    // `as` saturates, so a huge exp becomes u64::MAX (never expires) rather
    // than wrapping around into the past, and a negative one becomes 0.
    secs.is_finite().then_some((secs * 1000.0) as u64)
}

impl TokenClaims {
    /// Checks `exp` and `nbf` at `now_ms` and builds the principal.
    pub(crate) fn into_principal(self, now_ms: u64) -> Result<Principal, AuthError> {
        let exp = self
            .exp
            .ok_or_else(|| AuthError::failed(reason::MISSING_EXP))?;
        let exp_ms = seconds_to_ms(exp).ok_or_else(|| AuthError::failed(reason::CLAIMS))?;
        if past_exp(exp_ms, now_ms) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = self.nbf {
            let nbf_ms = seconds_to_ms(nbf).ok_or_else(|| AuthError::failed(reason::CLAIMS))?;
            if now_ms.saturating_add(EXP_LEEWAY_MS) < nbf_ms {
                return Err(AuthError::failed(reason::NOT_YET_VALID));
            }
        }
        // Only `exp` is required: a token without `sub` is an unnamed
        // subject, `""`, as an empty `sub` is (Centrifugo's anonymous user).
        let sub = self.sub.unwrap_or_default();
        let roles = match self.roles {
            None => vec![Role::Viewer],
            Some(names) => {
                let mut roles = Vec::with_capacity(names.len());
                for role in names.iter().filter_map(|n| Role::parse(n)) {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
                roles
            }
        };
        let namespaces = self
            .namespaces
            .unwrap_or_else(|| vec!["default".to_owned()]);
        Ok(Principal {
            sub,
            roles,
            namespaces,
            expires_at: Some(exp_ms),
            anonymous: false,
            views_everything: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> TokenClaims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_and_unknown_roles() {
        let p = claims(serde_json::json!({"sub": "a", "exp": 100}))
            .into_principal(0)
            .unwrap();
        assert_eq!(p.roles, vec![Role::Viewer]);
        assert_eq!(p.namespaces, vec!["default".to_owned()]);
        assert_eq!(p.expires_at, Some(100_000));

        let p = claims(serde_json::json!({"sub": "a", "exp": 100, "roles": ["root", "Admin"]}))
            .into_principal(0)
            .unwrap();
        assert!(p.roles.is_empty());

        let p = claims(serde_json::json!({"sub": "a", "exp": 100, "roles": ["root", "reporter"], "namespaces": []}))
            .into_principal(0)
            .unwrap();
        assert_eq!(p.roles, vec![Role::Reporter]);
        assert!(p.namespaces.is_empty());
    }

    #[test]
    fn time_checks() {
        let c = |j| claims(j).into_principal(100_000);
        assert_eq!(
            c(serde_json::json!({"sub": "a", "exp": 95})).unwrap_err(),
            AuthError::Expired
        );
        assert!(c(serde_json::json!({"sub": "a", "exp": 95.001})).is_ok());
        assert!(c(serde_json::json!({"sub": "a", "exp": 1e300})).is_ok());
        assert_eq!(
            c(serde_json::json!({"sub": "a", "exp": -1})).unwrap_err(),
            AuthError::Expired,
            "a NumericDate before 1970 is in the past"
        );
        assert_eq!(
            c(serde_json::json!({"sub": "a", "exp": -0.5})).unwrap_err(),
            AuthError::Expired
        );
        assert!(c(serde_json::json!({"sub": "a", "exp": 200, "nbf": -3})).is_ok());
        assert!(c(serde_json::json!({"sub": "a", "exp": 200, "nbf": 105})).is_ok());
        assert_eq!(
            c(serde_json::json!({"sub": "a", "exp": 200, "nbf": 105.001}))
                .unwrap_err()
                .reason_label(),
            "not_yet_valid"
        );
        assert_eq!(
            c(serde_json::json!({"sub": "a"}))
                .unwrap_err()
                .reason_label(),
            "missing_exp"
        );
        assert_eq!(
            c(serde_json::json!({"exp": 200})).unwrap().sub,
            "",
            "no sub: the unnamed subject"
        );
    }
}
