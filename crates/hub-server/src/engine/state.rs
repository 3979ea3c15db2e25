//! What the engine keeps per namespace, and the actions it runs after a commit.

use super::command::Reply;
use super::records::{self, Record};
use super::states::States;
use crate::log::{EventLog, LogEntry};
use crate::outbox::Outbox;
use hub_core::glob::Filter;
use hub_core::{CoreConfig, Namespace, Operation};
use hub_proto::{Ack, Event, OperationState};
use hub_store::{NamespaceData, StoreError};
use std::sync::Arc;

/// Engine settings (from the server config).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Core rules.
    pub core: CoreConfig,
    /// Events kept per namespace for replay.
    pub history_size: u64,
    /// Bytes of retained events, hub-wide (0: no bound; see
    /// `engine::history`).
    pub max_history_bytes: usize,
    /// Resume further back than this → snapshot.
    pub replay_limit: u64,
    /// Most namespaces.
    pub max_namespaces: usize,
    /// Most operations in all namespaces together (0: no bound).
    pub max_operations: usize,
    /// Most subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Most bytes of filters (globs and kinds) over one connection's
    /// subscriptions.
    pub max_filter_bytes_per_connection: usize,
    /// Bytes of unread snapshots, hub-wide (see `engine::snapshots`).
    pub max_snapshot_bytes: usize,
    /// Progress updates per operation per second broadcast live (0: all).
    pub max_updates_per_operation_per_second: u32,
}

/// One namespace: the core (truth, including writes not yet durable) and
/// the committed view viewers are served from.
pub struct Ns {
    /// The core state machine.
    pub core: Namespace,
    /// Durable events, encoded.
    pub log: EventLog,
    /// Durable states (what snapshots show), with their JSON cached.
    pub states: States,
    /// Since when it has been idle (see [`super::forget`]).
    pub idle_since: Option<u64>,
}

impl Ns {
    /// An empty namespace.
    pub fn new(name: &str, epoch: &str, cfg: &EngineConfig) -> Self {
        Ns {
            core: Namespace::new(name, epoch),
            log: EventLog::new(cfg.history_size as usize, 0),
            states: States::default(),
            idle_since: None,
        }
    }

    /// Rebuilds a namespace from the store. A record that does not decode,
    /// an event whose offset or operation does not match its place, or a
    /// gap in the retained events means the store is damaged: the hub
    /// refuses to start on it rather than serve a history with holes
    /// (a lost start would reopen a finished id, a lost event break a
    /// `recovered: true` replay).
    ///
    /// `now` is when the hub came back: producers' silence counts from it
    /// ([`Namespace::restarted`]).
    pub fn restore(
        epoch: &str,
        data: NamespaceData,
        cfg: &EngineConfig,
        now: u64,
    ) -> Result<Self, StoreError> {
        let damaged = |what: String| {
            StoreError::Corrupt(format!(
                "the store in data_dir is damaged: namespace {:?}: {what}. {}",
                data.name,
                hub_store::DAMAGED_ADVICE
            ))
        };
        let mut ops: Vec<Operation> = Vec::new();
        let mut tombstones = Vec::new();
        for r in &data.ops {
            match records::decode(&r.data) {
                Ok(Record::Live(op)) if op.state.operation_id == r.operation_id => ops.push(*op),
                Ok(Record::Dropped(t)) => tombstones.push((r.operation_id.clone(), t)),
                Ok(Record::Live(op)) => {
                    return Err(damaged(format!(
                        "the record of operation {:?} holds operation {:?}",
                        r.operation_id, op.state.operation_id
                    )))
                }
                Err(e) => {
                    return Err(damaged(format!(
                        "the record of operation {:?} does not decode ({e})",
                        r.operation_id
                    )))
                }
            }
        }
        let states = ops.iter().map(|o| o.state.clone()).collect();
        let first = data
            .events
            .first()
            .map_or(data.last_offset, |e| e.offset - 1);
        let mut log = EventLog::new(cfg.history_size as usize, first);
        let mut expected = first + 1;
        for rec in &data.events {
            let ev = serde_json::from_slice::<Event>(&rec.data).map_err(|e| {
                damaged(format!(
                    "the event at offset {} does not decode ({e})",
                    rec.offset
                ))
            })?;
            if rec.offset != expected || ev.offset != rec.offset {
                return Err(damaged(format!(
                    "expected the event at offset {expected}, found offset {} (stored as {})",
                    ev.offset, rec.offset
                )));
            }
            expected += 1;
            log.push(LogEntry {
                offset: ev.offset,
                operation_id: ev.operation_id.as_str().into(),
                kind: ev.state.kind.as_str().into(),
                event_type: ev.event_type,
                seq: ev.seq.unwrap_or(0),
                bytes: String::from_utf8_lossy(&rec.data).into(),
            });
        }
        if !data.events.is_empty() && expected != data.last_offset + 1 {
            return Err(damaged(format!(
                "the retained events end at offset {}, the namespace at {}",
                expected - 1,
                data.last_offset
            )));
        }
        let mut core = Namespace::restore(&data.name, epoch, data.last_offset, ops, tombstones);
        core.restarted(now);
        Ok(Ns {
            core,
            log,
            states,
            idle_since: None,
        })
    }
}

/// A viewer's subscription to one namespace.
pub struct Sub {
    /// The viewer.
    pub conn: Arc<Outbox>,
    /// Its filter.
    pub filter: Filter,
    /// Whether its queued progress may be conflated while it is behind
    /// (`subscribe {conflate: true}`); otherwise it gets every event or
    /// `SLOW_CLIENT`.
    pub conflate: bool,
}

/// Something to do once the batch holding it is durable.
pub enum AfterCommit {
    /// Append to the log, update the committed state, fan out.
    Event {
        /// Namespace.
        ns: String,
        /// The encoded event.
        entry: LogEntry,
        /// The operation's state after it.
        state: Box<OperationState>,
        /// When the hub received what caused it ([`crate::clock::stamp`]).
        stamp: u64,
    },
    /// Update a committed state without an event (cancel flag).
    State(Box<OperationState>),
    /// Answer a producer (with the [`crate::clock::stamp`] of its message).
    Ack(Reply<Ack>, Ack, u64),
    /// Deliver `cancel_requested` to a connection.
    Notify {
        /// Connection id.
        conn: u64,
        /// Encoded message.
        bytes: Arc<str>,
    },
    /// Answer a cancel.
    CancelDone {
        /// Where.
        reply: Reply<OperationState>,
        /// Request id.
        id: Option<u64>,
        /// State after the request.
        state: Box<OperationState>,
    },
}
