//! The authentication contract against the real binary: refused tokens at
//! the door (401 with the right code), roles and namespace globs on every
//! action (FORBIDDEN, connection kept), any reporter of a namespace on any
//! of its operations, anonymous read,
//! refresh, and browser origins.

mod common;
use common::tokens::*;
use common::*;
use hub_auth::{mint_hs256, Claims, EXP_LEEWAY_MS};

async fn authed_hub(extra: &[&str]) -> Hub {
    hub()
        .args(["--jwt-secret", SECRET])
        .args(extra.iter().copied())
        .start()
        .await
}

#[tokio::test]
async fn refused_tokens_get_401_with_the_code() {
    let h = authed_hub(&[]).await;
    let expired = {
        let c = Claims::new("old", now_s() - 60);
        mint_hs256(SECRET, &c).unwrap()
    };
    let wrong = {
        let c = Claims::new("eve", now_s() + 60);
        mint_hs256("another-secret-0987654321", &c).unwrap()
    };
    // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", {
        use std::fmt::Write;
        let payload = format!(
            r#"{{"sub":"eve","exp":{},"roles":["admin"]}}"#,
            now_s() + 60
        );
        let mut out = String::new();
        // base64url without padding
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for chunk in payload.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                let _ = out.write_char(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    });
    // Signed with the right secret, but naming a key id: the hub's one
    // secret has none, so the kid is unknown.
    let with_kid = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("zz".into());
        let c = Claims::new("eve", now_s() + 60);
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        jsonwebtoken::encode(&header, &c, &key).unwrap()
    };
    let cases = [
        (None, "AUTH_REQUIRED"),
        (Some(with_kid.as_str()), "AUTH_FAILED"),
        (Some(expired.as_str()), "TOKEN_EXPIRED"),
        (Some(wrong.as_str()), "AUTH_FAILED"),
        (Some(none.as_str()), "AUTH_FAILED"),
        (Some("garbage"), "AUTH_FAILED"),
    ];
    for (tok, code) in cases {
        let url = match tok {
            Some(t) => format!("{}?token={t}", h.ws_url()),
            None => h.ws_url(),
        };
        let (status, body) = Ws::connect_with(&url, &[]).await.err().expect("refused");
        assert_eq!(status, 401, "{code}: {body}");
        assert!(body.contains(code), "{code}: {body}");
        let http = match tok {
            Some(t) => reqwest::Client::new()
                .get(format!("{}/api/v1/namespaces/default/operations", h.http()))
                .bearer_auth(t),
            None => reqwest::Client::new()
                .get(format!("{}/api/v1/namespaces/default/operations", h.http())),
        };
        let r = http.send().await.unwrap();
        assert_eq!(r.status(), 401);
        // RFC 6750's challenge: the scheme, and whether the token was bad.
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert_eq!(
            challenge.contains(r#"error="invalid_token""#),
            tok.is_some(),
            "{code}: {challenge}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code);
    }
    // Health and readiness need no token.
    assert_eq!(get_json(&format!("{}/health", h.http())).await.0, 200);
    // A header token works like the query token.
    let ok = Ws::connect_with(
        &h.ws_url(),
        &[(
            "authorization",
            &format!("Bearer {}", token("a", &["viewer"], &["default"])),
        )],
    )
    .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn roles_and_namespaces_are_enforced_per_message() {
    let h = authed_hub(&[]).await;
    let mut viewer = ws_as(&h, &token("vic", &["viewer"], &["default"])).await;
    let e = publish(&mut viewer, started("v1", "default"), 1).await;
    assert_eq!(e["code"], "FORBIDDEN");
    assert_eq!(e["data"]["operation_id"], "v1");
    let e = viewer
        .request(json!({"type": "subscribe", "namespace": "secret"}), 2)
        .await;
    assert_eq!(e["code"], "FORBIDDEN");
    let ok = viewer
        .request(json!({"type": "subscribe", "namespace": "default"}), 3)
        .await;
    assert_eq!(ok["type"], "subscribed", "the connection stayed open");

    let mut alice = ws_as(&h, &token("alice", &["reporter"], &["team-*", "default"])).await;
    assert_eq!(
        publish(&mut alice, started("a1", "team-x"), 1).await["type"],
        "ack"
    );
    assert_eq!(
        publish(&mut alice, started("a2", "default"), 2).await["type"],
        "ack"
    );
    assert_eq!(
        publish(&mut alice, started("a3", "other"), 3).await["code"],
        "FORBIDDEN"
    );
    let e = alice
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "a2"}),
            4,
        )
        .await;
    assert_eq!(e["code"], "FORBIDDEN", "a reporter may not cancel");

    // Another reporter whose roles and namespaces allow it may report on
    // alice's operation (the contract's rule; a token refreshed to another
    // subject keeps reporting on its own operations).
    let mut bob = ws_as(&h, &token("bob", &["reporter"], &["default"])).await;
    let ack = publish(&mut bob, progress("a2", "default", 2, 50.0), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // An operator may cancel; the producer learns who asked.
    let mut op = ws_as(&h, &token("olga", &["operator"], &["default"])).await;
    let ok = op
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "a2"}),
            1,
        )
        .await;
    assert_eq!(ok["type"], "ok");
    // The connection that last reported on it (bob's) learns who asked.
    let note = bob.next_of("cancel_requested", DEADLINE).await;
    assert_eq!(note["requested_by"], "olga");
    // Nothing changed by the refusals: a2 holds alice's start and bob's
    // update, nothing else.
    let (_, detail) = get_json_auth(
        &format!("{}/api/v1/namespaces/default/operations/a2", h.http()),
        &token("adm", &["admin"], &["*"]),
    )
    .await;
    assert_eq!(detail["events"].as_array().unwrap().len(), 2, "{detail}");
}

