//! Who a request is: token from the `Authorization` header or `?token=`,
//! verified by `hub-auth`; browser origin checks.
//!
//! Tokens are never logged.

use axum::http::{header, HeaderMap};
use hub_auth::{Action, AuthError, Principal, Verifier};
use hub_proto::{ErrorCode, ProtoError};

/// The hub's authentication mode.
pub enum Authn {
    /// No key configured: everyone is admin.
    Open,
    /// Tokens required (or anonymous read when allowed).
    Jwt {
        /// The key(s).
        verifier: Verifier,
        /// Tokenless reads act as a viewer of every namespace.
        anonymous_read: bool,
    },
}

impl Authn {
    /// Authenticates a token, if any. `None` with anonymous read allowed
    /// gives the anonymous reader.
    pub fn authenticate(&self, token: Option<&str>, now_ms: u64) -> Result<Principal, AuthError> {
        match self {
            Authn::Open => Ok(Principal::open_admin()),
            Authn::Jwt {
                verifier,
                anonymous_read,
            } => match token {
                Some(t) if *anonymous_read => Ok(verifier.verify(t, now_ms)?.with_anonymous_read()),
                Some(t) => verifier.verify(t, now_ms),
                None if *anonymous_read => Ok(Principal::anonymous_reader()),
                None => Err(AuthError::Required),
            },
        }
    }

    /// Verifies a replacement token (`refresh`).
    pub fn refresh(&self, token: &str, now_ms: u64) -> Result<Principal, AuthError> {
        match self {
            Authn::Open => Ok(Principal::open_admin()),
            Authn::Jwt { .. } => self.authenticate(Some(token), now_ms),
        }
    }

    /// Re-reads key files (SIGHUP).
    pub fn reload(&self) {
        if let Authn::Jwt { verifier, .. } = self {
            if let Err(e) = verifier.reload() {
                tracing::error!(error = %e, "key reload failed; keeping the old keys");
            } else {
                tracing::info!("keys reloaded");
            }
        }
    }
}

/// The contract's error for an authentication failure.
pub fn auth_error(e: &AuthError) -> ProtoError {
    let code = match e {
        AuthError::Required => ErrorCode::AuthRequired,
        AuthError::Expired => ErrorCode::TokenExpired,
        AuthError::Failed(_) => ErrorCode::AuthFailed,
    };
    let message = match e {
        AuthError::Required => "a token is required".to_string(),
        AuthError::Expired => "the token has expired".to_string(),
        AuthError::Failed(why) => format!("the token was refused: {why}"),
    };
    ProtoError::new(code, message)
}

/// The error that closes a live connection (4001) whose token is past its
/// `exp` by more than the clock-skew leeway.
pub fn token_expired_error() -> ProtoError {
    ProtoError::new(
        ErrorCode::TokenExpired,
        "the token has expired; connect again with a new one",
    )
}

/// Checks that `who` may do `action` in `namespace`.
pub fn authorize(who: &Principal, action: Action, namespace: &str) -> Result<(), ProtoError> {
    if who.allows(action, namespace) {
        return Ok(());
    }
    if who.anonymous {
        return Err(ProtoError::new(
            ErrorCode::AuthRequired,
            "a token is required for this action",
        ));
    }
    Err(ProtoError::new(
        ErrorCode::Forbidden,
        format!("the token does not allow this action in namespace `{namespace}`"),
    ))
}

/// The bearer token of a request: `Authorization: Bearer` first, then `?token=`.
pub fn token_of<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110 11.1).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(query_token.filter(|t| !t.is_empty()))
}

/// Whether a browser request's `Origin` may connect: absent (non-browser),
/// the hub's own origin, or listed. Origins compare without case and with
/// the scheme's default port (`:80`, `:443`) written or left out alike;
/// `allowed` is already in that spelling ([`normalize_origin`], done once
/// by [`crate::Config::origins`]).
pub fn origin_allowed(headers: &HeaderMap, tls: bool, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = normalize_origin(origin);
    if allowed.iter().any(|a| a == "*" || *a == origin) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    normalize_origin(&format!("{scheme}://{host}")) == origin
}

/// An origin in one spelling: lower case, without a lone trailing `/`
/// (`https://a.example/`, as a URL's root is often copied, is
/// `https://a.example`; more slashes are a path, which
/// `--allowed-origins` refuses), no default port.
pub fn normalize_origin(origin: &str) -> String {
    let o = origin.trim();
    let o = o.strip_suffix('/').unwrap_or(o).to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if o.starts_with(scheme) {
            if let Some(short) = o.strip_suffix(port) {
                return short.to_owned();
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        m
    }

    #[test]
    fn origins() {
        assert!(origin_allowed(&h(None, "a:1"), false, &[]));
        assert!(origin_allowed(&h(Some("http://a:1"), "a:1"), false, &[]));
        assert!(!origin_allowed(&h(Some("https://a:1"), "a:1"), false, &[]));
        assert!(!origin_allowed(
            &h(Some("http://evil:1"), "a:1"),
            false,
            &[]
        ));
        assert!(origin_allowed(
            &h(Some("http://evil:1"), "a:1"),
            false,
            &["http://evil:1".into()]
        ));
        assert!(origin_allowed(&h(Some("http://a"), "a:80"), false, &[]));
        assert!(origin_allowed(&h(Some("http://a:80"), "a"), false, &[]));
        assert!(origin_allowed(&h(Some("https://A:443/"), "a"), true, &[]));
        assert!(!origin_allowed(&h(Some("http://a:443"), "a"), false, &[]));
        assert!(origin_allowed(
            &h(Some("https://app.example.com:443"), "hub:1"),
            false,
            &["https://app.example.com".into()]
        ));
        assert!(origin_allowed(
            &h(Some("https://app.example.com"), "hub:1"),
            false,
            &[normalize_origin("https://App.Example.com:443/")]
        ));
    }

    #[test]
    fn tokens() {
        let mut m = HeaderMap::new();
        assert_eq!(token_of(&m, Some("q")), Some("q"));
        m.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(token_of(&m, Some("q")), Some("abc"));
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            m.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{scheme} xyz")).unwrap(),
            );
            assert_eq!(token_of(&m, None), Some("xyz"), "{scheme}");
        }
        m.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(token_of(&m, None), None);
    }
}
