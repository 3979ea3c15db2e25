//! The client against the real hub binary (`progress-hub serve`, started by
//! `hub-testkit`): reporting while the hub is down, SIGKILL and restart on
//! the same data dir with nothing lost or seen twice, a memory hub that
//! forgets everything, cancellation end to end, token refresh, and `wss://`.
//!
//! The binary is `$PROGRESS_HUB_BIN`, or `progress-hub` next to the test's
//! `deps/` directory (build it with `cargo build -p progress-hub`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hub_client::{
    Client, ClientConfig, ConnState, Filter, OpStatus, OperationState, Reporter, Subscriber,
    Subscription, TokenProvider, Update,
};
use hub_testkit::{hub_bin, Hub, HubBuilder, Ws};
use serde_json::json;

mod real_common;
use real_common::*;

/// Collects a subscription's updates in the background, checking order.
struct Watcher {
    task: tokio::task::JoinHandle<(Subscription, Vec<u64>, u32)>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Watcher {
    fn start(mut sub: Subscription) -> Watcher {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut offsets = Vec::new();
            let mut snapshots = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    u = sub.recv() => match u {
                        Some(Update::Event(e)) => {
                            if let Some(&last) = offsets.last() {
                                assert!(e.offset > last, "offset {} after {}", e.offset, last);
                            }
                            offsets.push(e.offset);
                        }
                        Some(Update::Snapshot { .. }) => snapshots += 1,
                        Some(Update::Lagged(n)) => panic!("lagged by {n}"),
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            (sub, offsets, snapshots)
        });
        Watcher { task, stop }
    }

