//! The [`Client`]: one connection to the hub shared by its
//! [`Reporter`](crate::Reporter) and [`Subscriber`](crate::Subscriber)
//! views, and the state they share with the driver task.
//!
//! **API boundary**: nothing here awaits the network. Callers only take a
//! short lock on [`Inner`] and wake the driver.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};

use crate::backlog::Backlog;
use crate::config::ClientConfig;
use crate::connect::Endpoint;
use crate::error::ClientError;
use crate::machine::{ConnState, Machine, Reason, StateChange};
use crate::outbox::{OpKey, Outbox, OutboxConfig};
use crate::stats::ConnectionStats;
use crate::view::{Update, View};
use crate::wire::ControlMessage;

/// What the hub told a producer about one of its operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OpSignal {
    pub cancel_requested: bool,
    pub requested_by: Option<String>,
    pub rejected: Option<String>,
    /// The hub refused the whole operation: it left the outbox.
    pub dropped: bool,
}

/// A subscription as the driver holds it.
pub(crate) struct ViewEntry {
    pub view: View,
    pub tx: mpsc::Sender<Update>,
    /// Where updates wait while `tx` is full; shared with the
    /// [`Subscription`](crate::Subscription), which pops from it once the
    /// channel is empty.
    pub backlog: Arc<Mutex<Backlog>>,
    /// Which [`Subscription`](crate::Subscription) owns it.
    pub owner: u64,
}

impl ViewEntry {
    /// Deliver `u` without ever waiting: into the channel while it has room
    /// and nothing waits in the backlog, else into the backlog (which
    /// conflates progress and counts what it skips). False once the
    /// subscription is gone.
    pub fn deliver(&mut self, u: Update) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        let mut backlog = self.backlog.lock();
        if !backlog.is_empty() {
            backlog.push(u);
            return true;
        }
        match self.tx.try_send(u) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(u)) => {
                backlog.push(u);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A control request waiting for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Subscribe(String),
    Unsubscribe(String),
    Cancel {
        namespace: String,
        operation_id: String,
    },
}

/// Everything the driver and the API share, behind one short-held lock.
pub(crate) struct Inner {
    pub machine: Machine,
    pub outbox: Outbox,
    pub signals: HashMap<OpKey, watch::Sender<OpSignal>>,
    pub views: HashMap<String, ViewEntry>,
    pub control: VecDeque<Control>,
    /// `cancel` requests sent and not answered yet: request id →
    /// (namespace, operation id).
    pub cancels: HashMap<u64, (String, String)>,
    /// Subscriptions the hub refused for now (`RATE_LIMITED`, ...), to ask
    /// for again: (when, ms on the client clock; namespace).
    pub resubscribe: Vec<(u64, String)>,
    pub next_id: u64,
    pub last_heartbeat: Option<SystemTime>,
    pub clients_connected: Option<u64>,
    pub frames_received: u64,
    pub last_error: Option<String>,
    /// The hub's code in the last error, when it named one.
    pub last_error_code: Option<String>,
    /// The driver stopped: nothing will be sent any more.
    pub closed: bool,
    /// The driver stopped without being asked to (a panic).
    pub crashed: bool,
    /// Lifecycle refusals already reported by a flush.
    pub refusals_told: u64,
}

impl Inner {
    /// Remembers the last error seen, and the hub's code for it if any.
    pub fn note_error(&mut self, message: impl ToString, code: Option<String>) {
        self.last_error = Some(message.to_string());
        self.last_error_code = code;
    }

    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Encode the next control request, if any.
    pub fn next_control(&mut self) -> Option<String> {
        let c = self.control.pop_front()?;
        let id = self.take_id();
        let msg = match c {
            Control::Subscribe(ns) => self.views.get_mut(&ns)?.view.subscribe(id),
            Control::Unsubscribe(namespace) => ControlMessage::Unsubscribe { id, namespace },
            Control::Cancel {
                namespace,
                operation_id,
            } => {
                self.cancels
                    .insert(id, (namespace.clone(), operation_id.clone()));
                ControlMessage::Cancel {
                    id,
                    namespace,
                    operation_id,
                }
            }
        };
        Some(crate::wire::encode_control(&msg))
    }
}

/// State shared by every handle and the driver.
pub(crate) struct Shared {
    pub config: ClientConfig,
    pub endpoint: Endpoint,
    pub inner: Mutex<Inner>,
    pub wake: Notify,
    pub state: watch::Sender<StateChange>,
    pub idle: watch::Sender<bool>,
    pub clock: tokio::time::Instant,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Requests from handles to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    ReconnectNow,
    /// A flush waits this long: retry at once and keep retries short.
    Hurry(Duration),
    NetworkOnline,
    Close,
}

