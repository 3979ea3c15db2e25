//! The producer's outgoing queue: per-operation sequence numbers, conflation,
//! throttling, at-least-once delivery and resurrection. Socket-free and
//! clock-free (time is an argument), like the connection [`Machine`].
//!
//! **Invariants**
//! - Every message keeps its `seq` until the hub acks it (acks are
//!   cumulative per operation); after a reconnect everything unacked is sent
//!   again, in order.
//! - Lifecycle messages (start, complete, fail, cancel) are never dropped by
//!   the client; when `max_lifecycle` of them are waiting, or the queued
//!   operations hold `max_bytes`, new operations are refused with
//!   [`ReportError::QueueFull`] (counted in `queue_full`). The end of an
//!   operation the outbox holds is always taken (one per operation, so the
//!   bound on operations bounds them too).
//! - No message longer than the hub's limit is ever sent
//!   ([`OutboxConfig::max_message_bytes`], lowered to the hub's
//!   `data.limit` when it answers `MESSAGE_TOO_LARGE`): merged progress
//!   (and the snapshot re-registration sends) keeps the newest values and
//!   drops older text that does not fit ([`merge_bounded`]); a message
//!   still too long is cut ([`fit`]: details first; a terminal message
//!   keeps its state) and the cut is kept as the operation's refusal.
//! - Progress updates are conflated: an operation has at most one pending,
//!   unnumbered update, merged field by field, numbered only when it is
//!   actually transmitted (at most once per `progress_interval_ms`). A
//!   lifecycle message flushes the pending update first, so the final state
//!   is always sent.
//! - When the hub lost an operation (a resend gets `UNKNOWN_OPERATION`, a
//!   re-sent start is acked as new, or `SEQ_GAP` says it is behind), the
//!   operation is re-registered: start, a snapshot of all progress so far,
//!   then the unacked lifecycle messages, renumbered from where the hub is.
//! - A start acked as a duplicate although this client never wrote it
//!   to any connection before (so not our own resend after a lost ack)
//!   means the id is taken on the hub (an earlier or concurrent
//!   producer): the operation is dropped with the client's own refusal
//!   [`OPERATION_EXISTS`] and nothing more is sent for it. To that end the
//!   start of an id the caller chose ([`Outbox::start_chosen`]) is sent
//!   alone, the rest waiting for its ack; generated ids cannot be taken.
//! - A message the hub refuses for good (`BAD_MESSAGE`, `FORBIDDEN`, ...)
//!   is dropped, never silently: its code and the hub's sentence are kept
//!   (the latest [`MAX_REFUSALS`] of the whole outbox) for
//!   [`Outbox::refusal`], whether the operation stays or was dropped. A
//!   refused terminal message is a [`Notice::TerminalRefused`] (the
//!   operation goes on and may be ended again) and every lost lifecycle
//!   message counts in [`OutboxStats::lifecycle_rejected`].
//! - Numbers from the hub are never trusted with arithmetic: an ack for a
//!   seq this client never numbered is ignored, a `SEQ_GAP` past
//!   [`MAX_SEQ`] is retried later like a transient refusal.
//!
//! [`Machine`]: crate::machine::Machine

use std::collections::{HashMap, VecDeque};

use crate::error::ReportError;
use crate::wire::{encode_producer, Ack, ErrorMessage, ProducerBody, ProgressFields, StartFields};

/// Local handle of an operation in the outbox.
pub type OpKey = u64;

/// The first `seq` used by an operation attached by id without knowing its
/// history: far ahead, so the hub answers `SEQ_GAP` with the seq it expects
/// instead of taking it for a duplicate.
pub const ATTACH_SEQ: u64 = 1 << 40;

/// Refusals kept for [`Outbox::refusal`] (the latest; older ones are forgotten).
pub const MAX_REFUSALS: usize = 64;

/// Seqs above this from the hub are not believed (a hostile or broken
/// answer): room is left so that arithmetic on seqs never overflows.
pub const MAX_SEQ: u64 = u64::MAX / 4;

mod size;
use size::encoded_len;
pub use size::{fit, merge_bounded, MIN_MESSAGE_LIMIT};

/// A message the hub refused for good, as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code (`BAD_MESSAGE`, `OPERATION_FINISHED`, ...).
    pub code: String,
    /// The hub's sentence.
    pub message: String,
    /// The state the operation ended in, when the hub said
    /// (`OPERATION_FINISHED`'s `data.state`).
    pub state: Option<String>,
}

/// The code of the client's own refusal of an operation whose id the hub
/// already has from someone else ([`Refusal::code`]): a start this client
/// never sent before was acked as a duplicate.
pub const OPERATION_EXISTS: &str = "OPERATION_EXISTS";

/// The code of the note a message cut to the hub's size limit leaves
/// ([`Refusal::code`]; its message says what was cut): the message went
/// out, cut, and was not refused.
pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

