//! The engine's request handlers: publish, cancel, subscribe, ticks, and
//! the after-commit actions (acks and fan-out).

use super::coalesce::{Held, Verdict};
use super::command::{Command, Reply, Who};
use super::records;
use super::state::{AfterCommit, Ns, Sub};
use super::states;
use super::Engine;
use crate::clock::now_ms;
use crate::log::LogEntry;
use crate::outbox::{Outbox, Pushed};
use hub_core::outqueue::{op_key, OutItem};
use hub_core::{plan_resume, Producer, ResumePlan};
use hub_proto::{
    Ack, ErrorCode, Event, OperationState, ProducerMessage, ProtoError, ServerMessage,
};
use hub_store::{EventRecord, OpRecord, StoreError};
use std::sync::Arc;

fn send_reply<T>(reply: Reply<T>, result: Result<T, ProtoError>, ok: impl FnOnce(T) -> String) {
    match reply {
        Reply::Conn(conn) => match result {
            Ok(v) => conn.push_control(ok(v).into()),
            Err(e) => conn.reject(e),
        },
        Reply::Http(tx) => {
            let _ = tx.send(result);
        }
    }
}

/// Events of one namespace from one commit: the items to queue and each
/// item's (operation id, kind) for filtering.
type FanGroup = (String, Vec<OutItem>, Vec<(Arc<str>, Arc<str>)>);

/// Appends one item to the fan-out, grouped by namespace.
fn push_fan(fan: &mut Vec<FanGroup>, ns: &str, item: OutItem, key: (Arc<str>, Arc<str>)) {
    match fan.last_mut() {
        Some((n, items, keys)) if n == ns => {
            items.push(item);
            keys.push(key);
        }
        _ => fan.push((ns.to_owned(), vec![item], vec![key])),
    }
}

fn new_operation_id(now: u64) -> String {
    format!("op-{now:x}-{:08x}", rand::random::<u32>())
}