/// A connection to the hub, kept alive and reconnected in the background.
/// Cheap to clone; every clone drives the same connection. Get a
/// [`Reporter`](crate::Reporter) or [`Subscriber`](crate::Subscriber) from it.
///
/// Works inside a tokio runtime (the driver is a task) and outside one (the
/// driver runs on its own thread), so synchronous jobs can report too.
///
/// **The end of a job.** When the last handle (client, reporter,
/// subscriber, operation handle) is dropped, the client keeps delivering
/// what is queued for up to [`ClientConfig::linger`] (10 s by default):
/// - a client created *outside* a tokio runtime (its own thread) makes
///   that last drop **wait** until everything queued was acked or the
///   linger time passed, like a Kafka producer's `close`: a synchronous
///   job that returns from `main` right after `complete()` still gets its
///   events to a hub that is up (set `linger(Duration::ZERO)` not to wait);
/// - a client created *inside* a runtime never blocks on drop: its task
///   lingers in the background, but dies with the runtime, so an async
///   job must `flush(..).await` before it returns from `main`.
///
/// `std::process::exit` runs no destructors: flush before it. On a
/// `current_thread` runtime the client's task only runs while the job
/// awaits: synchronous work that never yields starves it (nothing is sent,
/// not even the connection attempt), so use a multi-threaded runtime or
/// `spawn_blocking` for long synchronous work.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    /// The client's own driver thread (none inside a runtime). Declared
    /// after `commands`: the last client's sender is gone (the driver
    /// lingers) before this waits for the thread.
    _thread: Option<Arc<OwnThread>>,
}

/// Waits, when the last client is dropped, for its own driver thread to
/// deliver what is queued (at most the linger time).
struct OwnThread {
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    linger: Duration,
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Never block a runtime: the thread goes on lingering alone.
            tracing::debug!("hub client dropped inside a runtime: not waiting for delivery");
            return;
        }
        let Ok(done) = self.done.lock() else {
            return;
        };
        // The driver stops by itself once idle or after `linger`; the extra
        // second covers its closing handshake.
        let wait = self.linger.saturating_add(Duration::from_secs(1));
        if done.recv_timeout(wait).is_err() {
            // Disconnected: the thread ended (the normal case). Timeout:
            // give up waiting.
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.shared.config.url)
            .field("state", &self.state())
            .finish()
    }
}

