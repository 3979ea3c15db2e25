//! The security suite (issue 6), against the real binary: the auth matrix
//! and bad input, each refusal asserting the exact error code AND that no
//! state changed (the namespace's event listing and the operation are as
//! before); the rate and resource limits with their errors; the broadcast
//! cap; `progress-hub token`; key rotation by file change.

mod common;
use common::tokens::*;
use common::*;
use hub_auth::{mint_hs256, mint_with_private_key, Claims};
use std::path::PathBuf;

fn admin() -> String {
    token("root", &["admin"], &["*"])
}

fn b64url(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token with `alg: none` and no signature, claiming to be an admin.
fn alg_none() -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = format!(
        r#"{{"sub":"eve","exp":{},"roles":["admin"],"namespaces":["*"]}}"#,
        now_s() + 600
    );
    format!("{header}.{}.", b64url(payload.as_bytes()))
}

fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../hub-auth/tests/keys")
        .join(name)
}

async fn http_get(url: &str, tok: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = tok {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn http_post(url: &str, tok: Option<&str>, body: &str) -> (u16, Value, Option<String>) {
    let mut r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = tok {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        r.status().as_u16(),
        r.json().await.unwrap_or(Value::Null),
        retry,
    )
}

/// What "no state changed" compares: the namespace's event listing and the
/// operation's detail (state and events).
async fn state_of(h: &Hub, tok: Option<&str>, ns: &str, op: &str) -> (Value, Value) {
    let (s, events) = http_get(
        &format!(
            "{}/api/v1/namespaces/{ns}/events?after=0&limit=1000",
            h.http()
        ),
        tok,
    )
    .await;
    assert_eq!(s, 200, "{events}");
    let (_, detail) = http_get(
        &format!("{}/api/v1/namespaces/{ns}/operations/{op}", h.http()),
        tok,
    )
    .await;
    (events, detail)
}

// ---------------------------------------------------------------- auth matrix

#[tokio::test]
async fn auth_matrix_refusals_have_their_code_and_change_nothing() {
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    let alice_tok = token("alice", &["reporter"], &["default", "team-*"]);
    let mut alice = ws_as(&h, &alice_tok).await;
    assert_eq!(
        publish(&mut alice, started("a1", "default"), 1).await["type"],
        "ack"
    );
    assert_eq!(
        publish(&mut alice, started("t1", "team-x"), 2).await["type"],
        "ack"
    );
    let adm = admin();
    let before = state_of(&h, Some(&adm), "default", "a1").await;
    let before_team = state_of(&h, Some(&adm), "team-x", "t1").await;
    assert_eq!(before.0["last_offset"], 1);

    let viewer = token("vic", &["viewer"], &["default", "team-*"]);
    let bob = token("bob", &["reporter"], &["default"]);
    let operator_default = token("olga", &["operator"], &["default"]);
    let no_roles = token("nobody", &[], &["*"]);
    let wrong_ns = token("alice", &["admin"], &["other-*"]);
    // (what, token, message, expected code)
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "viewer publishes a start",
            &viewer,
            started("v1", "default"),
            "FORBIDDEN",
        ),
        (
            "viewer reports on an operation",
            &viewer,
            progress("a1", "default", 2, 50.0),
            "FORBIDDEN",
        ),
        (
            "viewer cancels",
            &viewer,
            json!({"type": "cancel", "namespace": "default", "operation_id": "a1"}),
            "FORBIDDEN",
        ),
        (
            "reporter cancels its own operation",
            &alice_tok,
            json!({"type": "cancel", "namespace": "default", "operation_id": "a1"}),
            "FORBIDDEN",
        ),
        (
            "reporter cancels someone else's",
            &bob,
            json!({"type": "cancel", "namespace": "default", "operation_id": "a1"}),
            "FORBIDDEN",
        ),
        (
            "publish outside the token's namespaces",
            &alice_tok,
            started("s1", "secret"),
            "FORBIDDEN",
        ),
        (
            "report outside the token's namespaces",
            &bob,
            progress("t1", "team-x", 2, 5.0),
            "FORBIDDEN",
        ),
        (
            "subscribe outside the token's namespaces",
            &bob,
            json!({"type": "subscribe", "namespace": "team-x"}),
            "FORBIDDEN",
        ),
        (
            "cancel outside the token's namespaces",
            &operator_default,
            json!({"type": "cancel", "namespace": "team-x", "operation_id": "t1"}),
            "FORBIDDEN",
        ),
        (
            "admin of other namespaces",
            &wrong_ns,
            progress("a1", "default", 2, 5.0),
            "FORBIDDEN",
        ),
        (
            "a token without roles publishes",
            &no_roles,
            started("n1", "default"),
            "FORBIDDEN",
        ),
        (
            "a token without roles subscribes",
            &no_roles,
            json!({"type": "subscribe", "namespace": "default"}),
            "FORBIDDEN",
        ),
        (
            "operator cancels an unknown operation",
            &operator_default,
            json!({"type": "cancel", "namespace": "default", "operation_id": "ghost"}),
            "UNKNOWN_OPERATION",
        ),
    ];
    for (i, (what, tok, msg, code)) in cases.into_iter().enumerate() {
        let mut ws = ws_as(&h, tok).await;
        let reply = ws.request(msg, 100 + i as u64).await;
        assert_eq!(reply["type"], "error", "{what}: {reply}");
        assert_eq!(reply["code"], code, "{what}: {reply}");
        // The connection stays open after a refusal.
        let pong = ws.request(json!({"type": "ping"}), 1).await;
        assert_eq!(pong["type"], "pong", "{what}: the connection stayed");
    }
    // The same refusals over HTTP.
    let url = |ns: &str, op: &str, what: &str| {
        format!("{}/api/v1/namespaces/{ns}/operations/{op}/{what}", h.http())
    };
    let http_cases = [
        (
            "viewer POSTs an event",
            viewer.clone(),
            url("default", "a1", "events"),
            r#"{"type":"progress_update","seq":2,"progress":9}"#,
            403,
            "FORBIDDEN",
        ),
        (
            "reporter POSTs a cancel",
            alice_tok.clone(),
            url("default", "a1", "cancel"),
            "",
            403,
            "FORBIDDEN",
        ),
        (
            "outside the globs",
            bob.clone(),
            url("team-x", "t1", "events"),
            r#"{"type":"progress_update","seq":2,"progress":9}"#,
            403,
            "FORBIDDEN",
        ),
    ];
    for (what, tok, url, body, status, code) in http_cases {
        let (s, v, _) = http_post(&url, Some(&tok), body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {v}"
        );
    }
    // Refused at the door: no token, expired, wrong signature, alg none, garbage.
    let expired = mint_hs256(SECRET, &Claims::new("old", now_s() - 60)).unwrap();
    let mut wrong_sig = Claims::new("eve", now_s() + 600);
    wrong_sig.roles = Some(vec!["admin".into()]);
    let wrong_sig = mint_hs256("not-the-hub-secret-0000000000", &wrong_sig).unwrap();
    let mut tampered = admin();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let door: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "AUTH_REQUIRED"),
        ("expired", Some(expired), "TOKEN_EXPIRED"),
        ("wrong signature", Some(wrong_sig), "AUTH_FAILED"),
        ("alg none", Some(alg_none()), "AUTH_FAILED"),
        ("tampered signature", Some(tampered), "AUTH_FAILED"),
        ("garbage", Some("a.b.c".into()), "AUTH_FAILED"),
    ];
    for (what, tok, code) in door {
        let url = match &tok {
            Some(t) => format!("{}?token={t}", h.ws_url()),
            None => h.ws_url(),
        };
        let (status, body) = Ws::connect_with(&url, &[]).await.err().expect(what);
        assert_eq!(status, 401, "{what}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{what}");
        let (s, v, _) = http_post(
            &url_events(&h, "default", "a1"),
            tok.as_deref(),
            r#"{"type":"progress_update","seq":2,"progress":99}"#,
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some(code)),
            "{what} over HTTP"
        );
        let r = reqwest::Client::new().get(format!("{}/api/v1/stream?namespace=default", h.http()));
        let r = match &tok {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        assert_eq!(r.send().await.unwrap().status(), 401, "{what} over SSE");
    }
    assert_eq!(
        state_of(&h, Some(&adm), "default", "a1").await,
        before,
        "nothing changed"
    );
    assert_eq!(
        state_of(&h, Some(&adm), "team-x", "t1").await,
        before_team,
        "nothing changed"
    );
}

