//! proof/faults: plugins that loop forever, exhaust their memory, trap, overflow their
//! stack, produce huge output or flood the host with calls stay in their sandbox while a
//! well-behaved destination receives a steady stream.
//!
//! One server with the defaults (64 MiB and 10 s per plugin call, quarantine after 5
//! crashes in a row). The fault fixtures are uploaded over the API like any plugin;
//! tenant `faulty` has one destination of each. Tenant `healthy` has a webhook
//! destination on a loopback sink and receives an open-loop stream at a fixed rate,
//! publish to arrival measured per event. Phases: the stream alone; the stream while
//! `faulty` receives events too, so every fault plugin is called over and over (and
//! retried) until quarantined; a pause for the calls still running to reach their
//! deadline; the stream alone again. The ratio compares the middle phase's p99 with the
//! p99 of both quiet phases together, so a machine that gets busier or quieter during the
//! run (the proof shares it with builds) moves both sides.
//!
//! Figures: the healthy p50/p99 of each phase and the ratio (also for the part before
//! the last crashing plugin was quarantined), the server's resident memory, each fault's
//! attempts by error class with the longest error stored, and the quarantine as
//! `GET /api/v1/plugins` shows it.

mod checks;
mod probes;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::{Method, StatusCode};
use serde_json::json;

use super::load::{runtime, Api, Burst, Nodes, Published};
use super::procfs::rss_kib;
use super::sink::Sink;
use super::{figure, Ctx};
use crate::server::Server;
use checks::{check_attempts, check_quarantine};
use probes::{upload, QuarantineWatch, RssSampler};

/// A fault fixture and what its attempts must show.
struct Fault {
    /// Fixture (and plugin, and destination type) name.
    name: &'static str,
    /// The attempt error class (`response_data.error_kind`) of its calls.
    kind: &'static str,
    /// Whether it crashes (trap, timeout, memory limit) and so must be quarantined.
    crashes: bool,
}

const FAULTS: &[Fault] = &[
    Fault {
        name: "fault-loop",
        kind: "timeout",
        crashes: true,
    },
    Fault {
        name: "fault-memory",
        kind: "memory",
        crashes: true,
    },
    Fault {
        name: "fault-trap",
        kind: "trap",
        crashes: true,
    },
    // The recursion overflows the shadow stack in linear memory first: an out-of-bounds
    // trap.
    Fault {
        name: "fault-stack",
        kind: "trap",
        crashes: true,
    },
    // A clean permanent failure, only huge: capped, not a crash.
    Fault {
        name: "fault-output",
        kind: "fail",
        crashes: false,
    },
    Fault {
        name: "fault-flood",
        kind: "timeout",
        crashes: true,
    },
];

/// The target for the faults phase's healthy p99 over the quiet phases'. It is
/// reported as met or not; on 2 shared cores a spinning plugin's slices still add a few
/// milliseconds to the healthy tail (3.7x of a 3 ms p99 when last measured).
const TARGET_P99_RATIO: f64 = 2.0;

/// The healthy p99 under faults above which containment itself is broken: the healthy
/// stream is being starved by the faulty plugins (before the long-call gate, spinning
/// plugins held every worker and made it 300x of 3 ms, about a second). The ratio varies
/// from run to run on 2 shared cores (3.7x to 9.8x in CI-size runs), so the gate is on
/// the absolute tail, far below the plugin deadline.
const MAX_HEALTHY_P99_MS: f64 = 250.0;

/// Longest attempt error plus response body the store may keep (the host keeps 4 KiB of
/// each; fault-output returns 4 MiB and 8 MiB).
const MAX_ERROR_BYTES: usize = 16 * 1024;

/// Growth of the server's resident memory over its level before the faults that breaks
/// the promise. A fault call may use 64 MiB of linear memory and the host copies a
/// plugin's output out once; a handful of such calls in flight is a few hundred MiB.
/// Output kept per attempt, or calls piling up without end, pass this within seconds.
const MAX_RSS_GROWTH_MIB: u64 = 512;

/// Longest a plugin call may run (the server's default deadline), plus a margin: after
/// this, no call of the faults phase is still running.
const CALLS_DRAIN: Duration = Duration::from_secs(12);

