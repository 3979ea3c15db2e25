//! Runs a scenario against each requested target in turn (one server at a
//! time), prints each result as it comes, then a Markdown summary with the
//! hub / Socket.IO ratio when both were measured.

use crate::adapter::Proto;
use crate::args::{FanoutArgs, IdleArgs, LatencyArgs, StoreArgs, TargetArgs, TargetsArgs};
use crate::scenario::{fanout, idle, latency, store, targets};
use crate::target::Target;
use crate::{sys, Scenario};
use std::path::Path;

/// Runs one scenario.
pub async fn run(scenario: Scenario) -> anyhow::Result<()> {
    let nofile = sys::raise_nofile();
    println!(
        "# machine\n{}\nopen-files limit: {nofile}\n",
        sys::machine()
    );
    match scenario {
        Scenario::Fanout(a) => run_fanout(&a, nofile).await,
        Scenario::Latency(a) => run_latency(&a, nofile).await,
        Scenario::Idle(a) => run_idle(&a, nofile).await,
        Scenario::Store(a) => run_store(&a).await,
        Scenario::Targets(a) => run_targets(&a, nofile).await,
    }
}

fn check_fds(need: usize, nofile: u64) {
    if (need as u64) + 64 > nofile {
        eprintln!(
            "warning: {need} connections need more open files than the limit {nofile}: \
             raise it (`ulimit -n`) for the generator and for a server it did not start"
        );
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.2}x", ours / theirs)
    } else {
        "n/a".into()
    }
}

async fn each<T, F, Fut>(
    t: &TargetArgs,
    durable_in: Option<&Path>,
    mut f: F,
) -> anyhow::Result<Vec<(Proto, T)>>
where
    F: FnMut(Target) -> Fut,
    Fut: std::future::Future<Output = (Target, anyhow::Result<T>)>,
{
    let mut out = Vec::new();
    for &proto in &t.targets {
        let target = Target::resolve(t, proto, durable_in).await?;
        let (target, r) = f(target).await;
        target.stop().await;
        out.push((proto, r?));
    }
    Ok(out)
}

async fn run_fanout(a: &FanoutArgs, nofile: u64) -> anyhow::Result<()> {
    check_fds(a.viewers + a.producers, nofile);
    let results = each(&a.target, None, |t| async move {
        let r = fanout::run(&t, a).await;
        if let Ok(r) = &r {
            println!("{r}\n");
        }
        (t, r)
    })
    .await?;
    println!("| server | viewers | delivered msgs/s | frames/s | msgs/frame | published msgs/s | generator CPU | server CPU | msgs per server CPU-s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (_, r) in &results {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.0} | {:.2} | {} | {} |",
            r.server,
            r.viewers,
            r.msgs_per_sec(),
            r.frames_per_sec(),
            r.delivered.messages as f64 / r.delivered.frames.max(1) as f64,
            r.published_per_sec(),
            r.usage.own_cores,
            r.usage
                .peer_cores
                .map_or("n/a".into(), |c| format!("{c:.2}")),
            r.msgs_per_server_cpu_sec()
                .map_or("n/a".into(), |m| format!("{m:.0}"))
        );
    }
    let get = |p: Proto| results.iter().find(|(q, _)| *q == p).map(|(_, r)| r);
    if let (Some(h), Some(s)) = (get(Proto::Hub), get(Proto::SocketIo)) {
        let r = ratio(h.msgs_per_sec(), s.msgs_per_sec());
        println!("\ndelivered msgs/s, progress-hub / socket.io: {r}");
        if let (Some(a), Some(b)) = (h.msgs_per_server_cpu_sec(), s.msgs_per_server_cpu_sec()) {
            let r = ratio(a, b);
            println!("delivered msgs per server CPU-second, progress-hub / socket.io: {r}");
        }
    }
    Ok(())
}

async fn run_latency(a: &LatencyArgs, nofile: u64) -> anyhow::Result<()> {
    let most = a.rates.iter().max().copied().unwrap_or(0) / a.publish_rate.max(1);
    check_fds(most as usize + a.producers, nofile);
    let results = each(&a.target, None, |t| async move {
        let mut rs = Vec::new();
        for &rate in &a.rates {
            match latency::run(&t, a, rate).await {
                Ok(r) => {
                    println!("{r}\n");
                    rs.push(r);
                }
                Err(e) => return (t, Err(e)),
            }
        }
        (t, Ok(rs))
    })
    .await?;
    println!("| server | delivered msgs/s (target) | measured | viewers | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 at arrival ms | server CPU |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (_, rs) in &results {
        for r in rs {
            let l = r.latency;
            println!(
                "| {} | {} | {:.0} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
                r.server,
                r.rate,
                r.delivered.messages as f64 / r.usage.secs,
                r.viewers,
                l.p50 / 1e3,
                l.p90 / 1e3,
                l.p99 / 1e3,
                l.p999 / 1e3,
                l.max / 1e3,
                r.arrival
                    .map_or("n/a".into(), |a| format!("{:.3}", a.p99 / 1e3)),
                r.usage
                    .peer_cores
                    .map_or("n/a".into(), |c| format!("{c:.2}"))
            );
        }
    }
    Ok(())
}

async fn run_targets(a: &TargetsArgs, nofile: u64) -> anyhow::Result<()> {
    check_fds(a.viewers + 8, nofile);
    let rounds = targets::run(a).await?;
    print!("{}", targets::summary(&rounds));
    Ok(())
}

async fn run_idle(a: &IdleArgs, nofile: u64) -> anyhow::Result<()> {
    check_fds(a.connections, nofile);
    let results = each(&a.target, None, |t| async move {
        let r = idle::run(&t, a).await;
        if let Ok(r) = &r {
            println!("{r}\n");
        }
        (t, r)
    })
    .await?;
    println!("| server | connections | RSS before MiB | RSS after MiB | bytes per connection |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (_, r) in &results {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.0} |",
            r.server,
            r.connections,
            r.rss_before as f64 / 1048576.0,
            r.rss_after as f64 / 1048576.0,
            r.bytes_per_conn()
        );
    }
    let get = |p: Proto| {
        results
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, r)| r.bytes_per_conn())
    };
    if let (Some(h), Some(s)) = (get(Proto::Hub), get(Proto::SocketIo)) {
        println!(
            "\nbytes per idle connection, progress-hub / socket.io: {}",
            ratio(h, s)
        );
    }
    Ok(())
}

async fn run_store(a: &StoreArgs) -> anyhow::Result<()> {
    let direct = {
        let a = a.clone();
        tokio::task::spawn_blocking(move || store::direct(&a)).await??
    };
    println!("store   direct ({} submitters): {direct}", a.submitters);
    if a.via_hub {
        let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
        let target = Target::resolve(&a.target, Proto::Hub, Some(&parent)).await?;
        let r = store::via_hub(&target, a).await;
        target.stop().await;
        println!("{}", r?);
    }
    Ok(())
}
