//! Decoding is total: any text gives a message or a `ProtoError`, never a
//! panic; what decodes satisfies the contract's field rules.
#![no_main]

use hub_proto::{decode_client, decode_http_producer, ClientMessage, ErrorCode, ProducerBody};
use libfuzzer_sys::fuzz_target;

fn check(msg: &ClientMessage) {
    if let ClientMessage::Publish(p) = msg {
        if let Some(seq) = p.seq {
            assert!(seq >= 1, "seq starts at 1");
        }
        if let Some(id) = &p.operation_id {
            assert!(hub_proto::validate_operation_id(id).is_ok(), "{id:?}");
        }
        assert!(hub_proto::validate_namespace(&p.namespace).is_ok());
        if let ProducerBody::Progress {
            progress: Some(pct),
            ..
        } = &p.body
        {
            assert!(pct.is_finite() && (0.0..=100.0).contains(pct), "{pct}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match decode_client(&text) {
        Ok(m) => check(&m),
        Err(e) => assert!(!e.message.is_empty()),
    }
    // The HTTP producer path, with fixed and with fuzzed path parts.
    if let Ok(m) = decode_http_producer(&text, "default", "op-1") {
        check(&ClientMessage::Publish(m));
    }
    let mid = (text.len() / 2..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let (a, b) = text.split_at(mid);
    match decode_http_producer(b, a, a) {
        Ok(m) => check(&ClientMessage::Publish(m)),
        Err(e) => assert!(e.code == ErrorCode::BadMessage && !e.message.is_empty()),
    }
});
