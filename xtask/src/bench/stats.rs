//! Percentiles, CPU time of processes, and the `name: figure` output lines.

use std::time::Duration;

/// Sorted samples (any unit).
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn new(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Samples(values)
    }

    /// The `p`th percentile (nearest rank), `NaN` when empty.
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)] as f64
    }
}

/// Print one result line.
pub fn line(name: &str, figure: impl std::fmt::Display) {
    println!("{name}: {figure}");
}

/// User + system CPU time used so far by process `pid` (`None`: this process), from
/// `/proc/<pid>/stat`; `None` where that is unavailable.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks(),
    ))
}

/// `sysconf(_SC_CLK_TCK)` via `getconf`, 100 (the Linux default) when unknown.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time between two readings, zero when either is missing.
pub fn cpu_delta(before: Option<Duration>, after: Option<Duration>) -> Duration {
    match (before, after) {
        (Some(b), Some(a)) => a.saturating_sub(b),
        _ => Duration::ZERO,
    }
}

/// The first process whose command name (`/proc/<pid>/comm`) is `name`, if any: e.g. the
/// local RabbitMQ's `beam.smp`, to read its CPU time.
pub fn process_named(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim_end() == name).then_some(pid)
        })
}

/// CPU time used by a few processes over one phase of a benchmark.
pub struct CpuMeter {
    start: Vec<(Option<u32>, Option<Duration>)>,
}

impl CpuMeter {
    /// Start measuring `pids` (`None`: this process).
    pub fn start(pids: &[Option<u32>]) -> Self {
        CpuMeter {
            start: pids.iter().map(|&pid| (pid, cpu_time(pid))).collect(),
        }
    }

    /// Microseconds of CPU per item for each process, in the order given to `start`
    /// (zero where `/proc` could not be read).
    pub fn per_item_us(&self, items: usize) -> Vec<f64> {
        self.start
            .iter()
            .map(|&(pid, before)| {
                cpu_delta(before, cpu_time(pid)).as_secs_f64() * 1e6 / items.max(1) as f64
            })
            .collect()
    }
}

/// Logical CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