impl Client {
    /// Start connecting in the background and return at once.
    pub fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = Endpoint::new(&config)?;
        let machine = match config.backoff_seed {
            Some(seed) => Machine::with_seed(config.machine, seed),
            None => Machine::new(config.machine),
        };
        let initial = StateChange {
            state: ConnState::Disconnected,
            reason: Reason::Requested,
            attempt: 0,
            next_delay_ms: None,
        };
        let shared = Arc::new(Shared {
            endpoint,
            inner: Mutex::new(Inner {
                machine,
                outbox: Outbox::new(OutboxConfig {
                    max_message_bytes: config.max_message_bytes,
                    ..config.outbox
                }),
                signals: HashMap::new(),
                views: HashMap::new(),
                control: VecDeque::new(),
                cancels: HashMap::new(),
                resubscribe: Vec::new(),
                next_id: 1,
                last_heartbeat: None,
                clients_connected: None,
                frames_received: 0,
                last_error: None,
                last_error_code: None,
                closed: false,
                crashed: false,
                refusals_told: 0,
            }),
            config,
            wake: Notify::new(),
            state: watch::channel(initial).0,
            idle: watch::channel(true).0,
            clock: tokio::time::Instant::now(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = crate::driver::run_guarded(shared.clone(), rx);
        let thread = match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(driver);
                None
            }
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ClientError::Runtime(e.to_string()))?;
                // Nothing is ever sent: the receiver sees the thread end
                // (also by a panic) as a disconnect.
                let (ended_tx, ended_rx) = std::sync::mpsc::channel::<()>();
                std::thread::Builder::new()
                    .name("hub-client".into())
                    .spawn(move || {
                        let _ended = ended_tx;
                        rt.block_on(driver);
                    })
                    .map_err(|e| ClientError::Runtime(e.to_string()))?;
                Some(Arc::new(OwnThread {
                    done: std::sync::Mutex::new(ended_rx),
                    linger: shared.config.linger,
                }))
            }
        };
        Ok(Client {
            shared,
            commands: tx,
            _thread: thread,
        })
    }

    /// The producer API on this connection.
    pub fn reporter(&self) -> crate::Reporter {
        crate::Reporter::from_client(self.clone())
    }

    /// The viewer API on this connection.
    pub fn subscriber(&self) -> crate::Subscriber {
        crate::Subscriber::from_client(self.clone())
    }

    /// The latest state change.
    pub fn state(&self) -> StateChange {
        *self.shared.state.borrow()
    }

    /// A watch channel of state changes (reason, attempt, next delay).
    pub fn state_changes(&self) -> watch::Receiver<StateChange> {
        self.shared.state.subscribe()
    }

    /// Counters and health of the connection.
    pub fn connection_stats(&self) -> ConnectionStats {
        ConnectionStats::collect(&self.shared)
    }

    /// Reconnect at once (skips the backoff wait; also leaves `Failed`).
    pub fn reconnect_now(&self) {
        let _ = self.commands.send(Command::ReconnectNow);
    }

    /// Tell the client the network is back (retries at once if waiting).
    pub fn network_online(&self) {
        let _ = self.commands.send(Command::NetworkOnline);
    }

    /// Close the connection and stop reconnecting. Queued messages that
    /// were not acked are lost; call [`Client::flush`] first to avoid that.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// Wait until every queued message was acked, at most `timeout`.
    /// Returns whether everything reported reached the hub as reported:
    /// false while messages wait, when a lifecycle message (start, complete,
    /// fail, cancel) was refused for good by the hub since the previous
    /// flush (see [`OperationHandle::rejection`](crate::OperationHandle::rejection)
    /// and `refusal()`; the refusal is also logged), and when its
    /// background task ended. A client that is still
    /// [`Failed`](ConnState::Failed) at the end of the wait (credentials
    /// refused with a fixed token, retries exhausted: nothing is delivered
    /// until [`Client::reconnect_now`]) returns false and logs a warning
    /// naming the reason.
    ///
    /// While it waits, a client that is between attempts tries again at
    /// once and no retry waits longer than half a second
    /// ([`crate::machine::Event::Hurry`]), so a hub that is back within
    /// `timeout` gets what is queued.
    pub async fn flush(&self, timeout: Duration) -> bool {
        {
            let inner = self.shared.inner.lock();
            if inner.outbox.is_idle() || inner.closed {
                drop(inner);
                return self.flush_result();
            }
        }
        let _ = self.commands.send(Command::Hurry(timeout));
        let mut rx = self.shared.idle.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                {
                    let inner = self.shared.inner.lock();
                    if inner.outbox.is_idle() || inner.closed {
                        return;
                    }
                }
                self.shared.wake.notify_one();
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.flush_result()
    }

    /// Whether everything reported reached the hub (see [`Client::flush`]).
    fn flush_result(&self) -> bool {
        let mut inner = self.shared.inner.lock();
        let refused = inner.outbox.stats_lifecycle_rejected();
        let fresh = refused - inner.refusals_told.min(refused);
        inner.refusals_told = refused;
        if fresh > 0 {
            tracing::warn!(
                refused = fresh,
                "flush: the hub refused lifecycle messages; the operations' ends did not reach it"
            );
        }
        let ok = inner.outbox.is_idle() && fresh == 0 && !inner.crashed;
        if !ok && inner.machine.state() == ConnState::Failed {
            tracing::warn!(reason = ?inner.machine.failed_reason(), last_error = ?inner.last_error,
                "flush: the client gave up connecting; what is queued is not delivered");
        }
        ok
    }

    /// [`Client::flush`] for synchronous code (must not be called from
    /// within an async task).
    ///
    /// Called inside a tokio runtime it cannot wait (that would block the
    /// runtime): it logs an error, fails a debug assertion, and returns
    /// [`Client::flush`]'s answer without waiting. Use `flush(..).await` there.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        if tokio::runtime::Handle::try_current().is_ok() {
            tracing::error!(
                "flush_blocking called inside a tokio runtime: not waiting (use flush().await)"
            );
            debug_assert!(
                false,
                "flush_blocking called inside a tokio runtime: use flush().await"
            );
            return self.flush_result();
        }
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt.block_on(self.flush(timeout)),
            Err(_) => self.flush_result(),
        }
    }

    pub(crate) fn wake(&self) {
        self.shared.wake.notify_one();
    }
}
