//! Read-only answers for the HTTP API, status and readiness.

use super::command::{EngineStats, EventsPage, ListQuery, ListResult};
use super::states::{with_operations, Entry};
use super::Engine;
use hub_proto::{OperationState, OperationStatus};
use serde::Serialize;
use std::sync::Arc;

impl Engine {
    /// The answer to an HTTP listing, encoded from references on the
    /// engine's task (no copy of the states first) and admitted under the
    /// snapshot budget (see `snapshots.rs`).
    pub(super) fn list(&mut self, q: &ListQuery) -> ListResult {
        let body: Arc<str> = self.encode_list(q).into();
        self.snapshots.take(&body, self.cfg.max_snapshot_bytes)?;
        Ok(body)
    }

    fn encode_list(&self, q: &ListQuery) -> String {
        #[derive(Serialize)]
        struct Head<'a> {
            epoch: &'a str,
            namespace: &'a str,
            offset: u64,
        }
        let Some(ns) = self.namespaces.get(&q.namespace) else {
            let epoch = self.epoch_of(&q.namespace);
            let head = Head {
                epoch: &epoch,
                namespace: &q.namespace,
                offset: 0,
            };
            return with_operations(&head, &[]);
        };
        // In start order already: the first `limit` that match, and only
        // those encoded (cached), so a poller asking for a few operations
        // of a namespace of 100,000 does not pay for all of them.
        let ops: Vec<&Entry> = ns
            .states
            .in_order()
            .filter(|e| q.state.is_none_or(|st| e.state().state == st))
            .filter(|e| q.kind.as_deref().is_none_or(|k| e.state().kind == k))
            .take(q.limit)
            .collect();
        let head = Head {
            epoch: ns.core.epoch(),
            namespace: &q.namespace,
            offset: ns.log.last_offset(),
        };
        with_operations(&head, &ops)
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
            history_bytes: self.history_bytes,
        }
    }
}