/// Limits of the queue. Defaults: 10,000 waiting lifecycle messages, 64 MiB
/// of queued operations, 64 KiB per message, 100 ms between progress sends
/// per operation (≤ 10/s), 64 unacked messages in flight per operation,
/// retry after 1 s on a transient refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Lifecycle messages that may wait for an ack before new operations
    /// are refused. A terminal message (complete, fail, cancel) of an
    /// operation the outbox already holds is always taken: it may pass
    /// this bound by at most one per operation held.
    pub max_lifecycle: usize,
    /// Bytes of queued operations (the encoded size of their starts and
    /// terminal messages) past which new operations are refused with
    /// [`ReportError::QueueFull`]; terminal messages of known operations
    /// are still taken.
    pub max_bytes: usize,
    /// The largest message the hub takes (its `--max-message-size`, 64 KiB
    /// by default). No message longer than this is ever sent: merged
    /// progress keeps the newest values and drops older text, and a
    /// message still too long is cut ([`Outbox::refusal`] says so). A
    /// `MESSAGE_TOO_LARGE` from the hub lowers it to the hub's `data.limit`.
    pub max_message_bytes: usize,
    /// Minimum time between two progress sends of one operation.
    pub progress_interval_ms: u64,
    /// Unacked messages on the wire per operation.
    pub max_in_flight: u64,
    /// Delay before resending after a transient refusal (`RATE_LIMITED`, ...).
    pub retry_after_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_lifecycle: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_message_bytes: 64 * 1024,
            progress_interval_ms: 100,
            max_in_flight: 64,
            retry_after_ms: 1_000,
        }
    }
}

/// Counters kept by the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Messages written to the socket (first sends and resends).
    pub sent: u64,
    /// Messages acknowledged by the hub.
    pub acked: u64,
    /// Messages sent again (after a reconnect or a refusal).
    pub resent: u64,
    /// Lifecycle calls refused because the queue was full.
    pub queue_full: u64,
    /// Lifecycle messages (start, complete, fail, cancel) the hub refused
    /// for good: the hub does not hold the state the job reported.
    pub lifecycle_rejected: u64,
    /// Messages cut to fit the hub's message size limit.
    pub shrunk: u64,
    /// Bytes held for queued operations (see [`OutboxConfig::max_bytes`]).
    pub bytes: u64,
    /// Operations re-registered because the hub had lost them.
    pub resurrected: u64,
    /// Messages the hub refused for good (dropped after telling the caller).
    pub rejected: u64,
    /// Seqs of attached operations another reporter took first (the
    /// message was moved past them and sent again).
    pub collisions: u64,
    /// Messages waiting: unacked plus pending progress.
    pub queued: u64,
    /// Lifecycle messages waiting for an ack.
    pub lifecycle_queued: u64,
    /// Operations in the outbox.
    pub operations: u64,
}

/// Something the reporter must tell the operation's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The hub asked the producer to stop.
    CancelRequested(OpKey),
    /// Every message of a finished operation was acked; it left the outbox.
    Done(OpKey),
    /// The hub refused the operation for good (`code`); its queue was dropped.
    Dropped(OpKey, String),
    /// The hub refused a terminal message of the operation for good
    /// (`code`): the operation goes on (on the hub it is still running),
    /// and the job may report its end again.
    TerminalRefused(OpKey, String),
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    body: ProducerBody,
    /// A terminal message sent again past a seq whose duplicate ack may
    /// have been its own (an attached operation, the first ack lost): an
    /// `OPERATION_FINISHED` naming its own final state then means it was
    /// applied the first time.
    may_be_applied: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    None,
    /// Send the start again before anything else (after a reconnect).
    Needed,
    /// Sent as request `id`; hold everything else until its ack.
    Awaiting(u64),
}

#[derive(Debug)]
struct Op {
    namespace: String,
    id: String,
    start: Option<StartFields>,
    snapshot: ProgressFields,
    queue: VecDeque<Pending>,
    next_seq: u64,
    acked: u64,
    sent_upto: u64,
    resend_upto: u64,
    /// The highest seq that may have reached the hub in an earlier attempt
    /// (before a reconnect or a transient refusal): a duplicate ack above
    /// it answers a message the hub never had from us.
    maybe_applied_upto: u64,
    pending_progress: Option<ProgressFields>,
    last_progress_at: Option<u64>,
    not_before: u64,
    terminal: bool,
    gen: u64,
    probe: Probe,
    in_ready: bool,
    /// Started under an id the caller chose: the start goes alone.
    chosen_id: bool,
    /// How many times the start (seq 1) was written: a duplicate ack
    /// means "taken by someone else" only for a start written once.
    start_writes: u32,
    /// What this operation counts in [`Outbox::bytes`].
    bytes: u64,
}

impl Op {
    fn in_flight(&self) -> u64 {
        self.sent_upto.saturating_sub(self.acked)
    }

    /// Messages it may have on the wire at once. An operation attached by
    /// id shares its seqs with whoever else reports on it (another
    /// process), so it sends one at a time: a seq taken by someone else
    /// then shows as a duplicate ack for the only message in flight.
    ///
    /// An operation started here under an id its caller chose (which
    /// another producer may hold) sends its start alone until the hub has
    /// acked it: a duplicate ack then means the id is someone
    /// else's ([`OPERATION_EXISTS`]), and nothing of ours may have reached
    /// their operation behind the start.
    fn window(&self, max_in_flight: u64) -> u64 {
        if self.start.is_none() || (self.chosen_id && self.acked == 0) {
            1
        } else {
            max_in_flight
        }
    }
}

