//! Namespace state-machine tests (time passed in; no sockets).

use super::*;
use hub_proto::{decode_client, ClientMessage};
use proptest::prelude::*;

const P: Producer = Producer { conn: 1 };

/// Another producer connection (another subject's, say).
const OTHER: Producer = Producer { conn: 2 };

fn msg(text: &str) -> ProducerMessage {
    match decode_client(text).unwrap() {
        ClientMessage::Publish(p) => p,
        other => panic!("not a producer message: {other:?}"),
    }
}

fn start(id: &str) -> ProducerMessage {
    msg(&format!(
        r#"{{"type":"operation_started","operation_id":"{id}","seq":1,"name":"Job {id}","total":200}}"#
    ))
}

fn progress(id: &str, seq: u64, pct: f64) -> ProducerMessage {
    msg(&format!(
        r#"{{"type":"progress_update","operation_id":"{id}","seq":{seq},"progress":{pct}}}"#
    ))
}

fn ns() -> (Namespace, CoreConfig) {
    (
        Namespace::new("default", "ep"),
        CoreConfig {
            stall_timeout_ms: 1_000,
            finished_retention_ms: 10_000,
            ..Default::default()
        },
    )
}

fn apply(
    n: &mut Namespace,
    m: ProducerMessage,
    now: u64,
    cfg: &CoreConfig,
) -> Result<Applied, ProtoError> {
    n.apply(m, &P, now, cfg, || "gen-1".into())
}

#[test]
fn offsets_and_acks() {
    let (mut n, cfg) = ns();
    let a = apply(&mut n, start("a"), 0, &cfg).unwrap();
    assert_eq!((a.ack.offset, a.ack.seq, a.ack.duplicate), (1, 1, false));
    let b = apply(&mut n, progress("a", 2, 10.0), 10, &cfg).unwrap();
    assert_eq!(b.ack.offset, 2);
    assert_eq!(b.events[0].state.progress, Some(10.0));
    // Units derive the percentage.
    let c = apply(
        &mut n,
        msg(r#"{"type":"progress_update","operation_id":"a","seq":3,"current":50}"#),
        20,
        &cfg,
    )
    .unwrap();
    assert_eq!(c.events[0].state.progress, Some(25.0));
    assert_eq!(n.last_offset(), 3);
}

#[test]
fn duplicates_are_reacked_with_the_original_offset() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, start("b"), 0, &cfg).unwrap();
    apply(&mut n, progress("a", 2, 5.0), 1, &cfg).unwrap();
    let d = apply(&mut n, progress("a", 2, 99.0), 2, &cfg).unwrap();
    assert!(d.events.is_empty());
    assert!(d.ack.duplicate);
    assert_eq!(d.ack.offset, 3);
    let d = apply(&mut n, start("a"), 3, &cfg).unwrap();
    assert!(d.ack.duplicate);
    assert_eq!(d.ack.offset, 1);
    assert_eq!(n.last_offset(), 3);
    assert_eq!(n.operation("a").unwrap().state.progress, Some(5.0));
}

#[test]
fn errors_change_nothing() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    let before = n.operation("a").unwrap().clone();
    let e = apply(&mut n, progress("a", 5, 1.0), 1, &cfg).unwrap_err();
    assert_eq!(e.code, ErrorCode::SeqGap);
    assert_eq!(e.data.as_ref().unwrap()["expected"], 2);
    assert_eq!(e.data.as_ref().unwrap()["operation_id"], "a");
    let e = apply(&mut n, progress("zz", 2, 1.0), 1, &cfg).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownOperation);
    assert_eq!(n.last_offset(), 1);
    assert_eq!(n.operation("a").unwrap(), &before);
    // Another subject may report on it: the protocol forbids only what
    // the token's roles and namespaces do not allow (checked at the door).
    let ok = n
        .apply(progress("a", 2, 1.0), &OTHER, 1, &cfg, || unreachable!())
        .unwrap();
    assert_eq!(ok.ack.offset, 2);
}