    async fn finish(self) -> (Subscription, Vec<u64>, u32) {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

/// Waits until the subscription's map satisfies `f`.
async fn until_view(
    sub_client: &Client,
    sub: &Subscription,
    f: impl Fn(&HashMap<String, OperationState>) -> bool,
) {
    let mut rx = sub_client.state_changes();
    let end = Instant::now() + WAIT;
    while !f(&sub.operations()) {
        assert!(
            Instant::now() < end,
            "view never converged: {:#?}",
            sub.operations()
        );
        // Woken by connection changes, or re-checked every 50 ms.
        let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
    }
}

/// Waits until `client` is connected after at least `reconnects` reconnects.
async fn wait_connected(client: &Client, reconnects: u64) {
    let mut rx = client.state_changes();
    tokio::time::timeout(WAIT, async {
        loop {
            let s = client.connection_stats();
            if s.state == ConnState::Connected && s.reconnects >= reconnects {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_while_the_hub_is_down_then_it_starts() {
    let addr = free_addr().await;
    let dir = tempfile::tempdir().unwrap();
    let reporter =
        Reporter::connect(fast(&format!("ws://{addr}/ws")).wait_for_ready(true)).unwrap();
    let t0 = Instant::now();
    let ok = reporter
        .start("Backup")
        .kind("backup")
        .total(10.0)
        .begin()
        .unwrap();
    let bad = reporter.start("Upload").begin().unwrap();
    let running = reporter.start("Index").begin().unwrap();
    for i in 1..=10 {
        ok.current(f64::from(i)).message(format!("file {i}"));
    }
    ok.complete().unwrap();
    bad.progress(30.0);
    bad.fail("disk full").unwrap();
    running.progress(55.5).step("scan");
    assert!(t0.elapsed() < Duration::from_millis(200));

    let hub = HubBuilder::new(hub_bin())
        .listen(&addr)
        .data_dir(dir.path())
        .start()
        .await;
    running.progress(56.0);
    assert!(reporter.flush(WAIT).await);
    let states = hub_states(&hub).await;
    assert_eq!(states[ok.id()]["state"], "completed");
    assert_eq!(states[ok.id()]["current"], 10.0);
    assert_eq!(states[ok.id()]["message"], "file 10");
    assert_eq!(states[bad.id()]["state"], "failed");
    assert_eq!(states[bad.id()]["error"], "disk full");
    assert_eq!(states[running.id()]["state"], "running");
    assert_eq!(states[running.id()]["progress"], 56.0);
    assert_eq!(states[running.id()]["step"], "scan");
    running.complete().unwrap();
    assert!(reporter.flush(WAIT).await);
}

/// A flush does not sleep out a long backoff: the client that failed while
/// the hub was down (and drew a retry a minute away) tries again at once
/// when the flush begins and every half second while it waits, so a hub
/// that is up gets the job's last events within the flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_reaches_a_hub_that_came_back_during_a_long_backoff() {
    let addr = free_addr().await;
    let config = ClientConfig::new(format!("ws://{addr}/ws"))
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .backoff_seed(1);
    let client = Client::connect(config).unwrap();
    let mut states = client.state_changes();
    let reporter = client.reporter();
    let job = reporter.start("Render").begin().unwrap();
    job.progress(40.0);
    job.complete().unwrap();
    // The first attempt failed: the next one is drawn up to a minute away.
    let delay = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(d) = states.borrow_and_update().next_delay_ms {
                return d;
            }
            states.changed().await.unwrap();
        }
    })
    .await
    .expect("a failed attempt");
    assert!(delay > 10_000, "seed 1 draws a long wait: {delay} ms");

    let hub = HubBuilder::new(hub_bin()).listen(&addr).start().await;
    let t0 = Instant::now();
    assert!(
        reporter.flush(Duration::from_secs(10)).await,
        "flushed within 10 s"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let states = hub_states(&hub).await;
    assert_eq!(states[job.id()]["state"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_on_the_same_data_dir_loses_nothing() {
    let addr = free_addr().await;
    let dir = tempfile::tempdir().unwrap();
    let builder = HubBuilder::new(hub_bin())
        .listen(&addr)
        .data_dir(dir.path());
    let mut hub = Some(builder.start().await);
    let url = format!("ws://{addr}/ws");

    let viewer = Client::connect(fast(&url)).unwrap();
    let sub = viewer.subscriber().subscribe("default", Filter::all());
    let watcher = Watcher::start(sub);

    let reporter = Reporter::connect(fast(&url)).unwrap();
    wait_connected(reporter.client(), 0).await;
    wait_connected(&viewer, 0).await;
    let mut truth: HashMap<String, (OpStatus, f64)> = HashMap::new();
    let mut handles = Vec::new();
    for i in 0..12 {
        let op = reporter
            .start(format!("job {i}"))
            .kind("chaos")
            .begin()
            .unwrap();
        handles.push(op);
    }
    let mut kills = 0;
    for round in 1..=10u32 {
        for (i, op) in handles.iter().enumerate() {
            if truth
                .get(op.id())
                .is_some_and(|(s, _)| *s != OpStatus::Running)
            {
                continue;
            }
            let p = f64::from(round * 9).min(99.0);
            op.progress(p).step(format!("round {round}"));
            truth.insert(op.id().to_owned(), (OpStatus::Running, p));
            if round == 5 + (i as u32 % 5) {
                let (status, result) = match i % 3 {
                    0 => (OpStatus::Completed, op.complete()),
                    1 => (OpStatus::Failed, op.fail("boom")),
                    _ => (OpStatus::Canceled, op.canceled(Some("chaos"))),
                };
                result.unwrap();
                truth.insert(
                    op.id().to_owned(),
                    (
                        status,
                        if status == OpStatus::Completed {
                            100.0
                        } else {
                            p
                        },
                    ),
                );
            }
        }
        // The job's own pace: some of this round is on the wire, some not.
        tokio::time::sleep(Duration::from_millis(15)).await;
        if round % 3 == 0 {
            // SIGKILL in the middle of the traffic, then restart on the same store.
            hub.take().unwrap().kill9().await;
            kills += 1;
            hub = Some(builder.start().await);
            wait_connected(reporter.client(), kills).await;
        }
    }
    for op in &handles {
        if op.complete().is_ok() {
            truth.insert(op.id().to_owned(), (OpStatus::Completed, 100.0));
        }
    }
    assert!(
        reporter.flush(WAIT).await,
        "{:?}",
        reporter.connection_stats()
    );
    let stats = reporter.connection_stats();
    assert!(stats.reconnects >= kills, "{stats:?}");

    // The hub's own state equals the producer's ground truth.
    let hub = hub.unwrap();
    let states = hub_states(&hub).await;
    for (id, (status, progress)) in &truth {
        let s = &states[id];
        assert_eq!(s["state"], status.as_str(), "{id}: {s}");
        if *status != OpStatus::Canceled {
            assert_eq!(s["progress"], *progress, "{id}: {s}");
        }
    }
    // The viewer's materialised map converges to the same, without a
    // duplicate or an out-of-order event along the way.
    let (sub, offsets, _snapshots) = watcher.finish().await;
    until_view(&viewer, &sub, |ops| {
        truth
            .iter()
            .all(|(id, (status, _))| ops.get(id).is_some_and(|s| s.state == *status))
    })
    .await;
    let mut dedup = offsets.clone();
    dedup.dedup();
    assert_eq!(dedup, offsets, "no event seen twice");
    assert!(sub.stats().recovered >= 1, "{:?}", sub.stats());
    println!(
        "kills {kills}, producer {stats:?}, viewer events {} {:?}",
        offsets.len(),
        sub.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hub_that_forgets_gets_running_operations_back() {
    let addr = free_addr().await;
    let builder = HubBuilder::new(hub_bin()).listen(&addr);
    let hub = builder.start().await;
    let url = format!("ws://{addr}/ws");
    let client = Client::connect(fast(&url)).unwrap();
    let reporter = client.reporter();
    let op = reporter
        .start("Survivor")
        .kind("k")
        .total(200.0)
        .begin()
        .unwrap();
    op.current(80.0).step("copy");
    assert!(reporter.flush(WAIT).await);

    let viewer = Subscriber::connect(fast(&url)).unwrap();
    let sub = viewer.subscribe("default", Filter::all());
    until_view(viewer.client(), &sub, |ops| ops.contains_key(op.id())).await;
    let epoch_before = sub.position().unwrap().epoch;

    hub.kill9().await;
    let hub = builder.start().await;
    op.current(90.0);
    assert!(reporter.flush(WAIT).await);
    let states = hub_states(&hub).await;
    let s = &states[op.id()];
    assert_eq!(s["state"], "running");
    assert_eq!(s["current"], 90.0);
    assert_eq!(s["step"], "copy");
    assert_eq!(s["name"], "Survivor");
    assert_eq!(s["total"], 200.0);
    assert!(client.connection_stats().resurrected >= 1);

    // The viewer notices the new epoch and takes a snapshot.
    until_view(viewer.client(), &sub, |ops| {
        ops.get(op.id()).is_some_and(|s| s.current == Some(90.0))
    })
    .await;
    assert_ne!(sub.position().unwrap().epoch, epoch_before);
    assert!(sub.stats().snapshots >= 2);
    op.complete().unwrap();
    assert!(reporter.flush(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cancel_reaches_the_job() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let client = Client::connect(fast(&hub.ws_url())).unwrap();
    let op = client.reporter().start("Stoppable").begin().unwrap();
    assert!(client.flush(WAIT).await);
    let viewer = Subscriber::connect(fast(&hub.ws_url())).unwrap();
    viewer.cancel("default", op.id());
    tokio::time::timeout(WAIT, op.cancelled())
        .await
        .expect("cancel delivered");
    op.canceled(Some("asked")).unwrap();
    assert!(client.flush(WAIT).await);
    assert_eq!(hub_states(&hub).await[op.id()]["state"], "canceled");
}

/// An HS256 JWT (admin of every namespace, valid for an hour).
fn mint(secret: &str, sub: &str) -> String {
    mint_until(secret, sub, unix_s() + 3600)
}

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 JWT (admin of every namespace) that expires at `exp` (Unix seconds).
fn mint_until(secret: &str, sub: &str, exp: u64) -> String {
    mint_claims(
        secret,
        json!({"sub": sub, "exp": exp, "roles": ["admin"], "namespaces": ["*"]}),
    )
}

/// An HS256 JWT with these claims.
fn mint_claims(secret: &str, claims: serde_json::Value) -> String {
    fn b64url(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(sig.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_by_the_provider() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let good = mint(secret, "job");
    let wrong = mint("another-secret-0123456789abcdef0123", "job");
    let current = std::sync::Arc::new(parking_lot::Mutex::new(wrong));
    let c2 = current.clone();
    let client = Client::connect(
        fast(&hub.ws_url()).token_provider(TokenProvider::from_fn(move || Some(c2.lock().clone()))),
    )
    .unwrap();
    let op = client.reporter().start("Authenticated").begin().unwrap();
    let mut rx = client.state_changes();
    tokio::time::timeout(WAIT, rx.wait_for(|c| c.state == ConnState::Failed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        client.state().reason,
        hub_client::machine::Reason::AuthRejected
    );
    *current.lock() = good;
    client.reconnect_now();
    op.complete().unwrap();
    assert!(client.flush(WAIT).await);
    assert_eq!(client.state().state, ConnState::Connected);
}

/// A provider that lags (still the refused token when asked after the
/// refusal, several times) is asked again with backoff, and the client
/// recovers by itself once it has a good token: no `reconnect_now`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_provider_is_asked_again_until_it_has_a_good_token() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let good = mint(secret, "job");
    let wrong = mint("another-secret-0123456789abcdef0123", "job");
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let a2 = asked.clone();
    let provider = TokenProvider::from_fn(move || {
        // The first five answers are the refused token.
        let n = a2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(if n < 5 { wrong.clone() } else { good.clone() })
    });
    let client = Client::connect(fast(&hub.ws_url()).token_provider(provider)).unwrap();
    let op = client.reporter().start("Patient").begin().unwrap();
    op.complete().unwrap();
    wait_connected(&client, 0).await;
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 6);
    assert!(client.flush(WAIT).await);
}

/// A fixed token the hub refuses is not asked again: the client stays
/// failed, and a flush says so (false) instead of waiting in vain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fixed_token_fails_visibly() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let wrong = mint("another-secret-0123456789abcdef0123", "job");
    let client = Client::connect(fast(&hub.ws_url()).token(wrong)).unwrap();
    let op = client.reporter().start("Refused").begin().unwrap();
    op.complete().unwrap();
    let mut rx = client.state_changes();
    tokio::time::timeout(WAIT, rx.wait_for(|c| c.state == ConnState::Failed))
        .await
        .unwrap()
        .unwrap();
    assert!(!client.flush(Duration::from_millis(300)).await);
    let stats = client.connection_stats();
    assert_eq!(stats.state, ConnState::Failed);
    assert_eq!(
        client.state().reason,
        hub_client::machine::Reason::AuthRejected
    );
    assert!(stats.last_error.is_some(), "{stats:?}");
}

/// An operation the hub refuses for good (`FORBIDDEN`: a namespace the
/// token may not report into) says so on the next call, with the code,
/// instead of a bare "already finished".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_operation_says_so() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let token = mint_claims(
        secret,
        json!({"sub": "job", "exp": unix_s() + 3600, "roles": ["reporter"], "namespaces": ["team-a"]}),
    );
    let reporter = Reporter::connect(fast(&hub.ws_url()).token(token)).unwrap();
    let op = reporter
        .start("Elsewhere")
        .namespace("team-b")
        .begin()
        .unwrap();
    assert!(
        !reporter.flush(WAIT).await,
        "a refused start is not delivered"
    );
    assert_eq!(op.rejection().as_deref(), Some("FORBIDDEN"));
    assert_eq!(
        op.complete(),
        Err(hub_client::ReportError::Refused("FORBIDDEN".into()))
    );
    assert_eq!(
        op.update(hub_client::ProgressFields {
            progress: Some(1.0),
            ..Default::default()
        }),
        Err(hub_client::ReportError::Refused("FORBIDDEN".into()))
    );
}

/// A job's operation that another producer also reports on (a `report
/// progress` in a script, here a raw connection) with the seq it learns
/// from the hub: the job's completion, numbered with the same seq, is
/// acked as a duplicate. It used to count as delivered, and the operation
/// stayed running for ever; it now moves past the seq and ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_whose_seq_another_producer_took_still_ends_the_operation() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let reporter = Reporter::connect(fast(&hub.ws_url())).unwrap();
    let op = reporter.start("Shared").id("shared").begin().unwrap();
    assert!(reporter.flush(WAIT).await);
    let mut other = Ws::connect(&hub.ws_url()).await;
    let ack = other
        .request(
            json!({"type": "progress_update", "operation_id": "shared", "seq": 2,
                   "progress": 50, "message": "from a script"}),
            1,
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    op.complete().unwrap();
    assert!(reporter.flush(WAIT).await);
    let states = hub_states(&hub).await;
    assert_eq!(
        states["shared"]["state"], "completed",
        "{:?}",
        states["shared"]
    );
    assert_eq!(states["shared"]["message"], "from a script");
}

/// A connection outlives its tokens: before each token's `exp` the client
/// asks the provider again and sends `refresh`, so a hub that closes
/// connections 5 s past their token's `exp` never has to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_renews_its_token_in_place() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let minted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let m2 = minted.clone();
    let client = Client::connect(fast(&hub.ws_url()).token_provider(TokenProvider::from_fn(
        move || {
            m2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(mint_until(secret, "job", unix_s() + 3))
        },
    )))
    .unwrap();
    wait_connected(&client, 0).await;
    // Each token lives 2-3 s: run through several renewals and past the
    // first token's exp plus the hub's 5 s leeway (and its 1 s sweep).
    let end = Instant::now() + WAIT;
    let past_first_expiry = Instant::now() + Duration::from_secs(3 + 5 + 1);
    while minted.load(std::sync::atomic::Ordering::SeqCst) < 4 || Instant::now() < past_first_expiry
    {
        assert!(Instant::now() < end, "the provider was not asked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let op = client.reporter().start("Renewed").begin().unwrap();
    op.complete().unwrap();
    assert!(client.flush(WAIT).await);
    let stats = client.connection_stats();
    assert_eq!(stats.state, ConnState::Connected);
    assert_eq!(stats.reconnects, 0, "the connection was never dropped");
}

/// A renewed token that may not read a subscribed namespace: the hub ends
/// that subscription (FORBIDDEN, no request id, `data.namespace`) and keeps
/// the connection. The subscription says it was refused and is stale from
/// then on, instead of looking live while nothing more comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ended_by_a_narrower_token_is_refused_and_stale() {
    let secret = "s3cret-for-tests-only-0123456789abcdef";
    let hub = HubBuilder::new(hub_bin())
        .args(["--jwt-secret", secret])
        .start()
        .await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c2 = calls.clone();
    // The first token lives 3 s (renewed before that); the next one may
    // read only namespace `other`.
    let provider = TokenProvider::from_fn(move || {
        let n = c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(if n == 0 {
            mint_until(secret, "viewer", unix_s() + 3)
        } else {
            mint_claims(
                secret,
                json!({"sub": "viewer", "exp": unix_s() + 3600, "roles": ["viewer"], "namespaces": ["other"]}),
            )
        })
    });
    let viewer = Subscriber::connect(fast(&hub.ws_url()).token_provider(provider)).unwrap();
    let mut sub = viewer.subscribe("default", Filter::all());
    let end = Instant::now() + WAIT;
    let mut live = false;
    loop {
        let update = tokio::time::timeout_at(end.into(), sub.recv())
            .await
            .expect("an update");
        match update {
            Some(Update::Snapshot { .. }) => {
                live = true;
                assert!(!sub.is_stale(), "live after its snapshot");
            }
            Some(Update::Refused { code, .. }) => {
                assert!(live, "refused only after the renewal");
                assert_eq!(code, "FORBIDDEN");
                break;
            }
            Some(_) => {}
            None => panic!("the subscription ended without a word"),
        }
    }
    assert!(sub.is_stale(), "nothing more comes: stale");
    assert_eq!(viewer.client().state().state, ConnState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_private_root_and_the_ready_wait() {
    let tls = hub_testkit::TlsFiles::self_signed();
    let cert_pem = tls.cert_pem.clone();
    let hub = HubBuilder::new(hub_bin()).args(tls.args()).start().await;
    let port = hub.addr.rsplit(':').next().unwrap();
    let url = format!("wss://localhost:{port}/ws");

    let trusted = Client::connect(fast(&url).tls_root_pem(cert_pem).wait_for_ready(true)).unwrap();
    let op = trusted.reporter().start("Over TLS").begin().unwrap();
    op.complete().unwrap();
    assert!(
        trusted.flush(WAIT).await,
        "{:?}",
        trusted.connection_stats()
    );

    // Without the private root the certificate is not trusted: no connection.
    let untrusted = Client::connect(fast(&url)).unwrap();
    let mut rx = untrusted.state_changes();
    tokio::time::timeout(WAIT, rx.wait_for(|c| c.state == ConnState::Reconnecting))
        .await
        .unwrap()
        .unwrap();
    let err = untrusted.connection_stats().last_error.unwrap_or_default();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

/// A subscription the hub refuses for now (here `RATE_LIMITED`, reason
/// `snapshots`: another viewer holds a big snapshot unread) is asked for
/// again after `retry_after_ms`, not given up: the view fills once the
/// hub has room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_refused_for_now_is_asked_for_again() {
    let hub = HubBuilder::new(hub_bin())
        .args(["--max-snapshot-bytes", "100000"])
        .start()
        .await;
    // Several MB of operations, more than the kernel buffers of a viewer
    // that does not read.
    let mut p = Ws::connect(&hub.ws_url()).await;
    let pad = "m".repeat(50_000);
    for i in 0..120u64 {
        let start = json!({"type": "operation_started", "operation_id": format!("big{i}"), "seq": 1, "name": "big", "metadata": {"pad": pad}});
        let ack = p.request(start, i).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let mut stuck = hub_testkit::RawWs::connect_with_buffer(&hub.addr, "/ws", Some(4096)).await;
    stuck
        .send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"default"}"#)
        .await;
    // Until the hub refuses a raw subscribe, the stuck viewer's snapshot
    // is not held yet (the probe reads each snapshot it is given).
    let mut probe = Ws::connect(&hub.ws_url()).await;
    let end = Instant::now() + WAIT;
    for id in 1.. {
        let r = probe
            .request(json!({"type": "subscribe", "namespace": "default"}), id)
            .await;
        if r["type"] == "error" {
            assert_eq!(r["data"]["reason"], "snapshots", "{r}");
            break;
        }
        probe.next_of("operation_list", WAIT).await;
        assert!(Instant::now() < end, "the big snapshot was never held");
    }
    let refusals = || async {
        let text = metrics_text(&hub).await;
        text.lines()
            .find(|l| l.starts_with(r#"progress_hub_rate_limited_total{limit="snapshots"}"#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = refusals().await;
    let viewer = Subscriber::connect(fast(&hub.ws_url())).unwrap();
    let sub = viewer.subscribe("default", Filter::default());
    // Refused for now...
    let end = Instant::now() + WAIT;
    while refusals().await <= before {
        assert!(
            Instant::now() < end,
            "the client's subscribe was never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sub.operations().is_empty());
    // ... and asked for again: the view fills once the stuck viewer is gone.
    drop(stuck);
    until_view(viewer.client(), &sub, |ops| ops.len() == 120).await;
}

/// A subscription past the connection's own limits (here 64 KiB of filter
/// text over its subscriptions) is refused for good, not asked for again
/// every second (which would only count toward the abuse rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_past_the_filter_limit_is_refused_for_good() {
    let hub = HubBuilder::new(hub_bin()).start().await;
    let viewer = Subscriber::connect(fast(&hub.ws_url())).unwrap();
    // 64 globs of 250 bytes: 16,000 bytes of filter each; four fit.
    let filter = |tag: &str| Filter {
        operations: (0..64)
            .map(|i| format!("{tag}{i:03}{}", "x".repeat(246)))
            .collect(),
        kinds: Vec::new(),
    };
    let end = Instant::now() + WAIT;
    let mut held = Vec::new();
    for ns in ["a", "b", "c", "d"] {
        // One at a time, each in place (its snapshot read) before the
        // next: the fifth is then the one past the limit.
        let mut sub = viewer.subscribe(ns, filter("g"));
        loop {
            let update = tokio::time::timeout_at(end.into(), sub.recv())
                .await
                .expect("a snapshot");
            if matches!(update, Some(Update::Snapshot { .. })) {
                break;
            }
        }
        held.push(sub);
    }
    let mut fifth = viewer.subscribe("e", filter("g"));
    loop {
        let update = tokio::time::timeout_at(end.into(), fifth.recv())
            .await
            .expect("an answer to the fifth subscription");
        match update {
            Some(Update::Refused { code, .. }) => {
                assert_eq!(code, "RATE_LIMITED");
                break;
            }
            Some(Update::RefusedForNow { reason, .. }) => {
                panic!("refused for now ({reason:?}): it would be asked for again")
            }
            Some(_) => {}
            None => panic!("the subscription ended without an answer"),
        }
    }
}

/// The hub's `/metrics` text, over a plain HTTP/1.1 request.
async fn metrics_text(hub: &Hub) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(&hub.addr).await.unwrap();
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        hub.addr
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    body
}
