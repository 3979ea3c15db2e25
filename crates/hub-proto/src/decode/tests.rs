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
fn negative_zero_is_zero() {
    let m =
        decode_client(r#"{"type":"progress_update","operation_id":"a","seq":2,"progress":-0.0}"#)
            .unwrap();
    let ClientMessage::Publish(ProducerMessage {
        body: ProducerBody::Progress {
            progress: Some(p), ..
        },
        ..
    }) = m
    else {
        panic!("{m:?}")
    };
    assert!(p == 0.0 && p.is_sign_positive(), "{p}");
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
    // Even when the id itself is what is wrong.
    let e = err(r#"{"type":"progress_update","operation_id":"a b","seq":1,"progress":5}"#);
    assert_eq!(e.data.unwrap()["operation_id"], "a b");
    // And when the request id is (no id to echo then).
    let e = err(r#"{"type":"progress_update","id":"x","operation_id":"a","seq":2,"progress":1}"#);
    assert_eq!(
        (e.id, e.data.unwrap()["operation_id"].clone()),
        (None, "a".into())
    );
    // A viewer's message has no operation of its own.
    let e = err(r#"{"type":"cancel","id":"x","operation_id":"a"}"#);
    assert_eq!(e.data, None);
    // A producer message without one says so in `data` all the same.
    let e = err(r#"{"type":"progress_update","seq":2,"progress":1}"#);
    assert_eq!(e.data, Some(serde_json::json!({ "operation_id": null })));
}

#[test]
fn long_free_text_is_cut_not_refused() {
    let body = |ty: &str, field: &str, text: &str| {
        let extra = if ty == "progress_update" {
            r#","progress":5"#
        } else {
            ""
        };
        let text = serde_json::to_string(text).unwrap();
        let msg =
            format!(r#"{{"type":"{ty}","operation_id":"a","seq":2{extra},"{field}":{text}}}"#);
        let ClientMessage::Publish(p) = decode_client(&msg).unwrap() else {
            panic!("{msg}")
        };
        p.body
    };
    let long = "é".repeat(5000);
    let ProducerBody::Failed { error, .. } = body("operation_failed", "error", &long) else {
        panic!()
    };
    assert_eq!(error.chars().count(), MAX_TEXT_LEN);
    assert!(error.ends_with("é…") && error.starts_with("éé"), "{error}");
    let ProducerBody::Progress { message, .. } = body("progress_update", "message", &long) else {
        panic!()
    };
    assert_eq!(message.unwrap().chars().count(), MAX_TEXT_LEN);
    let ProducerBody::Progress { step, .. } = body("progress_update", "step", &long) else {
        panic!()
    };
    assert_eq!(step.unwrap().chars().count(), MAX_NAME_LEN);
    let ProducerBody::Canceled { reason } = body("operation_canceled", "reason", &long) else {
        panic!()
    };
    assert_eq!(reason.unwrap().chars().count(), MAX_TEXT_LEN);
    // Exactly at the limit nothing is cut; an empty error is an error too.
    let exact = "x".repeat(MAX_TEXT_LEN);
    let ProducerBody::Failed { error, .. } = body("operation_failed", "error", &exact) else {
        panic!()
    };
    assert_eq!(error, exact);
    let ProducerBody::Failed { error, .. } = body("operation_failed", "error", "") else {
        panic!()
    };
    assert_eq!(error, "");
}

#[test]
fn clip_keeps_whole_characters() {
    use crate::fields::clip;
    assert_eq!(clip("abc", 3), "abc");
    assert_eq!(clip("abcd", 3), "ab…");
    assert_eq!(clip("🚀🚀🚀🚀", 2), "🚀…");
    assert_eq!(clip("", 1), "");
    assert_eq!(clip("ab", 1), "…");
    assert_eq!(clip("ab", 0), "");
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
            conflate: false,
        }
    );
    let conflating = decode_client(r#"{"type":"subscribe","id":1,"conflate":true}"#).unwrap();
    assert!(matches!(
        conflating,
        ClientMessage::Subscribe { conflate: true, .. }
    ));
    assert_eq!(
        err(r#"{"type":"subscribe","id":1,"conflate":"yes"}"#).code,
        ErrorCode::BadMessage
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

/// Any JSON value: nesting, extreme numbers, NaN-like and control strings.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,24}".prop_map(Value::from),
        prop::sample::select(vec![
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-0",
            "\u{0}",
            "\u{1b}[31m",
            "\u{202e}",
            "\u{feff}",
            "a\u{0}b",
            "op\nid",
            "é",
            "\u{1f680}",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::hash_map(".{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a decoded message must satisfy, whatever the input was.
fn assert_valid(msg: &ClientMessage) -> Result<(), TestCaseError> {
    if let ClientMessage::Publish(p) = msg {
        prop_assert!(p.seq.is_none_or(|s| s >= 1));
        if let Some(id) = &p.operation_id {
            prop_assert!(crate::validate_operation_id(id).is_ok(), "{id:?}");
        }
        prop_assert!(crate::validate_namespace(&p.namespace).is_ok());
        if let ProducerBody::Progress {
            progress: Some(pct),
            current,
            ..
        } = &p.body
        {
            prop_assert!(pct.is_finite() && (0.0..=100.0).contains(pct));
            prop_assert!(current.is_none_or(|c| c.is_finite()));
        }
    }
    Ok(())
}

proptest! {
    /// Any JSON value in any field of any message type: a valid message or
    /// `BAD_MESSAGE`, never a panic.
    #[test]
    fn arbitrary_values_in_any_field(
        ty in prop::sample::select(vec!["operation_started","progress_update","operation_completed","operation_failed","operation_canceled","subscribe","unsubscribe","cancel","ping","refresh","nope"]),
        field in prop::sample::select(vec!["operation_id","namespace","seq","id","name","kind","total","progress","current","step","message","details","error","reason","metadata","filter","resume","token","parent_id","weight","unknown_field"]),
        value in arb_json(),
    ) {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), ty.into());
        m.insert("operation_id".into(), "op-1".into());
        m.insert("seq".into(), 1.into());
        m.insert("name".into(), "n".into());
        m.insert("progress".into(), 5.into());
        m.insert(field.into(), value);
        let text = serde_json::Value::Object(m).to_string();
        match decode_client(&text) {
            Ok(msg) => assert_valid(&msg)?,
            Err(e) => prop_assert_eq!(e.code, crate::ErrorCode::BadMessage),
        }
        match decode_http_producer(&text, "default", "op-1") {
            Ok(p) => assert_valid(&ClientMessage::Publish(p))?,
            Err(e) => prop_assert_eq!(e.code, crate::ErrorCode::BadMessage),
        }
    }

    /// Numbers as text the JSON layer may or may not accept, in numeric fields.
    #[test]
    fn extreme_number_literals(
        num in prop::sample::select(vec!["1e400","-1e400","1e-400","18446744073709551616","18446744073709551615","-1","-0","0","0.5","1E+2","100.0000000000001","99.99999999999999","NaN","Infinity","0x10","01","1.","+1"]),
        field in prop::sample::select(vec!["seq","id","progress","current","total","weight"]),
    ) {
        let text = format!(r#"{{"type":"progress_update","operation_id":"op","seq":2,"progress":1,"{field}":{num}}}"#);
        match decode_client(&text) {
            Ok(msg) => assert_valid(&msg)?,
            Err(e) => prop_assert_eq!(e.code, crate::ErrorCode::BadMessage),
        }
    }

    /// Nesting of any depth, arrays or objects: decoded or `BAD_MESSAGE`.
    #[test]
    fn any_nesting_depth(depth in 0usize..4000, objects in any::<bool>()) {
        let (open, close) = if objects { (r#"{"a":"#, "}") } else { ("[", "]") };
        let text = format!(
            r#"{{"type":"progress_update","operation_id":"op","seq":2,"progress":1,"details":{{"x":{}1{}}}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        );
        match decode_client(&text) {
            // The message is level 1, `details` level 2.
            Ok(msg) => { prop_assert!(2 + depth <= MAX_DEPTH); assert_valid(&msg)?; }
            Err(e) => {
                prop_assert_eq!(e.code, crate::ErrorCode::BadMessage);
                prop_assert!(2 + depth > MAX_DEPTH);
                // Valid JSON however deep: the refusal answers the request.
                prop_assert_eq!(e.data_str("operation_id"), Some("op"));
            }
        }
    }

}

#[test]
fn nesting_is_limited_to_max_depth_and_the_refusal_answers_the_request() {
    let msg = |levels: usize| {
        // `details` is level 2; each `{"a":` adds one.
        let inner = levels - 2;
        format!(
            r#"{{"type":"progress_update","id":7,"operation_id":"op","seq":2,"progress":1,"details":{}1{}}}"#,
            r#"{"a":"#.repeat(inner) + "{\"b\":",
            "}".repeat(inner + 1)
        )
    };
    assert!(decode_client(&msg(MAX_DEPTH)).is_ok());
    let e = decode_client(&msg(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::BadMessage);
    assert!(e.message.contains("nested more than 64"), "{}", e.message);
    assert_eq!(e.id, Some(7));
    assert_eq!(e.data_str("operation_id"), Some("op"));
    let e = decode_http_producer(&msg(MAX_DEPTH + 1), "default", "op").unwrap_err();
    assert_eq!((e.id, e.data_str("operation_id")), (Some(7), Some("op")));
    let body = msg(MAX_DEPTH + 1).replace(r#""operation_id":"op","#, "");
    let e = decode_http_producer(&body, "default", "path-op").unwrap_err();
    assert_eq!(e.data_str("operation_id"), Some("path-op"));
}

#[test]
fn a_number_beyond_f64_is_refused_with_the_request_id() {
    let e = decode_client(r#"{"type":"ping","id":5,"color":1e999}"#).unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::BadMessage);
    assert_eq!(e.id, Some(5));
    assert!(e.message.contains("cannot read"), "{}", e.message);
    let e = decode_client(
        r#"{"type":"operation_started","id":8,"operation_id":"job1","seq":1,"name":"x","total":1e999}"#,
    )
    .unwrap_err();
    assert_eq!((e.id, e.data_str("operation_id")), (Some(8), Some("job1")));
    // Broken JSON stays "not valid JSON", with nothing read from it.
    let e = decode_client(r#"{"type":"ping","id":5,"#).unwrap_err();
    assert_eq!(
        (e.id, e.message.as_str()),
        (None, "the message is not valid JSON")
    );
}

#[test]
fn filter_entries_are_limited_in_characters_like_the_fields_they_match() {
    let sub = |ops: &str, kinds: &str| {
        decode_client(&format!(
            r#"{{"type":"subscribe","namespace":"default","filter":{{"operations":[{ops}],"kinds":[{kinds}]}}}}"#
        ))
    };
    let kind = "\u{1f680}".repeat(MAX_KIND_LEN);
    assert!(
        sub(r#""a*""#, &format!("\"{kind}\"")).is_ok(),
        "a 512-byte kind of 128 characters"
    );
    assert!(sub(r#""a*""#, &format!("\"{kind}x\"")).is_err());
    let glob = "é".repeat(FilterSpec::MAX_GLOB_LEN);
    assert!(sub(&format!("\"{glob}\""), r#""k""#).is_ok());
    assert!(sub(&format!("\"{glob}?\""), r#""k""#).is_err());
    assert!(sub(r#""""#, r#""k""#).is_err(), "empty glob");
    assert!(sub(r#""a""#, r#""""#).is_err(), "empty kind");
    assert!(sub(r#""a""#, "7").is_err(), "not a string");
}
