//! A namespace's committed operation states (what snapshots and HTTP
//! listings show), each with its JSON encoded at most once per change, kept
//! in the order snapshots show them.
//!
//! A snapshot of a big namespace is one message of every state in it, made
//! on the engine's task: encoding and sorting 100,000 states there took a
//! quarter of a second, during which no producer was acked and no event
//! fanned out. A state's JSON is now made the first time a snapshot or
//! listing needs it and kept until the state changes, and the operations
//! are kept by start time, then id, so a snapshot is mostly a copy of
//! cached text. Every change goes through [`States`], which drops the
//! cached text with it: a snapshot never shows a state older than the
//! committed one.

use hub_proto::OperationState;
use serde::Serialize;
use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};

/// One committed state and its JSON, once made.
#[derive(Debug)]
pub struct Entry {
    state: OperationState,
    json: OnceCell<String>,
}

impl Entry {
    fn new(state: OperationState) -> Self {
        Entry {
            state,
            json: OnceCell::new(),
        }
    }

    /// The state.
    pub fn state(&self) -> &OperationState {
        &self.state
    }
}

/// The committed states of one namespace, by operation id and in start
/// order.
#[derive(Debug, Default)]
pub struct States {
    map: HashMap<String, Entry>,
    /// `(started_at, id)` of every operation in `map`.
    order: BTreeSet<(u64, String)>,
}

impl States {
    /// Sets (or replaces) the state of `state.operation_id`. A replace
    /// (every event of a known operation) clones nothing.
    pub fn insert(&mut self, state: OperationState) {
        match self.map.get_mut(&state.operation_id) {
            Some(e) => {
                if e.state.started_at != state.started_at {
                    let old = (e.state.started_at, e.state.operation_id.clone());
                    self.order.remove(&old);
                    self.order
                        .insert((state.started_at, state.operation_id.clone()));
                }
                *e = Entry::new(state);
            }
            None => {
                self.order
                    .insert((state.started_at, state.operation_id.clone()));
                self.map
                    .insert(state.operation_id.clone(), Entry::new(state));
            }
        }
    }

    /// Forgets an operation.
    pub fn remove(&mut self, id: &str) {
        if let Some(old) = self.map.remove(id) {
            self.order
                .remove(&(old.state.started_at, old.state.operation_id));
        }
    }

    /// Sets the cancel flag of an operation (a change without an event).
    pub fn set_cancel_requested(&mut self, id: &str, requested: bool) {
        if let Some(e) = self.map.get_mut(id) {
            if e.state.cancel_requested != requested {
                e.state.cancel_requested = requested;
                e.json = OnceCell::new();
            }
        }
    }

    /// The state of one operation.
    pub fn get(&self, id: &str) -> Option<&OperationState> {
        self.map.get(id).map(Entry::state)
    }

    /// Every state with its cached JSON, by start time then id: the order
    /// of snapshots and listings.
    pub fn in_order(&self) -> impl Iterator<Item = &Entry> {
        self.order.iter().filter_map(|(_, id)| self.map.get(id))
    }

    /// Every state, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &OperationState> {
        self.map.values().map(Entry::state)
    }
}

impl FromIterator<OperationState> for States {
    fn from_iter<I: IntoIterator<Item = OperationState>>(iter: I) -> Self {
        let mut s = States::default();
        for state in iter {
            s.insert(state);
        }
        s
    }
}

