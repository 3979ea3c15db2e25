//! `targets`: issue 3's two relative targets judged within one run, so the
//! latency rate and the fan-out ratio both come from the Socket.IO maximum
//! measured minutes (not sessions) earlier on the same machine.
//!
//! Each round measures Socket.IO's fan-out maximum, then the hub's, then
//! latency for both at the lower of 100,000 delivered msgs/s and half of
//! that round's Socket.IO maximum; the verdicts are pure functions of the
//! figures ([`Round::fanout_met`], [`Round::latency_met`]).

use crate::adapter::Proto;
use crate::args::{FanoutArgs, LatencyArgs, TargetArgs, TargetsArgs, PRODUCERS, WINDOW};
use crate::scenario::fanout::{self, FanoutResult};
use crate::scenario::latency::{self, LatencyResult};
use crate::target::Target;

/// The fan-out target: at least this many times Socket.IO's delivered msgs/s.
pub const FANOUT_RATIO_TARGET: f64 = 10.0;
/// The latency target: p99 at most this many microseconds.
pub const P99_TARGET_US: f64 = 5_000.0;
/// The delivered rate the latency target is judged at: the lower of
/// `cap` (100,000 in issue 3) and half of Socket.IO's maximum, rounded
/// down to a whole number of viewers (`publish_rate` messages each per
/// second), and at least one viewer.
pub fn latency_rate(socketio_max: f64, cap: u64, publish_rate: u64) -> u64 {
    let per_viewer = publish_rate.max(1);
    let half = if socketio_max.is_finite() && socketio_max > 0.0 {
        (socketio_max / 2.0) as u64
    } else {
        0
    };
    let rate = half.min(cap);
    (rate / per_viewer).max(1) * per_viewer
}

/// What one round measured.
#[derive(Clone, Debug)]
pub struct Round {
    /// Socket.IO at its maximum publish rate.
    pub socketio_fanout: FanoutResult,
    /// The hub at its maximum publish rate.
    pub hub_fanout: FanoutResult,
    /// The rate both latency runs were made at.
    pub rate: u64,
    /// The hub's latency at `rate`.
    pub hub_latency: LatencyResult,
    /// Socket.IO's latency at `rate`.
    pub socketio_latency: LatencyResult,
}

impl Round {
    /// Hub delivered msgs/s over Socket.IO's (0 when Socket.IO delivered nothing).
    pub fn fanout_ratio(&self) -> f64 {
        ratio(
            self.hub_fanout.msgs_per_sec(),
            self.socketio_fanout.msgs_per_sec(),
        )
    }

    /// Whether the hub delivered at least [`FANOUT_RATIO_TARGET`] times
    /// Socket.IO's msgs/s, with no viewer dropped.
    pub fn fanout_met(&self) -> bool {
        self.fanout_ratio() >= FANOUT_RATIO_TARGET && self.hub_fanout.delivered.closed == 0
    }

    /// Whether the hub's p99 was at most [`P99_TARGET_US`] with every
    /// viewer still connected and no producer failure.
    pub fn latency_met(&self) -> bool {
        let h = &self.hub_latency;
        h.latency.count > 0
            && h.latency.p99 <= P99_TARGET_US
            && h.delivered.closed == 0
            && h.failure.is_none()
    }
}

fn ratio(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        0.0
    }
}

/// Runs every round, one server at a time (each started afresh when
/// `--spawn` is given), printing each measurement as it comes.
pub async fn run(a: &TargetsArgs) -> anyhow::Result<Vec<Round>> {
    let only = |proto: Proto| TargetArgs {
        targets: vec![proto],
        ..a.target.clone()
    };
    let (hub, sio) = (only(Proto::Hub), only(Proto::SocketIo));
    let mut rounds = Vec::new();
    for round in 1..=a.rounds.max(1) {
        println!("## round {round}\n");
        let socketio_fanout = measure_fanout(&sio, a).await?;
        println!("{socketio_fanout}\n");
        let hub_fanout = measure_fanout(&hub, a).await?;
        println!("{hub_fanout}\n");
        let rate = latency_rate(socketio_fanout.msgs_per_sec(), a.rate_cap, a.publish_rate);
        let hub_latency = measure_latency(&hub, rate, a).await?;
        println!("{hub_latency}\n");
        let socketio_latency = measure_latency(&sio, rate, a).await?;
        println!("{socketio_latency}\n");
        rounds.push(Round {
            socketio_fanout,
            hub_fanout,
            rate,
            hub_latency,
            socketio_latency,
        });
    }
    Ok(rounds)
}

