//! `gateway/*`: the real release binary, publishing over HTTP, delivering through the
//! `webhook` plugin to a loopback sink in this process; the same bodies POSTed straight
//! to the sink are the ceiling.
//!
//! Everything shares the machine's cores: the server, and this process (load generator +
//! sink). Nothing is pinned; instead the CPU time of both processes is read from `/proc`
//! around each run and reported per event, so the split is visible.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ceiling;
use super::http::{clock, event_data, start_sink, Conn, Sink};
use super::stats::{cpu_delta, cpu_time, cpus, line, Samples};
use super::writer::WriterCounters;
use crate::server::{Server, ServerConfig, API_KEY};

/// What to run.
pub struct Options {
    /// `outrider` release binary.
    pub binary: PathBuf,
    /// Built plugins (`target/plugins`).
    pub plugins_dir: PathBuf,
    /// Events in the throughput run.
    pub events: usize,
    /// Concurrent keep-alive publishing clients.
    pub concurrency: usize,
    /// Length of the open-loop latency run.
    pub latency_run: Duration,
    /// `None`: SQLite in a temporary data directory; else a PostgreSQL URL (database
    /// included).
    pub database_url: Option<String>,
    /// Prefix of the output lines (`gateway` or `gateway/postgres`).
    pub label: String,
    /// Also measure the raw ceiling.
    pub raw: bool,
}

impl Options {
    /// One compiled-plugin cache next to the binary for every bench server, so a server
    /// start loads the components (the JS and Python examples take tens of seconds to
    /// compile) instead of compiling them again.
    pub(super) fn server_config(&self) -> ServerConfig {
        let cache = self
            .binary
            .parent()
            .map(|dir| dir.join("bench-plugin-cache"))
            .unwrap_or_else(|| PathBuf::from("bench-plugin-cache"));
        ServerConfig {
            database_url: self.database_url.clone(),
            ..ServerConfig::new(&self.binary, &self.plugins_dir)
        }
        .env("OUTRIDER_CACHE_DIR", cache.to_string_lossy())
    }
}

/// What Outrider's throughput is compared with, measured once per bench.
#[derive(Clone, Copy, Debug)]
pub struct Ceilings {
    /// The raw loopback client straight to the sink (req/s).
    pub raw: f64,
    /// The native relay (no storage, no plugin) to the sink (events/s).
    pub relay: f64,
}

/// Results a later run may want (the ceilings are measured once).
pub struct Outcome {
    pub ceilings: Option<Ceilings>,
}

pub fn run(options: &Options, ceilings: Option<Ceilings>) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(options, ceilings))
}

pub(super) async fn admin(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let mut conn = Conn::open(addr, Some(&format!("Bearer {API_KEY}"))).await?;
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let (status, answer) = conn.send(method.clone(), path, body).await?;
    if !status.is_success() {
        bail!(
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null))
}

pub(super) fn publish_body(run: u64, seq: usize, t: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"tenant_id":"bench","topic":"bench.tick","data":{}}}"#,
        event_data(run, seq, t)
    ))
}

/// A publish for the tenant without destinations.
fn ingest_body(run: u64, seq: usize, t: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"tenant_id":"bench-ingest","topic":"bench.tick","data":{}}}"#,
        event_data(run, seq, t)
    ))
}

/// The raw run's body: the event data itself, as the sink receives it from Outrider.
pub(super) fn raw_body(run: u64, seq: usize, t: u64) -> Bytes {
    Bytes::from(event_data(run, seq, t))
}

/// fsync latency of 4 KiB appends in `dir` (µs): what one durable commit waits for.
fn fsync_latency(dir: &Path, n: usize) -> Result<Samples> {
    use std::io::Write;
    let path = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        file.write_all(&block)?;
        let started = Instant::now();
        file.sync_data()?;
        samples.push(started.elapsed().as_micros() as u64);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(Samples::new(samples))
}

