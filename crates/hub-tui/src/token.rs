//! What the token allows, read from its claims without verifying it (the hub
//! verifies; this only decides whether to offer `c` cancel). A token that
//! cannot be read is given the benefit of the doubt: the hub's `FORBIDDEN`
//! answer then turns the offer off.

use hub_client::renew::unverified_claims;
use serde_json::Value;

/// Whether `token` may cancel operations in `namespace`: no token (an open
/// hub lets everyone) or a token whose `roles` include `operator` or
/// `admin` and whose `namespaces` globs (default `["default"]`) match.
pub fn allows_cancel(token: Option<&str>, namespace: &str) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(claims) = unverified_claims(token) else {
        return true;
    };
    let roles: Vec<&str> = match claims.get("roles") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec!["viewer"],
    };
    if !roles.iter().any(|r| matches!(*r, "operator" | "admin")) {
        return false;
    }
    match claims.get("namespaces") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|g| glob(g, namespace)),
        _ => namespace == "default",
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    crate::filter::glob_match(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.as_bytes())
        )
    }

    #[test]
    fn roles_and_namespaces_decide() {
        assert!(allows_cancel(None, "default"));
        assert!(!allows_cancel(Some(&jwt(r#"{"sub":"a"}"#)), "default"));
        assert!(allows_cancel(
            Some(&jwt(r#"{"roles":["operator"]}"#)),
            "default"
        ));
        assert!(!allows_cancel(
            Some(&jwt(r#"{"roles":["operator"]}"#)),
            "ci"
        ));
        assert!(allows_cancel(
            Some(&jwt(r#"{"roles":["admin"],"namespaces":["c*"]}"#)),
            "ci"
        ));
        assert!(!allows_cancel(
            Some(&jwt(r#"{"roles":["reporter","viewer"]}"#)),
            "default"
        ));
        assert!(allows_cancel(Some("not-a-jwt"), "default"));
    }
}
