//! A namespace: one ordered stream of events and the operations it holds.
//!
//! Architecture invariant: a call that returns `Err` has changed nothing —
//! no offset consumed, no seq accepted, no state touched. Every accepted
//! message appends exactly one event (plus an `operation_resumed` before it
//! when the operation was stalled), with offsets `last_offset + 1, + 2, ...`.

use crate::config::CoreConfig;
use crate::eta::EtaEstimator;
use crate::operation::Operation;
use hub_proto::{
    Ack, ErrorCode, Event, EventType, JsonObject, OperationState, OperationStatus, ProducerBody,
    ProducerMessage, ProtoError,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Who sends a producer message: any token whose roles and namespaces
/// allow publishing (checked before the core) may report on any operation
/// of the namespace, so only the connection matters, for cancel delivery.
#[derive(Clone, Copy, Debug)]
pub struct Producer {
    /// The connection (or HTTP request) id.
    pub conn: u64,
}

/// A `cancel_requested` notice to deliver to a producer connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelNotice {
    /// The connection to deliver to.
    pub conn: u64,
    /// The operation.
    pub operation_id: String,
    /// The canceller's subject.
    pub requested_by: String,
}

/// What an accepted (or re-acked) producer message produced.
#[derive(Clone, Debug)]
pub struct Applied {
    /// New events, in offset order (empty for a duplicate).
    pub events: Vec<Event>,
    /// The ack to send once the events are durable.
    pub ack: Ack,
    /// A pending cancel to deliver to the sending connection.
    pub cancel: Option<CancelNotice>,
    /// False for a duplicate older than the operation's remembered
    /// (seq, offset) pairs: its ack carries the operation's latest offset,
    /// and the caller should look the original up in its event log.
    pub offset_remembered: bool,
}

/// What a `cancel` request produced.
#[derive(Clone, Debug, PartialEq)]
pub struct CancelRequested {
    /// The connection that owns the operation, if known.
    pub owner_conn: Option<u64>,
    /// The operation's updated state (cancel_requested: true).
    pub state: OperationState,
}

/// What a periodic tick produced.
#[derive(Clone, Debug, Default)]
pub struct TickOutput {
    /// Hub-made events (stalls, hub cancels, abandonments), in offset order.
    pub events: Vec<Event>,
    /// Finished operations dropped after the retention window; each now
    /// has a [`Namespace::tombstone`] to persist in place of its record.
    pub removed: Vec<String>,
    /// Ids whose tombstones were pushed out by the cap (their records go);
    /// may include ids of `removed`.
    pub evicted: Vec<String>,
}

/// One namespace stream.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    epoch: String,
    last_offset: u64,
    ops: HashMap<String, Operation>,
    /// Operations dropped after the finished-retention window, so that
    /// their ids stay finished (see [`Tombstone`]).
    tombstones: Tombstones,
}

impl Namespace {
    /// An empty namespace.
    pub fn new(name: impl Into<String>, epoch: impl Into<String>) -> Self {
        Namespace {
            name: name.into(),
            epoch: epoch.into(),
            last_offset: 0,
            ops: HashMap::new(),
            tombstones: Tombstones::default(),
        }
    }

    /// Restores a namespace from its persisted operations, the tombstones
    /// of those it dropped (by id), and its last offset.
    pub fn restore(
        name: impl Into<String>,
        epoch: impl Into<String>,
        last_offset: u64,
        ops: impl IntoIterator<Item = Operation>,
        tombstones: impl IntoIterator<Item = (String, Tombstone)>,
    ) -> Self {
        let mut ns = Namespace::new(name, epoch);
        ns.last_offset = last_offset;
        for op in ops {
            ns.ops.insert(op.state.operation_id.clone(), op);
        }
        ns.tombstones = Tombstones::restore(tombstones);
        ns
    }

    /// The hub was down until `now`, and its producers could not speak to
    /// it meanwhile: each unfinished operation's silence counts from `now`,
    /// so its producer gets the whole stall, cancel and abandon windows to
    /// come back before the hub stalls, cancels or fails the operation.
    pub fn restarted(&mut self, now: u64) {
        for op in self.ops.values_mut().filter(|op| !op.is_finished()) {
            op.last_producer_at = op.last_producer_at.max(now);
        }
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The offset of the newest event (0 when empty).
    pub fn last_offset(&self) -> u64 {
        self.last_offset
    }

    /// One operation.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.ops.get(id)
    }