#[test]
fn terminal_states_are_final() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    let c = apply(
        &mut n,
        msg(r#"{"type":"operation_completed","operation_id":"a","seq":2}"#),
        5,
        &cfg,
    )
    .unwrap();
    assert_eq!(c.events[0].state.state, OperationStatus::Completed);
    assert_eq!(c.events[0].state.progress, Some(100.0));
    assert_eq!(c.events[0].state.current, Some(200.0));
    assert_eq!(c.events[0].state.finished_at, Some(5));
    assert_eq!(c.events[0].state.eta_seconds, None);
    let e = apply(&mut n, progress("a", 3, 1.0), 6, &cfg).unwrap_err();
    assert_eq!(e.code, ErrorCode::OperationFinished);
    // A resend of an accepted seq is still just re-acked.
    assert!(
        apply(
            &mut n,
            msg(r#"{"type":"operation_completed","operation_id":"a","seq":2}"#),
            7,
            &cfg
        )
        .unwrap()
        .ack
        .duplicate
    );
}

/// Past the finished-retention window an operation is dropped, but its id
/// stays finished: resends are re-acked (the offset is left to the caller's
/// log), anything new is `OPERATION_FINISHED`, a start is not a new
/// operation, and only the owner may ask.
#[test]
fn a_dropped_operation_stays_finished() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, progress("a", 2, 50.0), 1, &cfg).unwrap();
    let done = msg(r#"{"type":"operation_completed","operation_id":"a","seq":3}"#);
    apply(&mut n, done.clone(), 2, &cfg).unwrap();
    let t = n.tick(2 + cfg.finished_retention_ms, &cfg);
    assert_eq!(t.removed, vec!["a".to_string()]);
    assert!(n.operation("a").is_none());
    let before = n.last_offset();
    let again = apply(&mut n, done, 20_000, &cfg).unwrap();
    assert!(again.ack.duplicate && !again.offset_remembered);
    assert_eq!((again.ack.seq, again.ack.offset), (3, 3));
    let restart = apply(&mut n, start("a"), 20_001, &cfg).unwrap();
    assert!(restart.ack.duplicate && restart.events.is_empty());
    assert_eq!(restart.ack.seq, 1);
    let e = apply(&mut n, progress("a", 4, 60.0), 20_002, &cfg).unwrap_err();
    assert_eq!(e.code, ErrorCode::OperationFinished);
    let e = n.request_cancel("a", "bob", 20_002).unwrap_err();
    assert_eq!(e.code, ErrorCode::OperationFinished, "a cancel too");
    // Another subject's resend is re-acked too; nothing is appended.
    let again = n
        .apply(progress("a", 2, 1.0), &OTHER, 20_003, &cfg, || "x".into())
        .unwrap();
    assert!(again.ack.duplicate && again.events.is_empty());
    assert_eq!(n.last_offset(), before, "nothing appended");
    assert!(n.operation("a").is_none(), "no new operation");
}

#[test]
fn generated_ids_and_http_seq() {
    let (mut n, cfg) = ns();
    let a = apply(
        &mut n,
        msg(r#"{"type":"operation_started","seq":1,"name":"x"}"#),
        0,
        &cfg,
    )
    .unwrap();
    assert_eq!(a.ack.operation_id, "gen-1");
    let mut m = progress("gen-1", 2, 1.0);
    m.seq = None;
    assert_eq!(apply(&mut n, m, 1, &cfg).unwrap().ack.seq, 2);
}

#[test]
fn a_stalled_operations_eta_has_grown_with_its_silence() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, progress("a", 2, 10.0), 600, &cfg).unwrap();
    let r = apply(&mut n, progress("a", 3, 20.0), 1_200, &cfg).unwrap();
    let (rate, eta) = (&r.events[0].state.rate, &r.events[0].state.eta_seconds);
    let (rate, eta) = (rate.expect("estimating"), eta.expect("estimating"));
    let t = n.tick(2_200, &cfg);
    let stalled = &t.events[0].state;
    assert_eq!(stalled.state, OperationStatus::Stalled);
    assert!(stalled.rate.expect("decayed rate") < rate, "{stalled:?}");
    assert!(stalled.eta_seconds.expect("grown ETA") > eta, "{stalled:?}");
    let r = apply(&mut n, progress("a", 4, 30.0), 2_500, &cfg).unwrap();
    assert!(
        r.events[1].state.eta_seconds.is_some(),
        "back once it speaks"
    );
}

