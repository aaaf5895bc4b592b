//! The ceilings Outrider's gateway throughput is compared with, each one closed-loop run
//! in the same bench: the raw client straight to the sink, and the native relay
//! ([`super::relay`]) in front of it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use bytes::Bytes;

use super::gateway::{closed_loop, publish_body, raw_body};
use super::http::{clock, Sink};
use super::relay::{Forward, RelayProcess};
use super::stats::{cpu_delta, cpu_time, cpus, line};

/// One closed-loop run to the sink through `addr` (the sink itself, or a relay), after a
/// warm-up of 2,000: at least 50,000 requests so the run lasts long enough to time.
struct CeilingRun {
    /// Requests sent (each one event).
    n: usize,
    /// Events (requests) per second, first send to last arrival.
    rate: f64,
    /// CPU time per request of this process (load generator + sink), µs.
    own_us: f64,
    /// CPU time per request of `other` (the relay process), µs.
    other_us: f64,
    /// Share of all CPUs this process used.
    own_share: f64,
}

/// Where a ceiling run sends its requests.
struct Through {
    /// Name in errors.
    what: &'static str,
    addr: SocketAddr,
    path: &'static str,
    body: fn(u64, usize, u64) -> Bytes,
    /// A process in the path whose CPU time is reported.
    other: Option<u32>,
}

async fn ceiling_run(
    through: Through,
    sink: &Sink,
    (n, c): (usize, usize),
    next_run: &mut impl FnMut() -> u64,
) -> Result<CeilingRun> {
    let Through {
        what,
        addr,
        path,
        body,
        other,
    } = through;
    let warm = next_run();
    sink.reset(warm, 2000);
    closed_loop(addr, None, path, c, 2000, warm, body).await?;
    if !sink.wait_all(Duration::from_secs(10)).await {
        bail!("{what} warm-up: {} of 2000 arrived", sink.unique());
    }
    let n = n.max(50_000);
    let run = next_run();
    sink.reset(run, n);
    let (own0, other0) = (cpu_time(None), other.and_then(|pid| cpu_time(Some(pid))));
    let started = clock();
    let (_, failures) = closed_loop(addr, None, path, c, n, run, body).await?;
    let all = sink.wait_all(Duration::from_secs(10)).await;
    let own = cpu_delta(own0, cpu_time(None));
    let other = cpu_delta(other0, other.and_then(|pid| cpu_time(Some(pid))));
    let phase = sink.take();
    if !all || failures > 0 {
        bail!(
            "{what} run: {} of {n} arrived, {failures} failures",
            phase.unique
        );
    }
    let wall = (phase.last_at.max(started) - started) as f64 / 1e6;
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / n as f64;
    Ok(CeilingRun {
        n,
        rate: n as f64 / wall,
        own_us: per_request(own),
        other_us: per_request(other),
        own_share: own.as_secs_f64() / (wall * cpus() as f64),
    })
}

/// The same bodies, the same concurrency, straight to the sink (req/s).
pub(super) async fn raw_ceiling(
    sink: &Sink,
    sink_addr: SocketAddr,
    (n, c): (usize, usize),
    next_run: &mut impl FnMut() -> u64,
) -> Result<f64> {
    let through = Through {
        what: "raw",
        addr: sink_addr,
        path: "/hook",
        body: raw_body,
        other: None,
    };
    let run = ceiling_run(through, sink, (n, c), next_run).await?;
    line(
        "gateway/raw loopback POST -> sink (req/s)",
        format!(
            "{:.0} ({} requests, {c} clients, {:.0} us CPU/request, {:.0}% of {} CPUs)",
            run.rate,
            run.n,
            run.own_us,
            100.0 * run.own_share,
            cpus()
        ),
    );
    Ok(run.rate)
}

/// The publish bodies through the native relay ([`super::relay`]) to the sink (events/s).
pub(super) async fn relay_ceiling(
    sink: &Sink,
    sink_addr: SocketAddr,
    (n, c): (usize, usize),
    next_run: &mut impl FnMut() -> u64,
) -> Result<f64> {
    let relay = RelayProcess::start(&Forward::Http { sink: sink_addr })?;
    let through = Through {
        what: "relay",
        addr: relay.addr(),
        path: "/api/v1/publish",
        body: publish_body,
        other: Some(relay.pid()),
    };
    let run = ceiling_run(through, sink, (n, c), next_run).await?;
    line(
        "gateway/relay ceiling: native relay (parse, 202, forward; no storage, no plugin) -> sink (events/s)",
        format!(
            "{:.0} ({} events, {c} clients; CPU per event: relay {:.0} us / load generator + sink {:.0} us)",
            run.rate, run.n, run.other_us, run.own_us,
        ),
    );
    Ok(run.rate)
}
