//! Restart on the same data dir after SIGKILL: same epoch, same offsets,
//! every acked event present, viewers resume with `recovered: true`.

mod common;
use common::*;
use nix::sys::signal::Signal;

#[tokio::test]
async fn kill9_keeps_every_acked_event() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    let mut last = 0;
    for seq in 2..=50u64 {
        let ack = publish(&mut p, progress("a", "default", seq, seq as f64), seq).await;
        last = ack["offset"].as_u64().unwrap();
    }
    let (_, sub) = subscriber(&h, "default").await;
    let epoch = sub["epoch"].clone();
    h.kill9().await;

    let h = hub().data_dir(dir.path()).start().await;
    let mut v = Ws::connect(&h.ws_url()).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "default", "resume": {"epoch": epoch, "offset": 10}}), 1).await;
    assert_eq!(s["epoch"], epoch, "same epoch after restart");
    assert_eq!(s["offset"], last);
    assert_eq!(s["recovered"], true);
    let mut offsets = Vec::new();
    while offsets.len() < (last - 10) as usize {
        let m = v.next_of("progress_update", DEADLINE).await;
        offsets.push(m["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, (11..=last).collect::<Vec<_>>());
    // Idempotency survives the restart: resending seq 50 is a duplicate.
    let mut p = Ws::connect(&h.ws_url()).await;
    let dup = publish(&mut p, progress("a", "default", 50, 50.0), 7).await;
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["offset"], last);
    let next = publish(&mut p, progress("a", "default", 51, 51.0), 8).await;
    assert_eq!(next["offset"], last + 1);
}

/// While the hub is down its producers cannot speak: after a restart each
/// live operation's producer gets the whole stall and abandon windows to
/// come back, instead of its operation being stalled or failed at the
/// first tick for a silence that was the hub's own.
#[tokio::test]
async fn downtime_does_not_count_as_a_producers_silence() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("long", "default"), 1).await;
    publish(&mut p, progress("long", "default", 2, 10.0), 2).await;
    h.kill9().await;
    // The downtime: longer than both windows the restarted hub is given.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let h = hub()
        .data_dir(dir.path())
        .args(["--stall-timeout", "1s", "--abandon-timeout", "1200ms"])
        .args(["--heartbeat-interval", "300ms"])
        .start()
        .await;
    let (mut v, _) = subscriber(&h, "default").await;
    let list = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(list["operations"][0]["state"], "running", "{list}");
    // A heartbeat later the engine has ticked (every 250 ms here) and
    // still nothing happened to the operation.
    loop {
        let m = v.next(Duration::from_secs(5)).await.expect("a heartbeat");
        assert!(
            m["type"] != "operation_failed" && m["type"] != "operation_stalled",
            "{m}"
        );
        if m["type"] == "heartbeat" {
            break;
        }
    }
    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut p, progress("long", "default", 3, 20.0), 3).await;
    assert_eq!(ack["type"], "ack", "the producer is back in time: {ack}");
}

#[tokio::test]
async fn memory_hub_gets_a_new_epoch_every_start() {
    let h1 = hub().start().await;
    let (_, s1) = subscriber(&h1, "default").await;
    let h2 = hub().start().await;
    let (_, s2) = subscriber(&h2, "default").await;
    assert_ne!(s1["epoch"], s2["epoch"]);
}

/// An operation dropped after `--finished-retention` stays finished across
/// a SIGKILL and restart: its tombstone is stored in place of its record,
/// so a resent start is re-acked instead of starting it over.
#[tokio::test]
async fn a_dropped_operation_stays_finished_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let builder = hub()
        .data_dir(dir.path())
        .args(["--finished-retention", "1s"]);
    let h = builder.start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    complete_and_wait_until_dropped(&h, &mut p, "z").await;
    // Commits are in order: once this later event is acked, the batch that
    // replaced z's record by its tombstone is durable too.
    publish(&mut p, started("later", "default"), 3).await;
    h.kill9().await;

    let h = builder.start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    assert_reacked(&publish(&mut p, started("z", "default"), 4).await, 1);
    let e = publish(&mut p, progress("z", "default", 3, 5.0), 5).await;
    assert_eq!(e["code"], "OPERATION_FINISHED", "{e}");
    let url = format!("{}/api/v1/namespaces/default/operations/z", h.http());
    assert_eq!(get_json(&url).await.0, 404, "no new operation");
}

