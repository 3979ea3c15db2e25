//! The core state machine fed an arbitrary sequence of producer messages
//! (structured, or arbitrary text through the decoder), cancels and ticks.
//! Invariants: offsets are contiguous; a rejected message changes nothing;
//! terminal states are final; an ack's offset exists; a resend is re-acked
//! without new events.
#![no_main]

use arbitrary::Arbitrary;
use hub_core::{CoreConfig, Namespace, Producer};
use hub_proto::{decode_client, ClientMessage, OperationState, ProducerMessage};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::collections::HashMap;

#[derive(Arbitrary, Debug)]
enum Kind {
    Started,
    Progress,
    Completed,
    Failed,
    Canceled,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A structured producer message for operation `op % 4`, `seq` near the expected one.
    Message {
        kind: Kind,
        op: u8,
        seq_delta: i8,
        progress: Option<f64>,
        current: Option<f64>,
        total: Option<f64>,
        /// Sent from a second producer connection.
        other_conn: bool,
    },
    /// Arbitrary text through the decoder.
    Raw(String),
    /// A viewer cancel.
    Cancel { op: u8 },
    /// Time passes.
    Tick { dt: u16 },
}

fn op_name(op: u8) -> String {
    format!("o{}", op % 4)
}

/// Every operation's state, in a stable order, to compare before and after.
fn snapshot(n: &Namespace) -> Vec<OperationState> {
    let mut v: Vec<OperationState> = n.operations().map(|o| o.state.clone()).collect();
    v.sort_by(|a, b| a.operation_id.cmp(&b.operation_id));
    v
}

fuzz_target!(|steps: Vec<Step>| {
    let cfg = CoreConfig {
        stall_timeout_ms: 1_000,
        finished_retention_ms: 5_000,
        abandon_timeout_ms: 20_000,
        max_operations_per_namespace: 6,
        seq_memory: 8,
    };
    let mut n = Namespace::new("default", "ep");
    let mut now = 1_000u64;
    let mut next_seq: HashMap<String, u64> = HashMap::new();
    let mut finished: HashMap<String, bool> = HashMap::new();
    let mut dropped: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for step in steps.into_iter().take(256) {
        now += 3;
        let before = n.last_offset();
        let msg: Option<(ProducerMessage, bool)> = match step {
            Step::Message {
                kind,
                op,
                seq_delta,
                progress,
                current,
                total,
                other_conn,
            } => {
                let id = op_name(op);
                let expected = next_seq.get(&id).copied().unwrap_or(0) + 1;
                let seq = (expected as i64 + i64::from(seq_delta % 3)).max(0);
                let ty = match kind {
                    Kind::Started => "operation_started",
                    Kind::Progress => "progress_update",
                    Kind::Completed => "operation_completed",
                    Kind::Failed => "operation_failed",
                    Kind::Canceled => "operation_canceled",
                };
                let mut v =
                    json!({"type": ty, "operation_id": id, "seq": seq, "name": "n", "error": "e"});
                if let Some(p) = progress.filter(|p| p.is_finite()) {
                    v["progress"] = json!(p);
                }
                if let Some(c) = current.filter(|c| c.is_finite()) {
                    v["current"] = json!(c);
                }
                if let Some(t) = total.filter(|t| t.is_finite()) {
                    v["total"] = json!(t);
                }
                match decode_client(&v.to_string()) {
                    Ok(ClientMessage::Publish(p)) => Some((p, other_conn)),
                    _ => None,
                }
            }
            Step::Raw(text) => match decode_client(&text) {
                Ok(ClientMessage::Publish(p)) => Some((p, false)),
                _ => None,
            },
            Step::Cancel { op } => {
                let states = snapshot(&n);
                let r = n.request_cancel(&op_name(op), "viewer", now);
                if r.is_err() {
                    assert_eq!(snapshot(&n), states, "a refused cancel changed state");
                }
                assert_eq!(n.last_offset(), before, "a cancel takes no offset");
                None
            }
            Step::Tick { dt } => {
                now += u64::from(dt);
                // Producers' connections: open on even steps, gone (since
                // a while ago) on odd ones.
                let gone = |_: u64| (dt % 2 == 1).then_some(now.saturating_sub(u64::from(dt)));
                let out = n.tick_with(now, &cfg, &gone);
                for (i, e) in out.events.iter().enumerate() {
                    assert_eq!(e.offset, before + 1 + i as u64, "tick offsets contiguous");
                }
                assert_eq!(n.last_offset(), before + out.events.len() as u64);
                for e in &out.events {
                    if e.state.state.is_terminal() {
                        assert!(!finished.get(&e.operation_id).copied().unwrap_or(false));
                        finished.insert(e.operation_id.clone(), true);
                    }
                }
                let mut evicted = Vec::new();
                for id in &out.removed {
                    // Dropped after retention, the id stays finished (a new
                    // message for it is never accepted) while the namespace
                    // keeps its tombstone: the newest `cap` dropped ids.
                    assert!(
                        finished.get(id).copied().unwrap_or(false),
                        "dropped while live"
                    );
                    assert!(n.operation(id).is_none());
                    if !dropped.contains(id) {
                        dropped.push_back(id.clone());
                    }
                    if dropped.len() > cfg.max_operations_per_namespace {
                        let old = dropped.pop_front().unwrap();
                        finished.remove(&old);
                        next_seq.remove(&old);
                        evicted.push(old);
                    }
                }
                assert_eq!(
                    out.evicted, evicted,
                    "the core names the tombstones it pushed out"
                );
                for id in &dropped {
                    assert!(
                        n.tombstone(id).is_some(),
                        "a remembered drop has a tombstone"
                    );
                }
                None
            }
        };
        let Some((msg, other_conn)) = msg else {
            continue;
        };
        let producer = Producer {
            conn: if other_conn { 2 } else { 1 },
        };
        let states = snapshot(&n);
        match n.apply(msg, &producer, now, &cfg, || "gen-1".to_owned()) {
            Ok(a) => {
                for (i, e) in a.events.iter().enumerate() {
                    assert_eq!(e.offset, before + 1 + i as u64, "offsets contiguous");
                }
                assert_eq!(n.last_offset(), before + a.events.len() as u64);
                assert!(a.ack.offset <= n.last_offset(), "acked offset exists");
                let id = a.ack.operation_id.clone();
                if a.ack.duplicate {
                    assert!(a.events.is_empty(), "a resend is not applied twice");
                    continue;
                }
                assert!(!a.events.is_empty());
                assert_eq!(a.ack.offset, n.last_offset());
                assert!(
                    !finished.get(&id).copied().unwrap_or(false),
                    "accepted a new message after a terminal state"
                );
                next_seq.insert(id.clone(), a.ack.seq);
                let st = n
                    .operation(&id)
                    .expect("the operation exists")
                    .state
                    .clone();
                assert!(st.progress.is_none_or(|p| (0.0..=100.0).contains(&p)));
                if st.state.is_terminal() {
                    finished.insert(id, true);
                }
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                assert_eq!(n.last_offset(), before, "a rejection takes no offset");
                assert_eq!(snapshot(&n), states, "a rejection changed state");
            }
        }
    }
});
