//! Tests of the outgoing queue against a small model of the hub's rules.

use super::*;
use crate::wire::ServerMessage;
use proptest::prelude::*;
use serde_json::{json, Value};

fn start_fields(name: &str) -> StartFields {
    StartFields {
        name: name.into(),
        ..Default::default()
    }
}

fn pct(p: f64) -> ProgressFields {
    ProgressFields {
        progress: Some(p),
        ..Default::default()
    }
}

fn drain(o: &mut Outbox, now: u64, id: &mut u64) -> Vec<Value> {
    o.promote_due(now);
    let mut out = Vec::new();
    while let Some(t) = o.poll_transmit(now, id) {
        out.push(serde_json::from_str(&t).unwrap());
    }
    out
}

fn ack_of(msg: &Value, duplicate: bool) -> Ack {
    Ack {
        id: msg["id"].as_u64(),
        namespace: msg["namespace"].as_str().map(str::to_owned),
        operation_id: msg["operation_id"].as_str().unwrap().to_owned(),
        seq: msg["seq"].as_u64().unwrap(),
        offset: Some(1),
        duplicate,
        cancel_requested: false,
    }
}

fn error_for(msg: &Value, code: &str, data: Value) -> ErrorMessage {
    match ServerMessage::from_value(json!({
        "type": "error", "code": code, "message": "x", "id": msg["id"], "data": data
    })) {
        ServerMessage::Error(e) => e,
        m => panic!("{m:?}"),
    }
}

fn seqs(msgs: &[Value]) -> Vec<(String, u64)> {
    msgs.iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// An outbox with operation `name` started and a connection up; the
/// next request id.
fn connected_op(name: &str) -> (Outbox, OpKey, u64) {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", name, start_fields("A")).unwrap();
    o.on_connected();
    (o, k, 1)
}

fn s(t: &str, seq: u64) -> (String, u64) {
    (t.to_owned(), seq)
}

#[test]
fn progress_is_conflated_while_disconnected() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    for i in 0..1_000_000 {
        o.progress(k, pct(i as f64 / 10_000.0)).unwrap();
    }
    o.progress(
        k,
        ProgressFields {
            step: Some("last".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(o.stats().queued, 2, "start + one pending update");
    o.on_connected();
    let mut id = 1;
    let msgs = drain(&mut o, 0, &mut id);
    assert_eq!(
        seqs(&msgs),
        vec![s("operation_started", 1), s("progress_update", 2)]
    );
    assert_eq!(msgs[1]["progress"], 99.9999);
    assert_eq!(msgs[1]["step"], "last");
}

#[test]
fn progress_is_throttled_but_the_final_state_is_not() {
    let (mut o, k, mut id) = connected_op("a");
    o.progress(k, pct(1.0)).unwrap();
    assert_eq!(drain(&mut o, 0, &mut id).len(), 2);
    o.progress(k, pct(2.0)).unwrap();
    assert!(drain(&mut o, 50, &mut id).is_empty(), "throttled");
    assert_eq!(o.next_wakeup(), Some(100));
    o.progress(k, pct(3.0)).unwrap();
    let msgs = drain(&mut o, 100, &mut id);
    assert_eq!(seqs(&msgs), vec![s("progress_update", 3)]);
    assert_eq!(msgs[0]["progress"], 3.0);
    o.progress(k, pct(4.0)).unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    let msgs = drain(&mut o, 101, &mut id);
    assert_eq!(
        seqs(&msgs),
        vec![s("progress_update", 4), s("operation_completed", 5)]
    );
    assert_eq!(o.progress(k, pct(5.0)), Err(ReportError::Finished));
    assert_eq!(
        o.finish(k, ProducerBody::OperationCanceled { reason: None }),
        Err(ReportError::Finished)
    );
}

/// A message-only update still waiting when the operation ends goes out
/// before the end with the known value, as any update does (it went out
/// bare, and the hub refused it: BAD_MESSAGE "needs progress or current").
#[test]
fn a_message_waiting_at_the_end_repeats_the_known_progress() {
    let (mut o, k, mut id) = connected_op("a");
    o.progress(k, pct(10.0)).unwrap();
    assert_eq!(drain(&mut o, 0, &mut id).len(), 2);
    let tail = ProgressFields {
        message: Some("tail".into()),
        ..Default::default()
    };
    o.progress(k, tail.clone()).unwrap();
    o.finish(
        k,
        ProducerBody::OperationFailed {
            error: "exit code 4".into(),
            details: None,
        },
    )
    .unwrap();
    let msgs = drain(&mut o, 1, &mut id);
    assert_eq!(
        seqs(&msgs),
        vec![s("progress_update", 3), s("operation_failed", 4)]
    );
    assert_eq!(msgs[0]["progress"], 10.0);
    assert_eq!(msgs[0]["message"], "tail");

    // Started here with no value yet: the hub's own 0 since the start.
    let k = o.start("default", "b", start_fields("B")).unwrap();
    o.progress(k, tail).unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    let msgs = drain(&mut o, 2, &mut id);
    let update = msgs
        .iter()
        .find(|m| m["type"] == "progress_update")
        .unwrap();
    assert_eq!(update["progress"], 0.0, "{update}");
}

#[test]
fn cumulative_acks_and_done() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.progress(k, pct(10.0)).unwrap();
    o.finish(
        k,
        ProducerBody::OperationFailed {
            error: "x".into(),
            details: None,
        },
    )
    .unwrap();
    o.on_connected();
    let mut id = 1;
    let msgs = drain(&mut o, 0, &mut id);
    assert_eq!(msgs.len(), 3);
    assert!(o.on_ack(&ack_of(&msgs[0], false)).is_empty());
    assert_eq!(o.stats().queued, 2);
    assert_eq!(o.on_ack(&ack_of(&msgs[2], false)), vec![Notice::Done(k)]);
    assert!(o.is_idle());
    let st = o.stats();
    assert_eq!(
        (st.sent, st.acked, st.operations, st.lifecycle_queued),
        (3, 3, 0, 0)
    );
    // The id is free again.
    assert!(o.start("default", "a", start_fields("A")).is_ok());
}

#[test]
fn reconnect_resends_unacked_in_order() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.progress(k, pct(10.0)).unwrap();
    o.on_connected();
    let mut id = 1;
    let first = drain(&mut o, 0, &mut id);
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    assert_eq!(first.len(), 2);
    o.on_disconnected();
    assert!(drain(&mut o, 1, &mut id).is_empty());
    o.on_connected();
    let again = drain(&mut o, 2, &mut id);
    assert_eq!(
        seqs(&again),
        vec![
            s("operation_started", 1),
            s("progress_update", 2),
            s("operation_completed", 3)
        ]
    );
    assert_eq!(o.stats().resent, 2);
}

#[test]
fn known_operations_are_probed_with_their_start_after_reconnect() {
    let (mut o, k, mut id) = connected_op("a");
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    o.progress(k, pct(50.0)).unwrap();
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", 2)]);
    o.on_disconnected();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();

    // Hub kept the operation: the probe is a duplicate, then resend 2, 3.
    let mut kept = Outbox::new(OutboxConfig::default());
    std::mem::swap(&mut kept, &mut o);
    kept.on_connected();
    let m = drain(&mut kept, 1, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("operation_started", 1)],
        "everything else waits"
    );
    kept.on_ack(&ack_of(&m[0], true));
    let m = drain(&mut kept, 1, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("progress_update", 2), s("operation_completed", 3)]
    );
    assert_eq!(kept.stats().resurrected, 0);
}

