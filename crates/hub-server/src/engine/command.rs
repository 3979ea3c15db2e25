//! Messages into the engine task, and where its answers go.

use crate::outbox::Outbox;
use hub_core::glob::Filter;
use hub_proto::{Ack, OperationState, OperationStatus, Position, ProducerMessage, ProtoError};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Who asks for a cancel.
#[derive(Clone, Debug)]
pub struct Who {
    /// Connection id (0 for HTTP requests).
    pub conn: u64,
    /// Token subject (`anonymous` on an open hub): `requested_by`.
    pub sub: String,
}

/// Where the answer to a request goes.
pub enum Reply<T> {
    /// Encoded into the connection's outbox.
    Conn(Arc<Outbox>),
    /// Back to an HTTP handler.
    Http(oneshot::Sender<Result<T, ProtoError>>),
}

/// An HTTP operations listing.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// Namespace.
    pub namespace: String,
    /// Only this state.
    pub state: Option<OperationStatus>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// The answer to a listing: the whole JSON document
/// `{"epoch","namespace","offset","operations"}`, encoded once and counted
/// against `max_snapshot_bytes` while it is held, or `RATE_LIMITED`
/// (`snapshots`) when unread snapshots and listings already fill it.
pub type ListResult = Result<Arc<str>, ProtoError>;

/// The answer to an event listing.
#[derive(Clone, Debug)]
pub struct EventsPage {
    /// Stream epoch.
    pub epoch: String,
    /// Oldest retained offset (`last + 1` when none).
    pub first_offset: u64,
    /// Newest offset.
    pub last_offset: u64,
    /// Encoded events.
    pub events: Vec<Arc<str>>,
}

/// Figures the engine reports for `system_status` and `/ready`.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    /// Namespaces held.
    pub namespaces: usize,
    /// Operations by state: running, stalled, completed, failed, canceled.
    pub by_state: [u64; 5],
    /// Events accepted since start.
    pub events_total: u64,
    /// Events delivered to viewers' queues since start.
    pub deliveries_total: u64,
    /// Batches waiting for the store.
    pub in_flight_batches: usize,
    /// Whether the last store commit failed.
    pub store_failed: Option<String>,
    /// Subscriptions held.
    pub subscriptions: usize,
    /// Bytes of retained history, hub-wide (`engine::history`).
    pub history_bytes: usize,
}

/// A request to the engine.
pub enum Command {
    /// A producer message.
    Publish {
        /// The message.
        msg: ProducerMessage,
        /// The sender's connection id (0 for HTTP requests), for cancel
        /// delivery.
        conn: u64,
        /// Where the ack or error goes.
        reply: Reply<Ack>,
        /// When the hub read the message ([`crate::clock::stamp`]): the
        /// start of its end-to-end and ack latencies, inbox wait included.
        received: u64,
    },
    /// Subscribe (or replace a subscription).
    Subscribe {
        /// The viewer.
        conn: Arc<Outbox>,
        /// Request id.
        id: Option<u64>,
        /// Namespace.
        namespace: String,
        /// Filter.
        filter: Filter,
        /// Resume position.
        resume: Option<Position>,
        /// Whether queued progress may be conflated while the viewer is behind.
        conflate: bool,
        /// Dropped once the subscription's replay or snapshot is queued
        /// (or it was refused), so a connection can hand the engine one
        /// subscribe at a time.
        queued: Option<oneshot::Sender<()>>,
    },
    /// Unsubscribe.
    Unsubscribe {
        /// The viewer.
        conn: Arc<Outbox>,
        /// Request id.
        id: Option<u64>,
        /// Namespace.
        namespace: String,
    },
    /// A viewer asks a producer to stop.
    Cancel {
        /// Namespace.
        namespace: String,
        /// Operation.
        operation_id: String,
        /// Canceller.
        who: Who,
        /// Request id (WebSocket).
        id: Option<u64>,
        /// Where `ok`/error, or the HTTP state, goes.
        reply: Reply<OperationState>,
    },
    /// A connection's token was replaced (`refresh`): its subscriptions to
    /// namespaces the new token may not view end, each with an
    /// `error FORBIDDEN` naming the namespace.
    Narrow {
        /// The connection.
        conn: Arc<Outbox>,
        /// Whether the new token may view a namespace.
        may_view: Box<dyn Fn(&str) -> bool + Send>,
    },
    /// A connection ended.
    Closed {
        /// Connection id.
        conn: u64,
    },
    /// HTTP: list operations.
    List(ListQuery, oneshot::Sender<ListResult>),
    /// HTTP: one operation and its retained events.
    Get {
        /// Namespace.
        namespace: String,
        /// Operation.
        operation_id: String,
        /// Answer.
        reply: oneshot::Sender<Option<(OperationState, Vec<Arc<str>>)>>,
    },
    /// HTTP: retained events after an offset.
    Events {
        /// Namespace.
        namespace: String,
        /// Exclusive lower bound.
        after: u64,
        /// At most.
        limit: usize,
        /// Answer.
        reply: oneshot::Sender<EventsPage>,
    },
    /// Figures for status and readiness.
    Stats(oneshot::Sender<EngineStats>),
    /// The first step of a shutdown: refuse producer messages from now on
    /// (`SERVER_SHUTDOWN`, nothing applied) and answer once every message
    /// accepted before is durable and its ack queued, so that the acks
    /// reach their producers before the connections close.
    Drain(oneshot::Sender<()>),
    /// Flush the store and stop.
    Shutdown(oneshot::Sender<()>),
}