#[test]
fn stall_resume_and_hub_cancel() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    assert!(n.tick(999, &cfg).events.is_empty());
    assert_eq!(n.next_deadline(&cfg), Some(1_000));
    let t = n.tick(1_000, &cfg);
    assert_eq!(t.events.len(), 1);
    assert_eq!(t.events[0].event_type, EventType::OperationStalled);
    assert_eq!(t.events[0].offset, 2);
    assert!(n.tick(5_000, &cfg).events.is_empty(), "stalled once only");
    let r = apply(&mut n, progress("a", 2, 50.0), 6_000, &cfg).unwrap();
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[0].event_type, EventType::OperationResumed);
    assert_eq!(r.events[0].offset, 3);
    assert_eq!(r.events[1].offset, 4);
    assert_eq!(r.ack.offset, 4);
    assert_eq!(r.events[1].state.state, OperationStatus::Running);
    // Cancel: the producer is told; silent past the stall timeout -> canceled by the hub.
    let c = n.request_cancel("a", "bob", 6_500).unwrap();
    assert_eq!(c.owner_conn, Some(1));
    assert!(c.state.cancel_requested);
    let ack = apply(&mut n, progress("a", 3, 51.0), 6_600, &cfg).unwrap();
    assert!(ack.ack.cancel_requested);
    let notice = ack.cancel.unwrap();
    assert_eq!(notice.requested_by, "bob");
    // The stall and the hub's cancel fall due together: the operation is
    // stalled first, then canceled, so viewers see why.
    let t = n.tick(7_600, &cfg);
    assert_eq!(t.events.len(), 2);
    assert_eq!(t.events[0].event_type, EventType::OperationStalled);
    assert_eq!(t.events[1].offset, t.events[0].offset + 1);
    let t = TickOutput {
        events: t.events[1..].to_vec(),
        ..t
    };
    assert_eq!(t.events[0].event_type, EventType::OperationCanceled);
    assert_eq!(t.events[0].state.state, OperationStatus::Canceled);
    assert_eq!(
        t.events[0].state.message.as_deref(),
        Some("canceled by the hub: the producer left without answering the cancel request"),
        "the reason becomes the state's message, as for a producer's cancel"
    );
    assert_eq!(
        n.request_cancel("a", "bob", 7_700).unwrap_err().code,
        ErrorCode::OperationFinished
    );
    // Retention.
    let t = n.tick(7_600 + 10_000, &cfg);
    assert_eq!(t.removed, vec!["a".to_string()]);
    assert!(n.operation("a").is_none());
}

