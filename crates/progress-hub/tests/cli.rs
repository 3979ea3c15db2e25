//! The command-line contract: config precedence, refusals with exit code 2,
//! the `listening on` line, and graceful shutdown on SIGTERM.

mod common;
use common::*;
use nix::sys::signal::Signal;

#[tokio::test]
async fn bad_values_and_unknown_keys_exit_2_naming_the_key() {
    let err = exits_2(hub().args(["--heartbeat-interval", "often"])).await;
    assert!(
        err.contains("heartbeat_interval") && err.contains("flag"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n").unwrap();
    let err = exits_2(hub().args(["--config", file.to_str().unwrap()])).await;
    assert!(
        err.contains("bogus_key") && err.contains("hub.toml"),
        "{err}"
    );
    // A config file that cannot be read says why; only a missing one
    // "does not exist" (here a path under a regular file, as good as a
    // directory the hub's user may not enter).
    let missing = dir.path().join("none.toml");
    let err = exits_2(hub().args(["--config", missing.to_str().unwrap()])).await;
    assert!(err.contains("does not exist"), "{err}");
    let err = exits_2(hub().args(["--config", dir.path().to_str().unwrap()])).await;
    assert!(err.contains("is a directory"), "{err}");
    let unreadable = file.join("hub.toml");
    let err = exits_2(hub().args(["--config", unreadable.to_str().unwrap()])).await;
    assert!(err.contains("cannot be read: Not a directory"), "{err}");
    let err = exits_2(hub().listen("0.0.0.0:0")).await;
    assert!(
        err.contains("insecure-no-auth") && err.contains("`listen`") && err.contains("flag"),
        "{err}"
    );
    let err = exits_2(hub().listen("").env("PROGRESS_HUB_LISTEN", "0.0.0.0:0")).await;
    assert!(
        err.contains("`listen`") && err.contains("PROGRESS_HUB_LISTEN"),
        "{err}"
    );
    // A duration needs a unit, from the environment as from a flag...
    let err = exits_2(hub().env("PROGRESS_HUB_STALL_TIMEOUT", "5")).await;
    assert!(
        err.contains("PROGRESS_HUB_STALL_TIMEOUT") && err.contains("has no unit"),
        "{err}"
    );
    // ... except 0, which is 0 however it is written.
    let _h = hub()
        .env("PROGRESS_HUB_ABANDON_TIMEOUT", "0")
        .env("PROGRESS_HUB_SHUTDOWN_GRACE", "0")
        .start()
        .await;
    // An origin with a path can never match a browser's Origin header.
    let err = exits_2(hub().env(
        "PROGRESS_HUB_ALLOWED_ORIGINS",
        "https://app.example/dashboard",
    ))
    .await;
    assert!(
        err.contains("allowed_origins")
            && err.contains("PROGRESS_HUB_ALLOWED_ORIGINS")
            && err.contains("not an origin"),
        "{err}"
    );
}

/// Starts `hub` expecting a refusal with exit code 2; returns its stderr.
async fn exits_2(hub: HubBuilder) -> String {
    let (code, err) = hub.try_start().await.err().expect("refused");
    assert_eq!(code, Some(2), "{err}");
    err
}

/// Runs `serve --memory ARGS` with `envs` added, expecting a refusal;
/// returns its stderr after checking the exit code is 2 and that it names
/// `` `key` `` and `source`.
async fn refused(args: &[&str], envs: &[(&str, &str)], key: &str, source: &str) -> String {
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
            .args(["serve", "--memory"])
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{args:?} {envs:?} was not refused"))
    .expect("run progress-hub");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {err}");
    assert!(
        err.contains(&format!("`{key}`")) && err.contains(source),
        "{args:?} {envs:?}: expected `{key}` and {source:?} in: {err}"
    );
    err
}

#[tokio::test]
async fn values_that_make_no_sense_exit_2_naming_key_and_source() {
    for (flag, value) in [
        ("--listen", "notanaddr"),
        ("--listen", "127.0.0.1:99999"),
        ("--heartbeat-interval", "0s"),
        ("--status-interval", "0s"),
        ("--history-size", "0"),
        ("--max-message-size", "0"),
        ("--jwt-secret", ""),
    ] {
        let key = flag.trim_start_matches("--").replace('-', "_");
        refused(&[flag, value], &[], &key, &format!("flag {flag}")).await;
    }
    // `--flag=value` is the same flag.
    refused(
        &["--max-message-size=0"],
        &[],
        "max_message_size",
        "flag --max-message-size",
    )
    .await;
    // A pair rule names the key that was given.
    let err = refused(&["--tls-cert", "c.pem"], &[], "tls_cert", "flag --tls-cert").await;
    assert!(err.contains("tls_key"), "{err}");
    // From a variable.
    refused(
        &[],
        &[("PROGRESS_HUB_LISTEN", "notanaddr")],
        "listen",
        "environment variable PROGRESS_HUB_LISTEN",
    )
    .await;
    refused(
        &["--listen", "127.0.0.1:0"],
        &[("PROGRESS_HUB_HEARTBEAT_INTERVAL", "0s")],
        "heartbeat_interval",
        "environment variable PROGRESS_HUB_HEARTBEAT_INTERVAL",
    )
    .await;
    // A variable reads `-5` as a number: the message still says what is
    // wrong with it.
    for (var, key, says) in [
        (
            "PROGRESS_HUB_HISTORY_SIZE",
            "history_size",
            "expected a whole number, found `-5`",
        ),
        (
            "PROGRESS_HUB_IDLE_TIMEOUT",
            "idle_timeout",
            "`-5` is not a duration",
        ),
    ] {
        let err = refused(
            &[],
            &[(var, "-5")],
            key,
            &format!("environment variable {var}"),
        )
        .await;
        assert!(err.contains(says), "{err}");
    }
    // From the file.
    refused_in_file("listen = \"notanaddr\"\n", "listen").await;
    refused_in_file("heartbeat_interval = \"0s\"\n", "heartbeat_interval").await;
}

/// A hub started with `toml` as its config file (and `--listen
/// 127.0.0.1:0`, which a file's own bad `listen` does not hide) exits 2
/// blaming `key` in that file.
async fn refused_in_file(toml: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, toml).unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ];
    refused(&args, &[], key, &format!("config file {}", file.display())).await
}