/// Closed loop: `concurrency` clients send `n` requests as fast as answers come back.
/// Returns (first send, per-request answer latency in µs, failures).
pub(super) async fn closed_loop(
    addr: SocketAddr,
    auth: Option<&str>,
    path: &'static str,
    concurrency: usize,
    n: usize,
    run: u64,
    body: fn(u64, usize, u64) -> Bytes,
) -> Result<(Vec<u64>, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let auth = auth.map(str::to_string);
        let mut conn = Conn::open(addr, auth.as_deref()).await?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(n / concurrency + 1);
            let mut failures = 0usize;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    break;
                }
                let t = clock();
                match conn.send(Method::POST, path, body(run, seq, t)).await {
                    Ok((status, _)) if status.is_success() => {
                        latencies.push(clock() - t);
                    }
                    Ok(_) => failures += 1,
                    Err(_) => {
                        failures += 1;
                        match Conn::open(addr, auth.as_deref()).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    Ok((latencies, failures))
}

/// Open loop: `n` publishes at `rate` per second, spread over `concurrency` connections
/// (publish `i` goes out at `start + i / rate` on connection `i % concurrency`).
/// Returns (answer latencies µs, failures, how late each send left in µs).
async fn open_loop(
    addr: SocketAddr,
    concurrency: usize,
    n: usize,
    rate: f64,
    run: u64,
) -> Result<(Vec<u64>, usize, Vec<u64>)> {
    let auth = format!("Bearer {API_KEY}");
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for k in 0..concurrency.min(n) {
        let mut conn = Conn::open(addr, Some(&auth)).await?;
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut lateness) = (Vec::new(), Vec::new());
            let mut failures = 0usize;
            for seq in (k..n).step_by(concurrency) {
                let due = start + Duration::from_secs_f64(seq as f64 / rate);
                tokio::time::sleep_until(due).await;
                lateness.push(
                    tokio::time::Instant::now()
                        .saturating_duration_since(due)
                        .as_micros() as u64,
                );
                let t = clock();
                let body = publish_body(run, seq, t);
                match conn.send(Method::POST, "/api/v1/publish", body).await {
                    Ok((status, _)) if status == StatusCode::ACCEPTED => {
                        latencies.push(clock() - t)
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures, lateness)
        }));
    }
    let (mut latencies, mut lateness) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut failures = 0;
    for task in tasks {
        let (l, f, x) = task.await?;
        latencies.extend(l);
        failures += f;
        lateness.extend(x);
    }
    Ok((latencies, failures, lateness))
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

async fn run_async(options: &Options, ceilings: Option<Ceilings>) -> Result<Outcome> {
    let label = &options.label;
    let sink = Arc::new(Sink::default());
    let sink_addr = start_sink(sink.clone()).await?;
    let n = options.events;
    let c = options.concurrency;
    let mut run_id = 0u64;
    let mut next_run = || {
        run_id += 1;
        run_id
    };

    let ceilings = match ceilings {
        Some(ceilings) => Some(ceilings),
        None if options.raw => Some(Ceilings {
            raw: ceiling::raw_ceiling(&sink, sink_addr, (n, c), &mut next_run).await?,
            relay: ceiling::relay_ceiling(&sink, sink_addr, (n, c), &mut next_run).await?,
        }),
        None => None,
    };

    if options.database_url.is_none() {
        // Every durable commit on SQLite waits for one of these.
        let fsync = fsync_latency(&std::env::temp_dir(), if n >= 10_000 { 100 } else { 20 })?;
        line(
            "gateway/context: fsync of a 4 KiB append in the data directory p50/p99 (ms)",
            format!("{:.2} / {:.2}", ms(fsync.pct(50.0)), ms(fsync.pct(99.0))),
        );
    }
    let server = Server::start(&options.server_config())?;
    let result = measure(options, &server, &sink, sink_addr, ceilings, &mut next_run).await;
    if result.is_err() {
        eprintln!("{label}: server log tail:\n{}", server.log_tail());
    }
    server.stop();
    result?;
    Ok(Outcome { ceilings })
}