    /// Number of operations held.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is held.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every operation.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.ops.values()
    }

    /// Applies a producer message.
    ///
    /// `new_id` makes an operation id when a start omits it.
    pub fn apply(
        &mut self,
        msg: ProducerMessage,
        producer: &Producer,
        now: u64,
        cfg: &CoreConfig,
        new_id: impl FnOnce() -> String,
    ) -> Result<Applied, ProtoError> {
        let req_id = msg.id;
        let op_id = match &msg.operation_id {
            Some(id) => id.clone(),
            None => new_id(),
        };
        self.apply_inner(msg, op_id.clone(), producer, now, cfg)
            .map_err(|e| e.with_operation(Some(&op_id)).with_id(req_id))
    }

    fn apply_inner(
        &mut self,
        msg: ProducerMessage,
        op_id: String,
        producer: &Producer,
        now: u64,
        cfg: &CoreConfig,
    ) -> Result<Applied, ProtoError> {
        let Some(op) = self.ops.get_mut(&op_id) else {
            if let Some(t) = self.tombstones.get(&op_id) {
                return self.after_retention(msg, op_id, t.clone());
            }
            return self.start_new(msg, op_id, producer, now, cfg);
        };
        let seq = seq_of(&msg, op.last_seq);
        if seq <= op.last_seq {
            let remembered = op.offset_of(seq);
            let offset = remembered.unwrap_or(op.state.last_offset);
            op.owner_conn = Some(producer.conn);
            let cancel = take_cancel_notice(op, producer.conn);
            // Requested and not yet answered, or answered by the end this
            // operation came to (a cancel is refused once it has ended).
            let requested = op.state.cancel_requested;
            return Ok(Applied {
                events: Vec::new(),
                ack: self.reack(msg.id, op_id, seq, offset, requested),
                cancel,
                offset_remembered: remembered.is_some(),
            });
        }
        if op.is_finished() {
            return Err(already_finished(op.state.state, false));
        }
        if seq != op.last_seq + 1 {
            return Err(ProtoError::new(
                ErrorCode::SeqGap,
                format!("seq {seq} skips ahead; expected {}", op.last_seq + 1),
            )
            .with_data(json!({ "expected": op.last_seq + 1 })));
        }
        if matches!(msg.body, ProducerBody::Started { .. }) {
            // Unreachable through the decoder (a start has seq 1); kept total.
            return Err(ProtoError::bad("operation_started must have seq 1"));
        }
        // Accepted: from here on nothing fails.
        let mut events = Vec::with_capacity(2);
        op.last_producer_at = now;
        op.owner_conn = Some(producer.conn);
        if op.state.state == OperationStatus::Stalled {
            op.set_status(OperationStatus::Running);
            self.last_offset += 1;
            let offset = self.last_offset;
            op.state.updated_at = now;
            op.state.last_offset = offset;
            op.refresh_estimate(now);
            events.push(make_event(
                EventType::OperationResumed,
                op,
                offset,
                now,
                None,
                Map::new(),
            ));
        }
        let event_type = msg.body.event_type();
        let fields = apply_body(op, msg.body, now);
        self.last_offset += 1;
        let offset = self.last_offset;
        op.state.updated_at = now;
        op.state.last_offset = offset;
        op.remember(seq, offset, cfg.seq_memory);
        op.refresh_estimate(now);
        events.push(make_event(event_type, op, offset, now, Some(seq), fields));
        let cancel = take_cancel_notice(op, producer.conn);
        Ok(Applied {
            ack: Ack {
                id: msg.id,
                namespace: self.name.clone(),
                operation_id: op_id,
                seq,
                offset,
                duplicate: false,
                // Also on the message that ends it: the cancel was pending
                // when that message came.
                cancel_requested: op.state.cancel_requested,
            },
            events,
            cancel,
            offset_remembered: true,
        })
    }

    /// The ack of a resend: `duplicate`, with the offset the original got.
    fn reack(
        &self,
        id: Option<u64>,
        operation_id: String,
        seq: u64,
        offset: u64,
        cancel_requested: bool,
    ) -> Ack {
        Ack {
            id,
            namespace: self.name.clone(),
            operation_id,
            seq,
            offset,
            duplicate: true,
            cancel_requested,
        }
    }

    /// A message for an operation dropped after the retention window: a
    /// resend is re-acked (its offset, unknown here, is for the caller to
    /// find in its log; else the operation's last one), anything new gets
    /// `OPERATION_FINISHED`.
    fn after_retention(
        &self,
        msg: ProducerMessage,
        op_id: String,
        t: Tombstone,
    ) -> Result<Applied, ProtoError> {
        let seq = seq_of(&msg, t.last_seq);
        if seq > t.last_seq {
            return Err(already_finished(t.state, true));
        }
        Ok(Applied {
            events: Vec::new(),
            ack: self.reack(msg.id, op_id, seq, t.last_offset, t.cancel_requested),
            cancel: None,
            offset_remembered: false,
        })
    }

    fn start_new(
        &mut self,
        msg: ProducerMessage,
        op_id: String,
        producer: &Producer,
        now: u64,
        cfg: &CoreConfig,
    ) -> Result<Applied, ProtoError> {
        let ProducerBody::Started {
            name,
            kind,
            total,
            parent_id,
            weight,
            metadata,
        } = msg.body
        else {
            return Err(ProtoError::new(
                ErrorCode::UnknownOperation,
                "this namespace has no such operation",
            ));
        };
        let seq = msg.seq.unwrap_or(1);
        if seq != 1 {
            return Err(ProtoError::bad("operation_started must have seq 1"));
        }
        if self.ops.len() >= cfg.max_operations_per_namespace {
            return Err(ProtoError::new(
                ErrorCode::RateLimited,
                "this namespace holds the most operations it may",
            )
            .with_data(json!({
                "reason": "operations_per_namespace",
                "limit": cfg.max_operations_per_namespace,
            })));
        }
        self.last_offset += 1;
        let offset = self.last_offset;
        let mut fields = Map::new();
        fields.insert("name".into(), json!(name));
        fields.insert("kind".into(), json!(kind));
        insert_opt(&mut fields, "total", total.map(Value::from));
        insert_opt(&mut fields, "parent_id", parent_id.clone().map(Value::from));
        insert_opt(&mut fields, "weight", weight.map(Value::from));
        // The state keeps the object's text; the event takes the parsed one.
        let metadata_text = metadata.as_ref().map(JsonObject::from_map);
        insert_opt(&mut fields, "metadata", metadata.map(Value::Object));
        let mut eta = EtaEstimator::new();
        eta.observe(0.0, now);
        let mut op = Operation {
            state: OperationState {
                operation_id: op_id.clone(),
                namespace: self.name.clone(),
                name,
                kind,
                state: OperationStatus::Running,
                progress: Some(0.0),
                current: total.map(|_| 0.0),
                total,
                step: None,
                message: None,
                details: None,
                error: None,
                parent_id,
                started_at: now,
                updated_at: now,
                finished_at: None,
                rate: None,
                eta_seconds: None,
                cancel_requested: false,
                last_offset: offset,
                weight,
                metadata: metadata_text,
            },
            last_seq: 0,
            started_offset: offset,
            recent: Default::default(),
            last_producer_at: now,
            eta,
            cancel_requested_at: None,
            cancel_requested_by: None,
            owner_conn: Some(producer.conn),
            cancel_delivered_to: None,
            owner_seen_at: None,
        };
        op.remember(1, offset, cfg.seq_memory);
        let event = make_event(
            EventType::OperationStarted,
            &op,
            offset,
            now,
            Some(1),
            fields,
        );
        self.ops.insert(op_id.clone(), op);
        Ok(Applied {
            events: vec![event],
            ack: Ack {
                id: msg.id,
                namespace: self.name.clone(),
                operation_id: op_id,
                seq: 1,
                offset,
                duplicate: false,
                cancel_requested: false,
            },
            cancel: None,
            offset_remembered: true,
        })
    }

    /// A viewer asks the producer to stop.
    pub fn request_cancel(
        &mut self,
        op_id: &str,
        requested_by: &str,
        now: u64,
    ) -> Result<CancelRequested, ProtoError> {
        let Some(op) = self.ops.get_mut(op_id) else {
            if let Some(t) = self.tombstones.get(op_id) {
                return Err(already_finished(t.state, true).with_operation(Some(op_id)));
            }
            return Err(ProtoError::new(
                ErrorCode::UnknownOperation,
                "this namespace has no such operation",
            )
            .with_operation(Some(op_id)));
        };
        if op.is_finished() {
            return Err(already_finished(op.state.state, false).with_operation(Some(op_id)));
        }
        if !op.state.cancel_requested {
            op.state.cancel_requested = true;
            op.cancel_requested_at = Some(now);
            op.cancel_requested_by = Some(requested_by.to_owned());
        }
        Ok(CancelRequested {
            owner_conn: op.owner_conn,
            state: op.state.clone(),
        })
    }

    /// Records that the pending cancel of `op_id` was delivered to `conn`.
    pub fn mark_cancel_delivered(&mut self, op_id: &str, conn: u64) {
        if let Some(op) = self.ops.get_mut(op_id) {
            op.cancel_delivered_to = Some(conn);
        }
    }

    /// Keeps a tombstone of a dropped operation, at most `cap` of them;
    /// returns the ids whose tombstones were pushed out.
    fn forget(&mut self, op: Operation, now: u64, cap: usize) -> Vec<String> {
        let t = Tombstone {
            started_offset: op.started_offset,
            last_seq: op.last_seq,
            last_offset: op.state.last_offset,
            state: op.state.state,
            dropped_at: now,
            cancel_requested: op.state.cancel_requested,
        };
        self.tombstones.insert(&op.state.operation_id, t, cap)
    }

    /// The offset of an operation's `operation_started` event, also once it
    /// was dropped after the retention window (while its tombstone lasts).
    pub fn started_offset(&self, op_id: &str) -> Option<u64> {
        self.ops
            .get(op_id)
            .map(|o| o.started_offset)
            .or_else(|| self.tombstones.get(op_id).map(|t| t.started_offset))
    }

    /// The tombstone of an operation dropped after the retention window
    /// (what the caller persists in place of its record).
    pub fn tombstone(&self, op_id: &str) -> Option<&Tombstone> {
        self.tombstones.get(op_id)
    }

    /// Time passes: stalls, hub-made cancels, abandonments, retention,
    /// with every producer connection taken as gone long ago (see
    /// [`Namespace::tick_with`]).
    pub fn tick(&mut self, now: u64, cfg: &CoreConfig) -> TickOutput {
        self.tick_with(now, cfg, &|_| Some(0))
    }

    /// Time passes. `gone_since(conn)` says whether a producer connection
    /// is gone: `None` while it is open, else since when (0: long ago or
    /// never known). An operation whose cancel is pending is canceled by
    /// the hub once its producer is gone and has been silent, since the
    /// later of its last message, the request and its leaving, for the
    /// stall timeout; a producer still connected is left to answer.
    pub fn tick_with(
        &mut self,
        now: u64,
        cfg: &CoreConfig,
        gone_since: &dyn Fn(u64) -> Option<u64>,
    ) -> TickOutput {
        let mut out = TickOutput::default();
        let mut ids: Vec<&String> = self.ops.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            let Some(op) = self.ops.get_mut(&id) else {
                continue;
            };
            if op.is_finished() {
                let until = op.state.finished_at.unwrap_or(0) + cfg.finished_retention_ms;
                if now >= until {
                    if let Some(op) = self.ops.remove(&id) {
                        let evicted = self.forget(op, now, cfg.max_operations_per_namespace);
                        out.evicted.extend(evicted);
                    }
                    out.removed.push(id);
                }
                continue;
            }
            let silent_since = op.last_producer_at;
            let mut hub_cancel = false;
            if let Some(at) = op.cancel_requested_at {
                if now >= silent_since.max(at) + cfg.stall_timeout_ms {
                    match op.owner_conn.map_or(Some(0), gone_since) {
                        None => op.owner_seen_at = Some(now),
                        Some(left) => {
                            hub_cancel =
                                now >= silent_since.max(at).max(left) + cfg.stall_timeout_ms
                        }
                    }
                }
            }
            let abandoned =
                cfg.abandon_timeout_ms > 0 && now >= silent_since + cfg.abandon_timeout_ms;
            // A silent producer's operation is stalled first, also when the
            // hub ends it in the same tick: viewers see why it ended.
            if op.state.state == OperationStatus::Running
                && now >= silent_since + cfg.stall_timeout_ms
            {
                self.last_offset += 1;
                let offset = self.last_offset;
                op.set_status(OperationStatus::Stalled);
                op.state.updated_at = now;
                op.state.last_offset = offset;
                op.refresh_estimate(now);
                out.events.push(make_event(
                    EventType::OperationStalled,
                    op,
                    offset,
                    now,
                    None,
                    Map::new(),
                ));
            }
            if hub_cancel || abandoned {
                self.last_offset += 1;
                let ending = if hub_cancel {
                    HubEnding::ProducerGone
                } else {
                    HubEnding::Abandoned(cfg.abandon_timeout_ms)
                };
                out.events
                    .push(finish_by_hub(op, ending, self.last_offset, now));
            }
        }
        out
    }

    /// The earliest time at which [`Namespace::tick`] would change something.
    pub fn next_deadline(&self, cfg: &CoreConfig) -> Option<u64> {
        self.ops
            .values()
            .filter_map(|op| {
                if op.is_finished() {
                    return Some(op.state.finished_at.unwrap_or(0) + cfg.finished_retention_ms);
                }
                let mut t = None;
                if op.state.state == OperationStatus::Running {
                    t = Some(op.last_producer_at + cfg.stall_timeout_ms);
                }
                if let Some(at) = op.cancel_requested_at {
                    let c = op
                        .last_producer_at
                        .max(at)
                        .max(op.owner_seen_at.unwrap_or(0))
                        + cfg.stall_timeout_ms;
                    t = Some(t.map_or(c, |x: u64| x.min(c)));
                }
                if cfg.abandon_timeout_ms > 0 {
                    let a = op.last_producer_at + cfg.abandon_timeout_ms;
                    t = Some(t.map_or(a, |x: u64| x.min(a)));
                }
                t
            })
            .min()
    }
}

