//! Chaos: 20 producers × 50 operations and 10 viewers, while the hub is
//! killed with SIGKILL three times (restarted on the same data dir and
//! port) and viewer connections are cut through a TCP proxy. At the end
//! every viewer's state equals the hub's and the producers' ground truth.

mod common;
use common::*;
use hub_client::{ClientConfig, Filter, OpStatus, Reporter, Subscriber, Update};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "chaos";
const PRODUCERS: usize = 20;
const OPS_PER_PRODUCER: usize = 50;
const VIEWERS: usize = 10;

/// A TCP proxy whose live connections the test can cut at once.
struct Proxy {
    addr: String,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    cuts: AtomicU64,
}

impl Proxy {
    async fn start(target: String) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Arc::new(Proxy {
            addr: listener.local_addr().unwrap().to_string(),
            conns: Arc::default(),
            cuts: AtomicU64::new(0),
        });
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut conns = p.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        });
        proxy
    }

    /// Cuts every proxied connection (no close frame: like a network drop).
    fn cut_all(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
        self.cuts.fetch_add(1, Ordering::Relaxed);
    }
}

/// A tiny deterministic PRNG (xorshift) so the run is repeatable by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fast(cfg: ClientConfig) -> ClientConfig {
    cfg.namespace(NS)
        .backoff(Duration::from_millis(50), Duration::from_millis(800))
        .heartbeat_interval(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(2))
}

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    events: u64,
    duplicates: u64,
    gaps: u64,
    recovered: u64,
    snapshots: u64,
    lagged: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_and_viewers_survive_hub_kills_and_cuts() {
    let started_at = std::time::Instant::now();
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // No hub-side conflation here (it would skip progress updates for a
    // viewer that falls behind, by design): every gap would then be a bug.
    let builder = hub().data_dir(dir.path()).listen(addr.clone()).args([
        "--heartbeat-interval",
        "500ms",
        "--stall-timeout",
        "60s",
        "--conflate-after-bytes",
        "33554432",
        "--slow-client-bytes",
        "67108864",
    ]);
    let mut hub_proc = Some(builder.start().await);
    let proxy = Proxy::start(addr.clone()).await;

    // Viewers, through the proxy. Each runs until told to stop, then hands
    // its subscription back for the final comparison.
    let mut viewers = Vec::new();
    for _ in 0..VIEWERS {
        let s = Subscriber::connect(fast(ClientConfig::new(format!("ws://{}/ws", proxy.addr))))
            .unwrap();
        let mut sub = s.subscribe(NS, Filter::all());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let position = Arc::new(AtomicU64::new(0));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (st, pos) = (seen.clone(), position.clone());
        let task = tokio::spawn(async move {
            let mut last: Option<u64> = None;
            loop {
                let u = tokio::select! {
                    u = sub.recv() => match u { Some(u) => u, None => break },
                    _ = &mut stop_rx => break,
                };
                let mut s = st.lock().unwrap();
                match u {
                    Update::Subscribed {
                        recovered: true, ..
                    } => s.recovered += 1,
                    Update::Subscribed {
                        recovered: false, ..
                    } => s.snapshots += 1,
                    Update::Snapshot { offset, .. } => last = Some(offset),
                    // The test's own consumer fell behind the client's
                    // buffer: the map stays exact, the stream skipped.
                    Update::Lagged(n) => {
                        s.lagged += n;
                        last = None;
                    }
                    Update::Event(e) => {
                        s.events += 1;
                        match last {
                            Some(l) if e.offset <= l => s.duplicates += 1,
                            Some(l) if e.offset != l + 1 => s.gaps += 1,
                            _ => {}
                        }
                        last = Some(last.map_or(e.offset, |l| l.max(e.offset)));
                    }
                    _ => {}
                }
                if let Some(l) = last {
                    pos.store(l, Ordering::Relaxed);
                }
            }
            sub
        });
        viewers.push((s, seen, position, stop_tx, task));
    }

    // Producers, directly to the hub: ground truth of every outcome.
    let truth: Arc<Mutex<BTreeMap<String, OpStatus>>> = Arc::default();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let truth = truth.clone();
        let url = format!("ws://{addr}/ws");
        producers.push(tokio::spawn(async move {
            let reporter = Reporter::connect(fast(ClientConfig::new(url))).unwrap();
            let mut rng = Rng(seed ^ (p as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for i in 0..OPS_PER_PRODUCER {
                let id = format!("p{p:02}.op{i:02}");
                let op = reporter
                    .start(format!("job {id}"))
                    .id(id.clone())
                    .kind("chaos")
                    .total(10.0)
                    .begin()
                    .unwrap();
                let steps = 3 + rng.below(5);
                for s in 1..=steps {
                    op.current(s as f64).step(format!("step {s}"));
                    tokio::time::sleep(Duration::from_millis(20 + rng.below(40))).await;
                }
                let outcome = match rng.below(10) {
                    0..=6 => {
                        op.complete().unwrap();
                        OpStatus::Completed
                    }
                    7 | 8 => {
                        op.fail("simulated failure").unwrap();
                        OpStatus::Failed
                    }
                    _ => {
                        op.canceled(Some("gave up")).unwrap();
                        OpStatus::Canceled
                    }
                };
                truth.lock().unwrap().insert(id, outcome);
            }
            assert!(
                reporter.flush(Duration::from_secs(60)).await,
                "producer {p} flushed everything"
            );
            reporter.connection_stats()
        }));
    }

    // Chaos: three SIGKILLs at random moments, viewer cuts in between.
    let mut rng = Rng(seed);
    let mut kills = 0;
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(1_000 + rng.below(2_000))).await;
        proxy.cut_all();
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        hub_proc.take().unwrap().kill9().await;
        kills += 1;
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        hub_proc = Some(builder.start().await);
        println!("chaos: kill {} done", round + 1);
    }
    proxy.cut_all();

    let mut resent = 0;
    let mut sent = 0;
    for p in producers {
        let stats = p.await.unwrap();
        resent += stats.resent;
        sent += stats.sent;
    }
    let h = hub_proc.as_ref().unwrap();
    let truth = truth.lock().unwrap().clone();
    assert_eq!(truth.len(), PRODUCERS * OPS_PER_PRODUCER);

    // The hub's state equals the ground truth.
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/{NS}/operations?limit=10000",
        h.http()
    ))
    .await;
    let hub_ops: HashMap<String, String> = list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation_id"].as_str().unwrap().to_owned(),
                o["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        hub_ops.len(),
        truth.len(),
        "every operation present at the hub"
    );
    for (id, outcome) in &truth {
        let want = serde_json::to_value(outcome).unwrap();
        assert_eq!(hub_ops.get(id).map(String::as_str), want.as_str(), "{id}");
    }
    let last_offset = list["offset"].as_u64().unwrap();

    // Every viewer converges on exactly that state.
    let mut totals = Seen::default();
    for (i, (_client, seen, position, stop, task)) in viewers.into_iter().enumerate() {
        eventually(
            &format!("viewer {i} to reach offset {last_offset}"),
            Duration::from_secs(30),
            || {
                let at = position.load(Ordering::Relaxed);
                async move { (at >= last_offset).then_some(()) }
            },
        )
        .await;
        let _ = stop.send(());
        let sub = task.await.unwrap();
        let mine: HashMap<String, String> = sub
            .operations()
            .into_iter()
            .map(|(id, st)| {
                (
                    id,
                    serde_json::to_value(st.state)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            mine, hub_ops,
            "viewer {i} materialised exactly the hub's state"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.duplicates, 0, "viewer {i} saw an event twice");
        assert_eq!(seen.gaps, 0, "viewer {i} saw a gap in offsets");
        totals.events += seen.events;
        totals.recovered += seen.recovered;
        totals.snapshots += seen.snapshots;
        totals.lagged += seen.lagged;
    }
    println!(
        "chaos: {} operations, {} hub events, {kills} kills, {} viewer cuts, producer messages sent {sent} (resent {resent}), viewers: {} events, {} recovered resumes, {} snapshot resumes, {} updates skipped by a lagging consumer, {:.1}s",
        truth.len(),
        last_offset,
        proxy.cuts.load(Ordering::Relaxed),
        totals.events,
        totals.recovered,
        totals.snapshots,
        totals.lagged,
        started_at.elapsed().as_secs_f64()
    );
}