#[test]
fn a_producer_silent_past_the_abandon_timeout_has_its_operation_failed() {
    let (mut n, mut cfg) = ns();
    cfg.abandon_timeout_ms = 60_000;
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, progress("a", 2, 40.0), 500, &cfg).unwrap();
    assert_eq!(
        n.tick(1_500, &cfg).events[0].event_type,
        EventType::OperationStalled
    );
    assert_eq!(
        n.next_deadline(&cfg),
        Some(60_500),
        "the abandonment is due"
    );
    assert!(n.tick(60_499, &cfg).events.is_empty());
    let t = n.tick(60_500, &cfg);
    assert_eq!(t.events.len(), 1);
    let e = &t.events[0];
    assert_eq!(e.event_type, EventType::OperationFailed);
    assert_eq!(e.offset, 4);
    assert_eq!(e.state.state, OperationStatus::Failed);
    assert_eq!(e.state.finished_at, Some(60_500));
    assert_eq!(
        e.state.progress,
        Some(40.0),
        "the last reported progress stays"
    );
    assert_eq!((e.state.rate, e.state.eta_seconds), (None, None));
    let error = e.state.error.as_deref().unwrap();
    assert!(
        error.starts_with("abandoned: no word from the producer for 60 s"),
        "{error}"
    );
    assert_eq!(
        e.state.details.as_ref().unwrap().to_map()["reason"],
        "abandoned"
    );
    // Final: the producer coming back is told so; a resend is still re-acked.
    let late = apply(&mut n, progress("a", 3, 41.0), 61_000, &cfg).unwrap_err();
    assert_eq!(late.code, ErrorCode::OperationFinished);
    assert!(
        apply(&mut n, progress("a", 2, 40.0), 61_000, &cfg)
            .unwrap()
            .ack
            .duplicate
    );
    // And the place it held is freed after the retention window.
    assert_eq!(n.tick(60_500 + 10_000, &cfg).removed, vec!["a".to_string()]);
}

#[test]
fn after_a_restart_silence_counts_from_the_restart() {
    let (mut n, mut cfg) = ns();
    cfg.abandon_timeout_ms = 5_000;
    cfg.finished_retention_ms = 1_000_000;
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, start("done"), 0, &cfg).unwrap();
    let end = msg(r#"{"type":"operation_completed","operation_id":"done","seq":2}"#);
    apply(&mut n, end, 10, &cfg).unwrap();
    n.request_cancel("a", "bob", 20).unwrap();
    let ops: Vec<Operation> = n.operations().cloned().collect();
    // The hub was down from 20 to 60,000.
    let mut r = Namespace::restore("default", "ep", n.last_offset(), ops, []);
    r.restarted(60_000);
    assert_eq!(
        r.next_deadline(&cfg),
        Some(61_000),
        "one stall window from the restart"
    );
    assert!(r.tick(60_999, &cfg).events.is_empty());
    let t = r.tick(61_000, &cfg);
    let kinds: Vec<EventType> = t.events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        kinds,
        [EventType::OperationStalled, EventType::OperationCanceled],
        "stalled, then the pending cancel, made by the hub"
    );
    let done = r.operation("done").unwrap();
    assert_eq!(
        done.last_producer_at, 10,
        "finished operations keep their times"
    );
}

#[test]
fn an_abandon_timeout_of_zero_never_fails_anything() {
    let (mut n, mut cfg) = ns();
    cfg.abandon_timeout_ms = 0;
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    n.tick(1_000, &cfg);
    assert_eq!(
        n.next_deadline(&cfg),
        None,
        "stalled, and nothing more is due"
    );
    assert!(n.tick(u64::MAX / 2, &cfg).events.is_empty());
    assert_eq!(
        n.operation("a").unwrap().state.state,
        OperationStatus::Stalled
    );
}