/// A damaged store file is refused at start like an unusable data_dir:
/// exit 2, naming the setting and the file, saying what to do, with no
/// panic; the file is left as it was. Cut short, redb panics on it; written
/// over, redb reports it corrupt.
#[tokio::test]
async fn a_damaged_store_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("a", "default"), 1).await;
    for seq in 2..=200u64 {
        publish(&mut p, progress("a", "default", seq, seq as f64 / 2.0), seq).await;
    }
    h.kill9().await;
    let file = dir.path().join("events.redb");
    let good = std::fs::read(&file).unwrap();
    let cut = good[..good.len() / 2].to_vec();
    let mut overwritten = good.clone();
    let mut x: u32 = 12345;
    for b in &mut overwritten[4096..] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let mut zeroed = good.clone();
    zeroed[..4096].fill(0);
    for (what, damaged) in [
        ("cut short", cut),
        ("written over", overwritten),
        ("header zeroed", zeroed),
    ] {
        std::fs::write(&file, &damaged).unwrap();
        let (code, err) = hub()
            .data_dir(dir.path())
            .try_start()
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: the hub started"));
        assert_eq!(code, Some(2), "{what}: {err}");
        for part in ["`data_dir`", "events.redb is damaged", "backup"] {
            assert!(err.contains(part), "{what}: {part:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            std::fs::read(&file).unwrap() == damaged,
            "{what}: file untouched"
        );
    }
    // Not a file at all: named too.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let (code, err) = hub().data_dir(dir.path()).try_start().await.err().unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot open the store file") && err.contains("events.redb"),
        "{err}"
    );
}

/// A store whose file is sound but whose records are not (an operation
/// record that does not decode, a gap in the events) is refused at start
/// too: serving it would reopen finished ids or replay with holes.
#[tokio::test]
async fn damaged_records_are_refused_at_start() {
    use hub_store::{Batch, EventRecord, EventStore, OpRecord, RedbStore, StoreConfig};
    let cfg = StoreConfig {
        history_size: 100_000,
    };
    for damage in ["record", "gap"] {
        let dir = tempfile::tempdir().unwrap();
        let h = hub().data_dir(dir.path()).start().await;
        let mut p = Ws::connect(&h.ws_url()).await;
        publish(&mut p, started("a", "default"), 1).await;
        let last = publish(&mut p, progress("a", "default", 2, 5.0), 2).await["offset"]
            .as_u64()
            .unwrap();
        let (_, page) = get_json(&format!(
            "{}/api/v1/namespaces/default/events?after=0",
            h.http()
        ))
        .await;
        h.kill9().await;
        {
            let store = RedbStore::open(dir.path(), cfg.clone()).unwrap();
            let batch = if damage == "record" {
                Batch {
                    upsert_ops: vec![OpRecord {
                        namespace: "default".into(),
                        operation_id: "a".into(),
                        data: std::sync::Arc::from(&b"{not json"[..]),
                    }],
                    ..Batch::default()
                }
            } else {
                let mut event = page["events"][1].clone();
                event["offset"] = json!(last + 2);
                Batch {
                    events: vec![EventRecord {
                        namespace: "default".into(),
                        offset: last + 2,
                        data: std::sync::Arc::from(event.to_string().as_bytes()),
                    }],
                    ..Batch::default()
                }
            };
            store.commit(&batch).unwrap();
        }
        let (code, err) = hub()
            .data_dir(dir.path())
            .try_start()
            .await
            .err()
            .unwrap_or_else(|| panic!("{damage}: the hub started"));
        assert_eq!(code, Some(2), "{damage}: {err}");
        for part in ["`data_dir`", "damaged", "\"default\""] {
            assert!(err.contains(part), "{damage}: {part:?} in {err}");
        }
    }
}

