//! The lean viewer client against a real WebSocket server (tokio-tungstenite
//! on a loopback socket): handshake, text in both directions, a message in
//! fragments, a binary message skipped, ping answered with pong, close.

use futures_util::{SinkExt as _, StreamExt as _};
use hub_bench::raw::{Incoming, RawWs};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn fragment(opcode: OpCode, text: &str, fin: bool) -> Message {
    let mut frame = Frame::message(text.as_bytes().to_vec(), opcode, fin);
    frame.header_mut().is_final = fin;
    Message::Frame(frame)
}

#[tokio::test]
async fn reads_what_a_real_server_sends_and_answers_pings() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // The client's first message arrives masked and whole.
        let hello = ws.next().await.unwrap().unwrap();
        assert_eq!(hello, Message::Text("hello".into()));
        let big = "x".repeat(70_000);
        ws.send(Message::Text("one".into())).await.unwrap();
        ws.send(Message::Text(big.clone().into())).await.unwrap();
        ws.send(Message::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
        ws.send(fragment(OpCode::Data(Data::Text), "frag", false))
            .await
            .unwrap();
        ws.send(fragment(OpCode::Data(Data::Continue), "men", false))
            .await
            .unwrap();
        ws.send(fragment(OpCode::Data(Data::Continue), "ted", true))
            .await
            .unwrap();
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        ws.send(Message::Text("after ping".into())).await.unwrap();
        // The pong comes back before anything else the client sends.
        let pong = ws.next().await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
        let bye = ws.next().await.unwrap().unwrap();
        assert_eq!(bye, Message::Text("bye".into()));
        ws.close(None).await.unwrap();
        big
    });

    let mut ws = RawWs::connect(&format!("ws://{addr}/ws?x=1"), 4096)
        .await
        .unwrap();
    ws.send_text("hello").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        match ws.next().await.unwrap() {
            Incoming::Text(t, _) => got.push(t.to_owned()),
            Incoming::Closed => panic!("closed early after {got:?}"),
        }
    }
    ws.send_text("bye").await.unwrap();
    assert_eq!(ws.next().await.unwrap(), Incoming::Closed);
    let big = server.await.unwrap();
    assert_eq!(
        got,
        [
            "one".to_owned(),
            big,
            "fragmented".into(),
            "after ping".into()
        ]
    );
}

#[tokio::test]
async fn a_refused_upgrade_is_an_error_that_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tcp.read(&mut buf).await;
        tcp.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
    });
    let err = RawWs::connect(&format!("ws://{addr}/ws"), 4096)
        .await
        .err()
        .expect("a 503 is not an upgrade");
    assert!(format!("{err:#}").contains("503"), "{err:#}");
}

#[tokio::test]
async fn arrival_stamps_fall_between_the_send_and_the_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // Each "go" is answered with the send time, then the message.
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            assert_eq!(t.as_str(), "go");
            let before = hub_bench::clock::now_ns();
            ws.send(Message::Text(before.to_string().into()))
                .await
                .unwrap();
        }
    });
    let mut ws = RawWs::connect(&format!("ws://{addr}/"), 4096)
        .await
        .unwrap();
    ws.stamp_arrivals().unwrap();
    // The kernel turns receive stamps on a moment after the first socket
    // asks (deferred work): bytes that arrive before carry none.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        ws.send_text("go").await.unwrap();
        // Read well after the arrival: the stamp must be the arrival.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let Incoming::Text(text, arrived) = ws.next().await.unwrap() else {
            panic!("a text message");
        };
        let read = hub_bench::clock::now_ns();
        let before: u64 = text.parse().unwrap();
        if let Some(arrived) = arrived {
            // The two clocks are tied once; allow for the rounding of that tie.
            assert!(
                arrived + 1_000_000 >= before,
                "arrived {arrived} before the send {before}"
            );
            assert!(
                arrived + 15_000_000 <= read,
                "the stamp is the arrival, not the read"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no receive stamp within 10 s"
        );
    }
    ws.close().await.unwrap();
    server.await.unwrap();
}
