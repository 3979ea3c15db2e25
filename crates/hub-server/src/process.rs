//! Process and runtime figures read on demand: CPU time, memory, threads
//! and file descriptors from Linux `/proc/self`, and the tokio runtime's
//! stable metrics. [`ProcessCollector`] exports them at each scrape (the
//! standard `process_*` names); `system_status` reads [`ProcessFigures`].

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process (None where unreadable).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessFigures {
    /// User + system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident memory, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory, bytes.
    pub virtual_bytes: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Reads the figures now.
    pub fn read() -> Self {
        let mut f = ProcessFigures::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the `(comm)`; index 0 is field 3 (state).
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let v: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| v.get(i).and_then(|s| s.parse::<u64>().ok());
                if let (Some(u), Some(s)) = (num(11), num(12)) {
                    f.cpu_seconds = Some((u + s) as f64 / TICKS_PER_SECOND);
                }
                f.threads = num(17);
                f.virtual_bytes = num(20);
                if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                    f.start_time_seconds = Some(boot as f64 + start as f64 / TICKS_PER_SECOND);
                }
            }
        }
        f.resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024);
        f.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        f.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Max open files"))?;
                line["Max open files".len()..]
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
        f
    }
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Exports [`ProcessFigures`] and tokio runtime figures at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

fn gauge<N>(enc: &mut DescriptorEncoder, name: &str, help: &str, v: N) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let f = ProcessFigures::read();
        if let Some(cpu) = f.cpu_seconds {
            let c = ConstCounter::new(cpu);
            let m = enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
        }
        let figures = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                f.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                f.virtual_bytes,
            ),
            ("process_threads", "OS threads", f.threads),
            (
                "process_open_fds",
                "Number of open file descriptors",
                f.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                f.max_fds,
            ),
        ];
        for (name, help, v) in figures {
            if let Some(v) = v {
                gauge(&mut enc, name, help, v as i64)?;
            }
        }
        if let Some(t) = f.start_time_seconds {
            gauge(
                &mut enc,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                t,
            )?;
        }
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let rt = h.metrics();
            let figures = [
                (
                    "progress_hub_tokio_workers",
                    "Worker threads of the tokio runtime",
                    rt.num_workers(),
                ),
                (
                    "progress_hub_tokio_alive_tasks",
                    "Tasks alive in the tokio runtime",
                    rt.num_alive_tasks(),
                ),
                (
                    "progress_hub_tokio_global_queue_depth",
                    "Tasks waiting in the tokio runtime's global queue",
                    rt.global_queue_depth(),
                ),
            ];
            for (name, help, v) in figures {
                gauge(&mut enc, name, help, v as i64)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let f = ProcessFigures::read();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(f.resident_bytes.unwrap() > 0);
            assert!(f.open_fds.unwrap() > 0);
            assert!(f.threads.unwrap() >= 1);
            assert!(f.cpu_seconds.is_some());
            assert!(f.start_time_seconds.unwrap() > 1.0e9);
        }
    }
}
