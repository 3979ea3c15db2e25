//! Crash safety: a child process (this test binary, re-executed) commits
//! through the group-commit writer and prints each offset once `on_commit`
//! says it is durable; the parent kills it with SIGKILL mid-stream, reopens
//! the store and checks that every printed offset is there.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use hub_store::{
    Batch, EventRecord, EventStore, GroupCommitWriter, OpRecord, RedbStore, StoreConfig,
};

/// Tells the re-executed binary to act as the writer child, in this directory.
const CHILD_ENV: &str = "HUB_STORE_CRASH_CHILD_DIR";
const NAMESPACE: &str = "crash";
/// The parent kills the child after this many durable offsets.
const KILL_AFTER: u64 = 300;
/// The child stops by itself here if nobody kills it.
const CHILD_LIMIT: u64 = 200_000;
const IN_FLIGHT: u64 = 64;

fn cfg() -> StoreConfig {
    StoreConfig {
        history_size: CHILD_LIMIT,
    }
}

/// The child's body; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    run_child(Path::new(&dir));
}

fn run_child(dir: &Path) {
    let store = Arc::new(RedbStore::open(dir, cfg()).expect("child: open store"));
    let in_flight = Arc::new((Mutex::new(0u64), Condvar::new()));
    let counter = in_flight.clone();
    let writer = GroupCommitWriter::spawn(
        store,
        Box::new(move |ids, result| {
            result.expect("child: commit failed");
            let mut out = std::io::stdout().lock();
            // One submitter, one namespace: batch id == event offset.
            for id in &ids {
                writeln!(out, "committed {id}").expect("child: stdout");
            }
            out.flush().expect("child: flush");
            let (lock, cvar) = &*counter;
            *lock.lock().unwrap() -= ids.len() as u64;
            cvar.notify_all();
        }),
    );
    let payload: Arc<[u8]> = Arc::from(vec![b'p'; 200]);
    for offset in 1..=CHILD_LIMIT {
        {
            let (lock, cvar) = &*in_flight;
            let mut n = lock.lock().unwrap();
            while *n >= IN_FLIGHT {
                n = cvar.wait(n).unwrap();
            }
            *n += 1;
        }
        let id = writer.submit(Batch {
            events: vec![EventRecord {
                namespace: NAMESPACE.into(),
                offset,
                data: payload.clone(),
            }],
            upsert_ops: vec![OpRecord {
                namespace: NAMESPACE.into(),
                operation_id: "op".into(),
                data: Arc::from(offset.to_string().as_bytes()),
            }],
            ..Batch::default()
        });
        assert_eq!(id, offset);
    }
    writer.shutdown();
}

#[test]
fn sigkill_loses_nothing_that_was_reported_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child stdout");
        // libtest may print "test crash_child ... " on the same line first.
        if let Some((_, offset)) = line.rsplit_once("committed ") {
            printed.push(offset.parse::<u64>().expect("offset"));
            if printed.len() as u64 >= KILL_AFTER {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    assert_eq!(
        printed.len() as u64,
        KILL_AFTER,
        "child ended early ({status}) after {} offsets",
        printed.len()
    );
    assert!(
        !status.success(),
        "the child must have been killed, not finished"
    );
    assert_eq!(printed, (1..=KILL_AFTER).collect::<Vec<_>>());

    let store = RedbStore::open(dir.path(), cfg()).expect("reopen after SIGKILL");
    let loaded = store.load().unwrap();
    assert_eq!(loaded.namespaces.len(), 1);
    let ns = &loaded.namespaces[0];
    let stored: Vec<u64> = ns.events.iter().map(|e| e.offset).collect();
    // Every printed offset is there, and what is there has no holes
    // (commits beyond the printed ones may also have made it).
    assert!(ns.last_offset >= KILL_AFTER);
    assert_eq!(stored, (1..=ns.last_offset).collect::<Vec<_>>());
    assert_eq!(&*ns.ops[0].data, ns.last_offset.to_string().as_bytes());
    // The store still accepts the next offset.
    store
        .commit(&Batch {
            events: vec![EventRecord {
                namespace: NAMESPACE.into(),
                offset: ns.last_offset + 1,
                data: Arc::from(&b"after"[..]),
            }],
            ..Batch::default()
        })
        .unwrap();
}
