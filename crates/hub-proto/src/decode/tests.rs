//! Decoding tests: every rule of the contract, and totality.

use super::*;
use crate::ErrorCode;
use proptest::prelude::*;

fn err(text: &str) -> ProtoError {
    decode_client(text).expect_err("should be rejected")
}

#[test]
fn producer_messages_decode() {
    let m = decode_client(
        r#"{"type":"operation_started","id":7,"operation_id":"r.1","seq":1,"name":"Render","total":10,"extra":1}"#,
    )
    .unwrap();
    let ClientMessage::Publish(p) = m else {
        panic!()
    };
    assert_eq!(p.id, Some(7));
    assert_eq!(p.namespace, "default");
    assert_eq!(p.operation_id.as_deref(), Some("r.1"));
    match p.body {
        ProducerBody::Started {
            name, kind, total, ..
        } => {
            assert_eq!(name, "Render");
            assert_eq!(kind, "default");
            assert_eq!(total, Some(10.0));
        }
        _ => panic!(),
    }
    let m = decode_client(
        r#"{"type":"progress_update","operation_id":"a","seq":2,"namespace":"ns","progress":42.5,"step":"s"}"#,
    )
    .unwrap();
    assert!(matches!(
        m,
        ClientMessage::Publish(ProducerMessage { seq: Some(2), .. })
    ));
}

#[test]
fn start_without_id_is_allowed_only_with_seq_1() {
    assert!(decode_client(r#"{"type":"operation_started","seq":1,"name":"x"}"#).is_ok());
    assert_eq!(
        err(r#"{"type":"operation_started","seq":2,"name":"x","operation_id":"a"}"#).code,
        ErrorCode::BadMessage
    );
    let e = err(r#"{"type":"progress_update","seq":2,"progress":1}"#);
    assert_eq!(e.code, ErrorCode::BadMessage);
}

#[test]
fn bad_inputs_are_bad_message_with_id() {
    let cases = [
        "not json",
        "[]",
        "{}",
        r#"{"type":"nope","id":3}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":1,"progress":101}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":1,"progress":"5"}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":-1,"progress":5}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":1.5,"progress":5}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a b","seq":1,"progress":5}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":0,"progress":5}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","progress":5}"#,
        r#"{"type":"progress_update","id":3,"operation_id":"a","seq":1}"#,
        r#"{"type":"operation_started","id":3,"operation_id":"a","seq":1}"#,
        r#"{"type":"operation_started","id":3,"operation_id":"a","seq":1,"name":""}"#,
        r#"{"type":"operation_started","id":3,"operation_id":"a","seq":1,"name":"x","total":0}"#,
        r#"{"type":"operation_started","id":3,"operation_id":"a","seq":1,"name":"x","metadata":[]}"#,
        r#"{"type":"operation_failed","id":3,"operation_id":"a","seq":2}"#,
        r#"{"type":"subscribe","id":3,"namespace":"a/b"}"#,
        r#"{"type":"subscribe","id":3,"resume":{"epoch":"e"}}"#,
        r#"{"type":"subscribe","id":3,"filter":{"operations":"x"}}"#,
        r#"{"type":"cancel","id":3}"#,
        r#"{"type":"refresh","id":3}"#,
        r#"{"type":5,"id":3}"#,
    ];
    for c in cases {
        let e = err(c);
        assert_eq!(e.code, ErrorCode::BadMessage, "{c}");
        if c.contains("\"id\":3") && !c.contains("\"type\":5") {
            assert_eq!(e.id, Some(3), "{c}");
        }
    }
    // A wrong id type is itself a bad message.
    assert_eq!(
        err(r#"{"type":"ping","id":"x"}"#).code,
        ErrorCode::BadMessage
    );
}

#[test]
fn producer_errors_carry_operation_id() {
    let e = err(r#"{"type":"progress_update","operation_id":"op-1","seq":1,"progress":500}"#);
    assert_eq!(e.data.unwrap()["operation_id"], "op-1");
}

#[test]
fn name_length_counts_characters() {
    let name = "é".repeat(256);
    let ok = format!(r#"{{"type":"operation_started","seq":1,"name":"{name}"}}"#);
    assert!(decode_client(&ok).is_ok());
    let long = "é".repeat(257);
    let bad = format!(r#"{{"type":"operation_started","seq":1,"name":"{long}"}}"#);
    assert!(decode_client(&bad).is_err());
}

#[test]
fn deep_nesting_is_rejected_not_a_crash() {
    let deep = format!(
        r#"{{"type":"operation_started","seq":1,"name":"x","metadata":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(err(&deep).code, ErrorCode::BadMessage);
}

#[test]
fn viewer_messages_decode() {
    let m = decode_client(
        r#"{"type":"subscribe","id":1,"namespace":"n","filter":{"operations":["render.*"],"kinds":["k"]},"resume":{"epoch":"e","offset":5}}"#,
    )
    .unwrap();
    assert_eq!(
        m,
        ClientMessage::Subscribe {
            id: Some(1),
            namespace: "n".into(),
            filter: FilterSpec {
                operations: vec!["render.*".into()],
                kinds: vec!["k".into()]
            },
            resume: Some(Position {
                epoch: "e".into(),
                offset: 5
            }),
        }
    );
    assert_eq!(
        decode_client(r#"{"type":"ping"}"#).unwrap(),
        ClientMessage::Ping { id: None }
    );
    assert!(matches!(
        decode_client(r#"{"type":"cancel","id":2,"operation_id":"x"}"#).unwrap(),
        ClientMessage::Cancel { .. }
    ));
}

#[test]
fn http_body_rules() {
    let m = decode_http_producer(r#"{"type":"progress_update","progress":5}"#, "ns", "op").unwrap();
    assert_eq!(m.seq, None);
    assert_eq!(m.operation_id.as_deref(), Some("op"));
    assert_eq!(m.namespace, "ns");
    assert!(decode_http_producer(
        r#"{"type":"progress_update","progress":5,"operation_id":"x"}"#,
        "ns",
        "op"
    )
    .is_err());
    assert!(decode_http_producer(
        r#"{"type":"progress_update","progress":5,"namespace":"x"}"#,
        "ns",
        "op"
    )
    .is_err());
    assert!(
        decode_http_producer(r#"{"type":"progress_update","progress":5}"#, "ns", "bad op").is_err()
    );
}

proptest! {
    #[test]
    fn decoding_any_string_never_panics(s in ".{0,200}") {
        let _ = decode_client(&s);
        let _ = decode_http_producer(&s, "ns", "op");
    }

    #[test]
    fn decoding_json_like_input_never_panics(
        ty in prop::sample::select(vec!["operation_started","progress_update","operation_completed","operation_failed","operation_canceled","subscribe","cancel","ping","refresh","x"]),
        seq in prop::option::of(any::<i64>()),
        progress in prop::option::of(any::<f64>()),
        op in prop::option::of("[a-z.*é ]{0,10}"),
    ) {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), ty.into());
        if let Some(s) = seq { m.insert("seq".into(), s.into()); }
        if let Some(p) = progress { m.insert("progress".into(), serde_json::json!(p)); }
        if let Some(o) = op { m.insert("operation_id".into(), o.into()); }
        m.insert("name".into(), "n".into());
        let text = serde_json::Value::Object(m).to_string();
        if let Ok(ClientMessage::Publish(p)) = decode_client(&text) {
            if let ProducerBody::Progress { progress: Some(p), .. } = p.body {
                prop_assert!((0.0..=100.0).contains(&p));
            }
            prop_assert!(p.seq.unwrap() >= 1);
        }
    }
}