#[test]
fn lost_operation_is_resurrected_from_the_probe() {
    let (mut o, k, mut id) = connected_op("a");
    o.progress(
        k,
        ProgressFields {
            progress: Some(30.0),
            step: Some("s1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let m = drain(&mut o, 0, &mut id);
    for x in &m {
        o.on_ack(&ack_of(x, false));
    }
    o.progress(k, pct(60.0)).unwrap();
    let m = drain(&mut o, 200, &mut id);
    o.on_ack(&ack_of(&m[0], false)); // seq 3 acked
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_disconnected();
    // The hub restarted empty: the probe creates the operation anew.
    o.on_connected();
    let m = drain(&mut o, 300, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)]);
    o.on_ack(&ack_of(&m[0], false));
    let m = drain(&mut o, 300, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("progress_update", 2), s("operation_completed", 3)]
    );
    assert_eq!(m[0]["progress"], 60.0);
    assert_eq!(m[0]["step"], "s1", "snapshot merges all progress");
    assert_eq!(o.stats().resurrected, 1);
}

#[test]
fn unknown_operation_rebuilds_from_one() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.progress(k, pct(5.0)).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[1], false));
    o.on_disconnected();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)]);
    // A hub that answers the probe with an error (e.g. it rejects it):
    let e = error_for(&m[0], "UNKNOWN_OPERATION", json!({"operation_id": "a"}));
    assert_eq!(o.on_error(&e, 0), None);
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(
        seqs(&m),
        vec![
            s("operation_started", 1),
            s("progress_update", 2),
            s("operation_completed", 3)
        ]
    );
}

#[test]
fn seq_gap_resends_from_expected() {
    let (mut o, k, mut id) = connected_op("a");
    let mut all = drain(&mut o, 0, &mut id);
    for t in [100, 200, 300] {
        o.progress(k, pct(t as f64 / 10.0)).unwrap();
        all.extend(drain(&mut o, t, &mut id));
    }
    assert_eq!(all.len(), 4);
    // Message 3 got lost somewhere; 4 is refused with SEQ_GAP expected 3.
    let e = error_for(
        &all[3],
        "SEQ_GAP",
        json!({"operation_id": "a", "expected": 3}),
    );
    assert_eq!(o.on_error(&e, 300), None);
    let m = drain(&mut o, 300, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("progress_update", 3), s("progress_update", 4)]
    );
    // seqs 1 and 2 are implicitly acked.
    assert_eq!(o.stats().queued, 2);
    // A second SEQ_GAP about a message from before the rewind is ignored.
    let stale = error_for(
        &all[2],
        "SEQ_GAP",
        json!({"operation_id": "a", "expected": 2}),
    );
    assert_eq!(o.on_error(&stale, 300), None);
    assert!(drain(&mut o, 300, &mut id).is_empty());
}

#[test]
fn attached_operation_learns_its_seq() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", "elsewhere");
    o.progress(k, pct(70.0)).unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    // One message at a time: the seqs are shared with other reporters.
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", ATTACH_SEQ)]);
    let e = error_for(
        &m[0],
        "SEQ_GAP",
        json!({"operation_id": "elsewhere", "expected": 6}),
    );
    o.on_error(&e, 0);
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", 6)]);
    assert_eq!(m[0]["progress"], 70.0);
    assert!(o.on_ack(&ack_of(&m[0], false)).is_empty());
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 7)]);
    assert_eq!(o.on_ack(&ack_of(&m[0], false)), vec![Notice::Done(k)]);
}

/// An outbox attached to operation `op` with a completion queued, connected,
/// that has learnt from the hub's SEQ_GAP that the next seq is `expected`.
fn attached_completion(op: &str, expected: u64) -> (Outbox, OpKey, u64) {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", op);
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let gap = error_for(
        &m[0],
        "SEQ_GAP",
        json!({"operation_id": op, "expected": expected}),
    );
    o.on_error(&gap, 0);
    (o, k, id)
}