/// A text setting written in the TOML file as a number or a boolean is
/// refused (exit 2, naming the key and the file), not read as its text:
/// `jwt_secret = 5` used to start a hub whose secret was "5". A variable
/// is text by nature: `PROGRESS_HUB_JWT_SECRET=12345` is that secret.
#[tokio::test]
async fn a_text_setting_that_is_no_string_in_the_file_exits_2() {
    for (key, value) in [
        ("jwt_secret", "5"),
        ("jwt_secret", "true"),
        ("jwt_secret", "1.5"),
        ("listen", "5"),
        ("data_dir", "5"),
        ("jwt_public_key", "5"),
        ("jwks_file", "true"),
        ("tls_cert", "5"),
        ("tls_key", "5"),
        ("log_format", "5"),
        ("log_level", "true"),
        ("allowed_origins", "5"),
        ("rate_limit_exempt", "true"),
    ] {
        let err = refused_in_file(&format!("{key} = {value}\n"), key).await;
        assert!(err.contains("expected"), "{key} = {value}: {err}");
    }
    // Written as a string, digits are a secret; so is a variable's value.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "jwt_secret = \"12345\"\n").unwrap();
    let h = hub()
        .args(["--config", file.to_str().unwrap()])
        .start()
        .await;
    let tok = {
        let mut c = hub_auth::Claims::new("a", common::tokens::now_s() + 60);
        c.roles = Some(vec!["viewer".into()]);
        hub_auth::mint_hs256("12345", &c).unwrap()
    };
    Ws::connect(&format!("{}?token={tok}", h.ws_url())).await;
    let h = hub().env("PROGRESS_HUB_JWT_SECRET", "12345").start().await;
    Ws::connect(&format!("{}?token={tok}", h.ws_url())).await;
}

