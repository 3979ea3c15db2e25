//! The outbox's write ownership: direct writes to idle plain-TCP viewers,
//! the bytes a socket did not take, and captured control frames, on real
//! loopback sockets.

use super::*;
use crate::sock::{Capture, SharedTcp, Wire};
use hub_core::outqueue::OutQueueConfig;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// How long the tests' writes may wait for the peer.
const STALL: std::time::Duration = std::time::Duration::from_secs(10);

fn outbox() -> Arc<Outbox> {
    let cfg = OutQueueConfig {
        conflate_after_bytes: 64 << 20,
        slow_limit_bytes: 128 << 20,
    };
    Outbox::new(1, cfg, 0, false, Arc::new(crate::metrics::Metrics::new()))
}

/// A connected pair: the hub's side as a [`Wire`], and the peer. A small
/// receive buffer on the peer when `small`.
async fn pair(small: bool) -> (SharedTcp, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if small {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    let (peer, accepted) = tokio::join!(socket.connect(l.local_addr().unwrap()), l.accept());
    (SharedTcp::new(accepted.unwrap().0, STALL), peer.unwrap())
}

/// A moment long after any frame the tests' outboxes sent.
fn quiet() -> u64 {
    crate::clock::stamp() + DIRECT_QUIET_NS
}

fn live(text: &str) -> OutItem {
    OutItem::progress(text.into(), "k".into(), 1).with_wire(crate::frame::single(text))
}

async fn read_n(peer: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    peer.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn an_idle_plain_viewer_is_written_to_directly() {
    let (tcp, mut peer) = pair(false).await;
    let out = outbox();
    out.attach(tcp.wire().clone());
    let item = live("{\"n\":1}");
    assert_eq!(
        out.push_live([&item].into_iter(), true, quiet()),
        Pushed::Direct
    );
    out.write_direct();
    assert_eq!(read_n(&mut peer, 9).await, b"\x81\x07{\"n\":1}");
    assert!(out.next_write().is_none(), "nothing left for the task");
}

#[tokio::test]
async fn without_a_plain_socket_the_task_writes() {
    let out = outbox();
    let item = live("a");
    assert_eq!(
        out.push_live([&item].into_iter(), true, quiet()),
        Pushed::Queued
    );
    assert!(matches!(out.next_write(), Some(Next::Frame(_))));
}

#[tokio::test]
async fn what_is_queued_meanwhile_goes_out_with_the_direct_write() {
    let (tcp, mut peer) = pair(false).await;
    let out = outbox();
    out.attach(tcp.wire().clone());
    let (a, b) = (live("a"), live("b"));
    assert_eq!(
        out.push_live([&a].into_iter(), true, quiet()),
        Pushed::Direct
    );
    assert_eq!(
        out.push_live([&b].into_iter(), true, quiet()),
        Pushed::Queued
    );
    out.write_direct();
    assert_eq!(read_n(&mut peer, 5).await, b"\x81\x03a\nb");
}

#[tokio::test]
async fn while_the_task_writes_nothing_is_written_directly() {
    let (tcp, _peer) = pair(false).await;
    let out = outbox();
    out.attach(tcp.wire().clone());
    let a = live("a");
    out.push(a.clone());
    let Some(Next::Frame(_)) = out.next_write() else {
        panic!("the task takes the frame");
    };
    // The task owns the socket until next_write says there is nothing more.
    assert_eq!(
        out.push_live([&a].into_iter(), true, quiet()),
        Pushed::Queued
    );
    assert!(matches!(out.next_write(), Some(Next::Frame(_))));
    assert!(out.next_write().is_none());
    assert_eq!(
        out.push_live([&a].into_iter(), true, quiet()),
        Pushed::Direct
    );
}

#[tokio::test]
async fn what_a_full_socket_did_not_take_is_written_first() {
    let (tcp, mut peer) = pair(true).await;
    let wire: Arc<Wire> = tcp.wire().clone();
    let out = outbox();
    out.attach(wire.clone());
    let text = "z".repeat(10_000);
    let item = live(&text);
    let frame = crate::frame::single(&text);
    // Direct writes until the socket stops taking whole frames.
    let mut whole = 0;
    let rest = loop {
        assert_eq!(
            out.push_live([&item].into_iter(), true, quiet()),
            Pushed::Direct
        );
        out.write_direct();
        match out.next_write() {
            None => whole += 1,
            Some(Next::Raw(rest)) => break rest,
            Some(Next::Frame(_)) => panic!("the frame was taken from the queue"),
        }
        assert!(whole < 10_000, "the socket never filled");
    };
    assert!(!rest.is_empty() && rest.len() <= frame.len());
    // Now the task owns the socket: later events queue behind the rest.
    assert_eq!(
        out.push_live([&item].into_iter(), true, quiet()),
        Pushed::Queued
    );
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        all
    });
    wire.write_all(&rest).await.unwrap();
    let Some(Next::Frame(b)) = out.next_write() else {
        panic!("then the queued frame");
    };
    let (r, left) = b.try_write_to(&*wire);
    if r.is_err() || !left.is_empty() {
        wire.write_all(&left).await.unwrap();
    }
    assert!(out.next_write().is_none());
    drop((out, wire, tcp));
    let all = reader.await.unwrap();
    // Every frame arrived whole, one after the other.
    assert_eq!(all.len(), frame.len() * (whole + 2));
    for chunk in all.chunks(frame.len()) {
        assert_eq!(chunk, &frame[..]);
    }
}

