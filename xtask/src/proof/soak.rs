//! proof/soak (only with `--soak`): the peak rate measured for 15 s, then publishing at
//! half of it for `--soak-secs` (an hour by default). Every minute (a fifth of the run
//! when it is shorter than 10 minutes) one line: the server's resident memory and the
//! publish -> delivery latency of that window. The drift is the last window against the
//! first. Nothing accepted may be lost, and memory may not keep growing.
//!
//! Use `--release` for figures that mean something: the debug build is several times
//! slower.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::load::{runtime, wait_until, Api, Burst, Nodes, Published};
use super::procfs::rss_kib;
use super::sink::Sink;
use super::{figure, Ctx};
use crate::server::Server;

/// How long the peak is measured (after a third as long to warm up).
const PEAK_RUN: Duration = Duration::from_secs(15);
/// Resident memory may grow this much over the first window before it counts as a leak.
const RSS_GROWTH_LIMIT: f64 = 0.5;
const RSS_GROWTH_SLACK_MIB: u64 = 64;

pub fn run(ctx: &Ctx) -> Result<()> {
    let rt = runtime()?;
    let sink = rt.block_on(Sink::start())?;
    let server = Server::start(&ctx.server())?;
    rt.block_on(Api::new(server.addr()).webhook("soak", &sink.url("/hook"), json!({})))?;
    let nodes = Nodes::new(1);
    nodes.set(0, Some(server.addr()));

    let peak = measure_peak(&rt, &sink, &nodes)?;
    let rate = (peak / 2.0).max(1.0);
    figure(
        "soak/peak (events/s delivered, 16 clients)",
        format!(
            "{peak:.0}; soaking at {rate:.0}/s for {} s",
            ctx.soak.as_secs()
        ),
    );
    let window = if ctx.soak >= Duration::from_secs(600) {
        Duration::from_secs(60)
    } else {
        (ctx.soak / 5).max(Duration::from_secs(5))
    };
    let burst = Burst {
        clients: 16,
        tenant: "soak".into(),
        prefix: "soak".into(),
        limit: None,
        rate: Some(rate),
    };
    let (published, clients) = {
        let _enter = rt.enter();
        burst.start(nodes.clone())
    };
    let mut tracker = Latencies::default();
    let mut windows = Vec::new();
    let started = Instant::now();
    while started.elapsed() < ctx.soak {
        std::thread::sleep(window.min(ctx.soak.saturating_sub(started.elapsed())));
        let stats = tracker.window(&published, &sink, server.pid());
        figure(
            &format!("soak/window {:>3}", windows.len() + 1),
            format!(
                "RSS {} MiB, publish -> delivery p50/p99 {:.1} / {:.1} ms, {} delivered",
                stats.rss_kib / 1024,
                stats.p50_ms,
                stats.p99_ms,
                stats.delivered
            ),
        );
        windows.push(stats);
    }
    published.stop();
    rt.block_on(clients)?;
    published.no_refusals()?;
    let accepted = published.accepted_count();
    let tracker = std::cell::RefCell::new(tracker);
    wait_until(
        "every accepted event delivered",
        Duration::from_secs(60),
        || tracker.borrow().pending.len(),
        || {
            let mut tracker = tracker.borrow_mut();
            tracker.window(&published, &sink, server.pid());
            tracker.pending.is_empty()
        },
    )?;
    let tracker = tracker.into_inner();
    drift(&windows, tracker.pending.len(), accepted)?;
    server.stop();
    Ok(())
}

/// The drift figures, last window against the first; fails when memory kept growing.
fn drift(windows: &[Window], lost: usize, accepted: usize) -> Result<()> {
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        bail!("the soak ran no window");
    };
    figure(
        "soak/RSS drift (MiB, first -> last window)",
        format!("{} -> {}", first.rss_kib / 1024, last.rss_kib / 1024),
    );
    figure(
        "soak/latency drift p99 (ms, first -> last window)",
        format!("{:.1} -> {:.1}", first.p99_ms, last.p99_ms),
    );
    figure("soak/lost", format!("{lost} of {accepted} accepted"));
    let limit =
        (first.rss_kib as f64 * (1.0 + RSS_GROWTH_LIMIT)) as u64 + RSS_GROWTH_SLACK_MIB * 1024;
    if last.rss_kib > limit {
        bail!(
            "RSS grew from {} to {} MiB over the soak",
            first.rss_kib / 1024,
            last.rss_kib / 1024
        );
    }
    Ok(())
}

/// Closed loop for a third of [`PEAK_RUN`] to warm up, then [`PEAK_RUN`] counted:
/// deliveries per second at the sink.
fn measure_peak(
    rt: &tokio::runtime::Runtime,
    sink: &Sink,
    nodes: &std::sync::Arc<Nodes>,
) -> Result<f64> {
    let burst = Burst {
        clients: 16,
        tenant: "soak".into(),
        prefix: "peak".into(),
        limit: None,
        rate: None,
    };
    let (published, clients) = {
        let _enter = rt.enter();
        burst.start(nodes.clone())
    };
    std::thread::sleep(PEAK_RUN / 3);
    let before = sink.delivered_count();
    let counting = Instant::now();
    std::thread::sleep(PEAK_RUN);
    let rate = (sink.delivered_count() - before) as f64 / counting.elapsed().as_secs_f64();
    published.stop();
    rt.block_on(clients)?;
    let accepted = published.accepted_count();
    wait_until(
        "the peak run delivered",
        Duration::from_secs(60),
        || sink.delivered_count(),
        || sink.delivered_count() >= accepted,
    )?;
    sink.drain_ended();
    Ok(rate)
}

/// One window's figures.
struct Window {
    rss_kib: u64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: usize,
}

/// Matches accepted publishes with their first delivery across windows (a delivery may
/// arrive before its publish's 202 does).
#[derive(Default)]
struct Latencies {
    /// Accepted, not delivered yet: when the publish was sent.
    pending: HashMap<String, Instant>,
    /// Delivered before the 202 was recorded: when it arrived.
    early: HashMap<String, Instant>,
}

impl Latencies {
    fn window(&mut self, published: &Published, sink: &Sink, pid: u32) -> Window {
        let mut latencies_us = Vec::new();
        for (id, sent) in published.drain_accepted() {
            match self.early.remove(&id) {
                Some(arrived) => latencies_us.push(arrived.saturating_duration_since(sent)),
                None => {
                    self.pending.insert(id, sent);
                }
            }
        }
        for r in sink.drain_ended().into_iter().filter(|r| r.delivered()) {
            match self.pending.remove(&r.event_id) {
                Some(sent) => latencies_us.push(r.started.saturating_duration_since(sent)),
                None => {
                    self.early.entry(r.event_id).or_insert(r.started);
                }
            }
        }
        latencies_us.sort_unstable();
        let pct = |p: f64| {
            latencies_us
                .get(((latencies_us.len().saturating_sub(1)) as f64 * p) as usize)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        Window {
            rss_kib: rss_kib(pid).unwrap_or_default(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            delivered: latencies_us.len(),
        }
    }
}