/// `--allowed-origins` takes origins, which have no path, query or
/// fragment: such an entry is refused at start naming the entry, the key
/// and its source. A lone trailing `/` (a URL's root, as often copied) is
/// dropped, and the origin then matches browsers' `Origin`.
#[tokio::test]
async fn an_allowed_origin_with_a_path_exits_2_but_a_lone_slash_is_dropped() {
    for bad in [
        "http://c.example//",
        "http://c.example/app",
        "http://c.example/?q=1",
        "http://c.example/#top",
        "/",
    ] {
        let err = refused(
            &["--listen", "127.0.0.1:0", "--allowed-origins", bad],
            &[],
            "allowed_origins",
            "flag --allowed-origins",
        )
        .await;
        assert!(err.contains(&format!("`{bad}` is not an origin")), "{err}");
    }
    refused_in_file(
        "allowed_origins = [\"http://c.example//\"]\n",
        "allowed_origins",
    )
    .await;
    let h = hub()
        .args(["--allowed-origins", "http://c.example/"])
        .start()
        .await;
    let ok = Ws::connect_with(&h.ws_url(), &[("origin", "http://c.example")]).await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let (status, body) = Ws::connect_with(&h.ws_url(), &[("origin", "http://d.example")])
        .await
        .err()
        .expect("another origin is refused");
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn config_file_from_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "heartbeat_interval = \"150ms\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "bogus_key = 1\n").unwrap();
    let missing = dir.path().join("missing.toml");

    // The variable is read.
    let h = hub()
        .env("PROGRESS_HUB_CONFIG", good.to_str().unwrap())
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.next_of("heartbeat", Duration::from_secs(2)).await;
    drop((v, h));

    // Its refusals are --config's, naming the variable or the file.
    let err = refused(
        &["--listen", "127.0.0.1:0"],
        &[("PROGRESS_HUB_CONFIG", missing.to_str().unwrap())],
        "config",
        "environment variable PROGRESS_HUB_CONFIG",
    )
    .await;
    assert!(err.contains("missing.toml"), "{err}");
    let err = exits_2(hub().env("PROGRESS_HUB_CONFIG", bad.to_str().unwrap())).await;
    assert!(
        err.contains("bogus_key") && err.contains("bad.toml"),
        "{err}"
    );

    // --config wins over the variable (whose file would be refused).
    let h = hub()
        .env("PROGRESS_HUB_CONFIG", bad.to_str().unwrap())
        .args(["--config", good.to_str().unwrap()])
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.next_of("heartbeat", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn config_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "heartbeat_interval = \"150ms\"\n").unwrap();
    let h = hub()
        .args(["--config", file.to_str().unwrap()])
        .start()
        .await;
    let mut v = Ws::connect(&h.ws_url()).await;
    v.next_of("heartbeat", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn sigterm_sends_server_shutdown_closes_1012_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    let ack = publish(&mut p, started("a", "default"), 1).await;
    assert_eq!(ack["offset"], 1);
    let (mut v, _) = subscriber(&h, "default").await;
    h.signal(Signal::SIGTERM);
    let e = v.until(|m| m["code"] == "SERVER_SHUTDOWN", DEADLINE).await;
    assert_eq!(e["type"], "error");
    assert_eq!(v.closed(DEADLINE).await, Some(1012));
    let status = h.wait_exit(Duration::from_secs(15)).await.expect("exited");
    assert_eq!(status.code(), Some(0));
    // Everything acked is there after a restart.
    let h = hub().data_dir(dir.path()).start().await;
    let (_, list) = get_json(&format!(
        "{}/api/v1/namespaces/default/operations",
        h.http()
    ))
    .await;
    assert_eq!(list["operations"][0]["operation_id"], "a");
}

/// SIGTERM while a producer has messages in flight: everything the hub
/// stored was acked before the connection closed (no message is durable
/// but unacked), and after a restart the store holds exactly the acked
/// messages.
#[tokio::test]
async fn sigterm_acks_everything_it_stored_before_closing() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = hub().data_dir(dir.path()).start().await;
    let mut p = Ws::connect(&h.ws_url()).await;
    publish(&mut p, started("busy", "default"), 1).await;
    let last = 3000u64;
    for seq in 2..=last {
        p.send(progress("busy", "default", seq, seq as f64 / 30.0))
            .await;
    }
    h.signal(Signal::SIGTERM);
    let (mut acked, mut refused) = (1u64, 0usize);
    loop {
        match p.next(DEADLINE).await {
            Ok(m) if m["type"] == "ack" => acked = acked.max(m["seq"].as_u64().unwrap()),
            Ok(m) if m["code"] == "SERVER_SHUTDOWN" && m["data"]["operation_id"] == "busy" => {
                refused += 1
            }
            Ok(_) => {}
            Err(WsError::Closed(code)) => {
                assert_eq!(code, Some(1012));
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(h.wait_exit(DEADLINE).await.and_then(|s| s.code()), Some(0));
    let h = hub().data_dir(dir.path()).start().await;
    let url = format!("{}/api/v1/namespaces/default/operations/busy", h.http());
    let (_, op) = get_json(&url).await;
    let stored = op["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap();
    assert_eq!(
        stored, acked,
        "every stored message was acked ({refused} refused)"
    );
    // The rest were refused (SERVER_SHUTDOWN) or still unread in the
    // socket when it closed; the producer resends them after reconnecting.
    assert!(acked + refused as u64 <= last);
}

/// SIGTERM while a producer is still sending and reads a little behind:
/// it still reads every ack, the `SERVER_SHUTDOWN` error and close 1012.
/// The hub used to exit as soon as its connections had left the registry,
/// about 20 ms after its close frames, and closing a socket that still
/// held the producer's unread messages sent a reset, which destroyed
/// everything the producer had not read yet.
#[tokio::test]
async fn a_producer_still_sending_at_sigterm_reads_why_it_was_closed() {
    flood_through_sigterm(Duration::from_millis(300)).await;
}

/// The same with a producer that reads nothing for longer than the second
/// the hub waits for its close frame: the hub ends its side of the stream
/// after the close frame and discards the producer's input until it stops,
/// instead of closing on unread input, which sent a reset that destroyed
/// the acks, error and close frame the producer had not read yet.
#[tokio::test]
async fn a_producer_reading_slowly_at_sigterm_still_reads_why_it_was_closed() {
    flood_through_sigterm(Duration::from_millis(1800)).await;
}

/// A producer that floods without reading, stops both sending and
/// reading at the signal for longer than the hub waits for its close
/// frame, then sends again and reads everything: part of what the hub sent
/// it is still in the hub's send queue, so the hub must not let go of the
/// socket that soon (the next message would draw a reset that loses the
/// rest); it reads every ack, SERVER_SHUTDOWN and close 1012.
#[tokio::test]
async fn a_producer_silent_at_sigterm_then_sending_still_reads_why_it_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = flood_hub(dir.path()).await;
    let mut raw = RawWs::connect(&h.addr, "/ws").await;
    raw.send_frame(1, started("quiet", "default").to_string().as_bytes())
        .await;
    let mut seq = 1u64;
    let flood_until = tokio::time::Instant::now() + Duration::from_millis(400);
    while tokio::time::Instant::now() < flood_until {
        seq += 1;
        let m = progress("quiet", "default", seq, (seq % 100) as f64).to_string();
        raw.send_frame(1, m.as_bytes()).await;
    }
    h.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..200 {
        seq += 1;
        let m = progress("quiet", "default", seq, (seq % 100) as f64).to_string();
        if raw.try_send_frame(1, m.as_bytes()).await.is_err() {
            break;
        }
    }
    let (texts, code) = raw.read_until_close(DEADLINE).await;
    assert!(
        texts.iter().any(|t| t.contains("SERVER_SHUTDOWN")),
        "the error was read ({} lines before the end)",
        texts.len()
    );
    assert_eq!(code, Some(1012));
    assert_eq!(h.wait_exit(DEADLINE).await.and_then(|s| s.code()), Some(0));
}

/// Clients that never answer the close frame (and send nothing) hold the
/// exit up for the second the hub waits for their answer, not for the
/// further seconds it gives a client that is still sending; each finds
/// `SERVER_SHUTDOWN` and close 1012 in its socket afterwards.
#[tokio::test]
async fn clients_that_never_answer_the_close_do_not_hold_the_exit_up() {
    let mut h = hub().start().await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(RawWs::connect(&h.addr, "/ws").await);
    }
    // All three are registered once the status endpoint counts them.
    let status = format!("{}/api/v1/status", h.http());
    eventually("the hub to hold the three connections", DEADLINE, || {
        let status = status.clone();
        async move {
            let (_, s) = get_json(&status).await;
            (s["data"]["connections"].as_u64() >= Some(3)).then_some(())
        }
    })
    .await;
    let t0 = std::time::Instant::now();
    h.signal(Signal::SIGTERM);
    let exit = h.wait_exit(DEADLINE).await.expect("the hub exits");
    let took = t0.elapsed();
    assert_eq!(exit.code(), Some(0));
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    for mut raw in silent {
        let (texts, code) = raw.read_until_close(DEADLINE).await;
        assert!(
            texts.iter().any(|t| t.contains("SERVER_SHUTDOWN")),
            "{texts:?}"
        );
        assert_eq!(code, Some(1012));
    }
}

/// A producer floods one operation; SIGTERM; it reads nothing for `pause`,
/// then reads everything: every ack, `SERVER_SHUTDOWN`, close 1012; the
/// store holds exactly what was acked.
async fn flood_through_sigterm(pause: Duration) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let mut h = flood_hub(dir.path()).await;
    let (ws, _) = tokio_tungstenite::connect_async(h.ws_url()).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        let start = started("flood", "default").to_string();
        tx.send(Message::text(start)).await.unwrap();
        for seq in 2..=1_000_000u64 {
            let m = progress("flood", "default", seq, (seq % 100) as f64).to_string();
            if tx.send(Message::text(m)).await.is_err() {
                return seq;
            }
        }
        panic!("never closed");
    });
    // Messages are flowing; then the signal, while the producer is sending
    // and has stopped reading for a moment (well within the second the hub
    // waits for its close frame).
    let first = rx.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("\"ack\""), "{first:?}");
    h.signal(Signal::SIGTERM);
    tokio::time::sleep(pause).await;
    let (mut acked, mut told, mut close) = (0u64, false, None);
    while let Some(m) = tokio::time::timeout(DEADLINE, rx.next())
        .await
        .expect("the hub ends it")
    {
        match m {
            Ok(Message::Text(t)) => {
                for line in t.lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    if v["type"] == "ack" {
                        acked = acked.max(v["seq"].as_u64().unwrap());
                    }
                    told |= v["code"] == "SERVER_SHUTDOWN";
                }
            }
            Ok(Message::Close(frame)) => close = frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(e) => panic!("the connection broke instead of closing: {e} (acked {acked})"),
        }
    }
    assert!(told, "SERVER_SHUTDOWN was read");
    assert_eq!(close, Some(1012));
    writer.await.unwrap();
    assert_eq!(h.wait_exit(DEADLINE).await.and_then(|s| s.code()), Some(0));
    let h = hub().data_dir(dir.path()).start().await;
    let url = format!("{}/api/v1/namespaces/default/operations/flood", h.http());
    let (_, op) = get_json(&url).await;
    assert_eq!(
        op["operation"]["last_offset"], acked,
        "every stored message was acked"
    );
}

