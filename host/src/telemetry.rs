//! Process counters, served as Prometheus text at `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of this process since it started.
#[derive(Default)]
pub struct Counters {
    /// Events stored by `POST /publish` (duplicates excluded).
    pub events_published: AtomicU64,
    /// Publishes answered as duplicates.
    pub events_duplicate: AtomicU64,
    /// Deliveries queued by publishes.
    pub deliveries_queued: AtomicU64,
    /// Attempts that succeeded.
    pub attempts_success: AtomicU64,
    /// Attempts that failed.
    pub attempts_failed: AtomicU64,
    /// Sum of plugin call durations of all attempts, in milliseconds.
    pub attempt_ms_total: AtomicU64,
}

/// The process-wide counters.
pub static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(Counters::default);

/// Add `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Render the counters and gauges in Prometheus text format.
pub fn render(plugins_loaded: usize, plugins_quarantined: usize, unfinished: i64) -> String {
    let c = &*COUNTERS;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    metric(
        "outrider_events_published_total",
        "counter",
        "Events stored by POST /publish.",
        &[(String::new(), get(&c.events_published))],
    );
    metric(
        "outrider_events_duplicate_total",
        "counter",
        "Publishes of an event id already stored.",
        &[(String::new(), get(&c.events_duplicate))],
    );
    metric(
        "outrider_deliveries_queued_total",
        "counter",
        "Deliveries queued by publishes.",
        &[(String::new(), get(&c.deliveries_queued))],
    );
    metric(
        "outrider_attempts_total",
        "counter",
        "Delivery attempts by outcome.",
        &[
            ("{status=\"success\"}".into(), get(&c.attempts_success)),
            ("{status=\"failed\"}".into(), get(&c.attempts_failed)),
        ],
    );
    metric(
        "outrider_attempt_duration_ms_total",
        "counter",
        "Total plugin call time of all attempts, in milliseconds.",
        &[(String::new(), get(&c.attempt_ms_total))],
    );
    metric(
        "outrider_deliveries_unfinished",
        "gauge",
        "Deliveries pending or in flight (all nodes).",
        &[(String::new(), unfinished.max(0) as u64)],
    );
    metric(
        "outrider_plugins",
        "gauge",
        "Loaded plugins, and how many are quarantined.",
        &[
            ("{state=\"loaded\"}".into(), plugins_loaded as u64),
            ("{state=\"quarantined\"}".into(), plugins_quarantined as u64),
        ],
    );
    metric(
        "outrider_plugin_calls_slow_lane_total",
        "counter",
        "Plugin calls that ran past their grace and moved to the low-priority slow lane.",
        &[(String::new(), crate::runtime::slow_lane::moved_calls())],
    );
    crate::runtime::capabilities::tcp::render_metrics(&mut out);
    out
}