pub fn run(ctx: &Ctx) -> Result<()> {
    let server = Server::start(&ctx.server())?;
    let rt = runtime()?;
    let result = rt.block_on(scenario(ctx, &server));
    if result.is_err() {
        // The fault plugins log 4 KiB lines: show the start of each.
        let tail: Vec<String> = server
            .log_tail()
            .lines()
            .map(|l| l.chars().take(240).collect())
            .collect();
        eprintln!("faults: server log tail:\n{}", tail.join("\n"));
    }
    result
}

/// Sizes of one run.
struct Plan {
    /// Healthy events per second.
    rate: f64,
    /// Events per second to the faulty tenant (each reaches every fault destination).
    fault_rate: f64,
    /// Length of each phase.
    phase: Duration,
}

impl Plan {
    /// `n` healthy publishes at the plan's rate, event ids `{prefix}-{seq}`.
    fn healthy(&self, prefix: &str, n: usize) -> Burst {
        Burst {
            clients: 4,
            tenant: "healthy".into(),
            prefix: prefix.into(),
            limit: Some(n),
            rate: Some(self.rate),
        }
    }

    /// Healthy events per phase.
    fn events(&self) -> usize {
        (self.rate * self.phase.as_secs_f64()) as usize
    }
}

/// The fault plugins and destinations of a run.
struct Setup {
    /// Plugin id (`sha256:...`) by fixture name.
    plugins: BTreeMap<&'static str, String>,
    /// Destination id by fixture name.
    destinations: BTreeMap<&'static str, String>,
}

/// Upload the fault fixtures, create the healthy tenant's webhook on `sink` and the
/// faulty tenant's destinations.
async fn setup(ctx: &Ctx, server: &Server, api: &Api, sink: &Sink) -> Result<Setup> {
    let mut plugins = BTreeMap::new();
    for fault in FAULTS {
        let path = ctx
            .plugins_dir
            .join(format!("fixtures/{}.wasm", fault.name));
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{} is missing: run cargo xtask plugins", path.display()))?;
        let info = upload(server.addr(), bytes).await?;
        let id = info["id"].as_str().context("plugin id")?.to_string();
        plugins.insert(fault.name, id);
    }
    api.webhook("healthy", &sink.url("/hook"), json!({}))
        .await?;
    api.ok(Method::PUT, "/api/v1/tenants/faulty", None).await?;
    let mut destinations = BTreeMap::new();
    for fault in FAULTS {
        let created = api
            .ok(
                Method::POST,
                "/api/v1/tenants/faulty/destinations",
                Some(&json!({"type": fault.name, "topics": "*", "config": {}})),
            )
            .await?;
        let id = created["id"].as_str().context("destination id")?;
        destinations.insert(fault.name, id.to_string());
    }
    Ok(Setup {
        plugins,
        destinations,
    })
}

async fn scenario(ctx: &Ctx, server: &Server) -> Result<()> {
    let plan = Plan {
        rate: ctx.size(50.0, 100.0),
        fault_rate: ctx.size(2.0, 5.0),
        phase: Duration::from_secs(ctx.size(20, 60)),
    };
    let api = Api::new(server.addr());
    let sink = Sink::start().await?;
    let setup = setup(ctx, server, &api, &sink).await?;
    let nodes = Nodes::new(1);
    nodes.set(0, Some(server.addr()));
    let pid = server.pid();
    let n = plan.events();

    run_phase(&nodes, &sink, &plan.healthy("warm", n / 10), None, pid).await?;
    let rss_before = rss_kib(pid).unwrap_or(0);
    let before = run_phase(&nodes, &sink, &plan.healthy("before", n), None, pid).await?;
    let faulty = Burst {
        clients: 2,
        tenant: "faulty".into(),
        prefix: "fault".into(),
        limit: Some((plan.fault_rate * plan.phase.as_secs_f64()) as usize),
        rate: Some(plan.fault_rate),
    };
    let watcher = QuarantineWatch::start(api, setup.plugins.clone());
    let faults = plan.healthy("faults", n);
    let during = run_phase(&nodes, &sink, &faults, Some(&faulty), pid).await?;
    tokio::time::sleep(CALLS_DRAIN).await;
    let quarantined_at = watcher.stop().await;
    let after = run_phase(&nodes, &sink, &plan.healthy("after", n), None, pid).await?;

    let health = api.call(Method::GET, "/healthz", None).await?;
    if health.0 != StatusCode::OK {
        bail!("the server is not healthy after the faults: {health:?}");
    }
    // Every figure first, then every broken promise.
    let phases = Phases {
        before,
        during,
        after,
    };
    let broken: Vec<String> = [
        report(&plan, &phases, &quarantined_at, rss_before),
        check_attempts(&api, &setup.destinations).await,
        check_quarantine(&api, &setup.plugins).await,
    ]
    .into_iter()
    .filter_map(|r| r.err().map(|e| format!("{e:#}")))
    .collect();
    if !broken.is_empty() {
        bail!("{}", broken.join("\n"));
    }
    Ok(())
}