/// The signal handlers are in place before `listening on` is printed: a
/// SIGTERM or SIGINT sent the instant the line is read is still a graceful
/// shutdown with exit code 0, on both stores. (Read with blocking I/O and
/// signalled at once, the way a test harness does; the window used to be
/// wide enough to hit most of the time.)
#[test]
fn a_signal_right_after_the_listening_line_is_a_graceful_exit() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..8 {
        let sig = if round % 2 == 0 {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        let store: Vec<String> = if round < 4 {
            vec!["--memory".into()]
        } else {
            let d = dir.path().join(format!("d{round}"));
            vec!["--data-dir".into(), d.to_str().unwrap().into()]
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&store)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on "), "{line}");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "{sig:?} in round {round}: {status:?}"
        );
    }
}

/// Values that parse but fail when the hub uses them (a key file that
/// cannot be read, a data directory that cannot be created) are refused
/// like any bad value: exit 2, naming the key and where it was set. So are
/// negative numbers given as a separate argument, which the hub's own
/// checks refuse rather than the argument parser.
#[tokio::test]
async fn values_unusable_at_start_exit_2_naming_key_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let err = refused(
        &["--jwt-public-key", missing],
        &[],
        "jwt_public_key",
        "flag --jwt-public-key",
    )
    .await;
    assert!(err.contains("missing.pem"), "{err}");
    refused(
        &["--jwt-public-key", not_pem.to_str().unwrap()],
        &[],
        "jwt_public_key",
        "flag --jwt-public-key",
    )
    .await;
    refused(
        &[],
        &[("PROGRESS_HUB_JWKS_FILE", missing)],
        "jwks_file",
        "environment variable PROGRESS_HUB_JWKS_FILE",
    )
    .await;
    refused(
        &["--tls-cert", missing, "--tls-key", missing],
        &[],
        "tls_cert",
        "flag --tls-cert",
    )
    .await;
    let err = exits_2(hub().data_dir("/proc/no-such-dir/store")).await;
    assert!(
        err.contains("`data_dir`") && err.contains("flag --data-dir"),
        "{err}"
    );
    for (flag, value) in [("--history-size", "-5"), ("--heartbeat-interval", "-1s")] {
        let key = flag.trim_start_matches("--").replace('-', "_");
        refused(&[flag, value], &[], &key, &format!("flag {flag}")).await;
    }
}