fn url_events(h: &Hub, ns: &str, op: &str) -> String {
    format!("{}/api/v1/namespaces/{ns}/operations/{op}/events", h.http())
}

#[tokio::test]
async fn forged_requested_by_is_ignored() {
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    let mut alice = ws_as(&h, &token("alice", &["reporter"], &["default"])).await;
    assert_eq!(
        publish(&mut alice, started("job", "default"), 1).await["type"],
        "ack"
    );
    let mut olga = ws_as(&h, &token("olga", &["operator"], &["default"])).await;
    let ok = olga
        .request(
            json!({"type": "cancel", "namespace": "default", "operation_id": "job", "requested_by": "mallory", "sub": "mallory"}),
            1,
        )
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let note = alice.next_of("cancel_requested", DEADLINE).await;
    assert_eq!(
        note["requested_by"], "olga",
        "the token's subject, not the message's field"
    );
    // Over HTTP too.
    let (s, v, _) = http_post(
        &format!(
            "{}/api/v1/namespaces/default/operations/job/cancel?requested_by=mallory",
            h.http()
        ),
        Some(&token("otto", &["operator"], &["default"])),
        r#"{"requested_by":"mallory"}"#,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["operation"]["cancel_requested"], true);
}

#[tokio::test]
async fn hs_rs_confusion_is_refused() {
    let public = key_file("rsa1.pub");
    let h = hub()
        .args(["--jwt-public-key", public.to_str().unwrap()])
        .start()
        .await;
    let mut claims = Claims::new("eve", now_s() + 600);
    claims.roles = Some(vec!["admin".into()]);
    claims.namespaces = Some(vec!["*".into()]);
    // HS256 "signed" with the hub's public key as the HMAC secret.
    let pem = std::fs::read_to_string(&public).unwrap();
    let confused = mint_hs256(&pem, &claims).unwrap();
    let other_key = mint_with_private_key(&key_file("rsa2.key"), None, &claims).unwrap();
    let ec_key = mint_with_private_key(&key_file("ec1.key"), None, &claims).unwrap();
    for (what, tok) in [
        ("HS256 with the public key", confused),
        ("RS256 by another key", other_key),
        ("ES256 (not the key's algorithm)", ec_key),
        ("alg none", alg_none()),
    ] {
        let (status, body) = Ws::connect_with(&format!("{}?token={tok}", h.ws_url()), &[])
            .await
            .err()
            .expect(what);
        assert_eq!(status, 401, "{what}");
        assert!(body.contains("AUTH_FAILED"), "{what}: {body}");
    }
    let good = mint_with_private_key(&key_file("rsa1.key"), None, &claims).unwrap();
    let mut ws = ws_as(&h, &good).await;
    assert_eq!(
        publish(&mut ws, started("ok", "default"), 1).await["type"],
        "ack"
    );
}

// ------------------------------------------------------------------ bad input

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let h = hub().start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    assert_eq!(
        publish(&mut p, started("b1", "default"), 1).await["type"],
        "ack"
    );
    let before = state_of(&h, None, "default", "b1").await;
    let deep = format!(
        r#"{{"type":"progress_update","operation_id":"b1","seq":2,"progress":5,"details":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_obj = format!(
        r#"{{"type":"progress_update","operation_id":"b1","seq":2,"progress":5,"details":{}{}}}"#,
        r#"{"a":"#.repeat(200),
        "}".repeat(200)
    );
    let long = |n: usize| "x".repeat(n);
    let p2 = |extra: &str| {
        format!(r#"{{"type":"progress_update","operation_id":"b1","seq":2,"progress":5{extra}}}"#)
    };
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", r#"{"type":"progress_update","#.into()),
        ("not an object", "[1,2,3]".into()),
        ("a bare string", r#""operation_started""#.into()),
        ("empty", "".into()),
        ("no type", r#"{"operation_id":"b1","seq":2}"#.into()),
        ("unknown type", r#"{"type":"operation_exploded","operation_id":"b1","seq":2}"#.into()),
        ("type of the wrong type", r#"{"type":7}"#.into()),
        ("seq as a string", r#"{"type":"progress_update","operation_id":"b1","seq":"2","progress":5}"#.into()),
        ("negative seq", r#"{"type":"progress_update","operation_id":"b1","seq":-2,"progress":5}"#.into()),
        ("seq past u64", r#"{"type":"progress_update","operation_id":"b1","seq":18446744073709551616,"progress":5}"#.into()),
        ("fractional seq", r#"{"type":"progress_update","operation_id":"b1","seq":2.5,"progress":5}"#.into()),
        ("huge exponent", p2(r#","current":1e400"#).replace(r#""progress":5,"#, "")),
        ("progress out of range", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":100.0001}"#.into()),
        ("negative progress", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":-1}"#.into()),
        ("progress 1e308", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":1e308}"#.into()),
        ("progress \"NaN\"", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":"NaN"}"#.into()),
        ("progress \"Infinity\"", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":"Infinity"}"#.into()),
        ("progress NaN literal", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":NaN}"#.into()),
        ("progress \"50\"", r#"{"type":"progress_update","operation_id":"b1","seq":2,"progress":"50"}"#.into()),
        ("no progress nor current", r#"{"type":"progress_update","operation_id":"b1","seq":2}"#.into()),
        ("deeply nested arrays", deep),
        ("deeply nested objects", deep_obj),
        ("NUL in the operation id", r#"{"type":"operation_started","operation_id":"a\u0000b","seq":1,"name":"n"}"#.into()),
        ("newline in the operation id", r#"{"type":"operation_started","operation_id":"a\nb","seq":1,"name":"n"}"#.into()),
        ("escape in the operation id", r#"{"type":"operation_started","operation_id":"a\u001b[31m","seq":1,"name":"n"}"#.into()),
        ("space in the operation id", r#"{"type":"operation_started","operation_id":"a b","seq":1,"name":"n"}"#.into()),
        ("accent in the operation id", r#"{"type":"operation_started","operation_id":"café","seq":1,"name":"n"}"#.into()),
        ("right-to-left override in the id", "{\"type\":\"operation_started\",\"operation_id\":\"a\u{202e}b\",\"seq\":1,\"name\":\"n\"}".into()),
        ("emoji in the operation id", "{\"type\":\"operation_started\",\"operation_id\":\"job-\u{1f680}\",\"seq\":1,\"name\":\"n\"}".into()),
        ("fullwidth letters in the id", "{\"type\":\"operation_started\",\"operation_id\":\"\u{ff41}\u{ff42}\",\"seq\":1,\"name\":\"n\"}".into()),
        ("lone surrogate in a name", r#"{"type":"operation_started","operation_id":"u1","seq":1,"name":"\ud800"}"#.into()),
        ("empty operation id", r#"{"type":"operation_started","operation_id":"","seq":1,"name":"n"}"#.into()),
        ("operation id of 129 chars", format!(r#"{{"type":"operation_started","operation_id":"{}","seq":1,"name":"n"}}"#, long(129))),
        ("namespace of 129 chars", format!(r#"{{"type":"operation_started","namespace":"{}","operation_id":"z","seq":1,"name":"n"}}"#, long(129))),
        ("namespace with a slash", r#"{"type":"operation_started","namespace":"a/b","operation_id":"z","seq":1,"name":"n"}"#.into()),
        ("name of 257 chars", format!(r#"{{"type":"operation_started","operation_id":"z","seq":1,"name":"{}"}}"#, long(257))),
        ("empty name", r#"{"type":"operation_started","operation_id":"z","seq":1,"name":""}"#.into()),
        ("details not an object", p2(r#","details":[1]"#)),
        ("total zero", r#"{"type":"operation_started","operation_id":"z","seq":1,"name":"n","total":0}"#.into()),
        ("start with seq 2", r#"{"type":"operation_started","operation_id":"z","seq":2,"name":"n"}"#.into()),
        ("filter with 65 globs", format!(r#"{{"type":"subscribe","namespace":"default","filter":{{"operations":[{}]}}}}"#, vec!["\"a*\""; 65].join(","))),
        ("resume without an epoch", r#"{"type":"subscribe","namespace":"default","resume":{"offset":1}}"#.into()),
    ];
    let mut ws = Ws::connect(&h.ws_url()).await;
    for (i, (what, text)) in cases.iter().enumerate() {
        if i % 15 == 14 {
            // Stay under the abuse rule (20 rejections in 10 s).
            ws = Ws::connect(&h.ws_url()).await;
        }
        ws.send_text(text).await;
        let reply = ws.next_of("error", DEADLINE).await;
        assert_eq!(reply["code"], "BAD_MESSAGE", "{what}: {reply}");
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    let pong = ws.request(json!({"type": "ping"}), 7).await;
    assert_eq!(pong["type"], "pong", "the connection stayed");
    // Unknown fields are ignored, not refused.
    let pong = ws
        .request(
            json!({"type": "ping", "evil": {"__proto__": 1}, "extra": [1, 2]}),
            8,
        )
        .await;
    assert_eq!(pong["type"], "pong");
    // A number beyond an f64 (valid JSON all the same) and nesting past 64
    // levels are refused as answers to the requests they came in.
    for (id, text) in [
        (9, r#"{"type":"ping","id":9,"color":1e999}"#.to_owned()),
        (10, r#"{"type":"progress_update","id":10,"operation_id":"b1","seq":2,"progress":5,"details":{"x":-1e999}}"#.to_owned()),
        (11, format!(r#"{{"type":"progress_update","id":11,"operation_id":"b1","seq":2,"progress":5,"details":{}1{}}}"#, "[".repeat(63), "]".repeat(63))),
    ] {
        ws.send_text(&text).await;
        let e = ws.next_of("error", DEADLINE).await;
        assert_eq!((e["code"].as_str(), e["id"].as_u64()), (Some("BAD_MESSAGE"), Some(id)), "{e}");
        if id > 9 {
            assert_eq!(e["data"]["operation_id"], "b1", "{e}");
        }
    }
    // Binary frames.
    ws.send_raw(hub_testkit::Message::Binary(
        b"\x00\x01{\"type\":\"ping\"}".to_vec().into(),
    ))
    .await;
    assert_eq!(ws.next_of("error", DEADLINE).await["code"], "BAD_MESSAGE");
    // The same bodies over HTTP: 400 BAD_MESSAGE.
    for (what, text) in cases
        .iter()
        .filter(|(w, _)| !w.contains("filter") && !w.contains("resume"))
    {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let op = v["operation_id"].as_str().unwrap_or("b1");
        let op = if hub_proto::validate_operation_id(op).is_ok() {
            op
        } else {
            "b1"
        };
        let (s, body, _) = http_post(&url_events(&h, "default", op), None, text).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (400, Some("BAD_MESSAGE")),
            "{what} over HTTP: {body}"
        );
    }
    // Invalid UTF-8 in a text frame: close 1007.
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    raw.send_frame(1, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}")
        .await;
    let (_, code) = raw.read_until_close(DEADLINE).await;
    assert_eq!(code, Some(1007));
    // Too large: MESSAGE_TOO_LARGE, close 1009.
    let mut big = Ws::connect(&h.ws_url()).await;
    big.send_text(&p2(&format!(r#","message":"{}""#, long(70_000))))
        .await;
    assert_eq!(
        big.next_of("error", DEADLINE).await["code"],
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(big.closed(DEADLINE).await, Some(1009));
    assert_eq!(
        state_of(&h, None, "default", "b1").await,
        before,
        "nothing changed"
    );
    let (_, list) = http_get(
        &format!("{}/api/v1/namespaces/default/operations", h.http()),
        None,
    )
    .await;
    assert_eq!(
        list["operations"].as_array().unwrap().len(),
        1,
        "no operation was created"
    );
}

// ------------------------------------------------------------------- limits

#[tokio::test]
async fn handshakes_per_ip_get_429_with_retry_after() {
    let h = hub()
        .args([
            "--handshakes-per-ip-per-second",
            "3",
            "--rate-limit-exempt",
            "",
        ])
        .start()
        .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Ws::connect(&h.ws_url()).await);
    }
    let (status, body) = Ws::connect_with(&h.ws_url(), &[])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(body["error"]["data"]["reason"], "handshakes");
    assert!(body["error"]["data"]["retry_after_ms"].as_u64().unwrap() >= 1);
    // SSE counts as a handshake too, and the answer carries Retry-After.
    let r = reqwest::get(format!("{}/api/v1/stream?namespace=default", h.http()))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Existing connections are unaffected; plain HTTP is not a handshake.
    assert_eq!(
        open[0].request(json!({"type": "ping"}), 1).await["type"],
        "pong"
    );
    assert_eq!(get_json(&format!("{}/health", h.http())).await.0, 200);
    // The bucket refills.
    eventually("a handshake to be let in again", DEADLINE, || async {
        Ws::connect_with(&h.ws_url(), &[]).await.ok()
    })
    .await;
    let metrics = metrics_text(&h).await;
    assert!(
        metrics.contains(r#"progress_hub_rate_limited_total{limit="handshakes"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn loopback_is_exempt_from_per_ip_limits_by_default() {
    let h = hub()
        .args(["--handshakes-per-ip-per-second", "1"])
        .start()
        .await;
    for _ in 0..5 {
        Ws::connect(&h.ws_url()).await;
    }
}

#[tokio::test]
async fn messages_per_connection_are_rate_limited_and_the_connection_stays() {
    let h = hub()
        .args(["--max-messages-per-second", "5", "--rate-limit-exempt", ""])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    assert_eq!(
        publish(&mut p, started("r1", "default"), 1).await["type"],
        "ack"
    );
    for i in 0..4 {
        p.send(json!({"type": "ping", "id": 10 + i})).await;
    }
    // The bucket (5) is empty: a publish now is refused and changes nothing.
    let before = state_of(&h, None, "default", "r1").await;
    let e = publish(&mut p, progress("r1", "default", 2, 10.0), 20).await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(e["data"]["reason"], "messages");
    assert_eq!(
        e["data"]["operation_id"], "r1",
        "producer errors name the operation"
    );
    let wait = e["data"]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!((1..=1000).contains(&wait), "{e}");
    assert_eq!(
        state_of(&h, None, "default", "r1").await,
        before,
        "nothing changed"
    );
    // After the advised wait the same message goes through: the connection stayed.
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let ack = publish(&mut p, progress("r1", "default", 2, 10.0), 21).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Sustained excess is abuse: RATE_LIMITED (abuse) then close 1008.
    for i in 0..40 {
        p.send(json!({"type": "ping", "id": 100 + i})).await;
    }
    let abuse = p.until(|m| m["data"]["reason"] == "abuse", DEADLINE).await;
    assert_eq!(abuse["code"], "RATE_LIMITED");
    assert_eq!(p.closed(DEADLINE).await, Some(1008));
}

/// The HTTP API has no connection to hang a bucket on: its messages
/// (events, cancels) get `max_messages_per_second` per peer address, with
/// 429 and `Retry-After` past it (one keep-alive connection made 1,700/s).
#[tokio::test]
async fn http_messages_are_rate_limited_per_address() {
    let h = hub()
        .args(["--max-messages-per-second", "5", "--rate-limit-exempt", ""])
        .start()
        .await;
    let ops = format!("{}/api/v1/namespaces/default/operations", h.http());
    let (status, _) = post_json(
        &format!("{ops}/h1/events"),
        &json!({"type": "operation_started", "seq": 1, "name": "n"}),
    )
    .await;
    assert_eq!(status, 200);
    for seq in 2..=5 {
        let (status, ack) = post_json(
            &format!("{ops}/h1/events"),
            &json!({"type": "progress_update", "seq": seq, "progress": seq}),
        )
        .await;
        assert_eq!(status, 200, "{ack}");
    }
    let before = state_of(&h, None, "default", "h1").await;
    let r = reqwest::Client::new()
        .post(format!("{ops}/h1/events"))
        .json(&json!({"type": "progress_update", "seq": 6, "progress": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["error"]["data"]["reason"], "messages", "{body}");
    assert_eq!(body["error"]["data"]["operation_id"], "h1", "{body}");
    let (status, _) = post_json(&format!("{ops}/h1/cancel"), &json!({})).await;
    assert_eq!(status, 429, "a cancel counts too");
    assert_eq!(
        state_of(&h, None, "default", "h1").await,
        before,
        "nothing changed"
    );
    // Reads are not messages.
    let (status, _) = get_json(&format!("{ops}/h1")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn connections_per_user_and_anonymous_per_ip_are_capped() {
    let h = hub()
        .args([
            "--jwt-secret",
            SECRET,
            "--allow-anonymous-read",
            "--max-connections-per-user",
            "2",
            "--max-anonymous-connections-per-ip",
            "2",
            "--rate-limit-exempt",
            "",
        ])
        .start()
        .await;
    let alice = token("alice", &["viewer"], &["default"]);
    let a1 = ws_as(&h, &alice).await;
    let _a2 = ws_as(&h, &alice).await;
    let (status, body) = Ws::connect_with(&format!("{}?token={alice}", h.ws_url()), &[])
        .await
        .err()
        .expect("third connection of alice");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("connections_per_user"), "{body}");
    // A plain HTTP `GET /ws` (how a browser learns why its upgrade failed)
    // gets the same refusal, with `Retry-After`, and takes no place.
    let r = reqwest::Client::new()
        .get(format!("{}/ws", h.http()))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["data"]["reason"], "connections_per_user",
        "{body}"
    );
    // Another subject is not affected.
    let _b = ws_as(&h, &token("bob", &["viewer"], &["default"])).await;
    // With a place free, a plain `GET /ws` is told it would be upgraded.
    let bob = token("bob2", &["viewer"], &["default"]);
    let r = reqwest::Client::new()
        .get(format!("{}/ws", h.http()))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A freed place can be taken again.
    a1.close().await;
    eventually("alice's place to be freed", DEADLINE, || async {
        Ws::connect_with(&format!("{}?token={alice}", h.ws_url()), &[])
            .await
            .ok()
    })
    .await;
    // Anonymous readers: two per address.
    let _n1 = Ws::connect(&h.ws_url()).await;
    let _n2 = Ws::connect(&h.ws_url()).await;
    let (status, body) = Ws::connect_with(&h.ws_url(), &[])
        .await
        .err()
        .expect("third anonymous");
    assert_eq!(status, 429);
    assert!(body.contains("anonymous_per_ip"), "{body}");
    let r = reqwest::get(format!("{}/api/v1/stream?namespace=default", h.http()))
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "SSE counts too");
}

/// A `refresh` with another subject's token moves the connection under
/// that subject's cap: refused (nothing changes) while the new subject's
/// cap is full, and the old subject's place is given back once it moves.
#[tokio::test]
async fn a_refresh_to_another_subject_moves_the_connection_between_caps() {
    let h = hub()
        .args(["--jwt-secret", SECRET, "--max-connections-per-user", "1"])
        .args(["--rate-limit-exempt", ""])
        .start()
        .await;
    let alice = token("alice", &["viewer"], &["default"]);
    let bob = token("bob", &["viewer"], &["default"]);
    let a = ws_as(&h, &alice).await;
    let mut b = ws_as(&h, &bob).await;
    let e = b
        .request(json!({"type": "refresh", "token": alice}), 1)
        .await;
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!("RATE_LIMITED"), json!("connections_per_user")),
        "{e}"
    );
    let pong = b.request(json!({"type": "ping"}), 2).await;
    assert_eq!(pong["type"], "pong", "the connection stays, as bob");
    a.close().await;
    let status = format!("{}/api/v1/status", h.http());
    eventually("alice's connection to be gone", DEADLINE, || {
        let (status, bob) = (status.clone(), bob.clone());
        async move {
            let r = reqwest::Client::new()
                .get(status)
                .bearer_auth(bob)
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            (v["data"]["connections"] == 1).then_some(())
        }
    })
    .await;
    let ok = b
        .request(json!({"type": "refresh", "token": alice}), 3)
        .await;
    assert_eq!(
        (ok["type"].clone(), ok["id"].clone()),
        (json!("ok"), json!(3)),
        "{ok}"
    );
    let url = format!("{}?token={bob}", h.ws_url());
    // That connection is alice's now: bob may connect again.
    let again = Ws::connect_with(&url, &[]).await;
    assert!(
        again.is_ok(),
        "bob's place was given back: {:?}",
        again.err()
    );
}

#[tokio::test]
async fn the_global_ingest_ceiling_refuses_with_retry_after() {
    let h = hub().args(["--max-ingest-per-second", "3"]).start().await;
    let url = url_events(&h, "default", "i1");
    let mut codes = Vec::new();
    let mut refused = None;
    for seq in 1..=6 {
        let body = if seq == 1 {
            r#"{"type":"operation_started","seq":1,"name":"ingest"}"#.to_string()
        } else {
            format!(r#"{{"type":"progress_update","seq":{seq},"progress":{seq}}}"#)
        };
        let (s, v, retry) = http_post(&url, None, &body).await;
        codes.push(s);
        if s == 429 {
            assert_eq!(v["error"]["code"], "RATE_LIMITED");
            assert_eq!(v["error"]["data"]["reason"], "ingest");
            assert!(retry.is_some(), "Retry-After");
            refused.get_or_insert(seq);
            break;
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("never refused: {codes:?}"));
    assert!(refused >= 3, "{codes:?}");
    let (_, events) = http_get(
        &format!("{}/api/v1/namespaces/default/events", h.http()),
        None,
    )
    .await;
    assert_eq!(
        events["last_offset"],
        refused - 1,
        "the refused message changed nothing"
    );
    // Over WebSocket the refusal is an error; the connection stays.
    let mut p = Ws::connect(&h.ws_url()).await;
    let e = loop {
        let r = publish(&mut p, started(&format!("w{}", rand_id()), "default"), 1).await;
        if r["type"] == "error" {
            break r;
        }
    };
    assert_eq!(e["code"], "RATE_LIMITED");
    assert_eq!(e["data"]["reason"], "ingest");
    assert!(e["data"]["retry_after_ms"].as_u64().is_some());
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn a_silent_websocket_is_closed_after_the_first_message_timeout() {
    let h = hub().args(["--first-message-timeout", "1s"]).start().await;
    // A raw socket never answers the opening ping.
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    let (texts, code) = raw.read_until_close(DEADLINE).await;
    assert_eq!(code, Some(1001));
    let err: Value = serde_json::from_str(texts.last().unwrap()).unwrap();
    assert_eq!(err["code"], "IDLE_TIMEOUT");
    assert_eq!(err["data"]["reason"], "first_message");
    // A real client answers the ping (or speaks) and stays.
    let mut ws = Ws::connect(&h.ws_url()).await;
    assert!(matches!(
        ws.next(Duration::from_millis(1500)).await,
        Err(WsError::Timeout)
    ));
    assert_eq!(ws.request(json!({"type": "ping"}), 1).await["type"], "pong");
}

#[tokio::test]
async fn the_broadcast_cap_coalesces_live_updates_to_the_latest() {
    let h = hub()
        .args(["--max-updates-per-operation-per-second", "2"])
        .start()
        .await;
    let (mut viewer, _) = subscriber(&h, "default").await;
    viewer.next_of("operation_list", DEADLINE).await;
    let mut p = Ws::connect(&h.ws_url()).await;
    assert_eq!(
        publish(&mut p, started("c1", "default"), 1).await["type"],
        "ack"
    );
    let n = 40u64;
    for seq in 2..=n {
        p.send(json!({"type": "progress_update", "id": seq, "operation_id": "c1", "seq": seq, "progress": seq as f64}))
            .await;
    }
    let last = p.until(|m| m["id"] == n, DEADLINE).await;
    assert_eq!(last["type"], "ack", "every update is acked");
    assert_eq!(last["offset"], n);
    // The viewer gets fewer updates, in increasing offsets, ending with the latest.
    let mut offsets = vec![
        viewer.next_of("operation_started", DEADLINE).await["offset"]
            .as_u64()
            .unwrap(),
    ];
    loop {
        let ev = viewer
            .next_of("progress_update", Duration::from_secs(5))
            .await;
        offsets.push(ev["offset"].as_u64().unwrap());
        if ev["offset"] == n {
            assert_eq!(ev["state"]["progress"], n as f64);
            break;
        }
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert!(offsets.len() < n as usize, "coalesced: {offsets:?}");
    // Lifecycle events are never skipped.
    let done = publish(
        &mut p,
        json!({"type": "operation_completed", "operation_id": "c1", "seq": n + 1}),
        999,
    )
    .await;
    assert_eq!(done["type"], "ack");
    assert_eq!(
        viewer.next_of("operation_completed", DEADLINE).await["offset"],
        n + 1
    );
    // Everything is stored and replayed.
    let (_, events) = http_get(
        &format!("{}/api/v1/namespaces/default/events?limit=1000", h.http()),
        None,
    )
    .await;
    assert_eq!(events["events"].as_array().unwrap().len() as u64, n + 1);
    let mut late = Ws::connect(&h.ws_url()).await;
    let sub = late
        .request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": events["epoch"], "offset": 0}}), 1)
        .await;
    assert_eq!(sub["recovered"], true);
    for off in 1..=n + 1 {
        let ev = late.until(|m| m["offset"].is_u64(), DEADLINE).await;
        assert_eq!(ev["offset"], off);
    }
}

// ------------------------------------------------------------- token command

fn token_cmd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .arg("token")
        .args(args)
        .env_remove("PROGRESS_HUB_JWT_SECRET")
        .output()
        .expect("run progress-hub token")
}

#[tokio::test]
async fn progress_hub_token_mints_tokens_the_hub_accepts() {
    let out = token_cmd(&[
        "--sub",
        "alice",
        "--role",
        "reporter",
        "--role",
        "viewer",
        "--namespace",
        "team-*",
        "--ttl",
        "1h",
        "--jwt-secret",
        SECRET,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    let mut ws = ws_as(&h, &tok).await;
    assert_eq!(
        publish(&mut ws, started("t1", "team-a"), 1).await["type"],
        "ack"
    );
    assert_eq!(
        publish(&mut ws, started("t2", "default"), 2).await["code"],
        "FORBIDDEN"
    );
    let e = ws
        .request(
            json!({"type": "cancel", "namespace": "team-a", "operation_id": "t1"}),
            3,
        )
        .await;
    assert_eq!(e["code"], "FORBIDDEN", "no operator role");
    // The secret may come from the environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(["token", "--sub", "vic"])
        .env("PROGRESS_HUB_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    let vic = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut v = ws_as(&h, &vic).await;
    assert_eq!(
        v.request(json!({"type": "subscribe", "namespace": "default"}), 1)
            .await["type"],
        "subscribed",
        "default role viewer, default namespace"
    );
    // Refusals: unknown role, no key, a zero ttl.
    for args in [
        vec!["--sub", "a", "--role", "root", "--jwt-secret", SECRET],
        vec!["--sub", "a"],
        vec!["--sub", "a", "--ttl", "0s", "--jwt-secret", SECRET],
    ] {
        let out = token_cmd(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    // A private key, for a hub given the public half.
    let key = key_file("ec1.key");
    let out = token_cmd(&[
        "--sub",
        "k",
        "--role",
        "admin",
        "--namespace",
        "*",
        "--private-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let pubkey = key_file("ec1.pub");
    let h2 = hub()
        .args(["--jwt-public-key", pubkey.to_str().unwrap()])
        .start()
        .await;
    let mut k = ws_as(&h2, &tok).await;
    assert_eq!(
        publish(&mut k, started("k1", "anywhere"), 1).await["type"],
        "ack"
    );
}

/// The scrape token OPERATIONS.md tells operators to mint (a viewer of
/// `*`) may read `/metrics`, and so may the same command without
/// `--namespace '*'` (a viewer of `default`): the figures are hub-wide.
#[tokio::test]
async fn the_documented_scrape_token_may_read_metrics() {
    let mint = |namespace: &[&'static str]| {
        let mut args = vec!["--sub", "prometheus", "--role", "viewer"];
        args.extend_from_slice(namespace);
        args.extend_from_slice(&["--ttl", "8760h", "--jwt-secret", SECRET]);
        let out = token_cmd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    let url = format!("{}/metrics", h.http());
    let (status, _) = http_get(&url, Some(&mint(&["--namespace", "*"]))).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(&url, Some(&mint(&[]))).await;
    assert_eq!(status, 200);
}

// ----------------------------------------------------------- key rotation

fn oct_jwks(kid: &str, secret: &str) -> String {
    json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url(secret.as_bytes())}]})
        .to_string()
}

#[tokio::test]
async fn a_changed_jwks_file_is_reloaded_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("keys.json");
    let old_secret = "old-rotation-secret-0123456789";
    let new_secret = "new-rotation-secret-9876543210";
    std::fs::write(&jwks, oct_jwks("k1", old_secret)).unwrap();
    let h = hub()
        .args(["--jwks-file", jwks.to_str().unwrap()])
        .start()
        .await;
    let claims = Claims::new("rot", now_s() + 600);
    let old = mint_hs256(old_secret, &claims).unwrap();
    let new = mint_hs256(new_secret, &claims).unwrap();
    assert!(
        Ws::connect_with(&format!("{}?token={old}", h.ws_url()), &[])
            .await
            .is_ok()
    );
    std::fs::write(&jwks, oct_jwks("k2", new_secret)).unwrap();
    eventually(
        "the new key to be trusted",
        Duration::from_secs(15),
        || async {
            Ws::connect_with(&format!("{}?token={new}", h.ws_url()), &[])
                .await
                .ok()
        },
    )
    .await;
    let (status, _) = Ws::connect_with(&format!("{}?token={old}", h.ws_url()), &[])
        .await
        .err()
        .expect("the old key is gone");
    assert_eq!(status, 401);
    // A broken file keeps the keys in use.
    std::fs::write(&jwks, "{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        Ws::connect_with(&format!("{}?token={new}", h.ws_url()), &[])
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------- slowloris

#[tokio::test]
async fn request_headers_must_arrive_within_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub().args(["--handshake-timeout", "1s"]).start().await;
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Room for a whole response (headers include CORS `Vary`).
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("the hub drops a connection whose headers never end");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A complete request is served, and so is the next one on the same
    // kept-alive connection when it comes in time...
    let mut ok = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    for _ in 0..3 {
        ok.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = ok.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ... but a kept-alive connection left idle, or trickling a later
    // request's headers, is closed after the timeout too.
    let idle_since = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), ok.read(&mut buf))
        .await
        .expect("the hub closes an idle keep-alive connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(idle_since.elapsed() >= Duration::from_millis(500));
    let mut trickle = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    trickle
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = trickle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    trickle
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickling_since = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if trickle.write_all(b"X-A: b\r\n").await.is_err() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut peek = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut peek)).await
            {
                return Some(0);
            }
        }
    })
    .await
    .expect("a trickled second request is dropped");
    assert!(matches!(read, None | Some(0)), "{read:?}");
    assert!(trickling_since.elapsed() >= Duration::from_millis(800));
}

/// The token key is one choice whose sources follow the usual precedence:
/// a `--jwks-file` flag wins over a `PROGRESS_HUB_JWT_SECRET` exported for
/// `progress-hub token`, with a warning, instead of refusing to start.
#[tokio::test]
async fn a_key_flag_beats_a_key_variable_of_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("keys.json");
    let file_secret = "jwks-file-secret-0123456789-abc";
    std::fs::write(&jwks, oct_jwks("k1", file_secret)).unwrap();
    let mut h = hub()
        .env("PROGRESS_HUB_JWT_SECRET", SECRET)
        .args(["--jwks-file", jwks.to_str().unwrap()])
        .start()
        .await;
    let claims = Claims::new("who", now_s() + 600);
    let by_file = mint_hs256(file_secret, &claims).unwrap();
    let by_var = mint_hs256(SECRET, &claims).unwrap();
    let by_file = format!("{}?token={by_file}", h.ws_url());
    assert!(Ws::connect_with(&by_file, &[]).await.is_ok());
    let (status, _) = Ws::connect_with(&format!("{}?token={by_var}", h.ws_url()), &[])
        .await
        .err()
        .expect("the variable's key is not in use");
    assert_eq!(status, 401);
    let mut seen = String::new();
    eventually("a warning naming the ignored key", DEADLINE, || {
        seen.extend(h.stderr_lines().into_iter().map(|l| l + "\n"));
        let found = seen.contains("`jwt_secret`") && seen.contains("PROGRESS_HUB_JWT_SECRET");
        async move { found.then_some(()) }
    })
    .await;
}

/// The hub-wide connection cap answers 429 `RATE_LIMITED` with
/// `Retry-After`, naming the limit, as the contract maps the code (it was
/// 503), and SSE counts against it too.
#[tokio::test]
async fn the_hub_wide_connection_cap_names_its_limit() {
    let h = hub()
        .args(["--max-connections", "2", "--rate-limit-exempt", ""])
        .start()
        .await;
    let _a = Ws::connect(&h.ws_url()).await;
    let _b = Ws::connect(&h.ws_url()).await;
    let (status, body) = Ws::connect_with(&h.ws_url(), &[])
        .await
        .err()
        .expect("a third connection");
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error body");
    let e = &body["error"];
    assert_eq!(e["code"], "RATE_LIMITED", "{body}");
    assert_eq!(
        (e["data"]["reason"].clone(), e["data"]["limit"].clone()),
        (json!("connections"), json!(2)),
        "{body}"
    );
    let r = reqwest::get(format!("{}/api/v1/stream?namespace=default", h.http()))
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "SSE counts too");
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
}

/// Under an open-files limit too small for `max_connections`, the hub
/// lowers the cap to what fits (and says so), so the connection past it is
/// answered 429 instead of hanging unaccepted once descriptors run out.
#[tokio::test]
async fn a_small_open_files_limit_lowers_the_connection_cap_instead_of_hanging() {
    // 600 descriptors, 512 kept aside: room for 88 connections.
    let mut h = hub()
        .open_files_limit(600)
        .args(["--max-connections", "1000", "--rate-limit-exempt", ""])
        .args(["--max-anonymous-connections-per-ip", "0"])
        .args(["--handshakes-per-ip-per-second", "0"])
        .start()
        .await;
    // The warning is written before `listening on`; its line may still be
    // on its way through the pipe reader.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !h
        .stderr_lines()
        .iter()
        .any(|l| l.contains("max_connections is lowered"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a warning names the lowered cap"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut held = Vec::new();
    for _ in 0..88 {
        held.push(Ws::connect(&h.ws_url()).await);
    }
    let (status, body) = Ws::connect_with(&h.ws_url(), &[])
        .await
        .err()
        .expect("the 89th is refused");
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(
        (
            body["error"]["data"]["reason"].clone(),
            body["error"]["data"]["limit"].clone()
        ),
        (json!("connections"), json!(88)),
        "{body}"
    );
    let (status, _) = get_json(&format!("{}/health", h.http())).await;
    assert_eq!(status, 200, "plain HTTP still answered");
}

/// Handshakes that arrive together cannot all pass the cap: each takes its
/// place atomically (the check used to read the count of connections
/// already open, so ten at once could let seven in under a cap of six).
#[tokio::test]
async fn concurrent_handshakes_do_not_overrun_the_connection_cap() {
    let h = hub()
        .args(["--max-connections", "6", "--rate-limit-exempt", ""])
        .args(["--handshakes-per-ip-per-second", "0"])
        .start()
        .await;
    let status = format!("{}/api/v1/status", h.http());
    let url = h.ws_url();
    for round in 0..8 {
        let tries = (0..10).map(|_| Ws::connect_with(&url, &[]));
        let results = futures_util::future::join_all(tries).await;
        let refused: Vec<&(u16, String)> =
            results.iter().filter_map(|r| r.as_ref().err()).collect();
        let admitted = results.len() - refused.len();
        // Never more than the cap (the property under test). On a loaded
        // machine a round was once seen to admit one fewer (in ~10 runs,
        // cause not found: every place had been given back before it), so
        // one extra refusal is tolerated; each must be the cap's.
        assert!(
            (5..=6).contains(&admitted),
            "round {round}: {admitted} admitted: {refused:?}"
        );
        for (status, body) in &refused {
            assert_eq!(*status, 429, "round {round}: {body}");
            assert!(
                body.contains(r#""reason":"connections""#),
                "round {round}: {body}"
            );
        }
        drop(results);
        eventually("every place to be given back", DEADLINE, || {
            let status = status.clone();
            // The places, not the connections being served: an upgrade
            // admitted just before its client left holds one for a moment
            // before it is served (and counted) at all.
            async move {
                (get_json(&status).await.1["data"]["connection_places"] == 0).then_some(())
            }
        })
        .await;
    }
}

/// Plain HTTP connections are capped too (twice `max_connections`, plus
/// 16): past the cap the hub stops accepting until one ends, instead of
/// holding any number of kept-alive connections.
#[tokio::test]
async fn kept_alive_http_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub()
        .args(["--max-connections", "2", "--rate-limit-exempt", ""])
        .start()
        .await;
    async fn health(c: &mut tokio::net::TcpStream) -> bool {
        let mut buf = [0u8; 4096];
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .is_ok()
            && matches!(c.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200"))
    }
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
        assert!(health(&mut c).await);
        held.push(c);
    }
    // The 21st waits in the kernel's backlog, unserved...
    let mut late = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    let served = tokio::time::timeout(Duration::from_millis(500), health(&mut late)).await;
    assert!(served.is_err(), "served past the cap");
    // ... until a place is freed.
    drop(held.pop());
    let served = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        late.read(&mut buf)
            .await
            .map(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
    })
    .await
    .expect("served once a place is free");
    assert!(matches!(served, Ok(true)), "{served:?}");
}

/// The hub speaks HTTP/1.1 only (TLS offers only `http/1.1` too): an
/// HTTP/2 connection preface in clear text is not served.
#[tokio::test]
async fn http2_in_clear_text_is_not_spoken() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub().start().await;
    let mut c = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(DEADLINE, c.read_to_end(&mut buf))
        .await
        .expect("the hub answers or closes");
    assert!(
        read.is_err() || !buf.starts_with(&[0, 0]),
        "no HTTP/2 frames: {buf:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
}

/// A request body that never comes does not hold its connection (one of
/// the capped places): past the handshake timeout it gets 408
/// `IDLE_TIMEOUT`, naming the operation.
#[tokio::test]
async fn an_event_body_that_never_comes_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub().args(["--handshake-timeout", "1s"]).start().await;
    let mut c = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    c.write_all(
        b"POST /api/v1/namespaces/default/operations/slow/events HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, c.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("IDLE_TIMEOUT") && text.contains("\"operation_id\":\"slow\""),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// What one connection's subscriptions may hold: 128 of them, and 64 KiB
/// of filter text over all of them (a resubscription counts only its new
/// filter, an unsubscribe gives its share back); past either, the
/// subscribe gets `RATE_LIMITED` naming the limit and changes nothing.
#[tokio::test]
async fn a_connections_subscriptions_are_bounded_in_count_and_filter_bytes() {
    let h = hub().start().await;
    let mut v = Ws::connect(&h.ws_url()).await;
    for i in 0..128u64 {
        let ok = v
            .request(
                json!({"type": "subscribe", "namespace": format!("n{i}")}),
                i + 1,
            )
            .await;
        assert_eq!(ok["type"], "subscribed", "{ok}");
    }
    let e = v
        .request(json!({"type": "subscribe", "namespace": "n128"}), 200)
        .await;
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!("RATE_LIMITED"), json!("subscriptions")),
        "{e}"
    );
    assert_eq!(e["data"]["limit"], 128);
    // Replacing one of them is not a new one.
    let again = v
        .request(json!({"type": "subscribe", "namespace": "n0"}), 201)
        .await;
    assert_eq!(again["type"], "subscribed", "{again}");

    let mut w = Ws::connect(&h.ws_url()).await;
    // 64 globs of 250 bytes: 16,000 bytes of filter each.
    let globs = |tag: &str| -> Vec<String> {
        (0..64)
            .map(|i| format!("{tag}{i:03}{}", "x".repeat(246)))
            .collect()
    };
    let sub = |ns: &str, tag: &str| json!({"type": "subscribe", "namespace": ns, "filter": {"operations": globs(tag)}});
    for (i, ns) in ["a", "b", "c", "d"].iter().enumerate() {
        let ok = w.request(sub(ns, "g"), i as u64 + 1).await;
        assert_eq!(ok["type"], "subscribed", "{ok}");
    }
    let e = w.request(sub("e", "g"), 10).await;
    assert_eq!(
        (e["code"].clone(), e["data"]["reason"].clone()),
        (json!("RATE_LIMITED"), json!("filters")),
        "{e}"
    );
    assert_eq!(e["data"]["limit"], 65536);
    // A new filter for a namespace already held replaces its share.
    let ok = w.request(sub("d", "h"), 11).await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    // Giving one back makes room.
    let ok = w
        .request(json!({"type": "unsubscribe", "namespace": "a"}), 12)
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let ok = w.request(sub("e", "g"), 13).await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
}

/// One HTTP request written as is (`Connection: close`), over a new TCP
/// connection to `addr`: the status, the lower-cased headers and the body.
async fn raw_request(addr: &str, request: &str) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, c.read_to_end(&mut buf))
        .await
        .expect("the hub answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// `GET path` with these extra header lines (each `Name: value\r\n`).
async fn get_with(addr: &str, path: &str, headers: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
    let (status, _, body) = raw_request(addr, &req).await;
    (status, body)
}

/// The hub's port, from its `host:port`.
fn port_of(h: &Hub) -> &str {
    h.addr.rsplit_once(':').unwrap().1
}

/// Asserts a 403 `FORBIDDEN` with `data.reason: "host"`.
fn assert_host_refused(status: u16, body: &str, what: &str) {
    assert_eq!(status, 403, "{what}: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: {body}"));
    assert_eq!(v["error"]["code"], "FORBIDDEN", "{what}: {v}");
    assert_eq!(v["error"]["data"]["reason"], "host", "{what}: {v}");
}

/// DNS rebinding: a page at `http://evil.test:PORT` whose name is
/// re-pointed to 127.0.0.1 sends `Host: evil.test:PORT` and its own
/// origin. An open hub on loopback refuses every route but the probes for
/// such a Host (403, `reason: "host"`), and serves IP literals, localhost
/// and requests with no Host at all.
#[tokio::test]
async fn an_open_loopback_hub_refuses_foreign_host_names() {
    let h = hub().start().await;
    let port = port_of(&h).to_owned();
    let evil = format!("Host: evil.test:{port}\r\nOrigin: http://evil.test:{port}\r\n");
    for path in [
        "/api/v1/status",
        "/api/v1/namespaces/default/operations",
        "/api/v1/namespaces/default/events",
        "/metrics",
        "/",
        "/api/v1/stream?namespace=default",
    ] {
        let (status, body) = get_with(&h.addr, path, &evil).await;
        assert_host_refused(status, &body, path);
    }
    // A rebinding page that starts and cancels operations.
    let post = format!(
        "POST /api/v1/namespaces/default/operations/r1/events HTTP/1.1\r\n{evil}Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let (status, _, body) = raw_request(&h.addr, &post).await;
    assert_host_refused(status, &body, "POST event");
    let cancel = format!(
        "POST /api/v1/namespaces/default/operations/r1/cancel HTTP/1.1\r\n{evil}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = raw_request(&h.addr, &cancel).await;
    assert_host_refused(status, &body, "POST cancel");
    // The WebSocket upgrade too.
    let (status, body) = Ws::connect_with(
        &h.ws_url(),
        &[
            ("host", &format!("evil.test:{port}")),
            ("origin", &format!("http://evil.test:{port}")),
        ],
    )
    .await
    .err()
    .expect("refused");
    assert_host_refused(status, &body, "websocket");
    assert!(metrics_text(&h).await.contains(
        r#"progress_hub_connections_refused_total{transport="websocket",reason="host"} 1"#
    ));
    // Names that only look like allowed ones.
    for host in ["[::1]x", "[::1].evil.test", "evil.test#.localhost"] {
        let (status, body) =
            get_with(&h.addr, "/api/v1/status", &format!("Host: {host}\r\n")).await;
        assert_host_refused(status, &body, host);
    }
    // Probes answer whatever the Host.
    for path in ["/health", "/ready"] {
        assert_eq!(get_with(&h.addr, path, &evil).await.0, 200, "{path}");
    }
    // The machine's own names, and no Host at all (HTTP/1.0).
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("hub.localhost:{port}"),
    ] {
        let hdrs = format!("Host: {host}\r\nOrigin: http://{host}\r\n");
        let (status, body) = get_with(&h.addr, "/api/v1/status", &hdrs).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _, body) = raw_request(&h.addr, "GET /api/v1/status HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200, "no Host: {body}");
    let ok = Ws::connect_with(&h.ws_url(), &[("host", &format!("localhost:{port}"))]).await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    // Nothing was started by the refused POSTs.
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations",
        h.http()
    ))
    .await;
    assert_eq!(list["operations"], json!([]), "{list}");
}

/// The Host rule is the open loopback hub's only: a listed origin's host
/// passes it, a hub with a key leaves it to tokens, and an open hub on a
/// non-loopback address (`--insecure-no-auth`) is reached by any name.
#[tokio::test]
async fn the_host_rule_spares_listed_origins_keyed_hubs_and_non_loopback_hubs() {
    let listed = hub()
        .args(["--allowed-origins", "http://evil.test:8080"])
        .start()
        .await;
    let port = port_of(&listed).to_owned();
    let evil = format!("Host: evil.test:{port}\r\nOrigin: http://evil.test:{port}\r\n");
    let (status, body) = get_with(&listed.addr, "/api/v1/status", &evil).await;
    assert_eq!(status, 200, "listed: {body}");
    let ok = Ws::connect_with(
        &listed.ws_url(),
        &[
            ("host", &format!("evil.test:{port}")),
            ("origin", &format!("http://evil.test:{port}")),
        ],
    )
    .await;
    assert!(ok.is_ok(), "listed: {:?}", ok.err());
    let (status, body) = get_with(&listed.addr, "/api/v1/status", "Host: other.test\r\n").await;
    assert_host_refused(status, &body, "another name");

    let keyed = hub().args(["--jwt-secret", SECRET]).start().await;
    let port = port_of(&keyed).to_owned();
    let evil = format!(
        "Host: evil.test:{port}\r\nOrigin: http://evil.test:{port}\r\nAuthorization: Bearer {}\r\n",
        admin()
    );
    let (status, body) = get_with(&keyed.addr, "/api/v1/status", &evil).await;
    assert_eq!(status, 200, "keyed: {body}");

    let wide = hub()
        .listen("0.0.0.0:0")
        .args(["--insecure-no-auth"])
        .start()
        .await;
    let addr = format!("127.0.0.1:{}", port_of(&wide));
    let (status, body) = get_with(&addr, "/api/v1/status", "Host: hub.example.net\r\n").await;
    assert_eq!(status, 200, "non-loopback: {body}");
}

/// RFC 7235: every 401 names the scheme it wants (`WWW-Authenticate:
/// Bearer`), and per RFC 6750 says `error="invalid_token"` when a token was
/// given and refused (expired included): on the HTTP API, SSE and the
/// WebSocket upgrade alike.
#[tokio::test]
async fn every_401_carries_a_bearer_challenge() {
    let h = hub()
        .args(["--jwt-secret", SECRET, "--allow-anonymous-read"])
        .start()
        .await;
    let expired = mint_hs256(SECRET, &Claims::new("old", now_s() - 60)).unwrap();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    // (method, path, extra headers): each refused for its token.
    let requests = [
        ("GET", "/ws", upgrade),
        ("GET", "/api/v1/stream?namespace=default", ""),
        ("GET", "/api/v1/namespaces/default/operations", ""),
        ("GET", "/api/v1/status", ""),
        ("GET", "/metrics", ""),
        ("POST", "/api/v1/namespaces/default/operations/x/cancel", ""),
    ];
    for token in ["garbage", expired.as_str()] {
        for (method, path, extra) in requests {
            for auth in [format!("Authorization: Bearer {token}\r\n"), String::new()] {
                let sep = if path.contains('?') { '&' } else { '?' };
                let target = if auth.is_empty() {
                    format!("{path}{sep}token={token}")
                } else {
                    path.to_owned()
                };
                let req = format!(
                    "{method} {target} HTTP/1.1\r\nHost: {}\r\n{auth}{extra}Content-Length: 0\r\nConnection: close\r\n\r\n",
                    h.addr
                );
                let (status, headers, body) = raw_request(&h.addr, &req).await;
                assert_eq!(status, 401, "{method} {target}: {body}");
                let challenges: Vec<&str> = headers
                    .iter()
                    .filter(|(k, _)| k == "www-authenticate")
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert_eq!(challenges.len(), 1, "{method} {target}: {headers:?}");
                assert!(challenges[0].starts_with("Bearer "), "{challenges:?}");
                assert!(
                    challenges[0].contains(r#"error="invalid_token""#),
                    "{method} {target}: {challenges:?}"
                );
            }
        }
    }
    // No token where one is needed (a tokenless cancel on an
    // anonymous-read hub): the bare challenge.
    let req = format!(
        "POST /api/v1/namespaces/default/operations/x/cancel HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        h.addr
    );
    let (status, headers, body) = raw_request(&h.addr, &req).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("AUTH_REQUIRED"), "{body}");
    let challenge = headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.clone());
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="progress-hub""#));
    // A hub without anonymous read asks the same of tokenless upgrades.
    let h = hub().args(["--jwt-secret", SECRET]).start().await;
    for (path, extra) in [("/ws", upgrade), ("/api/v1/stream?namespace=default", "")] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
            h.addr
        );
        let (status, headers, body) = raw_request(&h.addr, &req).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v == r#"Bearer realm="progress-hub""#),
            "{path}: {headers:?}"
        );
    }
}
