//! proof/receivers: two broken receivers at once. One sink hangs (reads each request and
//! never answers), the other answers 503; both for an outage of 45 s (`--full`: 5 min),
//! then both recover. Events are published to both during the first third of the outage.
//!
//! The promises: every accepted event reaches both sinks once they recover; the time
//! between one failed attempt ending and the next starting follows the destination's
//! `retry_schedule` within the retry jitter (±20 %, `host/src/delivery/retry.rs`), never
//! early; and the server's resident memory stays bounded while hundreds of deliveries
//! hang.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::load::{runtime, wait_until, Api, Burst, Nodes};
use super::procfs::{Rss, RssSampler};
use super::sink::{Behaviour, Received, Sink};
use super::{figure, Ctx};
use crate::server::Server;

/// The retry jitter of `host/src/delivery/retry.rs` (`JITTER`).
const JITTER: f64 = 0.2;
/// How much earlier than the jittered schedule an attempt may start: the sink sees a
/// hung request end slightly after the server gave up on it.
const EARLY_TOLERANCE: Duration = Duration::from_millis(100);
/// How much later than the jittered schedule an attempt may start: the workers' poll
/// interval (200 ms), writing the outcome, and a busy 2-core machine.
const LATE_TOLERANCE: Duration = Duration::from_secs(3);
/// Plugin deadline: how long a hung delivery waits before it counts as failed.
const PLUGIN_TIMEOUT_MS: u64 = 2000;
/// Resident memory the server may add to its idle size while receivers are broken.
const RSS_GROWTH_LIMIT_MIB: u64 = 256;

pub fn run(ctx: &Ctx) -> Result<()> {
    let outage = Duration::from_secs(ctx.size(45, 300));
    let events = ctx.size(300, 2000);
    let schedule = schedule_covering(outage, Duration::from_secs(ctx.size(10, 30)));
    let schedule_text: Vec<String> = schedule.iter().map(|d| format_delay(*d)).collect();
    let retry = json!({
        "retry_schedule": schedule_text.join(","),
        "retry_max_attempts": schedule.len() + 1,
    });

    let rt = runtime()?;
    let hanging = rt.block_on(Sink::start())?;
    let flaky = rt.block_on(Sink::start())?;
    let server = Server::start(
        &ctx.server()
            .env("OUTRIDER_PLUGIN_TIMEOUT_MS", PLUGIN_TIMEOUT_MS.to_string()),
    )?;
    let api = Api::new(server.addr());
    rt.block_on(api.webhook("receivers", &hanging.url("/hang"), retry.clone()))?;
    rt.block_on(api.webhook("receivers", &flaky.url("/flaky"), retry))?;
    let sampler = RssSampler::start(server.pid());

    // The outage: publishing during its first third.
    hanging.set(Behaviour::Hang);
    flaky.set(Behaviour::status(503));
    let broken_at = Instant::now();
    let nodes = Nodes::new(1);
    nodes.set(0, Some(server.addr()));
    let burst = Burst {
        clients: 4,
        tenant: "receivers".into(),
        prefix: "recv".into(),
        limit: Some(events),
        rate: Some(events as f64 / (outage.as_secs_f64() / 3.0)),
    };
    let (published, clients) = {
        let _enter = rt.enter();
        burst.start(nodes)
    };
    rt.block_on(clients)?;
    std::thread::sleep(outage.saturating_sub(broken_at.elapsed()));
    hanging.set(Behaviour::OK);
    flaky.set(Behaviour::OK);
    let recovered_at = Instant::now();

    let accepted = published.accepted_ids();
    let waited = wait_until(
        "every accepted event delivered to both recovered receivers",
        schedule.last().copied().unwrap_or_default() * 3,
        || hanging.delivered_count() + flaky.delivered_count(),
        || {
            [&hanging, &flaky]
                .iter()
                .all(|sink| accepted.is_subset(&sink.delivered_ids()))
        },
    );
    let outcome = Outcome {
        outage,
        schedule: schedule_text.join(","),
        accepted: accepted.len(),
        lost: [&hanging, &flaky].map(|sink| sink.tally(&accepted).lost.len()),
        hung: check_schedule(&hanging.received(), &schedule),
        refused: check_schedule(&flaky.received(), &schedule),
        held: held_open(&hanging.received()),
        drain: recovered_at.elapsed(),
        rss: sampler.stop(),
    };
    outcome.report();
    let mut broken = outcome.violations();
    if let Err(e) = published.no_refusals() {
        broken.push(format!("{e:#}"));
    }
    if let Err(e) = waited {
        broken.push(format!("{e:#}"));
    }
    if !broken.is_empty() {
        bail!("{}; log tail:\n{}", broken.join("; "), server.log_tail());
    }
    server.stop();
    Ok(())
}

