//! hub-client: the resilient progress-hub client.
//!
//! Jobs report their operations with a [`Reporter`]; dashboards and
//! terminals follow them with a [`Subscriber`]. Both sit on a [`Client`]:
//! one WebSocket that is kept alive and reconnected in the background
//! (jittered exponential backoff, heartbeat liveness, close codes honoured),
//! through which every message is delivered at least once and applied
//! exactly once (per-operation `seq`, hub-side idempotency).
//!
//! # Reporting
//!
//! Reporting never waits on the network and never fails because the hub is
//! away: calls only queue. Progress updates of one operation are conflated
//! and throttled (at most 10 sends a second by default), lifecycle events are
//! kept until the hub acks them and resent after a reconnect. An operation
//! id the hub already has from another producer (a start never sent
//! before, acked as a duplicate) is not reported into: the handle's
//! [`OperationHandle::refusal`] says `OPERATION_EXISTS` and nothing more is
//! sent for it. A hub that refuses the credentials (401/403, close 4001),
//! closes for abuse (1008) or answers the upgrade with another 4xx but
//! 408/429 (404: no hub WebSocket at this URL) is given up on at once
//! (state `failed`); everything else is retried.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use hub_client::{ClientConfig, Reporter};
//!
//! // Nobody listens on this port: the hub is "down".
//! let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
//! let reporter = Reporter::connect(ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"))).unwrap();
//!
//! let started = Instant::now();
//! let op = reporter.start("Render video").kind("render").total(300.0).begin()?;
//! for frame in 1..=300 {
//!     op.current(frame as f64).step("encode");
//!     if op.should_cancel() {
//!         op.canceled(Some("asked to stop"))?;
//!         break;
//!     }
//! }
//! op.complete()?;
//! assert!(started.elapsed() < Duration::from_secs(1), "no call waited for the network");
//!
//! // Everything is queued (start, one conflated update, completion) and
//! // will be delivered when the hub comes up.
//! let stats = reporter.connection_stats();
//! assert_eq!(stats.queue_len, 3);
//! // Before the job exits: wait for the hub's acks (false: not delivered).
//! assert!(!reporter.flush_blocking(Duration::from_millis(50)));
//! # reporter.client().close(); // the hub never comes: do not linger 10 s on drop
//! # Ok::<(), hub_client::ReportError>(())
//! ```
//!
//! **Before the job exits, flush.** Calls only queue, so a job must wait
//! for delivery before it ends: [`Reporter::flush`] (async) or
//! [`Reporter::flush_blocking`] (synchronous code only; inside a runtime
//! it cannot wait and logs an error). A flush returns false when anything
//! is still queued, when the hub refused a lifecycle event since the
//! previous flush (the operation's [`OperationHandle::rejection`] /
//! [`OperationHandle::refusal`] say which, and a warning is logged), or
//! when the client gave up ([`ConnState::Failed`]: credentials refused with
//! a fixed token, retries exhausted).
//!
//! A job that forgets: dropping the last handle of a client that runs its
//! own thread (created outside any tokio runtime) waits until what is
//! queued is acked, at most [`ClientConfig::linger`] (10 s; `Duration::ZERO`
//! not to wait). A client inside a runtime never blocks on drop; its
//! events die with the runtime, so async jobs must `flush(..).await`.
//! `std::process::exit` runs no destructors at all.
//!
//! On a `current_thread` runtime the client's task runs only while the
//! job awaits: synchronous work that never yields starves it (it does not
//! even connect). Use the multi-threaded runtime, or `spawn_blocking` for
//! long synchronous work.
//!
//! Free text is cut to the hub's limits before it is queued (`step` 256,
//! `message`, `error` and `reason` 4096 characters, the last one `…`), and
//! no message longer than the hub's message size is ever sent: merged
//! updates keep the newest values, and a message still too long loses its
//! details (see [`outbox`]).
//!
//! # Watching
//!
//! A [`Subscription`] yields [`Update`]s in offset order, without duplicates,
//! across reconnects (it resumes from its last `(epoch, offset)`; when the
//! hub cannot replay, a [`Update::Snapshot`] replaces the state), and keeps
//! an exact map of operation states.
//!
//! ```no_run
//! use hub_client::{ClientConfig, Filter, Subscriber, Update};
//!
//! # async fn watch() -> Result<(), hub_client::ClientError> {
//! let subscriber = Subscriber::connect(ClientConfig::new("ws://127.0.0.1:8765/ws"))?;
//! let mut sub = subscriber.subscribe("default", Filter::operations("render.*"));
//! while let Some(update) = sub.recv().await {
//!     match update {
//!         Update::Event(e) => println!("{} {} {:?}%", e.offset, e.operation_id(), e.state.progress),
//!         Update::Snapshot { operations, .. } => println!("{} operations", operations.len()),
//!         Update::Connection(c) => println!("connection {} (attempt {})", c.state, c.attempt),
//!         _ => {}
//!     }
//!     if sub.is_stale() {
//!         println!("(data may be out of date)");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A subscription needs no hub to be created either; it just stays stale:
//!
//! ```
//! use hub_client::{Client, ClientConfig, ConnState, Filter};
//!
//! let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
//! let client = Client::connect(ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"))).unwrap();
//! let sub = client.subscriber().subscribe("default", Filter::all());
//! assert!(sub.is_stale());
//! assert!(sub.operations().is_empty());
//! assert_ne!(client.state().state, ConnState::Connected);
//! ```
//!
//! # Layers
//!
//! - [`backoff`], [`backlog`], [`machine`], [`outbox`], [`view`], [`progress_parse`]:
//!   pure, socket-free and clock-free logic, tested deterministically.
//! - the driver (private): a thin tokio task executing the machine's
//!   actions on a real socket.
//! - [`Client`], [`Reporter`], [`Subscriber`]: the API.

mod client;
mod config;
mod connect;
mod driver;
mod error;
mod id;
mod reporter;
mod stats;
mod subscriber;
mod trust;

pub mod backlog;
pub mod backoff;
pub mod machine;
pub mod outbox;
pub mod progress_parse;
pub mod renew;
pub mod view;
pub mod wire;

pub use client::Client;
pub use config::{ClientConfig, TokenProvider, DEFAULT_MAX_INCOMING_BYTES, DEFAULT_URL};
pub use connect::tls_client_config;
pub use error::{ClientError, ReportError};
pub use id::{new_operation_id, uuid_v7};
pub use machine::{ConnState, StateChange};
pub use progress_parse::{Parsed, ProgressParser};
pub use reporter::{validate_id, OperationHandle, Reporter, StartBuilder};
pub use stats::ConnectionStats;
pub use subscriber::{Subscriber, Subscription};
pub use trust::TLS_CERTIFICATE;
pub use view::Update;
pub use wire::{Event, Filter, OpStatus, OperationState, Position, ProgressFields};