/// Why the hub ends a live operation on its own authority.
#[derive(Clone, Copy)]
enum HubEnding {
    /// A cancel is pending and its producer is gone: `operation_canceled`.
    ProducerGone,
    /// No word from the producer for this long (ms): `operation_failed`.
    Abandoned(u64),
}

/// Ends a live operation on the hub's own authority and returns its event
/// at `offset`: a hub-made `operation_canceled` whose reason becomes the
/// state's `message` (as for a producer's cancel report), or an
/// `operation_failed` with `error` and `details: {"reason": "abandoned"}`.
fn finish_by_hub(op: &mut Operation, ending: HubEnding, offset: u64, now: u64) -> Event {
    let mut fields = Map::new();
    let kind = match ending {
        HubEnding::ProducerGone => {
            let reason =
                "canceled by the hub: the producer left without answering the cancel request";
            op.set_status(OperationStatus::Canceled);
            op.state.message = Some(reason.to_owned());
            fields.insert("reason".into(), json!(reason));
            EventType::OperationCanceled
        }
        HubEnding::Abandoned(timeout_ms) => {
            let error = format!(
                "abandoned: no word from the producer for {} s, so the hub ended the operation",
                timeout_ms / 1000
            );
            let details = json!({"reason": "abandoned"});
            op.set_status(OperationStatus::Failed);
            op.state.error = Some(error.clone());
            op.state.details = details.as_object().map(JsonObject::from_map);
            fields.insert("error".into(), json!(error));
            fields.insert("details".into(), details);
            EventType::OperationFailed
        }
    };
    op.state.finished_at = Some(now);
    op.state.updated_at = now;
    op.state.last_offset = offset;
    op.refresh_estimate(now);
    make_event(kind, op, offset, now, None, fields)
}