/// Starts (or reaches) the one server `t` names, runs `f` against it and
/// stops it.
async fn against<T, F, Fut>(t: &TargetArgs, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = (Target, anyhow::Result<T>)>,
{
    let target = Target::resolve(t, t.targets[0], None).await?;
    let (target, r) = f(target).await;
    target.stop().await;
    r
}

async fn measure_fanout(t: &TargetArgs, a: &TargetsArgs) -> anyhow::Result<FanoutResult> {
    let fa = fanout_args(t, a);
    against(t, |target| async move {
        let r = fanout::run(&target, &fa).await;
        (target, r)
    })
    .await
}

async fn measure_latency(
    t: &TargetArgs,
    rate: u64,
    a: &TargetsArgs,
) -> anyhow::Result<LatencyResult> {
    let la = latency_args(t, rate, a);
    against(t, |target| async move {
        let r = latency::run(&target, &la, rate).await;
        (target, r)
    })
    .await
}

/// The fan-out arguments of a round, from the `targets` arguments.
pub fn fanout_args(t: &TargetArgs, a: &TargetsArgs) -> FanoutArgs {
    FanoutArgs {
        viewers: a.viewers,
        producers: PRODUCERS,
        window: WINDOW,
        duration: a.duration,
        warmup: a.fanout_warmup,
        target: t.clone(),
    }
}

/// The latency arguments of a round, from the `targets` arguments.
pub fn latency_args(t: &TargetArgs, rate: u64, a: &TargetsArgs) -> LatencyArgs {
    LatencyArgs {
        rates: vec![rate],
        publish_rate: a.publish_rate,
        producers: PRODUCERS,
        duration: a.duration,
        warmup: a.latency_warmup,
        arrival: a.arrival,
        target: t.clone(),
    }
}

/// A Markdown table of the rounds and how many met each target.
pub fn summary(rounds: &[Round]) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut s = String::from(
        "| round | socket.io max msgs/s | hub max msgs/s | ratio | >= 10x | latency rate | hub p99 ms | socket.io p99 ms | hub p99 <= 5 ms |\n\
         | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |\n",
    );
    for (i, r) in rounds.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1}x | {} | {} | {:.2} | {:.2} | {} |\n",
            i + 1,
            r.socketio_fanout.msgs_per_sec(),
            r.hub_fanout.msgs_per_sec(),
            r.fanout_ratio(),
            yes(r.fanout_met()),
            r.rate,
            r.hub_latency.latency.p99 / 1e3,
            r.socketio_latency.latency.p99 / 1e3,
            yes(r.latency_met()),
        ));
    }
    let n = rounds.len();
    let fan = rounds.iter().filter(|r| r.fanout_met()).count();
    let lat = rounds.iter().filter(|r| r.latency_met()).count();
    s.push_str(&format!(
        "\nfan-out >= {FANOUT_RATIO_TARGET}x Socket.IO: met in {fan} of {n} rounds\n\
         p99 <= {} ms at the lower of the rate cap and Socket.IO's max / 2: met in {lat} of {n} rounds\n",
        P99_TARGET_US / 1e3
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_half_the_peer_capped_and_whole_viewers() {
        const CAP: u64 = 100_000;
        assert_eq!(latency_rate(120_410.0, CAP, 100), 60_200);
        assert_eq!(latency_rate(139_068.0, CAP, 100), 69_500);
        assert_eq!(latency_rate(250_000.0, CAP, 100), 100_000);
        assert_eq!(latency_rate(250_000.0, 550, 100), 500, "a lower cap");
        assert_eq!(latency_rate(50.0, CAP, 100), 100, "at least one viewer");
        assert_eq!(latency_rate(0.0, CAP, 100), 100);
        assert_eq!(latency_rate(f64::NAN, CAP, 100), 100);
        assert_eq!(
            latency_rate(1_000.0, CAP, 0),
            500,
            "zero publish rate counts as 1"
        );
    }
}
