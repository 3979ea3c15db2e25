//! One namespace subscription as a pure state machine: the position to
//! resume from, offset de-duplication, and the materialised map of
//! operation states (replaced wholesale by a snapshot when the hub could not
//! recover).
//!
//! **Invariant**: the updates it emits carry strictly increasing event
//! offsets within an epoch; a snapshot resets the map and the position.

use std::collections::HashMap;

use crate::wire::{
    ControlMessage, Event, Filter, OperationList, OperationState, Position, Subscribed,
};

/// What a subscription delivers, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The hub confirmed the subscription. With `recovered: true` the missed
    /// events follow; with `false` a [`Update::Snapshot`] follows.
    Subscribed {
        /// Stream epoch.
        epoch: String,
        /// The namespace's last offset at that moment.
        offset: u64,
        /// Whether the missed events are replayed.
        recovered: bool,
    },
    /// One event (never a duplicate: offsets only grow within an epoch).
    Event(Box<Event>),
    /// The hub could not replay: the map was replaced by this snapshot.
    Snapshot {
        /// Stream epoch.
        epoch: String,
        /// Offset every state reflects.
        offset: u64,
        /// Every live and recently finished operation (filtered).
        operations: Vec<OperationState>,
    },
    /// The connection changed state (`is_stale` follows it).
    Connection(crate::machine::StateChange),
    /// The consumer fell behind: this many updates were not delivered (the
    /// map stays exact). Past the channel (`event_buffer`) these are
    /// progress updates superseded by a newer one of the same operation;
    /// only past the overflow bound ([`crate::backlog`]) can other updates
    /// be among them.
    Lagged(u64),
    /// The hub's `system_status` (hub-wide health, sent every status
    /// interval to connections that hold a subscription; delivered to every
    /// subscription of the client).
    SystemStatus {
        /// The figures (`connections`, `events_per_second`, ...), as sent.
        data: serde_json::Value,
        /// Part of `data` comes from a cache because a dependency is down.
        is_stale: bool,
        /// Why it is stale, when it is.
        error: Option<String>,
    },
    /// The hub answered a [`Subscriber::cancel`](crate::Subscriber::cancel)
    /// for an operation of this namespace: `ok`, or the `error` (e.g.
    /// `UNKNOWN_OPERATION`, `OPERATION_FINISHED`, `FORBIDDEN`).
    CancelResult {
        /// The operation.
        operation_id: String,
        /// `Ok` when the cancel was accepted, else the hub's error.
        result: Result<(), crate::wire::ErrorMessage>,
    },
    /// The hub refused the subscription (e.g. `FORBIDDEN`): it is not
    /// asked for again.
    Refused {
        /// Error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The hub refused the subscription for now (`RATE_LIMITED`,
    /// `SERVER_SHUTDOWN`, `STORE_UNAVAILABLE`): the client asks again after
    /// `retry_after_ms`. No data arrives until then.
    RefusedForNow {
        /// Error code.
        code: String,
        /// Human message.
        message: String,
        /// The hub's `data.reason` (e.g. `snapshots`), when given.
        reason: Option<String>,
        /// When the subscription is asked for again.
        retry_after_ms: u64,
    },
    /// The hub sent a frame or message larger than
    /// [`ClientConfig::max_incoming_bytes`](crate::ClientConfig::max_incoming_bytes):
    /// the connection was dropped (and is retried; the same data will be
    /// too large again unless it shrinks or the limit is raised).
    MessageTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
}