impl Engine {
    /// Handles one command; returns the shutdown signal when asked to stop.
    pub(super) fn handle(&mut self, cmd: Command) -> Option<tokio::sync::oneshot::Sender<()>> {
        match cmd {
            Command::Publish {
                msg,
                conn,
                reply,
                received,
            } => self.publish(msg, conn, reply, received),
            Command::Subscribe {
                conn,
                id,
                namespace,
                filter,
                resume,
                conflate,
                queued,
            } => {
                self.subscribe(conn, id, namespace, filter, conflate, resume);
                // The replay or snapshot is queued (or the subscribe refused).
                drop(queued);
            }
            Command::Unsubscribe {
                conn,
                id,
                namespace,
            } => self.unsubscribe(&conn, id, &namespace),
            Command::Cancel {
                namespace,
                operation_id,
                who,
                id,
                reply,
            } => self.cancel(namespace, operation_id, who, id, reply),
            Command::Narrow { conn, may_view } => self.narrow(&conn, may_view),
            Command::Closed { conn } => {
                self.departures.left(conn, now_ms());
                for ns in self.conn_subs.remove(&conn).unwrap_or_default() {
                    if let Some(list) = self.subs.get_mut(&ns) {
                        list.retain(|s| s.conn.id != conn);
                        if list.is_empty() {
                            self.subs.remove(&ns);
                            self.forget_promise(&ns);
                        }
                    }
                }
            }
            Command::List(q, tx) => {
                let _ = tx.send(self.list(&q));
            }
            Command::Get {
                namespace,
                operation_id,
                reply,
            } => {
                let _ = reply.send(self.get(&namespace, &operation_id));
            }
            Command::Events {
                namespace,
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.events(&namespace, after, limit));
            }
            Command::Stats(tx) => {
                let _ = tx.send(self.stats());
            }
            Command::Drain(done) => {
                self.draining = true;
                self.drain_waiters.push(done);
            }
            Command::Shutdown(done) => return Some(done),
        }
        None
    }

    /// Whether `msg` would start a new operation while the hub holds
    /// `max_operations` (a resent start, of a live operation or of one
    /// dropped after `finished_retention`, starts nothing).
    fn hub_full_for(&self, msg: &ProducerMessage) -> bool {
        let max = self.cfg.max_operations;
        if max == 0 || self.operations < max || msg.seq.is_some_and(|s| s != 1) {
            return false;
        }
        if !matches!(msg.body, hub_proto::ProducerBody::Started { .. }) {
            return false;
        }
        match (&msg.operation_id, self.namespaces.get(&msg.namespace)) {
            (Some(id), Some(ns)) => {
                ns.core.operation(id).is_none() && ns.core.tombstone(id).is_none()
            }
            _ => true,
        }
    }

    fn namespace_mut(&mut self, name: &str) -> Result<&mut Ns, ProtoError> {
        if !self.namespaces.contains_key(name) {
            if self.namespaces.len() >= self.cfg.max_namespaces && !self.make_room() {
                return Err(ProtoError::new(
                    ErrorCode::RateLimited,
                    "the hub holds the most namespaces it may",
                )
                .with_data(
                    serde_json::json!({"reason": "namespaces", "limit": self.cfg.max_namespaces}),
                ));
            }
            let ns = self.create_namespace(name);
            self.namespaces.insert(name.to_owned(), ns);
        }
        Ok(self.namespaces.get_mut(name).expect("inserted above"))
    }

    fn publish(&mut self, msg: ProducerMessage, conn: u64, reply: Reply<Ack>, received: u64) {
        let now = now_ms();
        if self.draining {
            let e = ProtoError::new(
                ErrorCode::ServerShutdown,
                "the hub is shutting down; resend this after reconnecting",
            )
            .with_operation(msg.operation_id.as_deref())
            .with_id(msg.id);
            return send_reply(reply, Err(e), |_| String::new());
        }
        if let Some(err) = &self.store_failed {
            let e = ProtoError::new(
                ErrorCode::StoreUnavailable,
                "the store cannot write; the hub refuses new events",
            )
            .with_details(err.clone())
            .with_operation(msg.operation_id.as_deref())
            .with_id(msg.id);
            return send_reply(reply, Err(e), |_| String::new());
        }
        let req_id = msg.id;
        let op_hint = msg.operation_id.clone();
        let cfg = self.cfg.core.clone();
        let is_start = matches!(msg.body, hub_proto::ProducerBody::Started { .. });
        if !is_start && !self.namespaces.contains_key(&msg.namespace) {
            // Nothing to create a namespace for: a rejection changes nothing.
            let e = ProtoError::new(
                ErrorCode::UnknownOperation,
                "this namespace has no such operation",
            )
            .with_operation(op_hint.as_deref())
            .with_id(req_id);
            return send_reply(reply, Err(e), |_| String::new());
        }
        if self.hub_full_for(&msg) {
            let e = ProtoError::new(
                ErrorCode::RateLimited,
                "the hub holds the most operations it may; finished ones leave after finished_retention",
            )
            .with_data(serde_json::json!({"reason": "operations", "limit": self.cfg.max_operations}))
            .with_operation(op_hint.as_deref())
            .with_id(req_id);
            return send_reply(reply, Err(e), |_| String::new());
        }
        let ns = match self.namespace_mut(&msg.namespace) {
            Ok(ns) => ns,
            Err(e) => {
                return send_reply(
                    reply,
                    Err(e.with_operation(op_hint.as_deref()).with_id(req_id)),
                    |_| String::new(),
                )
            }
        };
        let producer = Producer { conn };
        let held = ns.core.len();
        let mut applied = match ns
            .core
            .apply(msg, &producer, now, &cfg, || new_operation_id(now))
        {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(namespace = %ns.core.name(), operation_id = op_hint.as_deref().unwrap_or(""), code = e.code.as_str(), "producer message rejected");
                if ns.core.is_empty() && ns.core.last_offset() == 0 {
                    let name = ns.core.name().to_owned();
                    self.namespaces.remove(&name);
                }
                return send_reply(reply, Err(e), |_| String::new());
            }
        };
        if !applied.offset_remembered {
            // A resend older than the core remembers: the original offset
            // is in the retained log (else the latest offset stands).
            let ack = &mut applied.ack;
            let start = ns.core.started_offset(&ack.operation_id).unwrap_or(0);
            // The ack carries the operation's latest offset: the original
            // lies between its start and that.
            if let Some(offset) =
                ns.log
                    .offset_of_seq(&ack.operation_id, ack.seq, start, ack.offset)
            {
                ack.offset = offset;
            }
        }
        let ns_name = ns.core.name().to_owned();
        self.operations += ns.core.len().saturating_sub(held);
        if !applied.events.is_empty() {
            self.dirty
                .insert((ns_name.clone(), applied.ack.operation_id.clone()));
        }
        if let Some(notice) = applied.cancel {
            let bytes = ServerMessage::CancelRequested {
                namespace: ns_name.clone(),
                operation_id: notice.operation_id,
                requested_by: notice.requested_by,
            }
            .encode();
            if matches!(reply, Reply::Conn(_)) {
                self.actions.push(AfterCommit::Notify {
                    conn: notice.conn,
                    bytes: bytes.into(),
                });
            }
        }
        // The ack goes before the events' fan-out (all after the commit):
        // a connection that both publishes and subscribes reads the answer
        // to its message first, and producers are not kept waiting behind
        // a large fan-out.
        self.actions
            .push(AfterCommit::Ack(reply, applied.ack, received));
        for event in applied.events {
            self.push_event(&ns_name, event, received);
        }
    }

    /// Encodes an event once and queues its write and its fan-out; `stamp`
    /// is when the hub received what caused it.
    fn push_event(&mut self, ns: &str, event: Event, stamp: u64) {
        let bytes: Arc<str> = event.encode().into();
        self.batch.events.push(EventRecord {
            namespace: ns.to_owned(),
            offset: event.offset,
            // The same allocation as the log's and the viewers' bytes (the
            // memory store keeps it as its history: no second copy).
            data: Arc::<[u8]>::from(bytes.clone()),
        });
        self.events_total += 1;
        let entry = LogEntry {
            offset: event.offset,
            operation_id: event.operation_id.as_str().into(),
            kind: event.state.kind.as_str().into(),
            event_type: event.event_type,
            seq: event.seq.unwrap_or(0),
            bytes,
        };
        self.actions.push(AfterCommit::Event {
            ns: ns.to_owned(),
            entry,
            state: Box::new(event.state),
            stamp,
        });
    }

    fn cancel(
        &mut self,
        namespace: String,
        operation_id: String,
        who: Who,
        id: Option<u64>,
        reply: Reply<OperationState>,
    ) {
        let now = now_ms();
        let Some(ns) = self.namespaces.get_mut(&namespace) else {
            let e = ProtoError::new(
                ErrorCode::UnknownOperation,
                "this namespace has no such operation",
            )
            .with_operation(Some(&operation_id))
            .with_id(id);
            return send_reply(reply, Err(e), |_| String::new());
        };
        let req = match ns.core.request_cancel(&operation_id, &who.sub, now) {
            Ok(r) => r,
            Err(e) => return send_reply(reply, Err(e.with_id(id)), |_| String::new()),
        };
        self.dirty.insert((namespace.clone(), operation_id.clone()));
        if let Some(owner) = req.owner_conn.filter(|c| self.registry.get(*c).is_some()) {
            ns.core.mark_cancel_delivered(&operation_id, owner);
            let bytes = ServerMessage::CancelRequested {
                namespace: namespace.clone(),
                operation_id: operation_id.clone(),
                requested_by: who.sub.clone(),
            }
            .encode();
            self.actions.push(AfterCommit::Notify {
                conn: owner,
                bytes: bytes.into(),
            });
        }
        self.actions
            .push(AfterCommit::State(Box::new(req.state.clone())));
        self.actions.push(AfterCommit::CancelDone {
            reply,
            id,
            state: Box::new(req.state),
        });
    }

    fn subscribe(
        &mut self,
        conn: Arc<Outbox>,
        id: Option<u64>,
        namespace: String,
        filter: hub_core::glob::Filter,
        conflate: bool,
        resume: Option<hub_proto::Position>,
    ) {
        let already = self
            .conn_subs
            .get(&conn.id)
            .is_some_and(|l| l.contains(&namespace));
        let count = self.conn_subs.get(&conn.id).map_or(0, Vec::len);
        if !already && count >= self.cfg.max_subscriptions_per_connection {
            let e = ProtoError::new(ErrorCode::RateLimited, "this connection holds the most subscriptions it may")
                .with_data(serde_json::json!({"reason": "subscriptions", "limit": self.cfg.max_subscriptions_per_connection}))
                .with_id(id);
            conn.reject(e);
            return;
        }
        let (held, replaced) = self.filter_bytes(conn.id, &namespace);
        let budget = self.cfg.max_filter_bytes_per_connection;
        if held - replaced + filter.bytes() > budget {
            let e = ProtoError::new(ErrorCode::RateLimited, "this connection's subscriptions hold the most filter text they may; unsubscribe or use fewer, shorter globs")
                .with_data(serde_json::json!({"reason": "filters", "limit": budget}))
                .with_id(id);
            conn.reject(e);
            return;
        }
        let (last, first) = match self.namespaces.get(&namespace) {
            Some(ns) => (ns.log.last_offset(), ns.log.first_offset()),
            None => (0, 1),
        };
        let epoch = self.epoch_of(&namespace);
        let plan = plan_resume(resume.as_ref(), &epoch, last, first, self.cfg.replay_limit);
        // The snapshot is made before anything changes: when too many
        // made earlier still wait for viewers that do not read, this one
        // is refused and the connection keeps what it had.
        let snapshot = match plan {
            ResumePlan::Replay { .. } => None,
            ResumePlan::Snapshot(_) => {
                let bytes: Arc<str> = self.snapshot(&namespace, &epoch, last, &filter).into();
                // Counted by the outbox as it sends the refusal.
                if let Err(e) = self.snapshots.take(&bytes, self.cfg.max_snapshot_bytes) {
                    conn.reject(e.with_id(id));
                    return;
                }
                Some(bytes)
            }
        };
        self.remove_sub(conn.id, &namespace);
        // Held broadcasts belong to the viewers subscribed before this one,
        // whose replay or snapshot below already covers them.
        let (held, _) = self.coalesce.release(&namespace, None);
        self.deliver_held(&namespace, held);
        let recovered = matches!(plan, ResumePlan::Replay { .. });
        let outcome = match plan {
            ResumePlan::Replay { .. } => "recovered",
            ResumePlan::Snapshot(r) => r.label(),
        };
        self.metrics
            .resumes
            .get_or_create(&crate::metrics::Outcome {
                outcome: outcome.to_owned(),
            })
            .inc();
        conn.push_control(
            ServerMessage::Subscribed {
                id,
                namespace: namespace.clone(),
                epoch,
                offset: last,
                recovered,
            }
            .encode()
            .into(),
        );
        match (plan, snapshot) {
            (ResumePlan::Replay { after }, _) => {
                if let Some(ns) = self.namespaces.get(&namespace) {
                    let mut replayed = 0;
                    for e in ns.log.after(after) {
                        if filter.matches(&e.operation_id, &e.kind) {
                            conn.push(
                                OutItem::message(e.bytes.clone())
                                    .with_offset(e.offset)
                                    .uncounted(),
                            );
                            replayed += 1;
                        }
                    }
                    self.metrics.replayed.inc_by(replayed);
                }
            }
            (ResumePlan::Snapshot(_), Some(bytes)) => {
                conn.push(OutItem::message(bytes).with_offset(last).uncounted());
            }
            (ResumePlan::Snapshot(_), None) => unreachable!("made above"),
        }
        self.promise_epoch(&namespace);
        conn.set_subscribed(true);
        conn.mark_role(crate::outbox::ROLE_VIEWER);
        self.conn_subs
            .entry(conn.id)
            .or_default()
            .push(namespace.clone());
        self.subs.entry(namespace).or_default().push(Sub {
            conn,
            filter,
            conflate,
        });
    }

    /// The `operation_list` of `namespace` for `filter`, made of the
    /// states' cached JSON in start order (see `states.rs`).
    fn snapshot(
        &self,
        namespace: &str,
        epoch: &str,
        last: u64,
        filter: &hub_core::glob::Filter,
    ) -> String {
        let entries: Vec<&states::Entry> = self
            .namespaces
            .get(namespace)
            .map(|ns| {
                ns.states
                    .in_order()
                    .filter(|e| filter.matches(&e.state().operation_id, &e.state().kind))
                    .collect()
            })
            .unwrap_or_default();
        states::operation_list(namespace, epoch, last, &entries)
    }

    /// Drops the connection's subscription to `namespace` (if it has one)
    /// and answers `ok`; a connection left without any subscription no
    /// longer gets `system_status`.
    fn unsubscribe(&mut self, conn: &Outbox, id: Option<u64>, namespace: &str) {
        self.remove_sub(conn.id, namespace);
        if self.conn_subs.get(&conn.id).is_none_or(Vec::is_empty) {
            conn.set_subscribed(false);
        }
        let ok = ServerMessage::Ok { id }.encode();
        self.actions.push(AfterCommit::Notify {
            conn: conn.id,
            bytes: ok.into(),
        });
    }

    fn narrow(&mut self, conn: &Outbox, may_view: Box<dyn Fn(&str) -> bool + Send>) {
        let lost: Vec<String> = self
            .conn_subs
            .get(&conn.id)
            .map(|l| l.iter().filter(|ns| !may_view(ns)).cloned().collect())
            .unwrap_or_default();
        for ns in lost {
            self.remove_sub(conn.id, &ns);
            conn.notify_error(
                ProtoError::new(
                    ErrorCode::Forbidden,
                    format!("the refreshed token does not allow namespace `{ns}`: its subscription has ended"),
                )
                .with_data(serde_json::json!({"namespace": ns})),
            );
        }
        if self.conn_subs.get(&conn.id).is_none_or(Vec::is_empty) {
            conn.set_subscribed(false);
        }
    }

    /// The filter bytes of connection `conn`'s subscriptions: all of them,
    /// and of the one to `namespace` (0 without one), in one pass.
    fn filter_bytes(&self, conn: u64, namespace: &str) -> (usize, usize) {
        let mut all = 0;
        let mut that = 0;
        for ns in self.conn_subs.get(&conn).into_iter().flatten() {
            let Some(sub) = self
                .subs
                .get(ns)
                .and_then(|l| l.iter().find(|s| s.conn.id == conn))
            else {
                continue;
            };
            let bytes = sub.filter.bytes();
            all += bytes;
            if ns == namespace {
                that = bytes;
            }
        }
        (all, that)
    }

    fn remove_sub(&mut self, conn: u64, namespace: &str) {
        if let Some(list) = self.subs.get_mut(namespace) {
            list.retain(|s| s.conn.id != conn);
            if list.is_empty() {
                self.subs.remove(namespace);
                self.forget_promise(namespace);
            }
        }
        if let Some(l) = self.conn_subs.get_mut(&conn) {
            l.retain(|n| n != namespace);
        }
    }

    /// Time passes: stalls, hub-made cancels, retention, idle namespaces.
    pub(super) fn tick(&mut self, now: u64) {
        if self.coalesce.enabled() {
            for (ns, held) in self.coalesce.due(now) {
                self.deliver_held(&ns, held);
            }
        }
        if self.store_failed.is_some() {
            return;
        }
        let cfg = self.cfg.core.clone();
        let names: Vec<String> = self.namespaces.keys().cloned().collect();
        for name in names {
            let Some(ns) = self.namespaces.get_mut(&name) else {
                continue;
            };
            if ns.core.next_deadline(&cfg).is_none_or(|d| d > now) {
                continue;
            }
            let out = {
                let (registry, departures) = (&self.registry, &self.departures);
                let gone_since =
                    |conn: u64| registry.get(conn).is_none().then(|| departures.since(conn));
                ns.core.tick_with(now, &cfg, &gone_since)
            };
            let stamp = crate::clock::stamp();
            // A dropped operation's record becomes its tombstone; the
            // records of tombstones pushed out by the cap go (the store
            // applies deletes after upserts, so an id in both ends deleted).
            self.operations = self.operations.saturating_sub(out.removed.len());
            for id in &out.removed {
                ns.states.remove(id);
                match ns.core.tombstone(id) {
                    Some(t) => self.batch.upsert_ops.push(OpRecord {
                        namespace: name.clone(),
                        operation_id: id.clone(),
                        data: records::encode_dropped(t),
                    }),
                    None => self.batch.delete_ops.push((name.clone(), id.clone())),
                }
            }
            for id in out.evicted {
                self.batch.delete_ops.push((name.clone(), id));
            }
            let mut touched: Vec<String> =
                out.events.iter().map(|e| e.operation_id.clone()).collect();
            touched.dedup();
            for id in touched {
                self.dirty.insert((name.clone(), id));
            }
            let stalled = out
                .events
                .iter()
                .filter(|e| e.event_type == hub_proto::EventType::OperationStalled)
                .count();
            if stalled > 0 {
                tracing::info!(namespace = name.as_str(), stalled, "operations stalled");
            }
            for event in out.events {
                self.push_event(&name, event, stamp);
            }
        }
        self.forget_idle(now);
    }

    /// Serialises each operation changed since the last flush once (not
    /// once per event: a record carries the state and the seq memory).
    pub(super) fn take_dirty_records(&mut self) {
        for (ns, id) in std::mem::take(&mut self.dirty) {
            let Some(op) = self.namespaces.get(&ns).and_then(|n| n.core.operation(&id)) else {
                continue; // removed by retention in the same turn: its delete is queued
            };
            self.batch.upsert_ops.push(OpRecord {
                namespace: ns,
                operation_id: id,
                data: records::encode_live(op),
            });
        }
    }

    /// Runs what a durable batch allows: log, states, fan-out, answers.
    pub(super) fn run_actions(&mut self, actions: Vec<AfterCommit>) {
        // Fan-out is grouped per viewer: one lock and one wake-up per viewer
        // for all the events of this batch.
        let mut fan: Vec<FanGroup> = Vec::new();
        let now = now_ms();
        for action in actions {
            match action {
                AfterCommit::Event {
                    ns,
                    entry,
                    state,
                    stamp,
                } => {
                    self.metrics.events.inc();
                    self.count_event(&ns, &entry);
                    if let Some(n) = self.namespaces.get_mut(&ns) {
                        let freed = n.log.push(entry.clone());
                        n.states.insert(*state);
                        self.history_changed(entry.cost(), freed);
                    }
                    let key = op_key(&ns, &entry.operation_id);
                    let lifecycle = entry.event_type.is_lifecycle();
                    let item = if lifecycle {
                        OutItem::lifecycle(entry.bytes.clone(), key, entry.offset)
                    } else {
                        OutItem::progress(entry.bytes.clone(), key, entry.offset)
                    }
                    .with_stamp(stamp)
                    .with_tag(crate::metrics::Metrics::type_tag(entry.event_type.as_str()))
                    .with_wire(crate::frame::single(&entry.bytes));
                    let keys = (entry.operation_id.clone(), entry.kind.clone());
                    if self.coalesce.enabled()
                        && !self.coalesce_event(&mut fan, &ns, lifecycle, now, &item, &keys)
                    {
                        continue;
                    }
                    push_fan(&mut fan, &ns, item, keys);
                }
                other => {
                    self.fan_out(std::mem::take(&mut fan));
                    self.run_answer(other);
                }
            }
        }
        self.fan_out(fan);
        self.keep_history_in_budget();
    }

    /// Lifecycle metrics and log lines of a durable event.
    fn count_event(&mut self, ns: &str, entry: &LogEntry) {
        use hub_proto::EventType as T;
        let outcome = match entry.event_type {
            T::ProgressUpdate => return,
            T::OperationStarted => {
                self.kinds.get(&self.metrics, &entry.kind).started.inc();
                None
            }
            T::OperationCompleted => Some(0),
            T::OperationFailed => Some(1),
            T::OperationCanceled => Some(2),
            T::OperationStalled => {
                self.metrics.stalls.inc();
                None
            }
            T::OperationResumed => None,
        };
        if let Some(i) = outcome {
            self.kinds.get(&self.metrics, &entry.kind).finished[i].inc();
            // No seq: the hub ended it, not its producer.
            if entry.seq == 0 {
                let reason = if i == 1 { "abandoned" } else { "producer_gone" };
                self.metrics
                    .ended_by_hub
                    .get_or_create(&crate::metrics::Reason {
                        reason: reason.into(),
                    })
                    .inc();
            }
        }
        let event = entry.event_type.as_str();
        let op = &*entry.operation_id;
        // Stalls are summed up per tick and namespace (see `tick`): one
        // line each would flood the log when many producers fall silent.
        match entry.event_type {
            T::OperationFailed => {
                tracing::info!(
                    namespace = ns,
                    operation_id = op,
                    offset = entry.offset,
                    event,
                    "operation event"
                )
            }
            _ => {
                tracing::debug!(
                    namespace = ns,
                    operation_id = op,
                    offset = entry.offset,
                    event,
                    "operation event"
                )
            }
        }
    }

    /// The broadcast cap: false when the event is held (not delivered now);
    /// otherwise the namespace's held updates that must precede it are
    /// added to `fan` first.
    fn coalesce_event(
        &mut self,
        fan: &mut Vec<FanGroup>,
        ns: &str,
        lifecycle: bool,
        now: u64,
        item: &OutItem,
        keys: &(Arc<str>, Arc<str>),
    ) -> bool {
        let op = &keys.0;
        if self.coalesce.judge(ns, op, lifecycle, now) == Verdict::Hold {
            let held = Held {
                op: op.clone(),
                item: item.clone(),
                key: keys.clone(),
            };
            if self.coalesce.hold(ns, held) {
                self.metrics.limited("broadcast");
            }
            return false;
        }
        let (held, dropped) = self.coalesce.release(ns, Some(op));
        for _ in 0..dropped {
            self.metrics.limited("broadcast");
        }
        for h in held {
            push_fan(fan, ns, h.item, h.key);
        }
        true
    }

    /// Delivers held broadcasts of `ns` now.
    fn deliver_held(&mut self, ns: &str, held: Vec<Held>) {
        if held.is_empty() {
            return;
        }
        let mut fan: Vec<FanGroup> = Vec::new();
        for h in held {
            push_fan(&mut fan, ns, h.item, h.key);
        }
        self.fan_out(fan);
    }

    fn fan_out(&mut self, groups: Vec<FanGroup>) {
        let before = self.deliveries_total;
        let now = crate::clock::stamp();
        let mut direct = Vec::new();
        for (ns, items, keys) in groups {
            let Some(subs) = self.subs.get(&ns) else {
                continue;
            };
            for sub in subs {
                let pushed = if sub.filter.is_all() {
                    self.deliveries_total += items.len() as u64;
                    sub.conn.push_live(items.iter(), sub.conflate, now)
                } else {
                    let mut n = 0;
                    let pushed = sub.conn.push_live(
                        items
                            .iter()
                            .zip(keys.iter())
                            .filter(|(_, (op, kind))| sub.filter.matches(op, kind))
                            .map(|(i, _)| {
                                n += 1;
                                i
                            }),
                        sub.conflate,
                        now,
                    );
                    self.deliveries_total += n;
                    pushed
                };
                if pushed == Pushed::Direct {
                    direct.push(sub.conn.clone());
                    // Other workers start writing while the engine goes on.
                    if direct.len() == crate::direct::CHUNK {
                        crate::direct::write(std::mem::take(&mut direct));
                    }
                }
            }
        }
        self.metrics
            .deliveries
            .inc_by(self.deliveries_total - before);
        crate::direct::write(direct);
    }

    fn run_answer(&mut self, action: AfterCommit) {
        match action {
            AfterCommit::Event { .. } => {}
            AfterCommit::State(state) => {
                if let Some(n) = self.namespaces.get_mut(&state.namespace) {
                    n.states
                        .set_cancel_requested(&state.operation_id, state.cancel_requested);
                }
            }
            AfterCommit::Ack(reply, ack, received) => {
                self.metrics
                    .ack_seconds
                    .observe(crate::clock::seconds_since(received));
                send_reply(reply, Ok(ack), |a| ServerMessage::Ack(a).encode())
            }
            AfterCommit::Notify { conn, bytes } => {
                if let Some(c) = self.registry.get(conn) {
                    c.push_control(bytes);
                }
            }
            AfterCommit::CancelDone { reply, id, state } => {
                send_reply(reply, Ok(*state), |_| ServerMessage::Ok { id }.encode())
            }
        }
    }

    /// A commit failed: answer everyone who waited on it with `STORE_UNAVAILABLE`.
    pub(super) fn fail_actions(&mut self, actions: Vec<AfterCommit>, e: &StoreError) {
        let err = |id: Option<u64>, op: Option<&str>| {
            ProtoError::new(
                ErrorCode::StoreUnavailable,
                "the store could not make this event durable",
            )
            .with_details(e.to_string())
            .with_operation(op)
            .with_id(id)
        };
        for action in actions {
            match action {
                AfterCommit::Ack(reply, ack, _) => {
                    send_reply(reply, Err(err(ack.id, Some(&ack.operation_id))), |_| {
                        String::new()
                    })
                }
                AfterCommit::CancelDone { reply, id, state } => {
                    send_reply(reply, Err(err(id, Some(&state.operation_id))), |_| {
                        String::new()
                    })
                }
                _ => {}
            }
        }
    }
}