/// A full disk (here: a file-size limit, so a write fails with `EFBIG`)
/// makes the commit fail. The producer whose event it was gets
/// `STORE_UNAVAILABLE` naming the OS error (not advice to throw the store
/// away), later events are refused without being applied, `/ready` says
/// why, reads go on, and after a restart with room on the disk every
/// acked event is there under the same epoch and the refused one can be
/// sent again.
#[tokio::test]
async fn a_full_disk_refuses_events_and_loses_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    // 4096 blocks: 2 MiB under dash, 4 MiB under bash; the store file
    // starts at about 1.5 MiB.
    let mut h = hub()
        .data_dir(dir.path())
        .file_size_limit(4096)
        .start()
        .await;
    let (mut v, sub) = subscriber(&h, "default").await;
    let epoch = sub["epoch"].clone();
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("big", "default"), 1).await;
    let padding = "x".repeat(3_000);
    let fat = |seq: u64| json!({"type": "progress_update", "operation_id": "big", "seq": seq, "progress": seq % 100, "message": padding});
    let (mut acked, mut refusal) = (1u64, None);
    for seq in 2..=5_000u64 {
        let reply = publish(&mut p, fat(seq), seq).await;
        if reply["type"] == "ack" {
            assert_eq!(reply["offset"], seq, "{reply}");
            acked = seq;
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("the store filled up within 15 MB");
    assert_eq!(refusal["code"], "STORE_UNAVAILABLE", "{refusal}");
    assert_eq!(refusal["component"], "store");
    assert_eq!(refusal["severity"], "critical");
    assert_eq!(refusal["data"]["operation_id"], "big");
    let details = refusal["details"].as_str().unwrap_or_default();
    assert!(details.contains("File too large"), "{details}");
    assert!(
        !details.contains("damaged") && !details.contains("corrupt"),
        "{details}"
    );

    // Later events are refused, over WebSocket and HTTP, and change nothing.
    let again = publish(&mut p, fat(acked + 1), 9_001).await;
    assert_eq!(again["code"], "STORE_UNAVAILABLE", "{again}");
    let url = format!(
        "{}/api/v1/namespaces/default/operations/other/events",
        h.http()
    );
    let (status, body) = post_json(&url, &json!({"type": "operation_started", "name": "n"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("STORE_UNAVAILABLE"))
    );
    let (status, ready) = get_json(&format!("{}/ready", h.http())).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["store"], "failing", "{ready}");
    // Reads go on, and show only what was made durable.
    let events = format!(
        "{}/api/v1/namespaces/default/events?after=0&limit=1",
        h.http()
    );
    let (status, page) = get_json(&events).await;
    assert_eq!(
        (status, page["last_offset"].clone()),
        (200, json!(acked)),
        "{page}"
    );
    let op = format!("{}/api/v1/namespaces/default/operations/big", h.http());
    let (_, op) = get_json(&op).await;
    let state = &op["operation"];
    assert_eq!(
        (state["last_offset"].clone(), state["progress"].clone()),
        (json!(acked), json!((acked % 100) as f64)),
        "the refused update is not shown"
    );
    let (mut late, _) = subscriber(&h, "default").await;
    let list = late.next_of("operation_list", DEADLINE).await;
    assert_eq!(list["offset"], acked);
    assert_eq!(
        list["operations"][0]["progress"],
        json!((acked % 100) as f64)
    );
    // The viewer got every acked event, in order.
    for offset in 1..=acked {
        let m = v.next(DEADLINE).await.expect("an event");
        let m = if m["type"] == "operation_list" {
            v.next(DEADLINE).await.expect("an event")
        } else {
            m
        };
        assert_eq!(m["offset"], offset, "{m}");
    }
    let panics: Vec<String> = h
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "{panics:?}");
    h.signal(Signal::SIGTERM);
    let status = h.wait_exit(DEADLINE).await.expect("the hub exits");
    assert_eq!(status.code(), Some(0));

    let h = hub().data_dir(dir.path()).start().await;
    let (status, page) = get_json(&format!(
        "{}/api/v1/namespaces/default/events?after=0&limit=1000",
        h.http()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["epoch"], epoch, "same epoch after the restart");
    let offsets: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (1..=acked).collect::<Vec<_>>());
    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut p, fat(acked + 1), 1).await;
    assert_eq!(
        (ack["type"].clone(), ack["offset"].clone()),
        (json!("ack"), json!(acked + 1)),
        "{ack}"
    );
}