impl Update {
    /// The [`Update::SystemStatus`] for a raw `system_status` message.
    pub fn system_status(msg: &serde_json::Value) -> Update {
        Update::SystemStatus {
            data: msg.get("data").cloned().unwrap_or(serde_json::Value::Null),
            is_stale: msg
                .get("is_stale")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            error: msg
                .get("error")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Counters of one subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewStats {
    /// Events applied.
    pub events: u64,
    /// Events dropped as already seen (offset not above the position).
    pub duplicates: u64,
    /// Resumes answered with `recovered: true`.
    pub recovered: u64,
    /// Subscriptions answered with a snapshot.
    pub snapshots: u64,
}

/// The state of one namespace subscription.
#[derive(Debug, Clone)]
pub struct View {
    namespace: String,
    filter: Filter,
    conflate: bool,
    position: Option<Position>,
    request: Option<u64>,
    awaiting_snapshot: bool,
    live: bool,
    held: Vec<Event>,
    ops: HashMap<String, OperationState>,
    stats: ViewStats,
}

impl View {
    /// A subscription that has not been sent yet.
    pub fn new(namespace: impl Into<String>, filter: Filter) -> Self {
        View {
            namespace: namespace.into(),
            filter,
            conflate: false,
            position: None,
            request: None,
            awaiting_snapshot: false,
            live: false,
            held: Vec::new(),
            ops: HashMap::new(),
            stats: ViewStats::default(),
        }
    }

    /// The same, for a viewer that needs only each operation's latest
    /// state: it asks the hub to conflate progress while it is behind
    /// (`subscribe {conflate: true}`), so it may skip superseded progress
    /// events instead of being dropped as a slow client.
    pub fn latest_only(mut self) -> Self {
        self.conflate = true;
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a resume would start.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// The materialised states.
    pub fn operations(&self) -> &HashMap<String, OperationState> {
        &self.ops
    }

    /// Counters.
    pub fn stats(&self) -> ViewStats {
        self.stats
    }

    /// Confirmed and in sync with the hub (not waiting for a reply or snapshot).
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The request id of the `subscribe` in flight.
    pub fn request_id(&self) -> Option<u64> {
        self.request
    }

    /// The `subscribe` to send on a fresh connection (resuming if possible).
    pub fn subscribe(&mut self, id: u64) -> ControlMessage {
        self.request = Some(id);
        self.live = false;
        self.awaiting_snapshot = false;
        self.held.clear();
        ControlMessage::Subscribe {
            id,
            namespace: self.namespace.clone(),
            filter: (!self.filter.is_empty()).then(|| self.filter.clone()),
            resume: self.position.clone(),
            conflate: self.conflate,
        }
    }

    /// The hub ended the subscription on a live connection (a refreshed
    /// token may not read the namespace): not live until subscribed again.
    pub fn on_ended(&mut self) {
        self.on_disconnected();
    }

    /// The connection dropped.
    pub fn on_disconnected(&mut self) {
        self.request = None;
        self.live = false;
        self.awaiting_snapshot = false;
        self.held.clear();
    }

    /// Apply `subscribed`.
    pub fn on_subscribed(&mut self, s: &Subscribed) -> Vec<Update> {
        self.request = None;
        if s.recovered {
            self.stats.recovered += 1;
            self.live = true;
            // The hub only recovers within the epoch we resumed from; if it
            // names another one, offsets restart there.
            if self.position.as_ref().is_none_or(|p| p.epoch != s.epoch) {
                self.position = Some(Position {
                    epoch: s.epoch.clone(),
                    offset: 0,
                });
            }
        } else {
            self.stats.snapshots += 1;
            self.awaiting_snapshot = true;
        }
        vec![Update::Subscribed {
            epoch: s.epoch.clone(),
            offset: s.offset,
            recovered: s.recovered,
        }]
    }

    /// Apply `operation_list` (the snapshot after `recovered: false`).
    pub fn on_operation_list(&mut self, list: &OperationList) -> Vec<Update> {
        if !self.awaiting_snapshot {
            // An unrequested list (e.g. an HTTP-style answer): ignore.
            return Vec::new();
        }
        self.awaiting_snapshot = false;
        self.live = true;
        self.ops = list
            .operations
            .iter()
            .map(|s| (s.operation_id.clone(), s.clone()))
            .collect();
        self.position = Some(Position {
            epoch: list.epoch.clone(),
            offset: list.offset,
        });
        let mut out = vec![Update::Snapshot {
            epoch: list.epoch.clone(),
            offset: list.offset,
            operations: list.operations.clone(),
        }];
        for e in std::mem::take(&mut self.held) {
            out.extend(self.on_event(e));
        }
        out
    }

    /// Apply one event; `None` when it was a duplicate (or is held until
    /// the snapshot arrives).
    pub fn on_event(&mut self, e: Event) -> Option<Update> {
        if self.awaiting_snapshot {
            self.held.push(e);
            return None;
        }
        if self.position.as_ref().is_some_and(|p| e.offset <= p.offset) {
            self.stats.duplicates += 1;
            return None;
        }
        let epoch = self.position.as_ref().map(|p| p.epoch.clone());
        let Some(epoch) = epoch else {
            // No position yet (not subscribed): nothing to anchor it to.
            self.stats.duplicates += 1;
            return None;
        };
        self.position = Some(Position {
            epoch,
            offset: e.offset,
        });
        self.ops
            .insert(e.state.operation_id.clone(), e.state.clone());
        self.stats.events += 1;
        Some(Update::Event(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerMessage;
    use serde_json::json;

    fn event(offset: u64, op: &str, progress: f64) -> Event {
        match ServerMessage::from_value(json!({
            "type": "progress_update", "namespace": "default", "offset": offset, "timestamp": 1,
            "operation_id": op, "seq": 2, "progress": progress,
            "state": {"operation_id": op, "state": "running", "progress": progress}
        })) {
            ServerMessage::Event(e) => *e,
            m => panic!("{m:?}"),
        }
    }

    fn subscribed(epoch: &str, offset: u64, recovered: bool) -> Subscribed {
        Subscribed {
            id: Some(1),
            namespace: "default".into(),
            epoch: epoch.into(),
            offset,
            recovered,
        }
    }

    fn list(epoch: &str, offset: u64, ops: &[(&str, f64)]) -> OperationList {
        OperationList {
            namespace: "default".into(),
            epoch: epoch.into(),
            offset,
            operations: ops
                .iter()
                .map(|(id, p)| {
                    serde_json::from_value(
                        json!({"operation_id": id, "state": "running", "progress": p}),
                    )
                    .unwrap()
                })
                .collect(),
        }
    }

    #[test]
    fn system_status_keeps_data_and_staleness() {
        let msg = json!({"type": "system_status", "data": {"events_per_second": 12.5},
            "is_stale": true, "cached_at": 5, "error": "backplane down"});
        assert_eq!(
            Update::system_status(&msg),
            Update::SystemStatus {
                data: json!({"events_per_second": 12.5}),
                is_stale: true,
                error: Some("backplane down".into()),
            }
        );
        assert_eq!(
            Update::system_status(&json!({"type": "system_status", "data": {}})),
            Update::SystemStatus {
                data: json!({}),
                is_stale: false,
                error: None,
            }
        );
    }

    #[test]
    fn only_a_latest_only_view_asks_for_conflation() {
        let asks = |v: &mut View| matches!(v.subscribe(1), ControlMessage::Subscribe { conflate, .. } if conflate);
        assert!(!asks(&mut View::new("default", Filter::default())));
        assert!(asks(
            &mut View::new("default", Filter::default()).latest_only()
        ));
    }

    #[test]
    fn first_subscribe_gets_a_snapshot_then_events() {
        let mut v = View::new("default", Filter::all());
        match v.subscribe(1) {
            ControlMessage::Subscribe { resume, filter, .. } => {
                assert_eq!(resume, None);
                assert_eq!(filter, None);
            }
            m => panic!("{m:?}"),
        }
        v.on_subscribed(&subscribed("e1", 5, false));
        assert!(!v.is_live());
        // An event racing ahead of the snapshot is held, then deduplicated.
        assert_eq!(v.on_event(event(5, "a", 50.0)), None);
        assert_eq!(v.on_event(event(6, "a", 60.0)), None);
        let out = v.on_operation_list(&list("e1", 5, &[("a", 50.0), ("b", 10.0)]));
        assert_eq!(out.len(), 2, "snapshot + the held event 6");
        assert!(v.is_live());
        assert_eq!(v.operations()["a"].progress, Some(60.0));
        assert_eq!(
            v.position(),
            Some(&Position {
                epoch: "e1".into(),
                offset: 6
            })
        );
        assert_eq!(v.stats().duplicates, 1);
    }

    #[test]
    fn resume_dedupes_and_keeps_the_map() {
        let mut v = View::new("default", Filter::operations("render.*"));
        v.subscribe(1);
        v.on_subscribed(&subscribed("e1", 0, false));
        v.on_operation_list(&list("e1", 0, &[]));
        assert!(v.on_event(event(1, "render.a", 1.0)).is_some());
        assert!(v.on_event(event(3, "render.a", 3.0)).is_some());
        v.on_disconnected();
        match v.subscribe(2) {
            ControlMessage::Subscribe { resume, filter, .. } => {
                assert_eq!(
                    resume,
                    Some(Position {
                        epoch: "e1".into(),
                        offset: 3
                    })
                );
                assert_eq!(filter, Some(Filter::operations("render.*")));
            }
            m => panic!("{m:?}"),
        }
        let out = v.on_subscribed(&subscribed("e1", 9, true));
        assert!(matches!(
            out[0],
            Update::Subscribed {
                recovered: true,
                ..
            }
        ));
        assert!(v.is_live());
        assert!(v.on_event(event(3, "render.a", 3.0)).is_none(), "duplicate");
        assert!(v.on_event(event(2, "render.a", 2.0)).is_none(), "older");
        assert!(v.on_event(event(7, "render.a", 7.0)).is_some());
        assert_eq!(v.operations()["render.a"].progress, Some(7.0));
        assert_eq!(v.stats().recovered, 1);
    }

    #[test]
    fn epoch_change_replaces_the_whole_map() {
        let mut v = View::new("default", Filter::all());
        v.subscribe(1);
        v.on_subscribed(&subscribed("e1", 2, false));
        v.on_operation_list(&list("e1", 2, &[("gone", 10.0)]));
        v.on_event(event(9, "gone", 90.0));
        v.on_disconnected();
        v.subscribe(2);
        // The hub lost its history: new epoch, no recovery.
        let out = v.on_subscribed(&subscribed("e2", 1, false));
        assert!(matches!(
            out[0],
            Update::Subscribed {
                recovered: false,
                ..
            }
        ));
        v.on_operation_list(&list("e2", 1, &[("fresh", 1.0)]));
        assert_eq!(v.operations().len(), 1);
        assert!(v.operations().contains_key("fresh"));
        // Offsets restart in the new epoch.
        assert!(v.on_event(event(2, "fresh", 2.0)).is_some());
    }
}