#[test]
fn pending_cancel_is_delivered_to_the_next_connection() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    // The owner (conn 1) is away: the server does not mark it delivered.
    let c = n.request_cancel("a", "bob", 10).unwrap();
    assert_eq!(c.owner_conn, Some(1));
    let p2 = Producer { conn: 2 };
    let r = n
        .apply(progress("a", 2, 1.0), &p2, 20, &cfg, || unreachable!())
        .unwrap();
    assert_eq!(r.cancel.unwrap().conn, 2);
    let r = n
        .apply(progress("a", 3, 2.0), &p2, 30, &cfg, || unreachable!())
        .unwrap();
    assert!(r.cancel.is_none(), "delivered once per connection");
    let r = apply(
        &mut n,
        msg(r#"{"type":"operation_canceled","operation_id":"a","seq":4,"reason":"asked"}"#),
        40,
        &cfg,
    )
    .unwrap();
    assert_eq!(r.events[0].state.state, OperationStatus::Canceled);
    // The cancel was pending when this message came: its ack says so,
    // and so does a re-ack of it.
    assert!(r.ack.cancel_requested);
    let again = msg(r#"{"type":"operation_canceled","operation_id":"a","seq":4,"reason":"asked"}"#);
    let r = apply(&mut n, again, 50, &cfg).unwrap();
    assert!(r.ack.duplicate && r.ack.cancel_requested);
}

#[test]
fn operation_limit() {
    let (mut n, mut cfg) = ns();
    cfg.max_operations_per_namespace = 1;
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    assert_eq!(
        apply(&mut n, start("b"), 0, &cfg).unwrap_err().code,
        ErrorCode::RateLimited
    );
    assert_eq!(n.last_offset(), 1);
}

#[test]
fn persisted_record_round_trips() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    apply(&mut n, progress("a", 2, 30.0), 100, &cfg).unwrap();
    let op = n.operation("a").unwrap();
    let bytes = serde_json::to_vec(op).unwrap();
    let back: Operation = serde_json::from_slice(&bytes).unwrap();
    let mut r = Namespace::restore("default", "ep", n.last_offset(), [back], []);
    let d = apply(&mut r, progress("a", 2, 30.0), 200, &cfg).unwrap();
    assert!(d.ack.duplicate);
    assert_eq!(d.ack.offset, 2);
    assert_eq!(
        apply(&mut r, progress("a", 3, 40.0), 300, &cfg)
            .unwrap()
            .ack
            .offset,
        3
    );
}

/// A restored namespace keeps the tombstones it is given: the dropped id
/// stays finished across a restart, and the next drop trims to the cap.
#[test]
fn tombstones_survive_a_restore() {
    let (mut n, mut cfg) = ns();
    cfg.max_operations_per_namespace = 2;
    for id in ["a", "b"] {
        apply(&mut n, start(id), 0, &cfg).unwrap();
        let done = format!(r#"{{"type":"operation_completed","operation_id":"{id}","seq":2}}"#);
        apply(&mut n, msg(&done), 1, &cfg).unwrap();
    }
    let t = n.tick(1 + cfg.finished_retention_ms, &cfg);
    assert_eq!(t.removed, vec!["a".to_string(), "b".to_string()]);
    assert!(t.evicted.is_empty());
    let kept: Vec<(String, Tombstone)> = ["a", "b"]
        .iter()
        .map(|id| (id.to_string(), n.tombstone(id).unwrap().clone()))
        .collect();
    let mut r = Namespace::restore("default", "ep", n.last_offset(), [], kept);
    let again = apply(&mut r, start("a"), 50_000, &cfg).unwrap();
    assert!(again.ack.duplicate && again.events.is_empty());
    let e = apply(&mut r, progress("b", 3, 10.0), 50_001, &cfg).unwrap_err();
    assert_eq!(e.code, ErrorCode::OperationFinished);
    assert_eq!(r.last_offset(), 4, "nothing new was appended");
    // A third drop pushes out the oldest tombstone, whose id is free again.
    apply(&mut r, start("c"), 50_002, &cfg).unwrap();
    let done = msg(r#"{"type":"operation_completed","operation_id":"c","seq":2}"#);
    apply(&mut r, done, 50_003, &cfg).unwrap();
    let t = r.tick(50_003 + cfg.finished_retention_ms, &cfg);
    assert_eq!(
        (t.removed, t.evicted),
        (vec!["c".to_string()], vec!["a".to_string()])
    );
    assert!(r.tombstone("a").is_none());
    assert!(
        !apply(&mut r, start("a"), 60_000, &cfg)
            .unwrap()
            .ack
            .duplicate
    );
}

#[derive(Clone, Debug)]
enum Step {
    Start(u8),
    Progress(u8, u8, f64),
    Resend(u8, u8),
    Finish(u8, u8, u8),
    Cancel(u8),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4).prop_map(Step::Start),
        (0u8..4, 0u8..3, 0.0f64..=100.0).prop_map(|(o, d, p)| Step::Progress(o, d, p)),
        (0u8..4, 0u8..5).prop_map(|(o, s)| Step::Resend(o, s)),
        (0u8..4, 0u8..3, 0u8..3).prop_map(|(o, d, k)| Step::Finish(o, d, k)),
        (0u8..4).prop_map(Step::Cancel),
        (0u16..3000).prop_map(Step::Tick),
    ]
}

