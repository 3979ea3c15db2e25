//! The viewer API: subscribe to a namespace, get an ordered stream of
//! updates plus an always-exact map of operation states, resumed from the
//! last `(epoch, offset)` after every reconnect.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};

use crate::client::{Client, Control, ViewEntry};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::machine::{ConnState, StateChange};
use crate::view::{Update, View, ViewStats};
use crate::wire::{Filter, OperationState, Position};

/// Watches operations on the hub. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Subscriber {
    client: Client,
}

impl Subscriber {
    /// Connect a new client (in the background) and return its subscriber.
    pub fn connect(config: ClientConfig) -> Result<Subscriber, ClientError> {
        Ok(Client::connect(config)?.subscriber())
    }

    pub(crate) fn from_client(client: Client) -> Self {
        Subscriber { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Subscribe to `namespace` (one subscription per namespace per client:
    /// subscribing again replaces the previous one). Returns at once; the
    /// subscription is (re)sent whenever the connection is up.
    pub fn subscribe(&self, namespace: impl Into<String>, filter: Filter) -> Subscription {
        let namespace = namespace.into();
        self.watch(View::new(namespace, filter))
    }

    /// The same, for a viewer that needs only each operation's latest state
    /// (a dashboard): while it is behind, the hub may replace its queued
    /// progress updates with newer ones instead of dropping it as a slow
    /// client. Lifecycle events are never skipped.
    pub fn subscribe_latest(&self, namespace: impl Into<String>, filter: Filter) -> Subscription {
        let namespace = namespace.into();
        self.watch(View::new(namespace, filter).latest_only())
    }

    fn watch(&self, view: View) -> Subscription {
        let namespace = view.namespace().to_owned();
        let (tx, rx) = mpsc::channel(self.client.shared.config.event_buffer.max(1));
        let mut inner = self.client.shared.inner.lock();
        let owner = inner.take_id();
        inner.views.insert(
            namespace.clone(),
            ViewEntry {
                view,
                tx,
                lagged: 0,
                owner,
            },
        );
        if inner.machine.state() == ConnState::Connected {
            inner
                .control
                .push_back(Control::Subscribe(namespace.clone()));
        }
        drop(inner);
        self.client.wake();
        Subscription {
            client: self.client.clone(),
            namespace,
            owner,
            rx,
        }
    }

    /// Ask the producer of an operation to stop (sent when connected, and
    /// again after a reconnect until the hub answered). The hub's answer
    /// arrives as an [`Update::CancelResult`] on this client's subscription
    /// to `namespace`, if it has one.
    pub fn cancel(&self, namespace: impl Into<String>, operation_id: impl Into<String>) {
        self.client
            .shared
            .inner
            .lock()
            .control
            .push_back(Control::Cancel {
                namespace: namespace.into(),
                operation_id: operation_id.into(),
            });
        self.client.wake();
    }
}

/// One namespace subscription: a stream of [`Update`]s (also a
/// `futures::Stream`) and the materialised map of operation states.
/// Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    client: Client,
    namespace: String,
    owner: u64,
    rx: mpsc::Receiver<Update>,
}

impl Subscription {
    /// The next update, in order (`None` once the client is closed).
    pub async fn recv(&mut self) -> Option<Update> {
        self.rx.recv().await
    }

    /// The next update if one is ready.
    pub fn try_recv(&mut self) -> Option<Update> {
        self.rx.try_recv().ok()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn with_view<T>(&self, f: impl FnOnce(&View) -> T) -> Option<T> {
        let inner = self.client.shared.inner.lock();
        inner
            .views
            .get(&self.namespace)
            .filter(|v| v.owner == self.owner)
            .map(|v| f(&v.view))
    }

    /// A copy of the current states, keyed by operation id. Exact even
    /// when the update stream lagged.
    pub fn operations(&self) -> HashMap<String, OperationState> {
        self.with_view(|v| v.operations().clone())
            .unwrap_or_default()
    }

    /// The current state of one operation.
    pub fn get(&self, operation_id: &str) -> Option<OperationState> {
        self.with_view(|v| v.operations().get(operation_id).cloned())
            .flatten()
    }

    /// The `(epoch, offset)` the next resume starts from.
    pub fn position(&self) -> Option<Position> {
        self.with_view(|v| v.position().cloned()).flatten()
    }

    /// Counters: events, duplicates dropped, recovered resumes, snapshots.
    pub fn stats(&self) -> ViewStats {
        self.with_view(View::stats).unwrap_or_default()
    }

    /// True while the data may be out of date: disconnected, or reconnected
    /// but not yet resynchronised. UIs should grey it out.
    pub fn is_stale(&self) -> bool {
        let inner = self.client.shared.inner.lock();
        inner.machine.state() != ConnState::Connected
            || !inner
                .views
                .get(&self.namespace)
                .is_some_and(|v| v.view.is_live())
    }

    /// A watch channel of connection state changes.
    pub fn connection(&self) -> watch::Receiver<StateChange> {
        self.client.state_changes()
    }
}

impl futures_util::Stream for Subscription {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.client.shared.inner.lock();
        if inner.views.get(&self.namespace).map(|v| v.owner) != Some(self.owner) {
            // Replaced by a newer subscription to the same namespace.
            return;
        }
        inner.views.remove(&self.namespace);
        inner
            .control
            .retain(|c| *c != Control::Subscribe(self.namespace.clone()));
        if inner.machine.state() == ConnState::Connected {
            inner
                .control
                .push_back(Control::Unsubscribe(self.namespace.clone()));
        }
        drop(inner);
        self.client.wake();
    }
}