async fn measure(
    options: &Options,
    server: &Server,
    sink: &Sink,
    sink_addr: SocketAddr,
    ceilings: Option<Ceilings>,
    next_run: &mut impl FnMut() -> u64,
) -> Result<()> {
    let label = &options.label;
    let n = options.events;
    let c = options.concurrency;
    let addr = server.addr();
    for tenant in ["bench", "bench-ingest"] {
        let path = format!("/api/v1/tenants/{tenant}");
        admin(addr, Method::PUT, &path, serde_json::Value::Null).await?;
    }
    admin(
        addr,
        Method::POST,
        "/api/v1/tenants/bench/destinations",
        serde_json::json!({
            "type": "webhook",
            "topics": "*",
            "config": {"url": format!("http://{sink_addr}/hook")},
        }),
    )
    .await?;
    let auth = format!("Bearer {API_KEY}");

    // Warm-up: plugin instances, connections, database pages.
    let warm = next_run();
    let warm_n = (n / 10).clamp(200, 2000);
    sink.reset(warm, warm_n);
    closed_loop(
        addr,
        Some(&auth),
        "/api/v1/publish",
        c,
        warm_n,
        warm,
        publish_body,
    )
    .await?;
    if !sink.wait_all(Duration::from_secs(30)).await {
        bail!(
            "warm-up: only {} of {warm_n} deliveries arrived",
            sink.unique()
        );
    }
    sink.take();

    // Throughput: N events, C clients, first publish to last delivery.
    let run = next_run();
    sink.reset(run, n);
    let writer0 = WriterCounters::read(addr).await?;
    let server_cpu0 = cpu_time(Some(server.pid()));
    let own_cpu0 = cpu_time(None);
    let started = clock();
    let (acks, failures) = closed_loop(
        addr,
        Some(&auth),
        "/api/v1/publish",
        c,
        n,
        run,
        publish_body,
    )
    .await?;
    let published = clock();
    let all = sink.wait_all(Duration::from_secs(30)).await;
    let server_cpu = cpu_delta(server_cpu0, cpu_time(Some(server.pid())));
    let own_cpu = cpu_delta(own_cpu0, cpu_time(None));
    let phase = sink.take();
    if failures > 0 || !all {
        bail!(
            "{label}: {failures} publishes failed; {} of {n} deliveries arrived ({} duplicates, {} stray)",
            phase.unique,
            phase.duplicates,
            phase.stray
        );
    }
    let wall = (phase.last_at - started) as f64 / 1e6;
    let rate = n as f64 / wall;
    let publish_rate = n as f64 / ((published - started) as f64 / 1e6);
    let acks = Samples::new(acks);
    let e2e = Samples::new(phase.latencies_us);
    line(
        &format!("{label}/throughput (events/s, first publish -> last delivery)"),
        format!("{rate:.0} ({n} events, {c} clients; publishes accepted at {publish_rate:.0}/s)"),
    );
    if let Some(ceilings) = ceilings {
        line(
            &format!("{label}/throughput vs raw loopback ceiling (target >= 0.4)"),
            format!("{:.3}", rate / ceilings.raw),
        );
        line(
            &format!("{label}/throughput vs native relay ceiling"),
            format!("{:.3}", rate / ceilings.relay),
        );
    }
    line(
        &format!("{label}/throughput publish -> delivery p50/p99 (ms, saturated)"),
        format!("{:.1} / {:.1}", ms(e2e.pct(50.0)), ms(e2e.pct(99.0))),
    );
    line(
        &format!("{label}/throughput publish answer p50/p99 (ms)"),
        format!("{:.1} / {:.1}", ms(acks.pct(50.0)), ms(acks.pct(99.0))),
    );
    line(
        &format!("{label}/throughput CPU per event: server / load generator + sink (us)"),
        format!(
            "{:.0} / {:.0} (server busy {:.0}% of {} CPUs, load generator {:.0}%)",
            server_cpu.as_secs_f64() * 1e6 / n as f64,
            own_cpu.as_secs_f64() * 1e6 / n as f64,
            100.0 * server_cpu.as_secs_f64() / (wall * cpus() as f64),
            cpus(),
            100.0 * own_cpu.as_secs_f64() / (wall * cpus() as f64),
        ),
    );
    WriterCounters::read(addr)
        .await?
        .report_since(&writer0, &format!("{label}/throughput"));

    // Ingest alone: the same publishes for a tenant without destinations (no deliveries),
    // to tell publishing costs from delivery costs.
    let ingest_n = (n / 2).max(100);
    let run_ingest = next_run();
    let server_cpu0 = cpu_time(Some(server.pid()));
    let started = clock();
    let (ingest_acks, failures) = closed_loop(
        addr,
        Some(&auth),
        "/api/v1/publish",
        c,
        ingest_n,
        run_ingest,
        ingest_body,
    )
    .await?;
    let took = (clock() - started) as f64 / 1e6;
    let server_cpu = cpu_delta(server_cpu0, cpu_time(Some(server.pid())));
    if failures > 0 {
        bail!("{label} ingest run: {failures} publishes failed");
    }
    let ingest_acks = Samples::new(ingest_acks);
    line(
        &format!("{label}/ingest only, tenant without destinations (events/s)"),
        format!(
            "{:.0} (answer p50/p99 {:.1} / {:.1} ms, server {:.0} us CPU/event)",
            ingest_n as f64 / took,
            ms(ingest_acks.pct(50.0)),
            ms(ingest_acks.pct(99.0)),
            server_cpu.as_secs_f64() * 1e6 / ingest_n as f64,
        ),
    );

    // Latency at a quarter of the measured peak, paced open loop.
    let rate = (rate / 4.0).max(1.0);
    let m = ((rate * options.latency_run.as_secs_f64()) as usize).max(100);
    let run = next_run();
    sink.reset(run, m);
    let writer0 = WriterCounters::read(addr).await?;
    let (acks, failures, lateness) = open_loop(addr, c, m, rate, run).await?;
    let lateness = Samples::new(lateness);
    let all = sink.wait_all(Duration::from_secs(30)).await;
    let phase = sink.take();
    if failures > 0 || !all {
        bail!(
            "{label} latency run: {failures} publishes failed; {} of {m} deliveries arrived",
            phase.unique
        );
    }
    let acks = Samples::new(acks);
    let e2e = Samples::new(phase.latencies_us);
    line(
        &format!(
            "{label}/latency at 1/4 peak publish -> delivery p50/p99/max (ms, target p99 < 10)"
        ),
        format!(
            "{:.2} / {:.2} / {:.2} ({m} events at {rate:.0}/s open loop; sends left p99 {:.2} ms \
             behind schedule)",
            ms(e2e.pct(50.0)),
            ms(e2e.pct(99.0)),
            ms(e2e.pct(100.0)),
            ms(lateness.pct(99.0)),
        ),
    );
    line(
        &format!("{label}/latency at 1/4 peak publish answer p50/p99 (ms)"),
        format!("{:.2} / {:.2}", ms(acks.pct(50.0)), ms(acks.pct(99.0))),
    );
    WriterCounters::read(addr)
        .await?
        .report_since(&writer0, &format!("{label}/latency"));
    Ok(())
}

/// The `outrider` release binary under `target`.
pub fn binary(target: &Path) -> PathBuf {
    target.join("release").join("outrider")
}
