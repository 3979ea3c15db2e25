//! The engine: one task that owns every namespace, orders events, hands
//! them to the store's group-commit writer (or, for a store that commits
//! inline such as `--memory`, commits them itself at the end of its turn)
//! and, once they are durable, acks producers and fans the shared bytes
//! out to viewers.
//!
//! Architecture invariants:
//! - Viewers and acks see only durable events: everything a request causes
//!   runs as an `AfterCommit` action once the store has committed the
//!   batch that holds it (or at once when nothing is in flight).
//! - Subscriptions are registered on this task, between commits, so a
//!   replay and the live events that follow it never overlap or leave a gap.
//! - Each event is encoded once; every viewer's queue gets the same bytes.

mod coalesce;
mod command;
mod departures;
mod forget;
mod handlers;
mod history;
mod query;
mod records;
mod snapshots;
mod state;
pub mod states;

pub use command::*;
pub use state::EngineConfig;

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::registry::Registry;
use hub_store::{Batch, EventStore, GroupCommitWriter, StoreError};
use state::{AfterCommit, Ns, Sub};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How many batches may wait for the store before the engine stops taking requests.
const MAX_IN_FLIGHT: usize = 8;
/// How many requests one engine turn takes before it flushes a batch.
const MAX_TURN: usize = 4096;
/// How long one engine turn goes on taking requests before it flushes, and
/// past which it yields to the runtime before the next.
const MAX_TURN_TIME: Duration = Duration::from_millis(2);

/// A cheap handle to send commands to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
}

impl EngineHandle {
    /// Sends a command (waits when the engine is saturated: backpressure).
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// Sends a command without waiting; false when the engine is saturated or gone.
    pub fn try_send(&self, cmd: Command) -> bool {
        self.tx.try_send(cmd).is_ok()
    }
}

struct InFlight {
    id: u64,
    actions: Vec<AfterCommit>,
    submitted: std::time::Instant,
    events: usize,
}

/// The engine's state (lives on its own task).
pub struct Engine {
    cfg: EngineConfig,
    /// The store's epoch (see [`forget`] for the namespaces' own).
    epoch: String,
    /// How many namespaces the hub has forgotten ([`forget`]).
    generation: u64,
    /// The generation promised to viewers waiting for a namespace that
    /// does not exist yet (one entry per such namespace with a viewer).
    promised: HashMap<String, u64>,
    namespaces: HashMap<String, Ns>,
    subs: HashMap<String, Vec<Sub>>,
    conn_subs: HashMap<u64, Vec<String>>,
    writer: Option<GroupCommitWriter>,
    /// The store itself when it commits inline ([`EventStore::commits_inline`]):
    /// batches are committed on this task, with no thread hop before the
    /// acks and the fan-out.
    inline: Option<Arc<dyn EventStore>>,
    commits: mpsc::UnboundedReceiver<(Vec<u64>, Result<(), StoreError>)>,
    batch: Batch,
    /// Operations changed this turn, written once each at flush.
    dirty: std::collections::HashSet<(String, String)>,
    actions: Vec<AfterCommit>,
    in_flight: VecDeque<InFlight>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    store_failed: Option<String>,
    /// Set by [`Command::Drain`]: producer messages are refused from then on.
    draining: bool,
    /// Answered once nothing accepted before the drain is still in flight.
    drain_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    events_total: u64,
    deliveries_total: u64,
    coalesce: coalesce::Coalescer,
    kinds: crate::metrics::KindCounters,
    /// Recently closed connections, for the hub's cancel of operations
    /// whose producer is gone.
    departures: departures::Departures,
    /// Snapshots made and maybe not yet read (the hub-wide bound).
    snapshots: snapshots::Snapshots,
    /// Bytes the namespaces' retained events are counted as ([`history`]).
    history_bytes: usize,
    /// After a cut that could not get under the budget: no new try until
    /// the history holds more than this (0: none pending).
    history_retry_above: usize,
    /// Operations held in all namespaces (live, and finished ones not yet
    /// dropped), against `max_operations`.
    operations: usize,
}