/// `head` (a struct whose last field would be the list) as JSON, with an
/// `"operations"` array of the entries' JSON appended: byte for byte what
/// `serde_json` writes for the same struct with the states in it. A state
/// not encoded since it changed is encoded straight into the list, and
/// its text kept for the next one.
pub fn with_operations(head: &impl Serialize, entries: &[&Entry]) -> String {
    let head = serde_json::to_string(head).unwrap_or_else(|_| String::from("{}"));
    let mut out: Vec<u8> = Vec::with_capacity(head.len() + 20 + entries.len() * 512);
    out.extend_from_slice(head.strip_suffix('}').unwrap_or(&head).as_bytes());
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"operations\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match e.json.get() {
            Some(json) => out.extend_from_slice(json.as_bytes()),
            None => {
                let start = out.len();
                if serde_json::to_writer(&mut out, &e.state).is_err() {
                    out.truncate(start);
                    out.extend_from_slice(b"{}");
                }
                let _ = e
                    .json
                    .set(String::from_utf8_lossy(&out[start..]).into_owned());
            }
        }
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// An `operation_list` (a subscription's snapshot) of `entries`, as
/// [`hub_proto::ServerMessage::OperationList`] encodes it.
pub fn operation_list(namespace: &str, epoch: &str, offset: u64, entries: &[&Entry]) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        r#type: &'static str,
        namespace: &'a str,
        epoch: &'a str,
        offset: u64,
    }
    let head = Head {
        r#type: "operation_list",
        namespace,
        epoch,
        offset,
    };
    with_operations(&head, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(id: &str, started_at: u64, message: &str) -> OperationState {
        serde_json::from_value(json!({
            "operation_id": id, "namespace": "n\"s", "name": format!("Op \u{e9} {id}"),
            "kind": "k", "state": "running", "progress": 12.5, "current": null,
            "total": null, "step": null, "message": message, "details": {"a": [1, 2]},
            "error": null, "parent_id": null, "started_at": started_at,
            "updated_at": started_at, "finished_at": null, "rate": 0.1,
            "eta_seconds": 3.0, "cancel_requested": false, "last_offset": 7
        }))
        .unwrap()
    }

    /// The assembled snapshot is exactly the one serde makes in one go,
    /// with escapes in every string, and for an empty namespace too.
    #[test]
    fn an_assembled_list_equals_the_whole_encoding() {
        let states: States = [
            state("b", 2, "line\nbreak \"q\""),
            state("a", 2, "x"),
            state("c", 1, "\u{1f600}"),
        ]
        .into_iter()
        .collect();
        let entries: Vec<&Entry> = states.in_order().collect();
        let ids: Vec<&str> = entries
            .iter()
            .map(|e| e.state().operation_id.as_str())
            .collect();
        assert_eq!(ids, ["c", "a", "b"]);
        let owned = |operations: Vec<OperationState>| {
            hub_proto::ServerMessage::OperationList {
                namespace: "n\"s".into(),
                epoch: "e.1".into(),
                offset: 9,
                operations,
            }
            .encode()
        };
        assert_eq!(
            operation_list("n\"s", "e.1", 9, &entries),
            owned(entries.iter().map(|e| e.state().clone()).collect())
        );
        assert_eq!(operation_list("n\"s", "e.1", 9, &[]), owned(Vec::new()));
    }

    /// A change drops the cached JSON: what is read next is the new state.
    #[test]
    fn every_change_is_seen_by_the_next_encoding() {
        let mut states = States::default();
        states.insert(state("a", 1, "first"));
        // The first operation's JSON, through the cache.
        let json = |s: &States| {
            let entries: Vec<&Entry> = s.in_order().collect();
            let list: serde_json::Value =
                serde_json::from_str(&with_operations(&json!({}), &entries)).unwrap();
            list["operations"][0].to_string()
        };
        assert!(json(&states).contains("\"first\""));
        states.insert(state("a", 1, "second"));
        assert!(json(&states).contains("\"second\""));
        states.set_cancel_requested("a", true);
        assert!(json(&states).contains("\"cancel_requested\":true"));
        assert_eq!(
            serde_json::from_str::<OperationState>(&json(&states)).unwrap(),
            *states.get("a").unwrap()
        );
        states.remove("a");
        assert!(states.get("a").is_none() && states.in_order().next().is_none());
    }

    /// The order follows every insert, replace (also one whose start time
    /// changed) and remove, against a plain sort of what is left.
    #[test]
    fn the_order_is_by_start_then_id_after_any_changes() {
        let mut states = States::default();
        let mut model: HashMap<String, u64> = HashMap::new();
        let mut x: u64 = 17;
        for step in 0..2_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = format!("op{}", (x >> 33) % 50);
            let at = (x >> 20) % 7;
            if step % 5 == 4 {
                states.remove(&id);
                model.remove(&id);
            } else {
                states.insert(state(&id, at, "m"));
                model.insert(id, at);
            }
        }
        let mut expected: Vec<(u64, String)> = model.into_iter().map(|(id, at)| (at, id)).collect();
        expected.sort();
        let got: Vec<(u64, String)> = states
            .in_order()
            .map(|e| (e.state().started_at, e.state().operation_id.clone()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(states.order.len(), states.map.len());
    }
}
