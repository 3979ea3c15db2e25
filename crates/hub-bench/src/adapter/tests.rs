//! Unit tests of the adapters: URLs, handshakes, and frame scanning for
//! both protocols (no network).

use super::*;

#[test]
fn urls_are_loopback_only() {
    assert_eq!(
        Proto::Hub.ws_url("ws://127.0.0.1:8765/ws").unwrap(),
        "ws://127.0.0.1:8765/ws"
    );
    assert_eq!(
        Proto::Hub.ws_url("http://127.0.0.1:8765").unwrap(),
        "ws://127.0.0.1:8765/ws"
    );
    assert_eq!(
        Proto::SocketIo.ws_url("http://localhost:3000").unwrap(),
        "ws://localhost:3000/socket.io/?EIO=4&transport=websocket"
    );
    assert!(Proto::Hub.ws_url("ws://10.0.0.1:8765/ws").is_err());
    assert!(Proto::Hub.ws_url("wss://127.0.0.1:8765/ws").is_err());
    assert!(Proto::Hub.ws_url("127.0.0.1:8765").is_err());
}

#[test]
fn hub_handshakes() {
    let steps = Proto::Hub.viewer_handshake("bench-1");
    assert_eq!(
        steps[0],
        Step::Send(r#"{"type":"subscribe","id":1,"namespace":"bench-1","conflate":true}"#.into())
    );
    let subscribed = r#"{"type":"subscribed","id":1,"namespace":"bench-1","epoch":"e","offset":0,"recovered":false}"#;
    let snapshot =
        r#"{"type":"operation_list","namespace":"bench-1","epoch":"e","offset":0,"operations":[]}"#;
    let frame = format!("{subscribed}\n{snapshot}");
    assert_eq!(
        Proto::Hub.check(Expect::HubType("subscribed"), &frame),
        Matched::Yes
    );
    assert_eq!(
        Proto::Hub.check(Expect::HubType("subscribed"), snapshot),
        Matched::No
    );
    let ack = r#"{"type":"ack","namespace":"b","operation_id":"p0","seq":1,"offset":1}"#;
    assert_eq!(Proto::Hub.check(Expect::HubAck(1), ack), Matched::Yes);
    assert_eq!(Proto::Hub.check(Expect::HubAck(2), ack), Matched::No);
    let err = r#"{"type":"error","code":"FORBIDDEN"}"#;
    assert!(matches!(
        Proto::Hub.check(Expect::HubAck(1), err),
        Matched::Refused(_)
    ));
}

#[test]
fn socketio_handshakes() {
    let steps = Proto::SocketIo.viewer_handshake("room");
    assert_eq!(steps[1], Step::Send("40".into()));
    assert_eq!(steps[3], Step::Send(r#"421["join","room"]"#.into()));
    let p = Proto::SocketIo;
    assert_eq!(
        p.check(Expect::EioOpen, r#"0{"sid":"a","pingInterval":25000}"#),
        Matched::Yes
    );
    assert_eq!(
        p.check(Expect::SioConnect, r#"40{"sid":"b"}"#),
        Matched::Yes
    );
    assert_eq!(p.check(Expect::SioConnect, "2"), Matched::No);
    assert_eq!(p.check(Expect::SioAck(1), "431[]"), Matched::Yes);
    assert_eq!(p.check(Expect::SioAck(1), "4312[]"), Matched::No);
    assert!(matches!(
        p.check(Expect::SioConnect, r#"44{"message":"no"}"#),
        Matched::Refused(_)
    ));
}

#[test]
fn publish_messages_carry_seq_and_stamp() {
    let mut buf = String::new();
    Proto::Hub.publish(&mut buf, "ns", "p0", 5, 77);
    assert_eq!(
        buf,
        r#"{"type":"progress_update","namespace":"ns","operation_id":"p0","seq":5,"progress":5,"message":"t=77"}"#
    );
    assert_eq!(scan::stamp(buf.as_bytes()), Some(77));
    Proto::SocketIo.publish(&mut buf, "ns", "p0", 5, 77);
    assert_eq!(
        buf,
        r#"425["progress",{"room":"ns","operation_id":"p0","seq":5,"progress":5,"message":"t=77"}]"#
    );
}

#[test]
fn producers_read_cumulative_acks() {
    let frame = concat!(
        r#"{"type":"ack","namespace":"b","operation_id":"p0","seq":7,"offset":70}"#,
        "\n",
        r#"{"type":"ack","namespace":"b","operation_id":"p0","seq":9,"offset":72}"#,
        "\n",
        r#"{"type":"heartbeat","timestamp":1,"clients_connected":3}"#
    );
    let s = Proto::Hub.scan_producer(frame);
    assert_eq!((s.acked, s.errors, s.ping), (Some(9), 0, false));
    let s = Proto::Hub.scan_producer(r#"{"type":"error","code":"SEQ_GAP"}"#);
    assert_eq!((s.acked, s.errors), (None, 1));
    let s = Proto::SocketIo.scan_producer("4342[]");
    assert_eq!(s.acked, Some(42));
    assert!(Proto::SocketIo.scan_producer("2").ping);
}

#[test]
fn viewers_count_messages_not_frames() {
    let ev = |t: u64| {
        format!(
            r#"{{"type":"progress_update","namespace":"b","offset":1,"seq":2,"progress":2,"message":"t={t}","state":{{"message":"t={t}"}}}}"#
        )
    };
    let status = r#"{"type":"system_status","data":{},"is_stale":false}"#;
    let frame = format!("{}\n{}\n{status}\n{}", ev(10), ev(20), ev(30));
    let mut stamps = Vec::new();
    let s = Proto::Hub.scan_viewer(&frame, true, |t| stamps.push(t));
    assert_eq!((s.messages, s.errors), (3, 0));
    assert_eq!(stamps, [10, 20, 30]);
    let s = Proto::Hub.scan_viewer(r#"{"type":"error","code":"SLOW_CLIENT"}"#, false, |_| {});
    assert_eq!((s.messages, s.errors), (0, 1));

    let sio = r#"42["progress",{"room":"b","seq":2,"progress":2,"message":"t=55"}]"#;
    let mut stamps = Vec::new();
    let s = Proto::SocketIo.scan_viewer(sio, true, |t| stamps.push(t));
    assert_eq!((s.messages, stamps.as_slice()), (1, &[55][..]));
    let s = Proto::SocketIo.scan_viewer("2", true, |_| {});
    assert_eq!((s.messages, s.ping), (0, true));
}
