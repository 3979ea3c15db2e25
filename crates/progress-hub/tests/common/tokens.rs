//! Tokens for the tests that run the hub with `--jwt-secret`.

use super::*;
use hub_auth::{mint_hs256, Claims};

/// The HS256 secret those hubs are started with.
pub const SECRET: &str = "test-secret-0123456789-abcdef";

/// Now, in seconds (JWT `exp` is in seconds).
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token valid for an hour with these roles and namespace globs.
pub fn token(sub: &str, roles: &[&str], namespaces: &[&str]) -> String {
    let mut c = Claims::new(sub, now_s() + 3600);
    c.roles = Some(roles.iter().map(|r| r.to_string()).collect());
    c.namespaces = Some(namespaces.iter().map(|n| n.to_string()).collect());
    mint_hs256(SECRET, &c).unwrap()
}

/// A WebSocket authenticated with `tok` (as the `?token=` query parameter).
pub async fn ws_as(h: &Hub, tok: &str) -> Ws {
    Ws::connect(&format!("{}?token={tok}", h.ws_url())).await
}