#[tokio::test]
async fn captured_control_frames_go_out_before_later_frames() {
    let (tcp, _peer) = pair(false).await;
    let out = outbox();
    out.attach(tcp.wire().clone());
    out.captured(b"\x8a\x00");
    let item = live("a");
    assert_eq!(
        out.push_live([&item].into_iter(), true, quiet()),
        Pushed::Queued
    );
    assert!(matches!(out.next_write(), Some(Next::Raw(b)) if b == b"\x8a\x00"));
    assert!(matches!(out.next_write(), Some(Next::Frame(_))));
    assert!(out.next_write().is_none());
}

#[tokio::test]
async fn a_client_that_never_reads_its_pongs_is_closed() {
    let out = outbox();
    let pong = [0x8a, 125]
        .into_iter()
        .chain([0u8; 125])
        .collect::<Vec<_>>();
    for _ in 0..PENDING_LIMIT / pong.len() {
        out.captured(&pong);
    }
    assert!(out.closing().is_none());
    out.captured(&pong);
    let c = out.closing().expect("closing");
    assert_eq!(c.code, CloseCode::TryAgainLater);
    assert!(c.error.contains("SLOW_CLIENT"));
}

#[tokio::test]
async fn a_viewer_that_just_got_a_frame_is_batched_by_its_task() {
    let (tcp, _peer) = pair(false).await;
    let out = outbox();
    out.attach(tcp.wire().clone());
    let a = live("a");
    assert_eq!(
        out.push_live([&a].into_iter(), true, quiet()),
        Pushed::Direct
    );
    out.write_direct();
    // Within DIRECT_QUIET_NS of that frame: the task is woken instead.
    let soon = crate::clock::stamp();
    assert_eq!(out.push_live([&a].into_iter(), true, soon), Pushed::Queued);
}

/// An outbox that conflates from the first byte and is slow past `limit`.
fn tight(limit: usize) -> Arc<Outbox> {
    let cfg = OutQueueConfig {
        conflate_after_bytes: 0,
        slow_limit_bytes: limit,
    };
    Outbox::new(2, cfg, 0, false, Arc::new(crate::metrics::Metrics::new()))
}

#[test]
fn progress_is_conflated_only_for_subscriptions_that_ask() {
    let updates: Vec<OutItem> = (0..50)
        .map(|n| live(&format!("{{\"n\":{n:02}}}")))
        .collect();
    let conflating = tight(100);
    for u in &updates {
        conflating.push_live([u].into_iter(), true, quiet());
    }
    assert!(!conflating.is_closing.load(Ordering::Acquire));
    assert_eq!(
        conflating.queue.lock().queue.drain().len(),
        1,
        "only the latest update is left"
    );

    let strict = tight(100);
    for u in &updates {
        strict.push_live([u].into_iter(), false, quiet());
    }
    assert!(
        strict.is_closing.load(Ordering::Acquire),
        "a viewer that did not ask for conflation is too slow instead"
    );
}

/// Rejections for the hub's own state (a shutdown, a store down) do not
/// count towards the abuse rule; the client's own bad messages do.
#[test]
fn only_the_clients_faults_count_as_abuse() {
    use hub_proto::ErrorCode;
    let out = outbox();
    for _ in 0..3 * ABUSE_REJECTIONS {
        out.reject(ProtoError::new(ErrorCode::ServerShutdown, "shutting down"));
        out.reject(ProtoError::new(ErrorCode::StoreUnavailable, "disk full"));
    }
    assert!(out.closing().is_none(), "the hub's faults are not abuse");
    for _ in 0..=ABUSE_REJECTIONS {
        out.reject(ProtoError::bad("not JSON"));
    }
    assert_eq!(
        out.closing().expect("closed for abuse").code,
        CloseCode::Abuse
    );
}