/// Only `exp` is required: a token without `sub` is accepted as an unnamed
/// subject (as an empty `sub` always was), with the roles it carries.
#[tokio::test]
async fn a_token_without_sub_is_an_unnamed_subject() {
    let h = authed_hub(&[]).await;
    let mut c = Claims::new("", now_s() + 3600);
    c.roles = Some(vec!["admin".into()]);
    let tok = mint_hs256(SECRET, &c).unwrap();
    let mut p = ws_as(&h, &tok).await;
    let ack = publish(&mut p, started("nameless", "default"), 1).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mut other = ws_as(&h, &tok).await;
    let ok = other
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "nameless"}),
            2,
        )
        .await;
    assert_eq!(ok["type"], "ok");
    let note = p.next_of("cancel_requested", DEADLINE).await;
    assert_eq!(note["requested_by"], "");
    let (s, _) = get_json_auth(
        &format!("{}/api/v1/namespaces/default/operations/nameless", h.http()),
        &tok,
    )
    .await;
    assert_eq!(s, 200);
}

async fn get_json_auth(url: &str, tok: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A token with no usable role (`roles: []`, or only unknown names, which
/// grant nothing) still connects, but every action is `FORBIDDEN`, the
/// hub-wide status included; any viewing role may read the status.
#[tokio::test]
async fn a_token_without_a_usable_role_may_not_read_the_status() {
    let h = authed_hub(&[]).await;
    let status = format!("{}/api/v1/status", h.http());
    let list = format!("{}/api/v1/namespaces/default/operations", h.http());
    for roles in [&[][..], &["superuser"], &["Viewer", "ADMIN"]] {
        let tok = token("nobody", roles, &["*"]);
        for url in [&status, &list] {
            let (s, v) = get_json_auth(url, &tok).await;
            assert_eq!(
                (s, v["error"]["code"].clone()),
                (403, json!("FORBIDDEN")),
                "{roles:?} {url}: {v}"
            );
        }
        let mut ws = ws_as(&h, &tok).await;
        let e = ws
            .request(json!({"type": "subscribe", "namespace": "default"}), 1)
            .await;
        assert_eq!(e["code"], "FORBIDDEN", "{roles:?}: {e}");
    }
    for role in ["viewer", "operator", "reporter", "admin"] {
        let (s, v) = get_json_auth(&status, &token("x", &[role], &["default"])).await;
        assert_eq!(
            (s, v["type"].clone()),
            (200, json!("system_status")),
            "{role}"
        );
    }
    // With anonymous read, tokenless requests read it as before, and a
    // token never allows less than no token.
    let h = authed_hub(&["--allow-anonymous-read"]).await;
    let status = format!("{}/api/v1/status", h.http());
    assert_eq!(get_json(&status).await.0, 200);
    assert_eq!(get_json_auth(&status, &token("n", &[], &[])).await.0, 200);
}

#[tokio::test]
async fn anonymous_read_allows_viewing_only() {
    let h = authed_hub(&["--allow-anonymous-read"]).await;
    let mut anon = Ws::connect(&h.ws_url()).await;
    let s = anon
        .request(json!({"type": "subscribe", "namespace": "anything"}), 1)
        .await;
    assert_eq!(s["type"], "subscribed");
    let e = publish(&mut anon, started("x", "anything"), 2).await;
    assert_eq!(e["code"], "AUTH_REQUIRED");
    assert_eq!(
        get_json(&format!(
            "{}/api/v1/namespaces/anything/operations",
            h.http()
        ))
        .await
        .0,
        200
    );
    let (s, e) = post_json(
        &format!(
            "{}/api/v1/namespaces/anything/operations/x/events",
            h.http()
        ),
        &json!({"type": "operation_started", "name": "n"}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (401, json!("AUTH_REQUIRED"))
    );
    // A refused cancel names its operation, over HTTP as over WebSocket.
    let (s, e) = post_json(
        &format!(
            "{}/api/v1/namespaces/anything/operations/x/cancel",
            h.http()
        ),
        &json!({}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (401, json!("AUTH_REQUIRED"))
    );
    assert_eq!(e["error"]["data"]["operation_id"], "x", "{e}");
}

/// With anonymous reads allowed, a token never allows less than no token:
/// a reporter of `default` may still view `team-x`, but not publish there.
#[tokio::test]
async fn with_anonymous_read_a_token_views_every_namespace_too() {
    let h = authed_hub(&["--allow-anonymous-read"]).await;
    let tok = token("rita", &["reporter"], &["default"]);
    let url = format!("{}/api/v1/namespaces/team-x/operations", h.http());
    assert_eq!(get_json_auth(&url, &tok).await.0, 200);
    let mut c = ws_as(&h, &tok).await;
    let s = c
        .request(json!({"type": "subscribe", "namespace": "team-x"}), 1)
        .await;
    assert_eq!(s["type"], "subscribed", "{s}");
    let e = publish(&mut c, started("x", "team-x"), 2).await;
    assert_eq!(e["code"], "FORBIDDEN", "{e}");
    assert_eq!(
        publish(&mut c, started("y", "default"), 3).await["type"],
        "ack"
    );
}

/// A refreshed token applies to what the connection already holds: a
/// subscription to a namespace the new token may not view ends with an
/// `error FORBIDDEN` naming it (no more events arrive from it), while the
/// others go on.
#[tokio::test]
async fn refresh_ends_subscriptions_the_new_token_does_not_allow() {
    let h = authed_hub(&[]).await;
    let mut c = ws_as(&h, &token("vic", &["viewer"], &["default", "team-x"])).await;
    for (i, ns) in ["default", "team-x"].into_iter().enumerate() {
        let s = c
            .request(json!({"type": "subscribe", "namespace": ns}), i as u64 + 1)
            .await;
        assert_eq!(s["type"], "subscribed", "{s}");
    }
    let ok = c
        .request(
            json!({"type": "refresh", "token": token("vic", &["viewer"], &["default"])}),
            3,
        )
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let e = c.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "FORBIDDEN", "{e}");
    assert_eq!(e["data"]["namespace"], "team-x", "{e}");
    // A publisher in both namespaces: only `default` still reaches the viewer.
    let mut p = ws_as(&h, &token("pat", &["reporter"], &["*"])).await;
    publish(&mut p, started("gone", "team-x"), 1).await;
    publish(&mut p, started("kept", "default"), 2).await;
    let ev = c.next_of("operation_started", DEADLINE).await;
    assert_eq!(ev["namespace"], "default", "{ev}");
    // A wider token gives the namespace back (subscribing again works).
    c.request(
        json!({"type": "refresh", "token": token("vic", &["viewer"], &["*"])}),
        4,
    )
    .await;
    let s = c
        .request(json!({"type": "subscribe", "namespace": "team-x"}), 5)
        .await;
    assert_eq!(s["type"], "subscribed", "{s}");
}

#[tokio::test]
async fn refresh_replaces_the_token_and_a_bad_one_closes_4001() {
    let h = authed_hub(&[]).await;
    let mut c = ws_as(&h, &token("rita", &["viewer"], &["default"])).await;
    let ok = c
        .request(
            json!({"type": "refresh", "token": token("rita", &["reporter"], &["default"])}),
            1,
        )
        .await;
    assert_eq!(ok["type"], "ok");
    assert_eq!(
        publish(&mut c, started("r1", "default"), 2).await["type"],
        "ack",
        "new roles apply"
    );
    c.send(json!({"type": "refresh", "id": 3, "token": "not-a-token"}))
        .await;
    let e = c.next_of("error", DEADLINE).await;
    assert_eq!(e["code"], "AUTH_FAILED");
    assert_eq!(c.closed(DEADLINE).await, Some(4001));
}

/// A token of `sub` (a reporter of `default`) with this `exp` (seconds).
fn expiring(sub: &str, exp_s: u64) -> String {
    let mut c = Claims::new(sub, exp_s);
    c.roles = Some(vec!["reporter".into()]);
    mint_hs256(SECRET, &c).unwrap()
}

/// A token the hub still accepts (its `exp` is 3 s past, within the 5 s
/// clock-skew leeway) and the moment (ms) it stops accepting it: 1-2 s
/// from now.
fn lapsing(sub: &str) -> (String, u64) {
    let exp = now_s() - 3;
    (expiring(sub, exp), exp * 1000 + EXP_LEEWAY_MS)
}

/// Now, in ms since the Unix epoch (the hub runs on the same clock).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// How late past `exp` + leeway the hub may close: its sweep runs every
/// second, plus scheduling slack.
const CLOSE_SLACK_MS: u64 = 1_500;

/// Checks that a `TOKEN_EXPIRED` error was sent no earlier than
/// `deadline` (its server timestamp) and received no later than
/// [`CLOSE_SLACK_MS`] after it.
fn assert_expired_on_time(e: &Value, deadline: u64) {
    let received = now_ms();
    assert_eq!(e["code"], "TOKEN_EXPIRED", "{e}");
    let sent = e["timestamp"].as_u64().expect("timestamp");
    assert!(
        sent >= deadline,
        "closed {} ms before exp + 5 s",
        deadline - sent
    );
    assert!(
        received <= deadline + CLOSE_SLACK_MS,
        "closed {} ms after exp + 5 s",
        received - deadline
    );
}

/// A live WebSocket is served past its token's `exp` within the 5 s
/// leeway, then gets `TOKEN_EXPIRED` and close 4001 within about a second:
/// no grace beyond the leeway.
#[tokio::test]
async fn a_live_websocket_is_closed_once_its_token_is_past_the_leeway() {
    let h = authed_hub(&["--heartbeat-interval", "200ms"]).await;
    let (tok, deadline) = lapsing("lapse");
    let mut ws = ws_as(&h, &tok).await;
    let sub = ws
        .request(json!({"type": "subscribe", "namespace": "default"}), 1)
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    let e = ws.next_of("error", Duration::from_secs(5)).await;
    assert_expired_on_time(&e, deadline);
    assert_eq!(ws.closed(DEADLINE).await, Some(4001));
    let last_heartbeat = ws
        .seen
        .iter()
        .filter(|m| m["type"] == "heartbeat")
        .filter_map(|m| m["timestamp"].as_u64())
        .max()
        .expect("heartbeats until the deadline");
    assert!(
        last_heartbeat + 1_000 >= deadline,
        "served up to the end of the leeway"
    );
}

/// A message that arrives once the token is past `exp` + leeway is not
/// served: `TOKEN_EXPIRED`, then close 4001 (whether the message or the
/// hub's sweep noticed first).
#[tokio::test]
async fn a_message_after_the_leeway_gets_token_expired_and_4001() {
    let h = authed_hub(&[]).await;
    let (tok, deadline) = lapsing("late");
    let mut ws = ws_as(&h, &tok).await;
    assert_eq!(
        publish(&mut ws, started("early", "default"), 1).await["type"],
        "ack",
        "within the leeway the token works"
    );
    // Wait for the clock (not for the hub) to pass the deadline.
    let wait = deadline.saturating_sub(now_ms()) + 20;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    ws.send(json!({"type": "ping", "id": 2})).await;
    let e = ws.next(DEADLINE).await.expect("an error before the close");
    assert_eq!(e["type"], "error", "no pong after the leeway: {e}");
    assert_expired_on_time(&e, deadline);
    assert!(e["id"] == 2 || e["id"].is_null(), "{e}");
    assert_eq!(ws.closed(DEADLINE).await, Some(4001));
}

/// `refresh` with a new token moves the connection's deadline: of two
/// connections whose tokens lapse together, the one that refreshed stays.
#[tokio::test]
async fn refresh_moves_the_expiry_deadline() {
    let h = authed_hub(&[]).await;
    let (tok, deadline) = lapsing("pair");
    let mut lapsed = ws_as(&h, &tok).await;
    let mut renewed = ws_as(&h, &tok).await;
    let ok = renewed
        .request(
            json!({"type": "refresh", "token": token("pair", &["viewer"], &["default"])}),
            1,
        )
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let e = lapsed.next_of("error", Duration::from_secs(5)).await;
    assert_expired_on_time(&e, deadline);
    assert_eq!(lapsed.closed(DEADLINE).await, Some(4001));
    // The sweep that closed the first one passed over the second.
    let pong = renewed.request(json!({"type": "ping"}), 2).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}

/// An SSE stream whose token is past `exp` + leeway gets the
/// `TOKEN_EXPIRED` error as its last event, then the stream ends.
#[tokio::test]
async fn an_sse_stream_ends_with_token_expired_past_the_leeway() {
    let h = authed_hub(&["--heartbeat-interval", "200ms"]).await;
    let (tok, deadline) = lapsing("sse");
    let url = format!("{}/api/v1/stream?namespace=default", h.http());
    let mut sse = Sse::connect(&url, Some(&tok)).await.expect("accepted");
    assert_eq!(
        sse.next_of("subscribed", DEADLINE).await.data["namespace"],
        "default"
    );
    let e = sse.next_of("error", Duration::from_secs(5)).await;
    assert_expired_on_time(&e.data, deadline);
    sse.ended(Duration::from_secs(2)).await;
    assert_eq!(sse.seen.last(), Some(&e), "the error is the last event");
}

#[tokio::test]
async fn foreign_browser_origins_get_403() {
    let h = hub()
        .args(["--allowed-origins", "https://app.example.com"])
        .start()
        .await;
    let own = format!("http://{}", h.addr);
    assert!(Ws::connect_with(&h.ws_url(), &[("origin", own.as_str())])
        .await
        .is_ok());
    assert!(
        Ws::connect_with(&h.ws_url(), &[("origin", "https://app.example.com")])
            .await
            .is_ok()
    );
    let (status, _) = Ws::connect_with(&h.ws_url(), &[("origin", "https://evil.example.com")])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 403);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/stream?namespace=default", h.http()))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nor may a page elsewhere report or cancel on this open hub with a
    // POST that needs no preflight (a form, text/plain); curl sends no
    // Origin and the hub's own page sends its own.
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default/operations/x", h.http());
    let post = |path: &str, origin: &str, body: &str| {
        http.post(format!("{base}{path}"))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
    };
    let start = r#"{"type":"operation_started","name":"forged"}"#;
    let r = post("/events", "https://evil.example.com", start)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        (
            e["error"]["data"]["reason"].clone(),
            e["error"]["data"]["operation_id"].clone()
        ),
        (json!("origin"), json!("x"))
    );
    assert_eq!(
        post("/cancel", "https://evil.example.com", "")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get_json(&base).await.0,
        404,
        "the forged start changed nothing"
    );
    assert_eq!(
        post("/events", own.as_str(), start).await.unwrap().status(),
        200
    );
    assert_eq!(
        post("/cancel", "https://app.example.com", "")
            .await
            .unwrap()
            .status(),
        202
    );
}

/// CORS follows the same origin rule: a page on an allowed origin may read
/// the HTTP API and the SSE stream (the answer names its origin, never `*`)
/// and send a preflighted `POST` with a token and a JSON body; a foreign
/// origin gets no CORS headers, so its page cannot read the answers.
#[tokio::test]
async fn allowed_origins_get_cors_answers_and_others_do_not() {
    let h = authed_hub(&["--allowed-origins", "https://app.example.com"]).await;
    let http = reqwest::Client::new();
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let pre = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/namespaces/default/operations/x/cancel", h.http()),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(allow(&pre).as_deref(), Some("https://app.example.com"));
    let methods = pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );

    let tok = token("vic", &["viewer"], &["default"]);
    let list = format!("{}/api/v1/namespaces/default/operations", h.http());
    let r = http
        .get(&list)
        .bearer_auth(&tok)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(allow(&r).as_deref(), Some("https://app.example.com"));
    let vary = r.headers()["vary"].to_str().unwrap().to_ascii_lowercase();
    assert!(
        vary.contains("origin"),
        "caches keep answers apart per origin: {vary}"
    );
    let sse = http
        .get(format!(
            "{}/api/v1/stream?namespace=default&token={tok}",
            h.http()
        ))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(allow(&sse).as_deref(), Some("https://app.example.com"));
    drop(sse);

    let r = http
        .get(&list)
        .bearer_auth(&tok)
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(allow(&r), None, "no CORS for a foreign origin");
}