/// A progress update the hub takes: the protocol wants `progress` or
/// `current` in every one, so an update that carries only a step, a
/// message or details repeats the latest known value (no change on the
/// hub), or 0 for an operation started here that reported none yet (the
/// hub's own value since the start). An attached operation that never
/// reported a value has none to repeat: the hub refuses it, and says why.
fn with_known_progress(mut fields: ProgressFields, op: &Op) -> ProgressFields {
    if fields.progress.is_none() && fields.current.is_none() {
        match (op.snapshot.progress, op.snapshot.current) {
            (Some(p), _) => fields.progress = Some(p),
            (None, Some(c)) => fields.current = Some(c),
            (None, None) if op.start.is_some() => fields.progress = Some(0.0),
            (None, None) => {}
        }
    }
    fields
}

/// The outgoing queue of one client.
#[derive(Debug, Default)]
pub struct Outbox {
    config: OutboxConfig,
    ops: HashMap<OpKey, Op>,
    by_name: HashMap<(String, String), OpKey>,
    ready: VecDeque<OpKey>,
    /// Request id -> (operation, generation, seq, encoded size) of messages
    /// on the wire.
    in_flight: HashMap<u64, (OpKey, u64, u64, usize)>,
    next_key: OpKey,
    connected: bool,
    lifecycle_queued: u64,
    stats: OutboxStats,
    /// The latest refusals, oldest first (at most [`MAX_REFUSALS`]).
    refusals: VecDeque<(OpKey, Refusal)>,
    /// The message size limit in force (the configured one, or lower when
    /// the hub said so).
    limit: usize,
    /// Bytes held for queued operations.
    bytes: u64,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(config: OutboxConfig) -> Self {
        Outbox {
            config,
            next_key: 1,
            limit: config.max_message_bytes,
            ..Default::default()
        }
    }

    /// The message size limit in force.
    pub fn message_limit(&self) -> usize {
        self.limit
    }

    /// Lower the message size limit (the hub's own, from `MESSAGE_TOO_LARGE`).
    pub fn set_message_limit(&mut self, limit: usize) {
        // Never so low that a bare terminal message cannot get through.
        self.limit = self.limit.min(limit.max(MIN_MESSAGE_LIMIT));
    }

    /// Register an operation and queue its `operation_started` (seq 1).
    pub fn start(
        &mut self,
        namespace: &str,
        operation_id: &str,
        fields: StartFields,
    ) -> Result<OpKey, ReportError> {
        if self
            .by_name
            .contains_key(&(namespace.to_owned(), operation_id.to_owned()))
        {
            return Err(ReportError::Invalid(format!(
                "operation {operation_id:?} is already reported by this client"
            )));
        }
        let body = ProducerBody::OperationStarted(fields.clone());
        let size = encoded_len(&body, namespace, operation_id) as u64;
        self.check_room(size)?;
        let key = self.insert(namespace, operation_id, Some(fields), 1);
        if let Some(op) = self.ops.get_mut(&key) {
            op.bytes = size;
        }
        self.bytes += size;
        self.push(key, body);
        Ok(key)
    }

    /// [`Outbox::start`] under an id the caller chose, which another
    /// producer may already hold on the hub: nothing but the start is sent
    /// until the hub acked it, so that nothing of ours can reach the other
    /// producer's operation (its duplicate ack refuses ours:
    /// [`OPERATION_EXISTS`]).
    pub fn start_chosen(
        &mut self,
        namespace: &str,
        operation_id: &str,
        fields: StartFields,
    ) -> Result<OpKey, ReportError> {
        let key = self.start(namespace, operation_id, fields)?;
        if let Some(op) = self.ops.get_mut(&key) {
            op.chosen_id = true;
        }
        Ok(key)
    }

    /// Take over an operation started elsewhere (e.g. by another process):
    /// its next seq is learnt from the hub's `SEQ_GAP` answer.
    pub fn attach(&mut self, namespace: &str, operation_id: &str) -> OpKey {
        if let Some(&k) = self
            .by_name
            .get(&(namespace.to_owned(), operation_id.to_owned()))
        {
            return k;
        }
        self.insert(namespace, operation_id, None, ATTACH_SEQ)
    }

    fn insert(
        &mut self,
        namespace: &str,
        operation_id: &str,
        start: Option<StartFields>,
        next_seq: u64,
    ) -> OpKey {
        let key = self.next_key;
        self.next_key += 1;
        self.ops.insert(
            key,
            Op {
                namespace: namespace.to_owned(),
                id: operation_id.to_owned(),
                start,
                snapshot: ProgressFields::default(),
                queue: VecDeque::new(),
                next_seq,
                acked: next_seq - 1,
                sent_upto: next_seq - 1,
                resend_upto: 0,
                maybe_applied_upto: next_seq - 1,
                pending_progress: None,
                last_progress_at: None,
                not_before: 0,
                terminal: false,
                gen: 0,
                probe: Probe::None,
                in_ready: false,
                chosen_id: false,
                start_writes: 0,
                bytes: 0,
            },
        );
        self.by_name
            .insert((namespace.to_owned(), operation_id.to_owned()), key);
        key
    }