/// After a reconnect, a duplicate ack for an attached operation's progress
/// update may answer another reporter's message that took the seq (the
/// hub restarted between): the update is sent again past it, since twice
/// is harmless and lost is not.
#[test]
fn an_attached_progress_update_is_resent_past_an_ambiguous_duplicate() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", "shared");
    o.progress(k, pct(30.0)).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let gap = error_for(
        &m[0],
        "SEQ_GAP",
        json!({"operation_id": "shared", "expected": 4}),
    );
    o.on_error(&gap, 0);
    assert_eq!(
        seqs(&drain(&mut o, 0, &mut id)),
        vec![s("progress_update", 4)]
    );
    o.on_disconnected();
    o.on_connected();
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", 4)]);
    o.on_ack(&ack_of(&m[0], true));
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", 5)]);
    assert_eq!(m[0]["progress"], 30.0);
    o.on_ack(&ack_of(&m[0], false));
    assert_eq!(o.stats().queued, 0);
}

/// The protocol wants `progress` or `current` in every progress update: a
/// message-only update repeats the latest value (or 0 before any), so the
/// hub takes it instead of refusing it (run sent every output line without
/// a percentage this way, and the hub dropped them).
#[test]
fn a_message_only_update_carries_the_latest_progress() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "job", start_fields("Job")).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    let note = |text: &str| ProgressFields {
        message: Some(text.into()),
        ..Default::default()
    };
    o.progress(k, note("warming up")).unwrap();
    let m = drain(&mut o, 1_000, &mut id);
    assert_eq!(
        (m[0]["progress"].clone(), m[0]["message"].clone()),
        (json!(0.0), json!("warming up"))
    );
    o.on_ack(&ack_of(&m[0], false));
    o.progress(k, pct(40.0)).unwrap();
    let m = drain(&mut o, 2_000, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    o.progress(k, note("oops")).unwrap();
    let m = drain(&mut o, 3_000, &mut id);
    assert_eq!(
        (m[0]["progress"].clone(), m[0]["message"].clone()),
        (json!(40.0), json!("oops"))
    );
}

/// Two processes attached to one operation learn the same next seq; the
/// one whose message the hub takes second gets a duplicate ack for a
/// message the hub never had from it, and sends it again past the seq the
/// other took, instead of counting it as delivered.
#[test]
fn attached_operation_moves_past_a_seq_another_reporter_took() {
    let (mut o, k, mut id) = attached_completion("shared", 4);
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 4)]);
    // Another reporter's message took seq 4.
    assert!(o.on_ack(&ack_of(&m[0], true)).is_empty(), "not done");
    assert_eq!(o.stats().collisions, 1);
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 5)]);
    assert_eq!(o.on_ack(&ack_of(&m[0], false)), vec![Notice::Done(k)]);
}

/// An operation started here, reported on by another process too (a
/// `report progress` taking a seq): the duplicate ack of a seq this client
/// never sent before is theirs, so its message moves past it instead of
/// being counted as delivered (the end of the operation was lost so).
/// A duplicate of a seq it did send before a reconnect stays its own.
#[test]
fn a_started_operation_moves_past_a_seq_another_producer_took() {
    let (mut o, k, mut id) = connected_op("a");
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    let m = drain(&mut o, 1, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 2)]);
    // Someone else's message took seq 2.
    assert!(o.on_ack(&ack_of(&m[0], true)).is_empty(), "not done");
    assert_eq!(o.stats().collisions, 1);
    let m = drain(&mut o, 2, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 3)]);
    // Its ack is lost with the connection; resent, it is acked as a duplicate.
    o.on_disconnected();
    o.on_connected();
    let m = drain(&mut o, 3, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)], "the probe first");
    o.on_ack(&ack_of(&m[0], true));
    let m = drain(&mut o, 4, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 3)]);
    assert_eq!(
        o.on_ack(&ack_of(&m[0], true)),
        vec![Notice::Done(k)],
        "our own resend"
    );
}

/// A completion sent, then the connection drops before its ack; resent
/// (same seq) after the reconnect, it gets a duplicate ack.
fn completion_resent_after_a_reconnect(id_name: &str) -> (Outbox, OpKey, u64, Value) {
    let (mut o, k, mut id) = attached_completion(id_name, 2);
    assert_eq!(
        seqs(&drain(&mut o, 0, &mut id)),
        vec![s("operation_completed", 2)]
    );
    o.on_disconnected();
    o.on_connected();
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 2)]);
    assert!(
        o.on_ack(&ack_of(&m[0], true)).is_empty(),
        "not taken as ours yet"
    );
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("operation_completed", 3)],
        "sent again past it"
    );
    (o, k, id, m[0].clone())
}

/// The duplicate was our own completion (its first ack was lost): sent
/// again past it, it gets `OPERATION_FINISHED` naming `completed`, which is
/// its ack, not a refusal.
#[test]
fn an_attached_completion_whose_ack_was_lost_is_done_when_the_hub_says_completed() {
    let (mut o, k, _, m) = completion_resent_after_a_reconnect("mine");
    let e = error_for(
        &m,
        "OPERATION_FINISHED",
        json!({"operation_id": "mine", "state": "completed"}),
    );
    assert_eq!(o.on_error(&e, 0), Some(Notice::Done(k)));
    assert!(o.is_idle());
    assert_eq!(o.refusal(k), None);
    assert_eq!(o.stats().lifecycle_queued, 0);
}

/// The duplicate was another process's message on the same operation
/// (its progress took seq 2 while we were away): our completion, sent
/// again past it, is applied. It used to be taken as acked and lost.
#[test]
fn an_attached_completion_is_not_lost_to_another_reporters_duplicate() {
    let (mut o, k, _, m) = completion_resent_after_a_reconnect("shared");
    assert_eq!(o.on_ack(&ack_of(&m, false)), vec![Notice::Done(k)]);
    assert!(o.is_idle());
}

/// Someone else ended the operation differently: that is a refusal.
#[test]
fn an_attached_completion_after_another_ending_is_refused() {
    let (mut o, k, _, m) = completion_resent_after_a_reconnect("other");
    let e = error_for(
        &m,
        "OPERATION_FINISHED",
        json!({"operation_id": "other", "state": "failed"}),
    );
    assert_eq!(
        o.on_error(&e, 0),
        Some(Notice::Dropped(k, "OPERATION_FINISHED".into()))
    );
    assert_eq!(o.refusal(k).unwrap().code, "OPERATION_FINISHED");
}