fn take_cancel_notice(op: &mut Operation, conn: u64) -> Option<CancelNotice> {
    if op.cancel_pending() && op.cancel_delivered_to != Some(conn) {
        op.cancel_delivered_to = Some(conn);
        Some(CancelNotice {
            conn,
            operation_id: op.state.operation_id.clone(),
            requested_by: op.cancel_requested_by.clone().unwrap_or_default(),
        })
    } else {
        None
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        map.insert(key.into(), v);
    }
}

/// Applies a non-start body to an operation; returns the event's own fields.
fn apply_body(op: &mut Operation, body: ProducerBody, now: u64) -> Map<String, Value> {
    let mut fields = Map::new();
    let s = &mut op.state;
    match body {
        ProducerBody::Started { .. } => {}
        ProducerBody::Progress {
            progress,
            current,
            step,
            message,
            details,
        } => {
            insert_opt(&mut fields, "progress", progress.map(Value::from));
            insert_opt(&mut fields, "current", current.map(Value::from));
            insert_opt(&mut fields, "step", step.clone().map(Value::from));
            insert_opt(&mut fields, "message", message.clone().map(Value::from));
            if let Some(d) = &details {
                s.details = Some(JsonObject::from_map(d));
            }
            insert_opt(&mut fields, "details", details.map(Value::Object));
            if let Some(c) = current {
                s.current = Some(c);
            }
            // Whichever of progress and units is left out follows the
            // other, when the total relates them: the state never shows
            // 80% beside an older 50 of 200 units.
            match (progress, current, s.total) {
                (Some(p), None, Some(t)) => {
                    s.progress = Some(p);
                    s.current = Some(p / 100.0 * t);
                }
                (Some(p), _, _) => s.progress = Some(p),
                (None, Some(c), Some(t)) => s.progress = Some((c / t * 100.0).clamp(0.0, 100.0)),
                _ => {}
            }
            if step.is_some() {
                s.step = step;
            }
            if message.is_some() {
                s.message = message;
            }
            if let Some(p) = s.progress {
                op.eta.observe(p, now);
            }
        }
        ProducerBody::Completed { details } => {
            if let Some(d) = &details {
                s.details = Some(JsonObject::from_map(d));
            }
            insert_opt(&mut fields, "details", details.map(Value::Object));
            s.state = OperationStatus::Completed;
            s.progress = Some(100.0);
            if let Some(t) = s.total {
                s.current = Some(t);
            }
            s.finished_at = Some(now);
        }
        ProducerBody::Failed { error, details } => {
            fields.insert("error".into(), json!(error));
            if let Some(d) = &details {
                s.details = Some(JsonObject::from_map(d));
            }
            insert_opt(&mut fields, "details", details.map(Value::Object));
            s.state = OperationStatus::Failed;
            s.error = Some(error);
            s.finished_at = Some(now);
        }
        ProducerBody::Canceled { reason } => {
            insert_opt(&mut fields, "reason", reason.clone().map(Value::from));
            s.state = OperationStatus::Canceled;
            if let Some(r) = reason {
                s.message = Some(r);
            }
            s.finished_at = Some(now);
        }
    }
    fields
}