/// What the run showed.
struct Outcome {
    outage: Duration,
    schedule: String,
    accepted: usize,
    /// Accepted events never delivered: hanging receiver, 503 receiver.
    lost: [usize; 2],
    hung: ScheduleCheck,
    refused: ScheduleCheck,
    /// How long hung requests were held open before the server closed them, sorted.
    held: Vec<Duration>,
    /// From recovery to the last accepted event delivered.
    drain: Duration,
    rss: Rss,
}

impl Outcome {
    fn report(&self) {
        figure(
            "receivers/outage",
            format!(
                "{} s: one receiver hangs, one answers 503; {} events published to both; retry_schedule {}",
                self.outage.as_secs(),
                self.accepted,
                self.schedule
            ),
        );
        figure(
            "receivers/lost",
            format!(
                "{} (hanging receiver {}, 503 receiver {})",
                self.lost[0] + self.lost[1],
                self.lost[0],
                self.lost[1]
            ),
        );
        for (name, check) in [("hanging", &self.hung), ("503", &self.refused)] {
            figure(
                &format!("receivers/{name} receiver: attempts vs schedule"),
                check.summary(),
            );
        }
        figure(
            "receivers/hung requests closed by the server after (s, p50 / max)",
            format!(
                "{:.2} / {:.2} ({} requests; plugin deadline {PLUGIN_TIMEOUT_MS} ms)",
                self.held
                    .get(self.held.len() / 2)
                    .map_or(0.0, Duration::as_secs_f64),
                self.held.last().map_or(0.0, Duration::as_secs_f64),
                self.held.len()
            ),
        );
        let rss = &self.rss;
        figure(
            "receivers/server RSS start / peak / end (MiB)",
            format!(
                "{} / {} / {} ({} samples every 250 ms)",
                rss.start / 1024,
                rss.peak / 1024,
                rss.end / 1024,
                rss.samples
            ),
        );
        figure(
            "receivers/recovery to last delivery (s)",
            format!("{:.1}", self.drain.as_secs_f64()),
        );
    }

    fn violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let lost = self.lost[0] + self.lost[1];
        if lost > 0 {
            broken.push(format!("{lost} accepted events never delivered"));
        }
        for (name, check) in [("hanging", &self.hung), ("503", &self.refused)] {
            broken.extend(
                check
                    .violations()
                    .into_iter()
                    .map(|v| format!("{name}: {v}")),
            );
        }
        if self.rss.peak > self.rss.start + RSS_GROWTH_LIMIT_MIB * 1024 {
            broken.push(format!(
                "RSS grew from {} to {} MiB (limit +{RSS_GROWTH_LIMIT_MIB} MiB)",
                self.rss.start / 1024,
                self.rss.peak / 1024
            ));
        }
        broken
    }
}

/// How long each request the sink never answered stayed open, sorted.
fn held_open(received: &[Received]) -> Vec<Duration> {
    let mut held: Vec<Duration> = received
        .iter()
        .filter(|r| r.status.is_none())
        .filter_map(|r| r.ended.map(|end| end - r.started))
        .collect();
    held.sort_unstable();
    held
}