#[test]
fn attached_unknown_operation_is_dropped() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", "nope");
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let e = error_for(&m[0], "UNKNOWN_OPERATION", json!({"operation_id": "nope"}));
    assert_eq!(
        o.on_error(&e, 0),
        Some(Notice::Dropped(k, "UNKNOWN_OPERATION".into()))
    );
    assert!(o.is_idle());
    assert_eq!(o.stats().lifecycle_queued, 0);
}

#[test]
fn lifecycle_queue_is_bounded_and_says_so() {
    let mut o = Outbox::new(OutboxConfig {
        max_lifecycle: 2,
        ..Default::default()
    });
    let a = o.start("default", "a", start_fields("A")).unwrap();
    o.start("default", "b", start_fields("B")).unwrap();
    assert_eq!(
        o.start("default", "c", start_fields("C")),
        Err(ReportError::QueueFull)
    );
    // Progress is never refused: it is conflated.
    for i in 0..100 {
        o.progress(a, pct(i as f64)).unwrap();
    }
    // The end of a known operation is always taken, however full the queue.
    assert!(o
        .finish(a, ProducerBody::OperationCompleted { details: None })
        .is_ok());
    assert_eq!(o.stats().queue_full, 1);
    assert_eq!(o.stats().lifecycle_queued, 3);
    assert_eq!(
        o.start("default", "d", start_fields("D")),
        Err(ReportError::QueueFull)
    );
}

#[test]
fn the_byte_bound_refuses_new_operations_but_never_their_end() {
    let mut o = Outbox::new(OutboxConfig {
        max_bytes: 10_000,
        ..Default::default()
    });
    let big = StartFields {
        name: "big".into(),
        metadata: Some(json!({"blob": "x".repeat(4_000)})),
        ..Default::default()
    };
    let a = o.start("default", "a", big.clone()).unwrap();
    let b = o.start("default", "b", big.clone()).unwrap();
    assert_eq!(
        o.start("default", "c", big.clone()),
        Err(ReportError::QueueFull)
    );
    assert!(o.stats().bytes <= 10_000, "{:?}", o.stats());
    for k in [a, b] {
        o.finish(
            k,
            ProducerBody::OperationFailed {
                error: "e".repeat(4_000),
                details: None,
            },
        )
        .unwrap();
    }
    assert!(o.stats().bytes > 10_000);
    // Once delivered, the room is back.
    o.on_connected();
    let mut id = 1;
    for m in drain(&mut o, 0, &mut id) {
        o.on_ack(&ack_of(&m, false));
    }
    assert_eq!(o.stats().bytes, 0);
    assert!(o.start("default", "c", big).is_ok());
}

#[test]
fn merged_updates_never_pass_the_message_limit() {
    let limit = 10_000;
    let mut o = Outbox::new(OutboxConfig {
        max_message_bytes: limit,
        ..Default::default()
    });
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.progress(
        k,
        ProgressFields {
            progress: Some(10.0),
            details: Some(json!({"d": "x".repeat(6_000)})),
            ..Default::default()
        },
    )
    .unwrap();
    o.progress(
        k,
        ProgressFields {
            message: Some("m".repeat(6_000)),
            step: Some("copy".into()),
            ..Default::default()
        },
    )
    .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(m.len(), 2);
    let text = serde_json::to_string(&m[1]).unwrap();
    assert!(text.len() <= limit, "{}", text.len());
    // The newest values won; the older details were dropped.
    assert_eq!(m[1]["message"].as_str().unwrap().len(), 6_000);
    assert_eq!(m[1]["step"], "copy");
    assert_eq!(m[1]["progress"], 10.0);
    assert!(m[1].get("details").is_none());
}

#[test]
fn the_hubs_size_refusal_lowers_the_limit_and_the_message_is_cut() {
    let (mut o, k, mut id) = connected_op("a");
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    o.progress(
        k,
        ProgressFields {
            progress: Some(5.0),
            details: Some(json!({"d": "x".repeat(20_000)})),
            ..Default::default()
        },
    )
    .unwrap();
    o.finish(
        k,
        ProducerBody::OperationCompleted {
            details: Some(json!({"d": "y".repeat(20_000)})),
        },
    )
    .unwrap();
    let mut texts = Vec::new();
    o.promote_due(0);
    while let Some(t) = o.poll_transmit(0, &mut id) {
        texts.push(t);
    }
    assert_eq!(texts.len(), 2);
    // The hub (limit 8192) refuses the first, without a request id, and
    // closes the connection.
    let e = match ServerMessage::from_value(json!({
        "type": "error", "code": "MESSAGE_TOO_LARGE", "message": "too large",
        "data": {"limit": 8192, "size": texts[0].len()}
    })) {
        ServerMessage::Error(e) => e,
        m => panic!("{m:?}"),
    };
    assert_eq!(o.on_error(&e, 0), None);
    assert_eq!(o.message_limit(), 8192);
    assert_eq!(o.refusal(k).unwrap().code, "MESSAGE_TOO_LARGE");
    o.on_disconnected();
    o.on_connected();
    let probe = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&probe), vec![s("operation_started", 1)]);
    o.on_ack(&ack_of(&probe[0], true));
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("progress_update", 2), s("operation_completed", 3)]
    );
    for msg in &m {
        assert!(serde_json::to_string(msg).unwrap().len() <= 8192);
        assert!(msg.get("details").is_none(), "{msg}");
    }
    assert_eq!(o.stats().shrunk, 2);
    o.on_ack(&ack_of(&m[1], false));
    assert!(o.is_idle());
}