    fn check_room(&mut self, size: u64) -> Result<(), ReportError> {
        if self.lifecycle_queued >= self.config.max_lifecycle as u64
            || self.bytes.saturating_add(size) > self.config.max_bytes as u64
        {
            self.stats.queue_full += 1;
            return Err(ReportError::QueueFull);
        }
        Ok(())
    }

    fn push(&mut self, key: OpKey, body: ProducerBody) {
        let Some(op) = self.ops.get_mut(&key) else {
            return;
        };
        if body.is_lifecycle() {
            self.lifecycle_queued += 1;
        }
        if body.is_terminal() {
            op.terminal = true;
        }
        op.queue.push_back(Pending {
            seq: op.next_seq,
            body,
            may_be_applied: false,
        });
        op.next_seq += 1;
        self.mark_ready(key);
    }

    fn mark_ready(&mut self, key: OpKey) {
        if let Some(op) = self.ops.get_mut(&key) {
            if !op.in_ready {
                op.in_ready = true;
                self.ready.push_back(key);
            }
        }
    }

    /// Merge a progress update into the operation's pending one. Returns
    /// whether there was no pending update before (the driver may need a wake-up).
    pub fn progress(&mut self, key: OpKey, fields: ProgressFields) -> Result<bool, ReportError> {
        let op = self.ops.get_mut(&key).ok_or(ReportError::Finished)?;
        if op.terminal {
            return Err(ReportError::Finished);
        }
        let limit = self.limit;
        merge_bounded(
            &mut op.snapshot,
            fields.clone(),
            limit,
            &op.namespace,
            &op.id,
        );
        let fresh = match &mut op.pending_progress {
            Some(p) => {
                merge_bounded(p, fields, limit, &op.namespace, &op.id);
                false
            }
            None => {
                op.pending_progress = Some(fields);
                true
            }
        };
        if fresh {
            self.mark_ready(key);
        }
        Ok(fresh)
    }

    /// Queue a terminal message (completed, failed, canceled), after the
    /// pending progress update if any. Always taken for an operation the
    /// outbox holds, however full it is: at most one terminal message per
    /// operation waits, and the number of operations is bounded by
    /// [`Outbox::start`]'s limits.
    pub fn finish(&mut self, key: OpKey, body: ProducerBody) -> Result<(), ReportError> {
        let op = self.ops.get_mut(&key).ok_or(ReportError::Finished)?;
        if op.terminal {
            return Err(ReportError::Finished);
        }
        let size = encoded_len(&body, &op.namespace, &op.id) as u64;
        op.bytes = op.bytes.saturating_add(size);
        self.bytes = self.bytes.saturating_add(size);
        if let Some(p) = op.pending_progress.take() {
            // Like any update sent: a message alone repeats the known value.
            let p = with_known_progress(p, op);
            self.push(key, ProducerBody::ProgressUpdate(p));
        }
        self.push(key, body);
        Ok(())
    }

    /// Whether the operation is still in the outbox and not finished.
    pub fn is_running(&self, key: OpKey) -> bool {
        self.ops.get(&key).is_some_and(|op| !op.terminal)
    }

    /// `(namespace, operation_id)` of a key.
    pub fn name_of(&self, key: OpKey) -> Option<(&str, &str)> {
        self.ops
            .get(&key)
            .map(|op| (op.namespace.as_str(), op.id.as_str()))
    }

    /// A connection is up: everything unacked will be sent again, and every
    /// operation the hub already acknowledged is first re-registered by
    /// sending its start again (a duplicate for a hub that kept it).
    pub fn on_connected(&mut self) {
        self.connected = true;
        self.in_flight.clear();
        let keys: Vec<OpKey> = self.ops.keys().copied().collect();
        for key in keys {
            let op = self.ops.get_mut(&key).expect("key listed");
            op.gen += 1;
            op.resend_upto = op.resend_upto.max(op.sent_upto);
            op.maybe_applied_upto = op.maybe_applied_upto.max(op.sent_upto);
            op.sent_upto = op.acked;
            op.probe = if op.start.is_some() && op.acked >= 1 {
                Probe::Needed
            } else {
                Probe::None
            };
            self.mark_ready(key);
        }
    }