/// A token with these claims (any JSON), signed with the hubs' secret.
fn raw_token(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// `GET url` with an optional `Authorization` header: status and error code.
async fn get_code(url: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["error"]["code"].clone())
}

/// What SECURITY.md says of claim shapes and of which token counts.
#[tokio::test]
async fn claim_shapes_and_token_sources_are_as_documented() {
    let h = authed_hub(&[]).await;
    let exp = now_s() + 600;
    let list = |ns: &str| format!("{}/api/v1/namespaces/{ns}/operations", h.http());
    let ok = (200, Value::Null);
    let failed = (401, json!("AUTH_FAILED"));
    let forbidden = (403, json!("FORBIDDEN"));
    // (claims, answer for `default`, answer for `other`)
    let cases = [
        (
            json!({"exp": exp, "roles": null, "namespaces": null}),
            &ok,
            &forbidden,
        ),
        (json!({"exp": exp, "roles": "admin"}), &failed, &failed),
        (json!({"exp": exp, "roles": [1]}), &failed, &failed),
        (json!({"exp": exp, "namespaces": "other"}), &failed, &failed),
        (
            json!({"exp": exp, "roles": ["Viewer"], "namespaces": ["*"]}),
            &forbidden,
            &forbidden,
        ),
        (
            json!({"exp": exp, "namespaces": []}),
            &forbidden,
            &forbidden,
        ),
        (
            json!({"exp": exp, "namespaces": ["other"], "aud": "elsewhere", "iss": "someone"}),
            &forbidden,
            &ok,
        ),
        (json!({"exp": exp, "nbf": now_s() + 2}), &ok, &forbidden),
        (json!({"exp": exp, "nbf": now_s() + 60}), &failed, &failed),
    ];
    for (claims, default, other) in cases {
        let bearer = format!("Bearer {}", raw_token(claims.clone()));
        assert_eq!(
            &get_code(&list("default"), Some(&bearer)).await,
            default,
            "{claims}"
        );
        assert_eq!(
            &get_code(&list("other"), Some(&bearer)).await,
            other,
            "{claims}"
        );
    }
    // Which token counts: the Bearer header over ?token=, the last ?token=.
    let good = token("v", &["viewer"], &["default"]);
    let url = list("default");
    let bearer = format!("Bearer {good}");
    assert_eq!(
        get_code(&format!("{url}?token=garbage"), Some(&bearer)).await,
        ok
    );
    assert_eq!(
        get_code(&format!("{url}?token=garbage&token={good}"), None).await,
        ok
    );
    assert_eq!(
        get_code(&format!("{url}?token={good}&token=garbage"), None).await,
        failed
    );
    // Another scheme, or Bearer with nothing after it, is no token.
    let required = (401, json!("AUTH_REQUIRED"));
    for header in [
        format!("Basic {good}"),
        "Bearer".to_owned(),
        "Bearer   ".to_owned(),
    ] {
        assert_eq!(get_code(&url, Some(&header)).await, required, "{header}");
        assert_eq!(
            get_code(&format!("{url}?token={good}"), Some(&header)).await,
            ok,
            "{header} and ?token="
        );
    }
    assert_eq!(get_code(&url, Some(&format!("bEaReR {good}"))).await, ok);
    let h = authed_hub(&["--allow-anonymous-read"]).await;
    let url = format!("{}/api/v1/namespaces/default/operations", h.http());
    assert_eq!(get_code(&url, Some(&format!("Basic {good}"))).await, ok);
}

/// A secret from `PROGRESS_HUB_JWT_SECRET` is the text as written: `007`
/// was read as the number 7 and became the secret "7", so tokens signed
/// with the operator's secret were refused and ones signed with "7" taken.
#[tokio::test]
async fn a_secret_from_the_environment_is_taken_as_written() {
    let h = hub().env("PROGRESS_HUB_JWT_SECRET", "007").start().await;
    let url = format!("{}/api/v1/namespaces/default/operations", h.http());
    let status_with = |secret: &'static str| {
        let url = url.clone();
        async move {
            let t = mint_hs256(secret, &Claims::new("u", now_s() + 60)).unwrap();
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status_with("007").await, 200);
    assert_eq!(status_with("7").await, 401);
}