#[test]
fn a_refused_end_is_reported_and_the_operation_goes_on() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.finish(
        k,
        ProducerBody::OperationCompleted {
            details: Some(json!(3)),
        },
    )
    .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    let e = error_for(&m[1], "BAD_MESSAGE", json!({"operation_id": "a"}));
    assert_eq!(
        o.on_error(&e, 0),
        Some(Notice::TerminalRefused(k, "BAD_MESSAGE".into()))
    );
    assert_eq!(o.stats().lifecycle_rejected, 1);
    assert!(o.is_running(k));
    // The job may report its end again.
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 2)]);
}

#[test]
fn hostile_numbers_from_the_hub_never_panic() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    let att = o.attach("default", "b");
    o.progress(att, pct(3.0)).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let gap = error_for(
        &m[0],
        "SEQ_GAP",
        json!({"operation_id": "a", "expected": u64::MAX}),
    );
    assert_eq!(o.on_error(&gap, 0), None);
    let gap = error_for(
        &m[1],
        "SEQ_GAP",
        json!({"operation_id": "b", "expected": u64::MAX}),
    );
    assert_eq!(o.on_error(&gap, 0), None);
    let mut ack = ack_of(&m[0], true);
    ack.seq = u64::MAX;
    ack.id = None;
    o.on_ack(&ack);
    o.progress(k, pct(4.0)).unwrap();
    for t in (0..5).map(|i| 2_000 * i) {
        for msg in drain(&mut o, t, &mut id) {
            o.on_ack(&ack_of(&msg, false));
        }
    }
    assert!(o.is_running(k));
}

#[test]
fn refused_messages_are_dropped_and_renumbered() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.progress(
        k,
        ProgressFields {
            details: Some(json!({"huge": true})),
            ..Default::default()
        },
    )
    .unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    let e = error_for(&m[1], "BAD_MESSAGE", json!({"operation_id": "a"}));
    assert_eq!(o.on_error(&e, 0), None);
    let stale = error_for(
        &m[2],
        "SEQ_GAP",
        json!({"operation_id": "a", "expected": 2}),
    );
    assert_eq!(o.on_error(&stale, 0), None);
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_completed", 2)]);
    assert_eq!(o.stats().rejected, 1);
}

#[test]
fn a_refused_update_is_kept_with_the_hubs_words() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", "a");
    o.progress(
        k,
        ProgressFields {
            message: Some("hello".into()),
            ..Default::default()
        },
    )
    .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let gap = error_for(
        &m[0],
        "SEQ_GAP",
        json!({"operation_id": "a", "expected": 2}),
    );
    assert_eq!(o.on_error(&gap, 0), None);
    assert_eq!(o.refusal(k), None, "a SEQ_GAP is no refusal");
    let m = drain(&mut o, 0, &mut id);
    let bad = error_for(&m[0], "BAD_MESSAGE", json!({"operation_id": "a"}));
    assert_eq!(o.on_error(&bad, 0), None);
    assert!(o.is_idle(), "the refused update is dropped");
    assert_eq!(
        o.refusal(k).map(|r| r.to_string()),
        Some("BAD_MESSAGE: x".to_owned())
    );
}

#[test]
fn refusals_kept_are_bounded() {
    let mut o = Outbox::new(OutboxConfig::default());
    let mut keys = Vec::new();
    for i in 0..MAX_REFUSALS + 3 {
        let k = o.attach("default", &format!("op{i}"));
        o.on_connected();
        o.finish(k, ProducerBody::OperationCompleted { details: None })
            .unwrap();
        let mut id = 1;
        let m = drain(&mut o, 0, &mut id);
        let e = error_for(
            &m[0],
            "OPERATION_FINISHED",
            json!({"operation_id": format!("op{i}")}),
        );
        assert_eq!(
            o.on_error(&e, 0),
            Some(Notice::Dropped(k, "OPERATION_FINISHED".into()))
        );
        keys.push(k);
    }
    assert_eq!(o.refusal(keys[0]), None, "the oldest are forgotten");
    assert!(o.refusal(*keys.last().unwrap()).is_some());
}

#[test]
fn finished_on_the_hub_drops_the_operation() {
    let (mut o, k, mut id) = connected_op("a");
    let m = drain(&mut o, 0, &mut id);
    o.on_ack(&ack_of(&m[0], false));
    o.progress(k, pct(1.0)).unwrap();
    let m = drain(&mut o, 0, &mut id);
    let e = error_for(&m[0], "OPERATION_FINISHED", json!({"operation_id": "a"}));
    assert_eq!(
        o.on_error(&e, 0),
        Some(Notice::Dropped(k, "OPERATION_FINISHED".into()))
    );
    assert_eq!(o.progress(k, pct(2.0)), Err(ReportError::Finished));
}

#[test]
fn transient_refusal_retries_later() {
    let mut o = Outbox::new(OutboxConfig::default());
    o.start("default", "a", start_fields("A")).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    let e = error_for(&m[0], "STORE_UNAVAILABLE", json!({"operation_id": "a"}));
    o.on_error(&e, 10);
    assert!(drain(&mut o, 500, &mut id).is_empty());
    assert_eq!(o.next_wakeup(), Some(1_010));
    assert_eq!(
        seqs(&drain(&mut o, 1_010, &mut id)),
        vec![s("operation_started", 1)]
    );
}

#[test]
fn cancel_flag_in_acks_is_reported() {
    let (mut o, k, mut id) = connected_op("a");
    let m = drain(&mut o, 0, &mut id);
    let mut ack = ack_of(&m[0], false);
    ack.cancel_requested = true;
    assert_eq!(o.on_ack(&ack), vec![Notice::CancelRequested(k)]);
    assert_eq!(o.on_cancel_requested(None, "a"), Some(k));
}

#[test]
fn in_flight_window_limits_the_wire() {
    let mut o = Outbox::new(OutboxConfig {
        max_in_flight: 2,
        progress_interval_ms: 0,
        ..Default::default()
    });
    let k = o.start("default", "a", start_fields("A")).unwrap();
    o.on_connected();
    let mut id = 1;
    let mut sent = drain(&mut o, 0, &mut id);
    o.progress(k, pct(1.0)).unwrap();
    sent.extend(drain(&mut o, 1, &mut id));
    o.progress(k, pct(2.0)).unwrap();
    assert!(drain(&mut o, 2, &mut id).is_empty());
    assert_eq!(o.next_wakeup(), None, "waits for an ack, not a timer");
    o.on_ack(&ack_of(&sent[0], false));
    assert_eq!(drain(&mut o, 3, &mut id).len(), 1);
}