impl Engine {
    /// Loads the store and starts the engine task.
    pub fn start(
        store: Arc<dyn EventStore>,
        cfg: EngineConfig,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
    ) -> Result<(EngineHandle, String, tokio::task::JoinHandle<()>), StoreError> {
        let loaded = store.load()?;
        let mut namespaces = HashMap::new();
        let now = crate::clock::now_ms();
        for data in loaded.namespaces {
            let epoch = forget::epoch_for(&loaded.epoch, data.generation);
            let ns = Ns::restore(&epoch, data, &cfg, now)?;
            namespaces.insert(ns.core.name().to_owned(), ns);
        }
        let history_bytes = namespaces.values().map(|ns| ns.log.retained_bytes()).sum();
        let operations = namespaces.values().map(|ns| ns.core.len()).sum();
        let (ctx, crx) = mpsc::unbounded_channel();
        let (writer, inline) = if store.commits_inline() {
            (None, Some(store))
        } else {
            let writer = GroupCommitWriter::spawn(
                store,
                Box::new(move |ids, result| {
                    let _ = ctx.send((ids, result));
                }),
            );
            (Some(writer), None)
        };
        let (tx, rx) = mpsc::channel(16 * 1024);
        let epoch = loaded.epoch.clone();
        let coalesce = coalesce::Coalescer::new(cfg.max_updates_per_operation_per_second);
        let engine = Engine {
            departures: departures::Departures::new(cfg.core.stall_timeout_ms),
            snapshots: Default::default(),
            coalesce,
            cfg,
            epoch: loaded.epoch,
            generation: loaded.generation,
            promised: HashMap::new(),
            namespaces,
            subs: HashMap::new(),
            conn_subs: HashMap::new(),
            writer,
            inline,
            commits: crx,
            batch: Batch::default(),
            dirty: Default::default(),
            actions: Vec::new(),
            in_flight: VecDeque::new(),
            registry,
            metrics,
            store_failed: None,
            draining: false,
            drain_waiters: Vec::new(),
            events_total: 0,
            deliveries_total: 0,
            kinds: Default::default(),
            history_bytes,
            history_retry_above: 0,
            operations,
        };
        let mut engine = engine;
        // A lower budget than the last run's, or a file from before it:
        // cut now, and the store follows with the first batch.
        engine.keep_history_in_budget();
        let task = tokio::spawn(engine.run(rx));
        Ok((EngineHandle { tx }, epoch, task))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let tick_every = Duration::from_millis((self.cfg.core.stall_timeout_ms / 4).clamp(20, 250));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown: Option<tokio::sync::oneshot::Sender<()>> = None;
        loop {
            let turn = std::time::Instant::now();
            // Commits first (acks and fan-out wait on them), then time
            // (stalls, retention: due ticks must not starve behind a steady
            // stream of requests), then requests.
            tokio::select! {
                biased;
                Some((ids, result)) = self.commits.recv() => self.on_commit(ids, result),
                _ = tick.tick(), if shutdown.is_none() => {
                    self.tick(now_ms());
                    self.flush();
                }
                cmd = rx.recv(), if self.in_flight.len() < MAX_IN_FLIGHT && shutdown.is_none() => {
                    let Some(cmd) = cmd else { break };
                    if let Some(done) = self.handle(cmd) { shutdown = Some(done); }
                    let mut n = 1;
                    while n < MAX_TURN && shutdown.is_none() && turn.elapsed() < MAX_TURN_TIME {
                        match rx.try_recv() {
                            Ok(cmd) => {
                                if let Some(done) = self.handle(cmd) { shutdown = Some(done); }
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    self.flush();
                }
            }
            if turn.elapsed() >= MAX_TURN_TIME {
                // A long turn (a big snapshot, many requests): let the
                // tasks it woke run (the last one waits in this worker's
                // LIFO slot, which no other worker may take) before the
                // next turn, or acks written for producers wait behind it.
                tokio::task::yield_now().await;
            }
            if self.in_flight.is_empty() {
                // Every message accepted before a drain is durable and
                // its answer queued.
                for done in self.drain_waiters.drain(..) {
                    let _ = done.send(());
                }
                if shutdown.is_some() {
                    break;
                }
            }
        }
        if let Some(w) = self.writer.take() {
            tokio::task::spawn_blocking(move || w.shutdown()).await.ok();
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    /// Hands the turn's writes to the store, or runs the actions at once
    /// when there is nothing to write.
    fn flush(&mut self) {
        self.take_dirty_records();
        let actions = std::mem::take(&mut self.actions);
        // Forgotten namespaces count: a drop alone is a write.
        let has_writes = !self.batch.is_empty();
        if has_writes && self.inline.is_some() {
            let batch = std::mem::take(&mut self.batch);
            let started = std::time::Instant::now();
            let result = self.inline.as_ref().map_or(Ok(()), |s| s.commit(&batch));
            self.committed(started, batch.events.len(), actions, &result);
        } else if has_writes {
            let batch = std::mem::take(&mut self.batch);
            let events = batch.events.len();
            let id = self.writer.as_ref().map_or(0, |w| w.submit(batch));
            self.in_flight.push_back(InFlight {
                id,
                actions,
                submitted: std::time::Instant::now(),
                events,
            });
        } else if let Some(last) = self.in_flight.back_mut() {
            // Nothing new to write, but earlier writes these answers may
            // depend on are not durable yet: answer after them.
            last.actions.extend(actions);
        } else {
            self.run_actions(actions);
        }
    }

    fn on_commit(&mut self, ids: Vec<u64>, result: Result<(), StoreError>) {
        for id in ids {
            let Some(pos) = self.in_flight.iter().position(|f| f.id == id) else {
                continue;
            };
            // Commits arrive in submission order; anything before `pos` is already done.
            let Some(done) = self.in_flight.remove(pos) else {
                continue;
            };
            self.committed(done.submitted, done.events, done.actions, &result);
        }
    }

    /// A batch submitted at `submitted` is committed (or failed): records
    /// the commit's metrics and runs (or fails) the actions that waited on it.
    fn committed(
        &mut self,
        submitted: std::time::Instant,
        events: usize,
        actions: Vec<AfterCommit>,
        result: &Result<(), StoreError>,
    ) {
        self.metrics
            .commit_seconds
            .observe(submitted.elapsed().as_secs_f64());
        self.metrics.commit_events.observe(events as f64);
        match result {
            Ok(()) => self.run_actions(actions),
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; refusing writes until restart");
                self.store_failed = Some(e.to_string());
                self.fail_actions(actions, e);
            }
        }
    }
}