/// `10s`, `1500ms`: as `retry_schedule` reads it.
fn format_delay(delay: Duration) -> String {
    match delay.as_millis() {
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// Delays from 1 s doubling up to `cap`, as many as it takes for the attempts to outlast
/// `outage` even with every delay jittered down, plus two more.
fn schedule_covering(outage: Duration, cap: Duration) -> Vec<Duration> {
    let mut schedule = Vec::new();
    let mut delay = Duration::from_secs(1);
    let mut covered = Duration::ZERO;
    while covered < outage + cap * 2 {
        schedule.push(delay);
        covered += delay.mul_f64(1.0 - JITTER);
        delay = (delay * 2).min(cap);
    }
    schedule
}

/// How the gaps between the attempts at one sink compare with the schedule.
#[derive(Default)]
struct ScheduleCheck {
    events: usize,
    gaps: usize,
    /// (event, attempt number before the gap, gap, earliest allowed).
    early: Vec<(String, usize, Duration, Duration)>,
    /// (event, attempt number before the gap, gap, latest allowed).
    late: Vec<(String, usize, Duration, Duration)>,
    /// How far past the jittered schedule each gap was (0 when within), ms.
    lateness_ms: Vec<u64>,
    /// Requests after the event had been delivered.
    after_delivery: usize,
    most_attempts: usize,
}

fn check_schedule(received: &[Received], schedule: &[Duration]) -> ScheduleCheck {
    let mut by_event: HashMap<&str, Vec<&Received>> = HashMap::new();
    for r in received {
        by_event.entry(r.event_id.as_str()).or_default().push(r);
    }
    let mut check = ScheduleCheck {
        events: by_event.len(),
        ..ScheduleCheck::default()
    };
    for (event, mut attempts) in by_event {
        attempts.sort_by_key(|r| r.started);
        check.most_attempts = check.most_attempts.max(attempts.len());
        for (i, pair) in attempts.windows(2).enumerate() {
            let (before, after) = (pair[0], pair[1]);
            if before.delivered() {
                check.after_delivery += 1;
                continue;
            }
            let ended = before.ended.unwrap_or(before.started);
            let gap = after.started.saturating_duration_since(ended);
            let nominal = schedule[i.min(schedule.len() - 1)];
            let earliest = nominal
                .mul_f64(1.0 - JITTER)
                .saturating_sub(EARLY_TOLERANCE);
            let latest = nominal.mul_f64(1.0 + JITTER) + LATE_TOLERANCE;
            check.gaps += 1;
            check.lateness_ms.push(
                gap.saturating_sub(nominal.mul_f64(1.0 + JITTER))
                    .as_millis() as u64,
            );
            if gap < earliest {
                check.early.push((event.to_string(), i + 1, gap, earliest));
            } else if gap > latest {
                check.late.push((event.to_string(), i + 1, gap, latest));
            }
        }
    }
    check.lateness_ms.sort_unstable();
    check
}

impl ScheduleCheck {
    fn summary(&self) -> String {
        let pct = |p: f64| {
            self.lateness_ms
                .get(((self.lateness_ms.len().saturating_sub(1)) as f64 * p) as usize)
                .copied()
                .unwrap_or_default()
        };
        format!(
            "{} gaps between attempts of {} events (up to {} attempts each): {} early, {} late; \
             past the jittered delay p50/p99/max {} / {} / {} ms",
            self.gaps,
            self.events,
            self.most_attempts,
            self.early.len(),
            self.late.len(),
            pct(0.5),
            pct(0.99),
            self.lateness_ms.last().copied().unwrap_or_default()
        )
    }

    fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((event, n, gap, earliest)) = self.early.first() {
            out.push(format!(
                "{} retries came early, e.g. {event} after attempt {n}: {gap:?} < {earliest:?}",
                self.early.len()
            ));
        }
        if let Some((event, n, gap, latest)) = self.late.first() {
            out.push(format!(
                "{} retries came late, e.g. {event} after attempt {n}: {gap:?} > {latest:?}",
                self.late.len()
            ));
        }
        if self.after_delivery > 0 {
            out.push(format!(
                "{} requests for events already delivered",
                self.after_delivery
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_outlasts_the_outage_even_jittered_down() {
        let cap = Duration::from_secs(10);
        let schedule = schedule_covering(Duration::from_secs(45), cap);
        assert_eq!(schedule[..4], [1, 2, 4, 8].map(Duration::from_secs));
        let low: Duration = schedule.iter().map(|d| d.mul_f64(0.8)).sum();
        assert!(low >= Duration::from_secs(45) + cap * 2, "{schedule:?}");
        assert!(schedule.iter().all(|d| *d <= cap));
    }
}
