//! The viewer API: subscribe to a namespace, get an ordered stream of
//! updates plus an always-exact map of operation states, resumed from the
//! last `(epoch, offset)` after every reconnect. A consumer that falls
//! behind loses superseded progress updates, never lifecycle events (see
//! [`crate::backlog`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use crate::backlog::{Backlog, OVERFLOW_FACTOR};
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
        let buffer = self.client.shared.config.event_buffer.max(1);
        let (tx, rx) = mpsc::channel(buffer);
        let backlog = Arc::new(Mutex::new(Backlog::new(
            buffer.saturating_mul(OVERFLOW_FACTOR),
        )));
        let mut inner = self.client.shared.inner.lock();
        let owner = inner.take_id();
        let mut entry = ViewEntry {
            view,
            tx,
            backlog: backlog.clone(),
            owner,
        };
        // A subscription made after the client started learns where the
        // connection stands: the changes before it went to no one.
        let now = *self.client.shared.state.borrow();
        if now.state != ConnState::Disconnected {
            entry.deliver(Update::Connection(now));
        }
        inner.views.insert(namespace.clone(), entry);
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
            backlog,
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
    /// What did not fit in `rx`; read once `rx` is empty.
    backlog: Arc<Mutex<Backlog>>,
}

impl Subscription {
    /// The next update, in order (`None` once the client is closed).
    pub async fn recv(&mut self) -> Option<Update> {
        std::future::poll_fn(|cx| self.poll_update(cx)).await
    }

    /// The next update if one is ready.
    pub fn try_recv(&mut self) -> Option<Update> {
        let mut backlog = self.backlog.lock();
        match self.rx.try_recv() {
            Ok(u) => Some(u),
            Err(_) => backlog.pop(),
        }
    }

    /// The channel first (it holds the older updates), then the backlog.
    /// Both are looked at under the backlog's lock, which the driver holds
    /// while it delivers: an empty channel then stays empty, so nothing in
    /// it can be older than the backlog's front. A `Pending` with updates
    /// in the channel (tokio's cooperative budget) stays `Pending` (the
    /// task was woken already). The backlog is read only after `rx`
    /// registered the waker: anything delivered later goes into the
    /// channel (the backlog being empty) and wakes us.
    fn poll_update(&mut self, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        let mut backlog = self.backlog.lock();
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(u)) => Poll::Ready(Some(u)),
            Poll::Ready(None) => Poll::Ready(backlog.pop()),
            Poll::Pending if self.rx.is_empty() => match backlog.pop() {
                Some(u) => Poll::Ready(Some(u)),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
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
        self.poll_update(cx)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerMessage;
    use serde_json::json;

    fn event(offset: u64, op: &str, kind: &str) -> Update {
        match ServerMessage::from_value(json!({
            "type": kind, "namespace": "default", "offset": offset, "timestamp": 1,
            "operation_id": op, "seq": offset, "progress": 1.0,
            "state": {"operation_id": op, "state": "running", "progress": 1.0}
        })) {
            ServerMessage::Event(e) => Update::Event(e),
            m => panic!("{m:?}"),
        }
    }

    /// A subscription made after the connection changed state starts with
    /// that state (the change itself went to no view): `watch` started
    /// on a busy machine printed no `-- connecting` / `-- connected`.
    #[tokio::test]
    async fn a_late_subscription_learns_where_the_connection_stands() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Nothing listens there: the client goes on connecting and retrying.
        let subscriber =
            Subscriber::connect(ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"))).unwrap();
        let mut changes = subscriber.client().state_changes();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            changes.wait_for(|c| c.state != ConnState::Disconnected),
        )
        .await
        .expect("the client starts connecting")
        .unwrap();
        let mut sub = subscriber.subscribe("default", Filter::all());
        match sub.try_recv() {
            Some(Update::Connection(c)) => assert_ne!(c.state, ConnState::Disconnected),
            other => panic!("no connection state first: {other:?}"),
        }
    }

    /// Past a full channel, progress is conflated and lifecycle events
    /// kept, and the stream stays in order across channel and backlog.
    #[tokio::test]
    async fn a_full_channel_overflows_into_the_backlog_in_order() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"));
        config.event_buffer = 4;
        let subscriber = Subscriber::connect(config).unwrap();
        let mut sub = subscriber.subscribe("default", Filter::all());
        {
            let mut inner = subscriber.client.shared.inner.lock();
            let v = inner.views.get_mut("default").unwrap();
            for i in 1..=200u64 {
                let kind = if i % 50 == 0 {
                    "operation_completed"
                } else {
                    "progress_update"
                };
                assert!(v.deliver(event(i, &format!("op{}", i % 3), kind)));
            }
        }
        let mut offsets = Vec::new();
        let mut lagged = 0;
        while offsets.last() != Some(&200) {
            match sub.recv().await.expect("update") {
                Update::Event(e) => offsets.push(e.offset),
                Update::Lagged(n) => lagged += n,
                _ => {}
            }
        }
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        for done in [50, 100, 150, 200] {
            assert!(offsets.contains(&done), "lifecycle {done} lost");
        }
        assert_eq!(offsets.len() as u64 + lagged, 200);
        assert!(lagged > 0, "the channel of 4 overflowed");
    }
}
