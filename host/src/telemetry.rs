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
    /// The hot writer's publish batches (group commits).
    pub writer_publish: WriterUse,
    /// The hot writer's outcome batches.
    pub writer_outcome: WriterUse,
    /// `deliver-batch` calls made.
    pub batch_calls: AtomicU64,
    /// Events in them.
    pub batch_events: AtomicU64,
}

/// How one loop used the hot write path's connection (on SQLite the only writer), to
/// tell waiting for it from holding it and from committing.
#[derive(Default)]
pub struct WriterUse {
    /// Batches written.
    pub batches: AtomicU64,
    /// Items (events, attempts) in them.
    pub items: AtomicU64,
    /// Time spent waiting for the connection, microseconds.
    pub wait_us: AtomicU64,
    /// Time the connection was held (reads, statements, commit), microseconds.
    pub hold_us: AtomicU64,
    /// Of that, time in COMMIT (with its fsync, where there is one), microseconds.
    pub commit_us: AtomicU64,
}

impl WriterUse {
    /// Count one batch of `items`.
    pub fn batch(&self, items: usize, wait: std::time::Duration, hold: std::time::Duration) {
        add(&self.batches, 1);
        add(&self.items, items as u64);
        add(&self.wait_us, wait.as_micros() as u64);
        add(&self.hold_us, hold.as_micros() as u64);
    }

    /// Count time in COMMIT.
    pub fn commit(&self, took: std::time::Duration) {
        add(&self.commit_us, took.as_micros() as u64);
    }
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
        "outrider_plugin_batch_calls_total",
        "counter",
        "deliver-batch calls made to plugins that take deliveries in batches.",
        &[(String::new(), get(&c.batch_calls))],
    );
    metric(
        "outrider_plugin_batch_events_total",
        "counter",
        "Events delivered in those calls.",
        &[(String::new(), get(&c.batch_events))],
    );
    metric(
        "outrider_plugin_calls_slow_lane_total",
        "counter",
        "Plugin calls that ran past their grace and moved to the low-priority slow lane.",
        &[(String::new(), crate::runtime::slow_lane::moved_calls())],
    );
    let writer = |f: fn(&WriterUse) -> &AtomicU64| {
        vec![
            ("{kind=\"publish\"}".into(), get(f(&c.writer_publish))),
            ("{kind=\"outcome\"}".into(), get(f(&c.writer_outcome))),
        ]
    };
    metric(
        "outrider_writer_batches_total",
        "counter",
        "Batches written by the hot write path, by kind.",
        &writer(|w| &w.batches),
    );
    metric(
        "outrider_writer_batch_items_total",
        "counter",
        "Events (publish) and attempts (outcome) in those batches.",
        &writer(|w| &w.items),
    );
    metric(
        "outrider_writer_wait_microseconds_total",
        "counter",
        "Time batches waited for the writer connection.",
        &writer(|w| &w.wait_us),
    );
    metric(
        "outrider_writer_hold_microseconds_total",
        "counter",
        "Time batches held the writer connection.",
        &writer(|w| &w.hold_us),
    );
    metric(
        "outrider_writer_commit_microseconds_total",
        "counter",
        "Time batches spent in COMMIT (including its fsync).",
        &writer(|w| &w.commit_us),
    );
    crate::runtime::capabilities::tcp::render_metrics(&mut out);
    out
}