proptest! {
    /// Offsets are contiguous, rejected messages change nothing, terminal
    /// states are final and every accepted seq is re-acked with its offset.
    #[test]
    fn invariants_hold(steps in prop::collection::vec(step(), 1..120)) {
        let (mut n, cfg) = ns();
        let mut now = 0u64;
        let mut next_seq = [1u64; 4];
        let mut acked: Vec<(String, u64, u64)> = Vec::new();
        let mut finished = [false; 4];
        for s in steps {
            now += 7;
            let before = n.last_offset();
            let result = match s {
                Step::Start(o) => Some(apply(&mut n, start(&format!("o{o}")), now, &cfg)),
                Step::Progress(o, d, p) => {
                    let seq = next_seq[o as usize] + 1 + u64::from(d == 2);
                    Some(apply(&mut n, progress(&format!("o{o}"), seq.saturating_sub(u64::from(d == 1)), p), now, &cfg))
                }
                Step::Resend(o, s) => {
                    let seq = u64::from(s) + 1;
                    Some(apply(&mut n, if seq == 1 { start(&format!("o{o}")) } else { progress(&format!("o{o}"), seq, 1.0) }, now, &cfg))
                }
                Step::Finish(o, d, k) => {
                    let seq = next_seq[o as usize] + 1 + u64::from(d == 2);
                    let ty = ["operation_completed", "operation_failed", "operation_canceled"][k as usize];
                    Some(apply(&mut n, msg(&format!(r#"{{"type":"{ty}","operation_id":"o{o}","seq":{seq},"error":"e"}}"#)), now, &cfg))
                }
                Step::Cancel(o) => { let _ = n.request_cancel(&format!("o{o}"), "v", now); None }
                Step::Tick(dt) => {
                    now += u64::from(dt);
                    let t = n.tick(now, &cfg);
                    for (i, e) in t.events.iter().enumerate() {
                        prop_assert_eq!(e.offset, before + 1 + i as u64);
                    }
                    prop_assert_eq!(n.last_offset(), before + t.events.len() as u64);
                    for e in &t.events {
                        if e.event_type == EventType::OperationCanceled {
                            let i: usize = e.operation_id[1..].parse().unwrap();
                            prop_assert!(!finished[i]);
                            finished[i] = true;
                        }
                    }
                    for id in &t.removed {
                        // Dropped after retention, the id stays finished.
                        let i: usize = id[1..].parse().unwrap();
                        prop_assert!(finished[i], "only finished operations are dropped");
                    }
                    None
                }
            };
            if let Some(r) = result {
                match r {
                    Ok(a) => {
                        for (i, e) in a.events.iter().enumerate() {
                            prop_assert_eq!(e.offset, before + 1 + i as u64);
                        }
                        prop_assert_eq!(n.last_offset(), before + a.events.len() as u64);
                        if a.ack.duplicate {
                            prop_assert!(a.events.is_empty());
                            // (Past retention the caller's log has the offset.)
                            if let Some((_, _, off)) = acked.iter().find(|(o, s, _)| *o == a.ack.operation_id && *s == a.ack.seq).filter(|_| a.offset_remembered) {
                                prop_assert_eq!(*off, a.ack.offset);
                            }
                        } else {
                            let i: usize = a.ack.operation_id[1..].parse().unwrap();
                            prop_assert!(!finished[i], "accepted a message after a terminal state");
                            next_seq[i] = a.ack.seq;
                            acked.retain(|(o, s, _)| !(*o == a.ack.operation_id && *s >= a.ack.seq));
                            acked.push((a.ack.operation_id.clone(), a.ack.seq, a.ack.offset));
                            if a.events.last().unwrap().state.state.is_terminal() {
                                finished[i] = true;
                            }
                        }
                    }
                    Err(_) => prop_assert_eq!(n.last_offset(), before),
                }
            }
        }
    }
}

/// The hub cancels only for a producer that is gone: one still connected
/// is left to answer however long it takes; once it leaves, the hub
/// cancels a stall timeout after it left.
#[test]
fn the_hub_cancels_only_once_the_producer_has_been_gone_a_stall_timeout() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("a"), 0, &cfg).unwrap();
    n.request_cancel("a", "bob", 100).unwrap();
    let open = |_: u64| None;
    assert!(n
        .tick_with(1_100, &cfg, &open)
        .events
        .iter()
        .all(|e| e.event_type != EventType::OperationCanceled));
    assert_eq!(
        n.next_deadline(&cfg),
        Some(2_100),
        "checked again a stall timeout later"
    );
    assert!(n
        .tick_with(50_000, &cfg, &open)
        .events
        .iter()
        .all(|e| e.event_type != EventType::OperationCanceled));
    // The connection closed at 60,000.
    let left = |_: u64| Some(60_000);
    assert!(n.tick_with(60_999, &cfg, &left).events.is_empty());
    let t = n.tick_with(61_000, &cfg, &left);
    assert_eq!(t.events.len(), 1);
    assert_eq!(t.events[0].event_type, EventType::OperationCanceled);
    // The producer that answers, still connected, is accepted.
    let (mut n, cfg) = ns();
    apply(&mut n, start("b"), 0, &cfg).unwrap();
    n.request_cancel("b", "bob", 100).unwrap();
    n.tick_with(5_000, &cfg, &open);
    let done = msg(r#"{"type":"operation_canceled","operation_id":"b","seq":2,"reason":"asked"}"#);
    let ack = apply(&mut n, done, 5_500, &cfg).unwrap();
    assert_eq!(
        ack.events.last().unwrap().state.state,
        OperationStatus::Canceled
    );
}

/// Progress and units never disagree in the state: whichever a report
/// leaves out follows the other through the total.
#[test]
fn progress_and_units_follow_each_other_through_the_total() {
    let (mut n, cfg) = ns();
    apply(&mut n, start("u"), 0, &cfg).unwrap(); // total 200
    let units = msg(r#"{"type":"progress_update","operation_id":"u","seq":2,"current":50}"#);
    let s = &apply(&mut n, units, 10, &cfg).unwrap().events[0].state;
    assert_eq!((s.progress, s.current), (Some(25.0), Some(50.0)));
    let s = &apply(&mut n, progress("u", 3, 80.0), 20, &cfg)
        .unwrap()
        .events[0]
        .state;
    assert_eq!((s.progress, s.current), (Some(80.0), Some(160.0)));
    // Both given: both as reported.
    let both =
        msg(r#"{"type":"progress_update","operation_id":"u","seq":4,"progress":90,"current":7}"#);
    let s = &apply(&mut n, both, 30, &cfg).unwrap().events[0].state;
    assert_eq!((s.progress, s.current), (Some(90.0), Some(7.0)));
    // No total: nothing to relate them by, units stay unknown.
    let untotalled = msg(r#"{"type":"operation_started","operation_id":"v","seq":1,"name":"v"}"#);
    apply(&mut n, untotalled, 40, &cfg).unwrap();
    let s = &apply(&mut n, progress("v", 2, 40.0), 50, &cfg)
        .unwrap()
        .events[0]
        .state;
    assert_eq!((s.progress, s.current), (Some(40.0), None));
}