/// A `PROGRESS_HUB_*` variable that is no setting (a typo) is named in a
/// warning on stderr; the hub still starts, since tools put variables of
/// their own in the environment it inherits.
#[tokio::test]
async fn an_unknown_progress_hub_variable_is_warned_about() {
    let mut h = hub()
        .env("PROGRESS_HUB_HEARTBEAT_INTERVALL", "1s")
        .env("PROGRESS_HUB_URL", "ws://127.0.0.1:1/ws")
        .start()
        .await;
    let ws = Ws::connect(&h.ws_url()).await;
    drop(ws);
    let mut seen = String::new();
    let err = eventually("the warning", DEADLINE, || {
        seen.extend(h.stderr_lines().into_iter().map(|l| l + "\n"));
        let found = seen.contains("PROGRESS_HUB_HEARTBEAT_INTERVALL");
        let out = found.then(|| seen.clone());
        async move { out }
    })
    .await;
    assert!(!err.contains("PROGRESS_HUB_URL"), "{err}");
}

/// The top-level help names every subcommand, `top` and `token` too.
#[tokio::test]
async fn the_help_names_every_subcommand() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let about = help.lines().next().unwrap_or_default();
    for cmd in [
        "serve", "demo", "token", "report", "run", "watch", "top", "bench",
    ] {
        assert!(about.contains(cmd), "{cmd} missing from {about:?}");
    }
}