// ---- model-based property test -------------------------------------------

/// The hub's producer rules, reduced to what the outbox relies on.
#[derive(Default, Clone)]
struct HubModel {
    ops: std::collections::HashMap<String, HubOp>,
}

#[derive(Default, Clone, Debug, PartialEq)]
struct HubOp {
    last_seq: u64,
    progress: Option<f64>,
    step: Option<String>,
    terminal: Option<String>,
}

impl HubModel {
    fn receive(&mut self, text: &str) -> Value {
        let m: Value = serde_json::from_str(text).unwrap();
        let id = m["id"].clone();
        let op_id = m["operation_id"].as_str().unwrap().to_owned();
        let seq = m["seq"].as_u64().unwrap();
        let ty = m["type"].as_str().unwrap();
        let err = |code: &str, data: Value| json!({"type": "error", "code": code, "message": "", "id": id, "data": data});
        let ack = |dup: bool| json!({"type": "ack", "id": id, "namespace": "default", "operation_id": op_id, "seq": seq, "offset": 1, "duplicate": dup});
        match self.ops.get_mut(&op_id) {
            None => {
                if ty != "operation_started" {
                    return err("UNKNOWN_OPERATION", json!({"operation_id": op_id}));
                }
                if seq != 1 {
                    return err("BAD_MESSAGE", json!({"operation_id": op_id}));
                }
                self.ops.insert(
                    op_id.clone(),
                    HubOp {
                        last_seq: 1,
                        ..Default::default()
                    },
                );
                ack(false)
            }
            Some(op) => {
                if seq <= op.last_seq {
                    return ack(true);
                }
                if seq > op.last_seq + 1 {
                    return err(
                        "SEQ_GAP",
                        json!({"operation_id": op_id, "expected": op.last_seq + 1}),
                    );
                }
                if op.terminal.is_some() {
                    return err("OPERATION_FINISHED", json!({"operation_id": op_id}));
                }
                if ty == "operation_started" {
                    return err("BAD_MESSAGE", json!({"operation_id": op_id}));
                }
                op.last_seq = seq;
                match ty {
                    "progress_update" => {
                        if let Some(p) = m["progress"].as_f64() {
                            op.progress = Some(p);
                        }
                        if let Some(s) = m["step"].as_str() {
                            op.step = Some(s.to_owned());
                        }
                    }
                    t => op.terminal = Some(t.to_owned()),
                }
                ack(false)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Act {
    Start,
    Progress(usize, u8, Option<u8>),
    Finish(usize, u8),
    /// Deliver up to n messages and their answers.
    Deliver(u8),
    /// The connection drops: messages and answers in flight are lost.
    Drop,
    /// The hub restarts empty (memory store), the connection drops.
    HubWipe,
    Tick(u16),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Start),
        6 => (0usize..8, 0u8..=100, prop::option::of(0u8..4)).prop_map(|(o, p, s)| Act::Progress(o, p, s)),
        2 => (0usize..8, 0u8..3).prop_map(|(o, k)| Act::Finish(o, k)),
        6 => (1u8..10).prop_map(Act::Deliver),
        1 => Just(Act::Drop),
        1 => Just(Act::HubWipe),
        3 => (0u16..300).prop_map(Act::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the drops and wipes, once the network is calm the hub ends
    /// with every operation the reporter started, in its final state, with
    /// its last progress.
    #[test]
    fn hub_converges_to_the_reporters_truth(acts in prop::collection::vec(act(), 1..150)) {
        let mut o = Outbox::new(OutboxConfig { max_in_flight: 4, ..Default::default() });
        let mut hub = HubModel::default();
        let mut truth: Vec<(OpKey, String, HubOp)> = Vec::new();
        let mut wire: VecDeque<String> = VecDeque::new();
        let mut now = 0u64;
        let mut id = 1u64;
        let mut connected = false;
        let mut done = std::collections::HashSet::new();
        let mut started = 0u32;
        let connect = |o: &mut Outbox, connected: &mut bool| {
            if !*connected { o.on_connected(); *connected = true; }
        };
        for a in acts {
            match a {
                Act::Start => {
                    started += 1;
                    let name = format!("op{started}");
                    // Every other one under a chosen id (its start goes alone).
                    let k = if started.is_multiple_of(2) {
                        o.start_chosen("default", &name, start_fields(&name)).unwrap()
                    } else {
                        o.start("default", &name, start_fields(&name)).unwrap()
                    };
                    truth.push((k, name, HubOp::default()));
                }
                Act::Progress(i, p, st) => {
                    if let Some((k, _, t)) = truth.get_mut(i) {
                        let f = ProgressFields { progress: Some(p as f64), step: st.map(|s| format!("s{s}")), ..Default::default() };
                        if o.progress(*k, f).is_ok() {
                            t.progress = Some(p as f64);
                            if let Some(s) = st { t.step = Some(format!("s{s}")); }
                        } else {
                            prop_assert!(t.terminal.is_some());
                        }
                    }
                }
                Act::Finish(i, kind) => {
                    if let Some((k, _, t)) = truth.get_mut(i) {
                        let (body, ty) = match kind {
                            0 => (ProducerBody::OperationCompleted { details: None }, "operation_completed"),
                            1 => (ProducerBody::OperationFailed { error: "e".into(), details: None }, "operation_failed"),
                            _ => (ProducerBody::OperationCanceled { reason: None }, "operation_canceled"),
                        };
                        if o.finish(*k, body).is_ok() {
                            prop_assert!(t.terminal.is_none());
                            t.terminal = Some(ty.into());
                        } else {
                            prop_assert!(t.terminal.is_some());
                        }
                    }
                }
                Act::Deliver(n) => {
                    connect(&mut o, &mut connected);
                    o.promote_due(now);
                    while let Some(t) = o.poll_transmit(now, &mut id) { wire.push_back(t); }
                    for _ in 0..n {
                        let Some(msg) = wire.pop_front() else { break };
                        match ServerMessage::from_value(hub.receive(&msg)) {
                            ServerMessage::Ack(a) => {
                                for n in o.on_ack(&a) {
                                    if let Notice::Done(k) = n { done.insert(k); }
                                }
                            }
                            ServerMessage::Error(e) => {
                                let n = o.on_error(&e, now);
                                prop_assert!(n.is_none(), "unexpected refusal {:?} for {}", e, msg);
                            }
                            m => prop_assert!(false, "{:?}", m),
                        }
                    }
                }
                Act::Drop => {
                    wire.clear();
                    if connected { o.on_disconnected(); connected = false; }
                }
                Act::HubWipe => {
                    wire.clear();
                    hub = HubModel::default();
                    // Finished and fully acked operations are gone with the
                    // hub's memory; nobody can restore them.
                    truth.retain(|(k, _, _)| !done.contains(k));
                    if connected { o.on_disconnected(); connected = false; }
                }
                Act::Tick(dt) => now += dt as u64,
            }
        }
        // Calm network: run to quiescence.
        connect(&mut o, &mut connected);
        for _ in 0..10_000 {
            now += 100;
            o.promote_due(now);
            while let Some(t) = o.poll_transmit(now, &mut id) { wire.push_back(t); }
            if wire.is_empty() && o.is_idle() { break; }
            while let Some(msg) = wire.pop_front() {
                match ServerMessage::from_value(hub.receive(&msg)) {
                    ServerMessage::Ack(a) => { o.on_ack(&a); }
                    ServerMessage::Error(e) => { prop_assert!(o.on_error(&e, now).is_none(), "{:?}", e); }
                    m => prop_assert!(false, "{:?}", m),
                }
            }
        }
        // Progress of running operations may still be pending (throttle):
        // flush everything by finishing nothing; just require idleness.
        prop_assert!(o.is_idle(), "outbox not drained: {:?}", o.stats());
        prop_assert_eq!(o.stats().lifecycle_queued, 0);
        for (_, name, t) in &truth {
            let h = hub.ops.get(name);
            prop_assert!(h.is_some(), "{} missing on the hub", name);
            let h = h.unwrap();
            prop_assert_eq!(&h.terminal, &t.terminal, "{}", name);
            prop_assert_eq!(h.progress, t.progress, "{}", name);
            prop_assert_eq!(&h.step, &t.step, "{}", name);
        }
    }
}

/// A start never written before, acked as a duplicate: the id belongs to
/// another producer (an earlier run, or a concurrent one). The operation
/// is refused as taken and nothing more is sent for it.
#[test]
fn a_first_start_acked_as_duplicate_is_a_taken_id() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start_chosen("default", "job", start_fields("A")).unwrap();
    o.progress(k, pct(10.0)).unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("operation_started", 1)],
        "a chosen id's start goes alone"
    );
    let notices = o.on_ack(&ack_of(&m[0], true));
    assert_eq!(
        notices,
        vec![Notice::Dropped(k, OPERATION_EXISTS.to_owned())]
    );
    let r = o.refusal(k).expect("the refusal is kept");
    assert_eq!(r.code, OPERATION_EXISTS);
    assert!(r.message.contains("job already exists on the hub"), "{r}");
    // Nothing else is sent.
    assert!(drain(&mut o, 1000, &mut id).is_empty());
    assert!(o.is_idle());
    assert!(!o.is_running(k));
}

/// Our own start, written before a reconnect whose ack was lost, acked as
/// a duplicate on the new connection: ours, kept.
#[test]
fn our_own_start_resent_after_a_lost_ack_is_accepted() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start("default", "job", start_fields("A")).unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)]);
    o.on_disconnected(); // the ack is lost
    o.on_connected();
    let m = drain(&mut o, 1, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)]);
    assert!(o.on_ack(&ack_of(&m[0], true)).is_empty());
    assert!(o.is_running(k));
    assert!(o.refusal(k).is_none());
    o.progress(k, pct(50.0)).unwrap();
    let m = drain(&mut o, 1000, &mut id);
    assert_eq!(seqs(&m), vec![s("progress_update", 2)]);
}