/// An operation's state read back from the store after a restart is the
/// state its last event carried, to the last bit of every float (the
/// default JSON float parser is off by one unit in the last place for
/// values like 1205 / 10000 * 100 = 12.049999999999999).
#[tokio::test]
async fn states_read_back_after_a_restart_keep_every_float_bit() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let start = json!({"type": "operation_started", "operation_id": "f", "seq": 1, "name": "f", "total": 10000});
    publish(&mut p, start, 1).await;
    let update = json!({"type": "progress_update", "operation_id": "f", "seq": 2, "current": 1205});
    let ack = publish(&mut p, update, 2).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let text = |url: String| async move { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let before = text(format!("{}/api/v1/namespaces/default/operations", h.http())).await;
    assert!(
        before.contains(r#""progress":12.049999999999999"#),
        "{before}"
    );
    h.kill9().await;

    let h = hub().data_dir(dir.path()).start().await;
    let after = text(format!("{}/api/v1/namespaces/default/operations", h.http())).await;
    assert!(
        after.contains(r#""progress":12.049999999999999"#),
        "{after}"
    );
    // This test's own JSON parser reads floats exactly (the workspace
    // enables serde_json's `float_roundtrip`), so 12.05 would not match.
    let (mut v, _) = subscriber(&h, "default").await;
    let snapshot = v.next_of("operation_list", DEADLINE).await;
    let progress = &snapshot["operations"][0]["progress"];
    assert_eq!(progress.as_f64(), Some(12.049999999999999), "{snapshot}");
}

/// The deepest `details` and `metadata` the hub accepts come back after a
/// restart, and reach viewers and HTTP readers in events a 128-level JSON
/// parser reads (the stored record and the events wrap them in more
/// objects); one level more is refused with the request's id and changes
/// nothing. (Until the limit was 64 levels, a message nested 127 deep was
/// acked and its record then refused the whole data dir at start.)
#[tokio::test]
async fn the_deepest_accepted_details_survive_a_restart() {
    // `levels` counts the message's own object as 1; `details` is level 2.
    let nested = |levels: usize| -> Value {
        let mut v = json!(1);
        for _ in 2..=levels {
            v = json!({ "a": v });
        }
        v
    };
    let dir = tempfile::tempdir().unwrap();
    let mut h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let start = json!({"type": "operation_started", "operation_id": "deep", "seq": 1,
        "name": "deep", "metadata": nested(64)});
    assert_eq!(publish(&mut p, start, 1).await["type"], "ack");
    let too_deep = json!({"type": "progress_update", "operation_id": "deep", "seq": 2,
        "progress": 5, "details": nested(65)});
    let refused = publish(&mut p, too_deep, 2).await;
    assert_eq!(refused["code"], "BAD_MESSAGE", "{refused}");
    assert_eq!(refused["id"], 2, "{refused}");
    assert_eq!(refused["data"]["operation_id"], "deep", "{refused}");
    let update = json!({"type": "progress_update", "operation_id": "deep", "seq": 2,
        "progress": 5, "details": nested(64)});
    let ack = publish(&mut p, update, 3).await;
    assert_eq!(
        (ack["type"].as_str(), ack["offset"].as_u64()),
        (Some("ack"), Some(2)),
        "{ack}"
    );
    h.signal(Signal::SIGTERM);
    let status = h.wait_exit(DEADLINE).await.expect("exits");
    assert!(status.success(), "{status:?}");

    let h = hub().data_dir(dir.path()).start().await;
    let url = format!("{}/api/v1/namespaces/default/operations/deep", h.http());
    // reqwest's parser is serde_json's, with its 128-level limit.
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(body["operation"]["metadata"], nested(64), "metadata kept");
    assert_eq!(body["operation"]["details"], nested(64), "details kept");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    let (mut v, _) = subscriber(&h, "default").await;
    let snapshot = v.next_of("operation_list", DEADLINE).await;
    assert_eq!(snapshot["operations"][0]["details"], nested(64));
}

/// The metric `name` (a single sample) from `/metrics`.
async fn metric(h: &Hub, name: &str) -> f64 {
    let text = metrics_text(h).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// `(first_offset, last_offset, offsets listed)` of a namespace's events.
async fn retained(h: &Hub, ns: &str) -> (u64, u64, Vec<u64>) {
    let url = format!(
        "{}/api/v1/namespaces/{ns}/events?after=0&limit=1000",
        h.http()
    );
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{body}");
    let offsets = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    let at = |k: &str| body[k].as_u64().unwrap();
    (at("first_offset"), at("last_offset"), offsets)
}

/// `--max-history-bytes` bounds the retained events of all namespaces
/// together: the namespace that wrote the most gives up its oldest events,
/// a quiet one keeps all of its own; a resume from before the cut gets a
/// snapshot, one after it an exact replay; and the store follows the cut,
/// so a SIGKILL and restart do not bring the old events back.
#[tokio::test]
async fn the_history_budget_cuts_the_busiest_namespace_and_a_restart_keeps_the_cut() {
    const BUDGET: u64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let h = hub()
        .data_dir(dir.path())
        .args(["--max-history-bytes", &BUDGET.to_string()])
        .start()
        .await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("q", "quiet"), 1).await;
    for seq in 2..=6 {
        publish(&mut p, progress("q", "quiet", seq, seq as f64), seq).await;
    }
    publish(&mut p, started("b", "busy"), 10).await;
    for seq in 2..=200u64 {
        publish(
            &mut p,
            progress("b", "busy", seq, seq as f64 / 2.0),
            10 + seq,
        )
        .await;
    }
    // Each message was its own commit; the cut made after the last one
    // goes to the store with the next batch: this one.
    publish(&mut p, progress("q", "quiet", 7, 7.0), 300).await;

    let (first, last, offsets) = retained(&h, "busy").await;
    assert_eq!(last, 200);
    assert!(
        first > 100,
        "the busy namespace gave up its oldest events: {first}"
    );
    assert_eq!(offsets, (first..=200).collect::<Vec<_>>(), "no hole");
    assert_eq!(retained(&h, "quiet").await.2, (1..=7).collect::<Vec<_>>());
    let held = metric(&h, "progress_hub_history_bytes").await;
    assert!(held > 0.0 && held <= BUDGET as f64, "{held}");
    let cut = metric(&h, "progress_hub_history_cut_events_total").await;
    assert!(cut >= (first - 1) as f64, "{cut} events cut, first {first}");

    let (_, sub) = subscriber(&h, "busy").await;
    let epoch = sub["epoch"].clone();
    let mut v = Ws::connect(&h.ws_url()).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "busy", "resume": {"epoch": epoch, "offset": first - 2}}), 1).await;
    assert_eq!(s["recovered"], false, "{s}");
    v.next_of("operation_list", DEADLINE).await;
    let s = v.request(json!({"type": "subscribe", "namespace": "busy", "resume": {"epoch": epoch, "offset": 195}}), 2).await;
    assert_eq!(s["recovered"], true, "{s}");
    for o in 196..=200 {
        assert_eq!(v.next_of("progress_update", DEADLINE).await["offset"], o);
    }
    h.kill9().await;

    // Back with no budget (the default): what was cut stays cut.
    let h = hub().data_dir(dir.path()).start().await;
    let (first_again, last_again, offsets) = retained(&h, "busy").await;
    assert_eq!((first_again, last_again), (first, 200));
    assert_eq!(offsets, (first..=200).collect::<Vec<_>>());
    assert_eq!(retained(&h, "quiet").await.2, (1..=7).collect::<Vec<_>>());
}

/// A budget smaller than one event per namespace: each namespace keeps its
/// newest event (offsets, replays at the latest offset and idempotency go
/// on), and the hub keeps accepting events.
#[tokio::test]
async fn a_budget_below_one_event_per_namespace_keeps_each_newest_event() {
    let h = hub().args(["--max-history-bytes", "2000"]).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    for i in 0..8u64 {
        let ns = format!("n{i}");
        publish(&mut p, started("a", &ns), 100 + i).await;
        let ack = publish(&mut p, progress("a", &ns, 2, 50.0), 200 + i).await;
        assert_eq!(ack["offset"], 2, "{ack}");
    }
    for i in 0..8u64 {
        let (first, last, offsets) = retained(&h, &format!("n{i}")).await;
        assert_eq!((first, last, offsets), (2, 2, vec![2]), "n{i}");
    }
    let dup = publish(&mut p, progress("a", "n3", 2, 50.0), 300).await;
    assert_eq!(
        (dup["duplicate"].clone(), dup["offset"].clone()),
        (json!(true), json!(2))
    );
    let next = publish(&mut p, progress("a", "n3", 3, 60.0), 301).await;
    assert_eq!(next["offset"], 3, "{next}");
}