/// `OPERATION_FINISHED` for an operation in a final state (`dropped`: and
/// already past the finished-retention window). `data.state` names the
/// final state, so a producer that cannot tell whether its own terminal
/// message was applied (its ack was lost) can tell whether the operation
/// ended the way it reported.
fn already_finished(state: OperationStatus, dropped: bool) -> ProtoError {
    let past = if dropped {
        " (and past the finished-retention window)"
    } else {
        ""
    };
    ProtoError::new(
        ErrorCode::OperationFinished,
        format!("operation is already {}{past}", state.as_str()),
    )
    .with_data(json!({"state": state.as_str()}))
}

/// The message's seq. One left out (HTTP only) is the next after
/// `last_seq`, except on a start, which always has seq 1: a retried `curl`
/// start is a resend.
fn seq_of(msg: &ProducerMessage, last_seq: u64) -> u64 {
    match (&msg.body, msg.seq) {
        (_, Some(seq)) => seq,
        (ProducerBody::Started { .. }, None) => 1,
        (_, None) => last_seq + 1,
    }
}

fn make_event(
    event_type: EventType,
    op: &Operation,
    offset: u64,
    now: u64,
    seq: Option<u64>,
    fields: Map<String, Value>,
) -> Event {
    Event {
        event_type,
        namespace: op.state.namespace.clone(),
        offset,
        timestamp: now,
        operation_id: op.state.operation_id.clone(),
        seq,
        fields,
        state: op.state.clone(),
    }
}

#[cfg(test)]
mod tests;
mod tombstones;

pub use tombstones::Tombstone;
use tombstones::Tombstones;