/// `OPERATION_FINISHED` keeps the state the hub says the operation ended in.
#[test]
fn operation_finished_keeps_the_state() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.attach("default", "done");
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    o.on_error(
        &error_for(
            &m[0],
            "OPERATION_FINISHED",
            json!({"operation_id": "done", "state": "completed"}),
        ),
        0,
    );
    let r = o.refusal(k).unwrap();
    assert_eq!(
        (r.code.as_str(), r.state.as_deref()),
        ("OPERATION_FINISHED", Some("completed"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// An id another producer already holds on the hub (running or ended,
    /// with any number of messages): whatever the drops, this client's
    /// start is never taken for its own resend, nothing of ours changes
    /// the other operation, and the refusal says `OPERATION_EXISTS`.
    #[test]
    fn a_taken_id_is_never_reported_into(
        their_seqs in 1u64..6,
        ended in any::<bool>(),
        acts in prop::collection::vec(prop_oneof![
            3 => (0u8..=100).prop_map(Some),
            1 => Just(None),
        ], 0..20),
        drops in prop::collection::vec(any::<bool>(), 0..20),
    ) {
        let mut hub = HubModel::default();
        let theirs = HubOp {
            last_seq: their_seqs,
            progress: Some(7.0),
            step: None,
            terminal: ended.then(|| "operation_completed".to_owned()),
        };
        hub.ops.insert("taken".into(), theirs.clone());
        let mut o = Outbox::new(OutboxConfig { progress_interval_ms: 0, ..Default::default() });
        let k = o.start_chosen("default", "taken", start_fields("mine")).unwrap();
        let mut id = 1;
        let mut now = 0;
        o.on_connected();
        let mut drops = drops.into_iter();
        for a in acts.into_iter().chain([None]) {
            match a {
                Some(p) => { let _ = o.progress(k, pct(p as f64)); }
                None => { let _ = o.finish(k, ProducerBody::OperationCompleted { details: None }); }
            }
            now += 10;
            o.promote_due(now);
            let mut wire = Vec::new();
            while let Some(t) = o.poll_transmit(now, &mut id) { wire.push(t); }
            // (A drop before the start's first answer would make its
            // duplicate ack ambiguous, and so taken as ours.)
            if id > 2 && drops.next().unwrap_or(false) {
                // Written, but the connection dies before any answer.
                o.on_disconnected();
                o.on_connected();
                continue;
            }
            for msg in wire {
                match ServerMessage::from_value(hub.receive(&msg)) {
                    ServerMessage::Ack(a) => { o.on_ack(&a); }
                    ServerMessage::Error(e) => { o.on_error(&e, now); }
                    m => prop_assert!(false, "{:?}", m),
                }
            }
        }
        prop_assert_eq!(hub.ops.get("taken"), Some(&theirs), "the other operation is untouched");
        prop_assert_eq!(o.refusal(k).map(|r| r.code.clone()), Some(OPERATION_EXISTS.to_owned()));
        prop_assert!(!o.is_running(k));
    }
}

/// Once the hub acked a chosen id's start as new, the rest flows.
#[test]
fn a_chosen_id_sends_the_rest_once_its_start_is_acked() {
    let mut o = Outbox::new(OutboxConfig::default());
    let k = o.start_chosen("default", "job", start_fields("A")).unwrap();
    o.progress(k, pct(10.0)).unwrap();
    o.finish(k, ProducerBody::OperationCompleted { details: None })
        .unwrap();
    o.on_connected();
    let mut id = 1;
    let m = drain(&mut o, 0, &mut id);
    assert_eq!(seqs(&m), vec![s("operation_started", 1)]);
    assert!(o.on_ack(&ack_of(&m[0], false)).is_empty());
    let m = drain(&mut o, 1, &mut id);
    assert_eq!(
        seqs(&m),
        vec![s("progress_update", 2), s("operation_completed", 3)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the updates (text and details of any size), reconnects and
    /// a hub that forgot the operation (snapshot re-registration), no
    /// message sent is longer than the limit, and the end always goes out.
    #[test]
    fn no_message_passes_the_size_limit(
        updates in prop::collection::vec((0usize..3_000, 0usize..3_000, 0usize..3_000, any::<bool>()), 1..30),
        wipe_at in 0usize..30,
        end_text in 0usize..6_000,
    ) {
        let limit = 8_192;
        let mut o = Outbox::new(OutboxConfig { max_message_bytes: limit, progress_interval_ms: 0, ..Default::default() });
        let k = o.start("default", "a", start_fields("A")).unwrap();
        o.on_connected();
        let mut id = 1;
        let mut now = 0;
        // Every ack says "new": a first start is new, and a probe after a
        // reconnect acked as new means the hub lost the operation.
        let exchange = |o: &mut Outbox, now: u64, id: &mut u64| -> Result<(), TestCaseError> {
            o.promote_due(now);
            let mut sent = Vec::new();
            while let Some(t) = o.poll_transmit(now, id) {
                prop_assert!(t.len() <= limit, "{} bytes", t.len());
                sent.push(serde_json::from_str::<Value>(&t).unwrap());
            }
            for m in sent {
                o.on_ack(&ack_of(&m, false));
            }
            Ok(())
        };
        for (i, (a, b, c, send)) in updates.into_iter().enumerate() {
            now += 1;
            o.progress(k, ProgressFields {
                progress: Some(i as f64),
                step: (a > 0).then(|| "s".repeat(a.min(256))),
                message: (b > 0).then(|| "m".repeat(b)),
                details: (c > 0).then(|| json!({"d": "x".repeat(c)})),
                ..Default::default()
            }).unwrap();
            if send { exchange(&mut o, now, &mut id)?; }
            if i == wipe_at {
                o.on_disconnected();
                o.on_connected();
                // The probe is acked as new: the hub lost the operation.
                exchange(&mut o, now, &mut id)?;
                exchange(&mut o, now, &mut id)?;
            }
        }
        o.finish(k, ProducerBody::OperationFailed {
            error: "e".repeat(end_text),
            details: Some(json!({"d": "z".repeat(end_text * 2)})),
        }).unwrap();
        for _ in 0..3 { now += 1; exchange(&mut o, now, &mut id)?; }
        prop_assert!(o.is_idle(), "{:?}", o.stats());
    }

    /// Acks and SEQ_GAPs with any numbers never panic the outbox.
    #[test]
    fn any_numbers_from_the_hub_are_survived(
        answers in prop::collection::vec((any::<u64>(), any::<bool>(), any::<bool>()), 1..40),
    ) {
        let mut o = Outbox::new(OutboxConfig::default());
        let k = o.start("default", "a", start_fields("A")).unwrap();
        o.attach("default", "b");
        o.on_connected();
        let mut id = 1;
        for (i, (n, dup, gap)) in answers.into_iter().enumerate() {
            o.progress(k, pct((i % 100) as f64)).unwrap();
            let sent = drain(&mut o, i as u64 * 200, &mut id);
            for (j, m) in sent.iter().enumerate() {
                if gap {
                    let e = error_for(m, "SEQ_GAP", json!({"operation_id": m["operation_id"], "expected": n.wrapping_add(j as u64)}));
                    o.on_error(&e, i as u64 * 200);
                } else {
                    let mut a = ack_of(m, dup);
                    a.seq = n.wrapping_add(j as u64);
                    o.on_ack(&a);
                }
            }
        }
        let _ = o.stats();
    }
}