/// What one phase measured.
struct Phase {
    /// When the phase's first publish was due.
    started: Instant,
    /// Per healthy event: when its publish was sent and publish-to-arrival latency.
    latencies: Vec<(Instant, Duration)>,
    /// Largest resident memory of the server during the phase, KiB.
    rss_peak_kib: u64,
}

impl Phase {
    fn durations(&self) -> Vec<Duration> {
        self.latencies.iter().map(|(_, d)| *d).collect()
    }
}

/// The quiet phase before the faults, the faults phase and the quiet phase after.
struct Phases {
    before: Phase,
    during: Phase,
    after: Phase,
}

/// Run `stream` (and `faults` beside it) until every accepted healthy event arrived.
async fn run_phase(
    nodes: &Arc<Nodes>,
    sink: &Sink,
    stream: &Burst,
    faults: Option<&Burst>,
    pid: u32,
) -> Result<Phase> {
    let rss = RssSampler::start(pid);
    let started = Instant::now();
    let (published, clients) = stream.start(nodes.clone());
    let fault_clients = faults.map(|f| f.start(nodes.clone()));
    clients.await?;
    if let Some((fault_published, handle)) = fault_clients {
        handle.await?;
        check_published("faulty", &fault_published)?;
    }
    check_published(&stream.prefix, &published)?;
    let accepted = published.accepted();
    let wanted: HashMap<&str, Instant> = accepted.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    let arrived = |sink: &Sink| {
        sink.received()
            .iter()
            .filter(|r| r.delivered() && wanted.contains_key(r.event_id.as_str()))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrived(sink) < wanted.len() {
        if Instant::now() > deadline {
            bail!(
                "{}: {} of {} healthy events arrived within 120 s of the last publish",
                stream.prefix,
                arrived(sink),
                wanted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first_arrival: HashMap<String, Instant> = HashMap::new();
    for r in sink.received() {
        if r.delivered() && wanted.contains_key(r.event_id.as_str()) {
            let at = first_arrival.entry(r.event_id).or_insert(r.started);
            *at = (*at).min(r.started);
        }
    }
    let latencies = accepted
        .iter()
        .filter_map(|(id, sent)| {
            first_arrival
                .get(id.as_str())
                .map(|at| (*sent, at.saturating_duration_since(*sent)))
        })
        .collect();
    Ok(Phase {
        started,
        latencies,
        rss_peak_kib: rss.stop().await,
    })
}

fn check_published(what: &str, published: &Published) -> Result<()> {
    let refused = published.refused.load(Ordering::Relaxed);
    let unanswered = published.unanswered.load(Ordering::Relaxed);
    if refused > 0 || unanswered > 0 {
        bail!(
            "{what}: {refused} publishes refused, {unanswered} unanswered (first refusal: {:?})",
            published.first_refusal.lock().expect("published")
        );
    }
    Ok(())
}

/// The `p`th percentile (nearest rank) in milliseconds.
fn pct_ms(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `p50 / p99` of `latencies`, ms.
fn p50_p99(latencies: &[Duration]) -> String {
    format!(
        "{:.1} / {:.1}",
        pct_ms(latencies, 50.0),
        pct_ms(latencies, 99.0)
    )
}

/// Latency figures and the RSS bound.
fn report(
    plan: &Plan,
    phases: &Phases,
    quarantined_at: &BTreeMap<String, Instant>,
    rss_before_kib: u64,
) -> Result<()> {
    let Phases {
        before,
        during,
        after,
    } = phases;
    let quiet: Vec<Duration> = before
        .durations()
        .into_iter()
        .chain(after.durations())
        .collect();
    let with = during.durations();
    // The part of the faults phase while crashing plugins were still being called.
    let crashing = FAULTS.iter().filter(|f| f.crashes);
    let last_quarantine = crashing
        .map(|f| quarantined_at.get(f.name).copied())
        .collect::<Option<Vec<Instant>>>()
        .and_then(|times| times.into_iter().max());
    let active: Vec<Duration> = during
        .latencies
        .iter()
        .filter(|(sent, _)| last_quarantine.is_none_or(|q| *sent <= q))
        .map(|(_, d)| *d)
        .collect();
    let p99_quiet = pct_ms(&quiet, 99.0);
    let ratio = pct_ms(&with, 99.0) / p99_quiet;
    figure(
        "faults/healthy p50 / p99 without faults, before / after (ms)",
        format!(
            "{} / {} ({} events each at {:.0}/s)",
            p50_p99(&before.durations()),
            p50_p99(&after.durations()),
            plan.events(),
            plan.rate
        ),
    );
    figure(
        "faults/healthy p50 / p99 with faults (ms)",
        format!(
            "{} ({:.0} events/s to each of {} fault destinations beside)",
            p50_p99(&with),
            plan.fault_rate,
            FAULTS.len()
        ),
    );
    figure(
        "faults/healthy p99 before the last crashing plugin was quarantined (ms)",
        format!(
            "{:.1} ({} events in {:.1} s)",
            pct_ms(&active, 99.0),
            active.len(),
            last_quarantine
                .map_or(plan.phase, |q| q.saturating_duration_since(during.started))
                .as_secs_f64()
        ),
    );
    figure(
        &format!(
            "faults/healthy p99 ratio with / without faults (target < {TARGET_P99_RATIO}x; \
             containment broken above a {MAX_HEALTHY_P99_MS} ms p99)"
        ),
        format!(
            "{ratio:.2}x, target {} (before the last quarantine {:.2}x)",
            if ratio < TARGET_P99_RATIO {
                "met"
            } else {
                "NOT met"
            },
            pct_ms(&active, 99.0) / p99_quiet
        ),
    );
    let mib = |kib: u64| kib / 1024;
    let growth_mib = mib(during.rss_peak_kib.saturating_sub(rss_before_kib));
    figure(
        "faults/server RSS before / peak with faults / peak after (MiB)",
        format!(
            "{} / {} / {} (bound: +{MAX_RSS_GROWTH_MIB} MiB)",
            mib(rss_before_kib),
            mib(during.rss_peak_kib),
            mib(after.rss_peak_kib)
        ),
    );
    for fault in FAULTS.iter().filter(|f| f.crashes) {
        let after = quarantined_at
            .get(fault.name)
            .map(|at| {
                let secs = at.saturating_duration_since(during.started).as_secs_f64();
                format!("{secs:.1} s")
            })
            .unwrap_or_else(|| "not quarantined".into());
        figure(&format!("faults/{}: quarantined after", fault.name), after);
    }
    let mut broken = Vec::new();
    if growth_mib > MAX_RSS_GROWTH_MIB {
        broken.push(format!(
            "the server's memory grew by {growth_mib} MiB under faults (bound {MAX_RSS_GROWTH_MIB})"
        ));
    }
    let p99_with = pct_ms(&with, 99.0);
    let starved = ratio.is_nan() || p99_with.is_nan() || p99_with > MAX_HEALTHY_P99_MS;
    // Where the tail came from, whenever the target is missed.
    if starved || ratio >= TARGET_P99_RATIO {
        timeline(during);
    }
    if starved {
        broken.push(format!(
            "the healthy p99 with faults is {p99_with:.1} ms, {ratio:.2}x the p99 without \
             (bound {MAX_HEALTHY_P99_MS} ms)"
        ));
    }
    if !broken.is_empty() {
        bail!("{}", broken.join("\n"));
    }
    Ok(())
}

/// The healthy latency of `phase` second by second, to see when it suffered.
fn timeline(phase: &Phase) {
    let mut seconds: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for (sent, d) in &phase.latencies {
        let second = sent.saturating_duration_since(phase.started).as_secs();
        seconds.entry(second).or_default().push(*d);
    }
    eprintln!("faults: healthy latency by second of the faults phase (p50 / max ms):");
    for (second, ds) in seconds {
        let (p50, max) = (pct_ms(&ds, 50.0), pct_ms(&ds, 100.0));
        eprintln!("  {second:>3} s  {p50:>7.1} / {max:>7.1}");
    }
}