/// An invalid `run --pattern` is a usage error: exit 2 naming the flag,
/// before the command runs.
#[tokio::test]
async fn an_invalid_run_pattern_exits_2_without_running_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args([
            "run",
            "--url",
            "ws://127.0.0.1:1/ws",
            "--pattern",
            "(unclosed",
            "--",
        ])
        .args(["touch", ran.to_str().unwrap()])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--pattern") && stderr.contains("regular expression"),
        "{stderr}"
    );
    assert!(!ran.exists(), "the command must not run");
}

/// A hub on `dir` that takes a producer's flood (no message rate limit).
async fn flood_hub(dir: &std::path::Path) -> Hub {
    hub()
        .data_dir(dir)
        .args(["--max-messages-per-second", "0"])
        .start()
        .await
}

/// An address that cannot be bound (in use by another hub) is a setting
/// that cannot be used: exit 2, naming `listen` and where it came from,
/// like every other bad value (it was exit 1 with neither).
#[tokio::test]
async fn an_address_in_use_is_refused_with_exit_2_naming_listen() {
    let h = hub().start().await;
    let err = exits_2(hub().listen(&h.addr)).await;
    assert!(
        err.contains("`listen`") && err.contains("flag --listen") && err.contains("in use"),
        "{err}"
    );
}

/// A bad value is refused even where a higher source overrides it (it is
/// still a mistake, which would surface the day the override goes), and
/// variables are read by their upper-case names only: a lower-case one was
/// applied, and its bad value blamed on a variable nobody had set.
#[tokio::test]
async fn overridden_bad_values_exit_2_and_variable_names_are_upper_case() {
    refused(
        &["--listen", "127.0.0.1:0", "--heartbeat-interval", "1s"],
        &[("PROGRESS_HUB_HEARTBEAT_INTERVAL", "bogus")],
        "heartbeat_interval",
        "environment variable PROGRESS_HUB_HEARTBEAT_INTERVAL",
    )
    .await;
    let h = hub()
        .env("progress_hub_heartbeat_interval", "bogus")
        // Not a setting, and a name whose 13th byte is inside a character.
        .env("PROGRESS_HUB\u{e9}", "1")
        .start()
        .await;
    let (_, status) = get_json(&format!("{}/api/v1/status", h.http())).await;
    assert_eq!(status["data"]["heartbeat_interval_ms"], 30_000, "{status}");
}

/// `token --kid` with a secret (flag or environment) is refused with exit
/// 2: a hub's HS256 secret has no kid, and the kid used to be dropped
/// silently.
#[tokio::test]
async fn token_refuses_a_kid_with_a_secret() {
    for (args, env) in [
        (&["--jwt-secret", "s3cret"][..], None),
        (&[][..], Some("s3cret")),
    ] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"));
        cmd.args(["token", "--sub", "a", "--kid", "k1"])
            .args(args)
            .env_remove("PROGRESS_HUB_JWT_SECRET");
        if let Some(secret) = env {
            cmd.env("PROGRESS_HUB_JWT_SECRET", secret);
        }
        let out = cmd.output().await.expect("token");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(out.stdout.is_empty(), "no token printed");
        assert!(err.contains("--kid goes with --private-key"), "{err}");
    }
}