    /// The connection is gone.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.in_flight.clear();
    }

    /// When a throttled or delayed operation (not queued as ready) may send.
    fn wake_time(&self, op: &Op) -> Option<u64> {
        if op.in_ready
            || op.probe != Probe::None
            || op.in_flight() >= op.window(self.config.max_in_flight)
        {
            return None;
        }
        if op.queue.back().is_some_and(|p| p.seq > op.sent_upto) {
            return Some(op.not_before);
        }
        op.pending_progress.as_ref()?;
        let throttle = op
            .last_progress_at
            .map_or(0, |t| t.saturating_add(self.config.progress_interval_ms));
        Some(throttle.max(op.not_before))
    }

    /// The earliest time at which a throttled or delayed operation can send
    /// (call [`Outbox::promote_due`] then).
    pub fn next_wakeup(&self) -> Option<u64> {
        if !self.connected {
            return None;
        }
        self.ops.values().filter_map(|op| self.wake_time(op)).min()
    }

    /// Make every operation whose delay has passed ready to send.
    pub fn promote_due(&mut self, now: u64) {
        let due: Vec<OpKey> = self
            .ops
            .iter()
            .filter(|(_, op)| self.wake_time(op).is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            self.mark_ready(k);
        }
    }

    /// The next message to write, if any may be sent at `now`. Request ids
    /// are taken from `next_id`. Call [`Outbox::promote_due`] first.
    pub fn poll_transmit(&mut self, now: u64, next_id: &mut u64) -> Option<String> {
        if !self.connected {
            return None;
        }
        while let Some(key) = self.ready.pop_front() {
            let Some(op) = self.ops.get_mut(&key) else {
                continue;
            };
            op.in_ready = false;
            if let Some(text) = self.transmit_one(key, now, next_id) {
                self.mark_ready(key);
                return Some(text);
            }
        }
        None
    }

    fn transmit_one(&mut self, key: OpKey, now: u64, next_id: &mut u64) -> Option<String> {
        let config = self.config;
        let op = self.ops.get_mut(&key)?;
        if now < op.not_before {
            return None;
        }
        let id = *next_id;
        match op.probe {
            Probe::Awaiting(_) => return None,
            Probe::Needed => {
                let mut start = ProducerBody::OperationStarted(op.start.clone()?);
                let cut = fit(&mut start, self.limit, &op.namespace, &op.id);
                if cut.is_some() {
                    if let ProducerBody::OperationStarted(s) = &start {
                        op.start = Some(s.clone());
                    }
                }
                op.probe = Probe::Awaiting(id);
                *next_id += 1;
                let text = encode_producer(&start, id, &op.namespace, &op.id, 1);
                self.in_flight.insert(id, (key, op.gen, 1, text.len()));
                self.stats.sent += 1;
                self.stats.resent += 1;
                self.note_cut(key, cut);
                return Some(text);
            }
            Probe::None => {}
        }
        if op.in_flight() >= op.window(config.max_in_flight) {
            return None;
        }
        if op.queue.back().is_none_or(|p| p.seq <= op.sent_upto) {
            // Nothing numbered left to send: maybe the pending progress.
            let due = op
                .last_progress_at
                .is_none_or(|t| now >= t.saturating_add(config.progress_interval_ms));
            if op.pending_progress.is_none() || !due {
                return None;
            }
            let fields = with_known_progress(op.pending_progress.take()?, op);
            op.last_progress_at = Some(now);
            op.queue.push_back(Pending {
                seq: op.next_seq,
                body: ProducerBody::ProgressUpdate(fields),
                may_be_applied: false,
            });
            op.next_seq += 1;
        }
        let pos = op.queue.iter().position(|p| p.seq > op.sent_upto)?;
        let p = &mut op.queue[pos];
        let seq = p.seq;
        let mut text = encode_producer(&p.body, id, &op.namespace, &op.id, seq);
        // Never a message the hub refuses for its size: encoded once, and
        // cut (then encoded again) only when it is over.
        let cut = if text.len() > self.limit {
            let cut = fit(&mut p.body, self.limit, &op.namespace, &op.id);
            text = encode_producer(&p.body, id, &op.namespace, &op.id, seq);
            cut
        } else {
            None
        };
        op.sent_upto = seq;
        if seq == 1 {
            op.start_writes = op.start_writes.saturating_add(1);
        }
        *next_id += 1;
        self.in_flight.insert(id, (key, op.gen, seq, text.len()));
        self.stats.sent += 1;
        if seq <= op.resend_upto {
            self.stats.resent += 1;
        }
        self.note_cut(key, cut);
        Some(text)
    }

    /// A message was cut to fit the size limit: counted, and kept as the
    /// operation's latest refusal so the job can see it.
    fn note_cut(&mut self, key: OpKey, cut: Option<String>) {
        if let Some(message) = cut {
            tracing::warn!(%message, "a message was too large for the hub");
            self.stats.shrunk += 1;
            self.push_refusal(
                key,
                Refusal {
                    code: MESSAGE_TOO_LARGE.into(),
                    message,
                    state: None,
                },
            );
        }
    }

    fn lookup(
        &self,
        id: Option<u64>,
        namespace: Option<&str>,
        op_id: Option<&str>,
    ) -> Option<(OpKey, Option<(u64, u64)>)> {
        if let Some(id) = id {
            if let Some(&(key, gen, seq, _)) = self.in_flight.get(&id) {
                return Some((key, Some((gen, seq))));
            }
            return None;
        }
        let ns = namespace.unwrap_or("default").to_owned();
        let key = *self.by_name.get(&(ns, op_id?.to_owned()))?;
        Some((key, None))
    }

    /// Whether `id` is a request id of a producer message on the wire.
    pub fn owns_request(&self, id: u64) -> bool {
        self.in_flight.contains_key(&id)
    }

    /// Apply an `ack`.
    pub fn on_ack(&mut self, ack: &Ack) -> Vec<Notice> {
        let mut notices = Vec::new();
        let Some((key, sent)) =
            self.lookup(ack.id, ack.namespace.as_deref(), Some(&ack.operation_id))
        else {
            return notices;
        };
        if let Some(id) = ack.id {
            self.in_flight.remove(&id);
        }
        let Some(op) = self.ops.get_mut(&key) else {
            return notices;
        };
        if ack.cancel_requested {
            notices.push(Notice::CancelRequested(key));
        }
        if sent.is_some_and(|(gen, _)| gen != op.gen) {
            return notices;
        }
        // Our start, acked as a duplicate, though no earlier connection
        // (nor a transiently refused attempt) ever carried it: the hub
        // has this id from someone else.
        let taken = op.start.is_some()
            && op.probe == Probe::None
            && ack.duplicate
            && ack.seq == 1
            && op.acked == 0
            && op.maybe_applied_upto == 0
            && op.start_writes <= 1
            && sent.is_none_or(|(_, seq)| seq == 1);
        if taken {
            let message = format!(
                "operation {} already exists on the hub; pick another id",
                op.id
            );
            self.stats.rejected += 1;
            self.push_refusal(
                key,
                Refusal {
                    code: OPERATION_EXISTS.to_owned(),
                    message,
                    state: None,
                },
            );
            self.remove(key);
            notices.push(Notice::Dropped(key, OPERATION_EXISTS.to_owned()));
            return notices;
        }
        if ack.seq >= op.next_seq {
            // A seq this client never numbered: not an answer to us.
            return notices;
        }
        if let Probe::Awaiting(pid) = op.probe {
            if ack.id == Some(pid) || (ack.id.is_none() && ack.seq == 1) {
                op.probe = Probe::None;
                self.mark_ready(key);
                if !ack.duplicate {
                    // The hub had lost the operation: our start re-created it.
                    self.stats.resurrected += 1;
                    self.rebase(key, 2);
                }
                return notices;
            }
        }
        // A duplicate ack for a message never sent before this connection:
        // someone else (a `report` process on the same operation) took the
        // seq. For an attached operation the same holds when we did send
        // it before (the ack of the first send was lost): it may be ours
        // or theirs, and it is sent again past it either way. A progress
        // update twice is harmless; a terminal message that was applied
        // the first time gets `OPERATION_FINISHED` naming its own state,
        // which `on_error` takes as its ack (and one that was not is
        // applied now). For an operation started here, a duplicate of a
        // seq sent before is our own resend, applied once.
        let collided = (op.start.is_none() || ack.seq > op.maybe_applied_upto)
            && ack.duplicate
            && Some(ack.seq) == op.acked.checked_add(1)
            && op.queue.front().is_some_and(|p| p.seq == ack.seq);
        if collided {
            // Move our messages past the seq and send again.
            op.gen += 1;
            let uncertain = ack.seq <= op.maybe_applied_upto;
            for p in op.queue.iter_mut() {
                p.seq += 1;
            }
            if let Some(front) = op.queue.front_mut() {
                front.may_be_applied = uncertain && front.body.is_terminal();
            }
            op.next_seq += 1;
            op.acked = ack.seq;
            op.sent_upto = ack.seq;
            op.maybe_applied_upto = ack.seq;
            self.stats.collisions += 1;
            self.mark_ready(key);
            return notices;
        }
        let mut popped = 0u64;
        let mut lifecycle = 0u64;
        while op.queue.front().is_some_and(|p| p.seq <= ack.seq) {
            let p = op.queue.pop_front().expect("front checked");
            popped += 1;
            if p.body.is_lifecycle() {
                lifecycle += 1;
            }
        }
        op.acked = op.acked.max(ack.seq);
        op.sent_upto = op.sent_upto.max(op.acked);
        self.stats.acked += popped;
        self.lifecycle_queued -= lifecycle;
        let done = op.terminal && op.queue.is_empty();
        if done {
            self.remove(key);
            notices.push(Notice::Done(key));
        } else {
            self.mark_ready(key);
        }
        notices
    }

    fn remove(&mut self, key: OpKey) {
        if let Some(op) = self.ops.remove(&key) {
            self.bytes = self.bytes.saturating_sub(op.bytes);
            self.by_name.remove(&(op.namespace, op.id));
            let lifecycle = op.queue.iter().filter(|p| p.body.is_lifecycle()).count() as u64;
            self.lifecycle_queued -= lifecycle;
        }
    }

    /// Apply an `error`; `None` when it is not about a producer message.
    pub fn on_error(&mut self, err: &ErrorMessage, now: u64) -> Option<Notice> {
        if err.code == "MESSAGE_TOO_LARGE" {
            self.on_too_large(err);
            return None;
        }
        let (key, sent) = self.lookup(
            err.id,
            err.data_str("namespace"),
            err.data_str("operation_id"),
        )?;
        if let Some(id) = err.id {
            self.in_flight.remove(&id);
        }
        let op = self.ops.get_mut(&key)?;
        if sent.is_some_and(|(gen, _)| gen != op.gen) {
            // About a message sent before the last rewind: already handled.
            return None;
        }
        let seq = sent.map(|(_, s)| s);
        if matches!(op.probe, Probe::Awaiting(_)) {
            op.probe = Probe::None;
        }
        // Each refusal for good (the message is never sent again) is noted.
        match err.code.as_str() {
            "SEQ_GAP" => {
                let expected = err.data_u64("expected")?;
                if expected > MAX_SEQ {
                    // Not believable: send again later, as after a
                    // transient refusal (never arithmetic on it).
                    tracing::warn!(expected, "the hub answered SEQ_GAP with an impossible seq");
                    self.retry_later(key, now);
                    return None;
                }
                self.rebase(key, expected.max(1));
                None
            }
            "UNKNOWN_OPERATION" => {
                if op.start.is_none() {
                    self.stats.rejected += 1;
                    self.note_refusal(key, err);
                    self.count_lost_lifecycle(key);
                    self.remove(key);
                    return Some(Notice::Dropped(key, err.code.clone()));
                }
                self.stats.resurrected += 1;
                self.rebase(key, 1);
                None
            }
            "OPERATION_FINISHED" if Self::was_applied(op, seq, err) => {
                // Our terminal message had been applied before its ack was
                // lost: the hub ended the operation the way we reported.
                self.stats.acked += op.queue.len() as u64;
                self.remove(key);
                Some(Notice::Done(key))
            }
            "OPERATION_FINISHED" | "FORBIDDEN" | "AUTH_REQUIRED" | "AUTH_FAILED" => {
                self.stats.rejected += 1;
                self.note_refusal(key, err);
                self.count_lost_lifecycle(key);
                self.remove(key);
                Some(Notice::Dropped(key, err.code.clone()))
            }
            "BAD_MESSAGE" => {
                self.stats.rejected += 1;
                self.note_refusal(key, err);
                match seq {
                    Some(1) | None => {
                        self.count_lost_lifecycle(key);
                        self.remove(key);
                        Some(Notice::Dropped(key, err.code.clone()))
                    }
                    Some(s) => {
                        if self.drop_message(key, s) {
                            // The job's end did not reach the hub: it must
                            // hear it (rejection(), flush, a warning).
                            self.stats.lifecycle_rejected += 1;
                            return Some(Notice::TerminalRefused(key, err.code.clone()));
                        }
                        None
                    }
                }
            }
            _ => {
                // Transient (RATE_LIMITED, STORE_UNAVAILABLE, ...): send again later.
                self.retry_later(key, now);
                None
            }
        }
    }

    /// Send everything unacked of `key` again after `retry_after_ms`.
    fn retry_later(&mut self, key: OpKey, now: u64) {
        let Some(op) = self.ops.get_mut(&key) else {
            return;
        };
        op.gen += 1;
        op.resend_upto = op.resend_upto.max(op.sent_upto);
        op.maybe_applied_upto = op.maybe_applied_upto.max(op.sent_upto);
        op.sent_upto = op.acked;
        op.not_before = now.saturating_add(self.config.retry_after_ms);
        self.mark_ready(key);
    }

    /// The lifecycle messages of `key` still queued are lost (the
    /// operation is dropped after a refusal for good).
    fn count_lost_lifecycle(&mut self, key: OpKey) {
        if let Some(op) = self.ops.get(&key) {
            let n = op.queue.iter().filter(|p| p.body.is_lifecycle()).count() as u64;
            self.stats.lifecycle_rejected += n;
        }
    }

    /// `MESSAGE_TOO_LARGE` (the hub closes the connection next): learn the
    /// hub's limit so that nothing that long is sent again (the message is
    /// cut when it is sent again), and tell the owner of the message (the
    /// one on the wire of that size, else every one over the limit).
    fn on_too_large(&mut self, err: &ErrorMessage) {
        let size = err.data_u64("size").and_then(|s| usize::try_from(s).ok());
        let limit = err
            .data_u64("limit")
            .and_then(|l| usize::try_from(l).ok())
            .or_else(|| size.map(|s| s.saturating_sub(1)));
        if let Some(l) = limit {
            self.set_message_limit(l);
        }
        let limit = self.limit;
        let mut owners: Vec<OpKey> = self
            .in_flight
            .values()
            .filter(|(_, _, _, len)| Some(*len) == size || *len > limit)
            .map(|(key, ..)| *key)
            .collect();
        owners.sort_unstable();
        owners.dedup();
        for key in owners {
            self.stats.rejected += 1;
            self.note_refusal(key, err);
        }
    }

    /// Whether `OPERATION_FINISHED` for message `seq` answers a terminal
    /// message of ours that may have been applied earlier, and the
    /// operation ended in that message's own state.
    fn was_applied(op: &Op, seq: Option<u64>, err: &ErrorMessage) -> bool {
        op.queue.front().is_some_and(|p| {
            p.may_be_applied && Some(p.seq) == seq && err.data_str("state") == p.body.final_state()
        })
    }

    fn note_refusal(&mut self, key: OpKey, err: &ErrorMessage) {
        self.push_refusal(
            key,
            Refusal {
                code: err.code.clone(),
                message: err.message.clone(),
                state: err.data_str("state").map(str::to_owned),
            },
        );
    }

    fn push_refusal(&mut self, key: OpKey, refusal: Refusal) {
        if self.refusals.len() >= MAX_REFUSALS {
            self.refusals.pop_front();
        }
        self.refusals.push_back((key, refusal));
    }

    /// The latest message of operation `key` the hub refused for good (its
    /// code and sentence), among the outbox's last [`MAX_REFUSALS`]
    /// refusals; kept after the operation itself was dropped.
    pub fn refusal(&self, key: OpKey) -> Option<&Refusal> {
        self.refusals
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r)
    }

    /// Remove message `seq` and renumber the ones after it; returns whether
    /// it was a terminal message.
    fn drop_message(&mut self, key: OpKey, seq: u64) -> bool {
        let Some(op) = self.ops.get_mut(&key) else {
            return false;
        };
        let mut terminal = false;
        if let Some(pos) = op.queue.iter().position(|p| p.seq == seq) {
            let p = op.queue.remove(pos).expect("position found");
            if p.body.is_lifecycle() {
                self.lifecycle_queued -= 1;
                if p.body.is_terminal() {
                    op.terminal = false;
                    terminal = true;
                }
            }
            for later in op.queue.iter_mut().skip(pos) {
                later.seq -= 1;
            }
            op.next_seq -= 1;
        }
        op.gen += 1;
        op.sent_upto = op.acked.min(seq - 1);
        self.mark_ready(key);
        terminal
    }

    /// The hub holds everything below `expected` and nothing from it on:
    /// resend from there, rebuilding the history it is missing if needed.
    fn rebase(&mut self, key: OpKey, expected: u64) {
        let Some(op) = self.ops.get_mut(&key) else {
            return;
        };
        op.gen += 1;
        let hub_last = expected - 1;
        let mut lifecycle_popped = 0;
        while op.queue.front().is_some_and(|p| p.seq <= hub_last) {
            if op.queue.pop_front().is_some_and(|p| p.body.is_lifecycle()) {
                lifecycle_popped += 1;
            }
        }
        self.lifecycle_queued -= lifecycle_popped;
        let contiguous = match op.queue.front() {
            Some(p) => p.seq == expected,
            None => op.next_seq == expected,
        };
        if !contiguous {
            let old: Vec<ProducerBody> = op.queue.drain(..).map(|p| p.body).collect();
            let mut rebuilt = Vec::new();
            if expected == 1 {
                if let Some(start) = &op.start {
                    rebuilt.push(ProducerBody::OperationStarted(start.clone()));
                }
            }
            // Attached operations have no history to restore, only their own
            // messages (renumbered).
            if op.start.is_some() && !op.snapshot.is_empty() {
                rebuilt.push(ProducerBody::ProgressUpdate(with_known_progress(
                    op.snapshot.clone(),
                    op,
                )));
            }
            for body in old {
                let keep = match &body {
                    ProducerBody::OperationStarted(_) => false,
                    ProducerBody::ProgressUpdate(_) => op.start.is_none(),
                    _ => true,
                };
                if keep {
                    rebuilt.push(body);
                } else if body.is_lifecycle() {
                    self.lifecycle_queued -= 1;
                }
            }
            let mut seq = expected;
            for body in rebuilt {
                if matches!(body, ProducerBody::OperationStarted(_)) {
                    self.lifecycle_queued += 1;
                }
                op.queue.push_back(Pending {
                    seq,
                    body,
                    may_be_applied: false,
                });
                seq += 1;
            }
            op.next_seq = seq;
        }
        op.acked = hub_last;
        op.sent_upto = hub_last;
        op.resend_upto = op.resend_upto.max(op.next_seq - 1);
        // The hub holds nothing of ours past `hub_last`.
        op.maybe_applied_upto = hub_last;
        self.mark_ready(key);
    }

    /// The operation behind a `cancel_requested` message.
    pub fn on_cancel_requested(
        &self,
        namespace: Option<&str>,
        operation_id: &str,
    ) -> Option<OpKey> {
        self.by_name
            .get(&(
                namespace.unwrap_or("default").to_owned(),
                operation_id.to_owned(),
            ))
            .copied()
    }

    /// Nothing waits to be sent or acked.
    pub fn is_idle(&self) -> bool {
        self.ops
            .values()
            .all(|op| op.queue.is_empty() && op.pending_progress.is_none())
    }

    /// [`OutboxStats::lifecycle_rejected`], without the cost of [`Outbox::stats`].
    pub fn stats_lifecycle_rejected(&self) -> u64 {
        self.stats.lifecycle_rejected
    }

    /// Counters and sizes.
    pub fn stats(&self) -> OutboxStats {
        let mut s = self.stats;
        s.queued = self
            .ops
            .values()
            .map(|op| op.queue.len() as u64 + u64::from(op.pending_progress.is_some()))
            .sum();
        s.lifecycle_queued = self.lifecycle_queued;
        s.bytes = self.bytes;
        s.operations = self.ops.len() as u64;
        s
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
