//! Responsiveness with 2,000 live operations: applying a burst of events and
//! drawing a frame, timed and printed (not asserted: CI machines vary; run
//! with `--nocapture` to see the figures).

mod support;

use hub_tui::{OpStatus, Update};
use std::time::Instant;
use support::*;

#[test]
fn two_thousand_live_operations() {
    let mut a = connected_app();
    let ops: Vec<_> = (0..2_000u64)
        .map(|i| {
            let mut s = op(
                &format!("job.{i}"),
                &format!("Job number {i}"),
                OpStatus::Running,
                0.0,
                100 + i % 50,
            );
            if i % 10 != 0 {
                s.parent_id = Some(format!("job.{}", i - i % 10));
            }
            s
        })
        .collect();
    a.apply(
        Update::Snapshot {
            epoch: "e".into(),
            offset: 2_000,
            operations: ops.clone(),
        },
        NOW,
    );

    let t = Instant::now();
    let first = screen(&mut a, 160, 50, NOW);
    let first_frame = t.elapsed();
    assert!(first.contains("Job number"));

    let n = 20_000u64;
    let t = Instant::now();
    for k in 0..n {
        let mut s = ops[(k % 2_000) as usize].clone();
        s.progress = Some((k / 2_000) as f64 * 5.0);
        s.last_offset = 2_001 + k;
        a.apply(event("progress_update", 2_001 + k, s), NOW);
    }
    let apply = t.elapsed();

    let t = Instant::now();
    let frames = 20;
    for _ in 0..frames {
        let _ = screen(&mut a, 160, 50, NOW);
    }
    let steady = t.elapsed() / frames;

    // A state change forces the row order to be rebuilt.
    let t = Instant::now();
    let mut s = ops[5].clone();
    s.state = OpStatus::Stalled;
    s.last_offset = 100_000;
    a.apply(event("operation_stalled", 100_000, s), NOW);
    let _ = screen(&mut a, 160, 50, NOW);
    let resorted = t.elapsed();

    println!(
        "2,000 ops: first frame {first_frame:?}; {n} events applied in {apply:?} ({:.2} µs/event); \
         frame {steady:?}; frame after a re-sort {resorted:?}",
        apply.as_secs_f64() * 1e6 / n as f64
    );
}
