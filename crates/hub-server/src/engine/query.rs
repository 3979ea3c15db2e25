//! Read-only answers for the HTTP API, status and readiness.

use super::command::{EngineStats, EventsPage, ListQuery, ListResult};
use super::Engine;
use hub_proto::{OperationState, OperationStatus};
use std::sync::Arc;

impl Engine {
    pub(super) fn list(&self, q: &ListQuery) -> ListResult {
        let Some(ns) = self.namespaces.get(&q.namespace) else {
            return (self.epoch_of(&q.namespace), 0, Vec::new());
        };
        // This runs on the engine's task: pick the first `limit` by
        // reference (linear) and clone only those, so a poller asking for
        // a few operations of a namespace of 100,000 does not sort and
        // copy all of them every time.
        let mut ops: Vec<&OperationState> = ns
            .states
            .values()
            .filter(|s| q.state.is_none_or(|st| s.state == st))
            .filter(|s| q.kind.as_deref().is_none_or(|k| s.kind == k))
            .collect();
        let order = |a: &&OperationState, b: &&OperationState| {
            (a.started_at, &a.operation_id).cmp(&(b.started_at, &b.operation_id))
        };
        if q.limit < ops.len() {
            if q.limit > 0 {
                ops.select_nth_unstable_by(q.limit - 1, order);
            }
            ops.truncate(q.limit);
        }
        ops.sort_unstable_by(order);
        let ops = ops.into_iter().cloned().collect();
        (ns.core.epoch().to_owned(), ns.log.last_offset(), ops)
    }

    pub(super) fn get(&self, namespace: &str, op: &str) -> Option<(OperationState, Vec<Arc<str>>)> {
        let ns = self.namespaces.get(namespace)?;
        let state = ns.states.get(op)?.clone();
        let events = ns.log.of_operation(op).map(|e| e.bytes.clone()).collect();
        Some((state, events))
    }

    pub(super) fn events(&self, namespace: &str, after: u64, limit: usize) -> EventsPage {
        match self.namespaces.get(namespace) {
            None => EventsPage {
                epoch: self.epoch_of(namespace),
                first_offset: 1,
                last_offset: 0,
                events: Vec::new(),
            },
            Some(ns) => EventsPage {
                epoch: ns.core.epoch().to_owned(),
                first_offset: ns.log.first_offset(),
                last_offset: ns.log.last_offset(),
                events: ns
                    .log
                    .after(after)
                    .take(limit)
                    .map(|e| e.bytes.clone())
                    .collect(),
            },
        }
    }

    pub(super) fn stats(&self) -> EngineStats {
        let mut by_state = [0u64; 5];
        for ns in self.namespaces.values() {
            for s in ns.states.values() {
                let i = match s.state {
                    OperationStatus::Running => 0,
                    OperationStatus::Stalled => 1,
                    OperationStatus::Completed => 2,
                    OperationStatus::Failed => 3,
                    OperationStatus::Canceled => 4,
                };
                by_state[i] += 1;
            }
        }
        EngineStats {
            namespaces: self.namespaces.len(),
            by_state,
            events_total: self.events_total,
            deliveries_total: self.deliveries_total,
            in_flight_batches: self.in_flight.len(),
            store_failed: self.store_failed.clone(),
            subscriptions: self.subs.values().map(Vec::len).sum(),
        }
    }
}
