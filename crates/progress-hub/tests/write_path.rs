//! The WebSocket write path on plain TCP: frames the fan-out writes straight
//! to an idle viewer's socket, the rest of a frame the socket did not take,
//! and the control frames tungstenite answers with, all on one byte stream
//! that must stay well-formed and in order.

mod common;
use common::*;

/// Reads frames until the text messages include offset `last`; returns the
/// offsets seen (in order) and the payloads of the pongs met on the way.
async fn read_through(v: &mut RawWs, last: u64) -> (Vec<u64>, Vec<Vec<u8>>) {
    let (mut offsets, mut pongs) = (Vec::new(), Vec::new());
    while offsets.last() != Some(&last) {
        let (opcode, payload) = v.next_frame(DEADLINE).await.expect("connection open");
        match opcode {
            1 => {
                let text = String::from_utf8(payload).unwrap_or_else(|e| {
                    panic!("a text frame that is not UTF-8: {}", e.utf8_error())
                });
                for line in text.split('\n') {
                    let m: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                        let head: String = line.chars().take(80).collect();
                        panic!("not one whole JSON message per line ({e}): {head:?}")
                    });
                    if let (Some(o), true) = (m["offset"].as_u64(), m["type"] != "operation_list") {
                        offsets.push(o);
                    }
                }
            }
            10 => pongs.push(payload),
            other => panic!("unexpected opcode {other}"),
        }
    }
    (offsets, pongs)
}

#[tokio::test]
async fn a_viewer_that_pauses_gets_every_frame_whole_and_in_order() {
    // Limits far above what the test queues: nothing is conflated or dropped.
    let h = hub()
        .args([
            "--conflate-after-bytes",
            "67108864",
            "--slow-client-bytes",
            "134217728",
        ])
        .start()
        .await;
    // A small receive buffer: the hub's writes to this viewer soon stop
    // fitting, and frames are cut wherever the socket is full.
    let mut v = RawWs::connect_with_buffer(&h.addr, "/ws", Some(4096)).await;
    v.send_frame(1, br#"{"type":"subscribe","id":1,"namespace":"default"}"#)
        .await;
    // Wait for the reply and the snapshot, so that the viewer is idle (and
    // gets the first events by direct writes) when publishing starts.
    let mut seen = 0;
    while seen < 2 {
        let (op, p) = v.next_frame(DEADLINE).await.expect("open");
        if op == 1 {
            seen += String::from_utf8_lossy(&p).split('\n').count();
        }
    }
    let mut p = Ws::connect(&h.ws_url()).await;
    let pad = "y".repeat(2000);
    let mut last = 0;
    for op in 0..40u64 {
        let id = op * 100;
        let ack = publish(&mut p, started(&format!("op{op}"), "default"), id).await;
        last = ack["offset"].as_u64().unwrap();
        for seq in 2..=60u64 {
            let mut m = progress(&format!("op{op}"), "default", seq, seq as f64);
            m["message"] = pad.clone().into();
            last = publish(&mut p, m, id + seq).await["offset"]
                .as_u64()
                .unwrap();
        }
        if op == 20 {
            // While its socket is full the viewer pings: the pong must not
            // land inside a frame.
            v.send_frame(9, b"mid-stream").await;
        }
    }
    let (offsets, mut pongs) = read_through(&mut v, last).await;
    assert_eq!(
        offsets,
        (1..=last).collect::<Vec<_>>(),
        "every event, once, in order"
    );
    // The viewer keeps up again: the next event still arrives, and the
    // pong (the hub reads the ping once its writes are done) with it.
    let ack = publish(&mut p, progress("op0", "default", 61, 99.0), 99_999).await;
    let next = ack["offset"].as_u64().unwrap();
    let (offsets, more) = read_through(&mut v, next).await;
    assert_eq!(offsets, vec![next]);
    pongs.extend(more);
    assert_eq!(pongs, vec![b"mid-stream".to_vec()]);
}

#[tokio::test]
async fn pings_are_answered_and_a_client_close_is_echoed() {
    let h = hub().start().await;
    let mut v = RawWs::connect(&h.addr, "/ws").await;
    v.send_frame(9, b"hello").await;
    loop {
        match v.next_frame(DEADLINE).await.expect("open") {
            (10, p) => {
                assert_eq!(p, b"hello");
                break;
            }
            (9 | 1, _) => {}
            (op, _) => panic!("unexpected opcode {op}"),
        }
    }
    // The client closes with 4000: the hub answers with a close frame.
    v.send_frame(8, &4000u16.to_be_bytes()).await;
    let (_, code) = v.read_until_close(DEADLINE).await;
    assert_eq!(code, Some(4000));
}
