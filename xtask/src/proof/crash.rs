//! proof/crash: a publisher burst against one server on SQLite, `kill -9` at random points
//! (10 times, `--full` 50), each time restarted on the same data directory. Every event
//! answered 202 must reach the loopback sink at least once afterwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::load::{percent, runtime, task_line, wait_settled, Api, Burst, Nodes, Published, Rng};
use super::sink::Sink;
use super::{figure, Ctx};
use crate::server::{ScratchDir, Server, ServerConfig};

/// Concurrent publishing clients.
const CLIENTS: usize = 8;

pub fn run(ctx: &Ctx) -> Result<()> {
    let kills = ctx.size(10, 50);
    let rt = runtime()?;
    let sink = rt.block_on(Sink::start())?;
    let dir = ScratchDir::new("outrider-proof-crash")?;
    let config = ctx
        .server()
        .data_dir(dir.path())
        .env("OUTRIDER_RETRY_SCHEDULE", "100ms,200ms,500ms,1s,2s,5s");
    let server = Server::start(&config)?;
    rt.block_on(Api::new(server.addr()).webhook("crash", &sink.url("/hook"), json!({})))?;

    let nodes = Nodes::new(1);
    nodes.set(0, Some(server.addr()));
    let burst = Burst {
        clients: CLIENTS,
        tenant: "crash".into(),
        prefix: "crash".into(),
        limit: None,
        rate: None,
    };
    let (published, clients) = {
        let _enter = rt.enter();
        burst.start(nodes.clone())
    };
    let mut rng = Rng::from_env();
    let seed = rng.seed();
    let (server, restart_ms) = kill_repeatedly(server, &config, &nodes, kills, &mut rng)?;
    // A last stretch without kills, then the publishers stop.
    std::thread::sleep(Duration::from_millis(500));
    published.stop();
    rt.block_on(clients)?;
    published.no_refusals()?;

    let accepted = published.accepted_ids();
    if accepted.is_empty() {
        bail!("no publish was accepted; log tail:\n{}", server.log_tail());
    }
    let waited = sink.wait_delivered(&accepted, Duration::from_secs(60));
    // Retries of deliveries whose answer was cut by the last kill land too, so the
    // duplicate figure is complete.
    let tasks = wait_settled(
        &rt,
        &Api::new(server.addr()),
        "crash",
        Duration::from_secs(30),
    )?;
    let tally = sink.tally(&accepted);

    figure(
        "crash/kills",
        format!("{kills} (kill -9, restarted on the same SQLite data directory; seed {seed})"),
    );
    figure(
        "crash/accepted",
        format!(
            "{} events answered 202 by {CLIENTS} clients",
            accepted.len()
        ),
    );
    figure("crash/lost", tally.lost.len());
    figure(
        "crash/duplicates",
        format!(
            "{} ({} extra deliveries)",
            percent(tally.duplicates, accepted.len()),
            tally.duplicates
        ),
    );
    figure("crash/tasks", task_line(&tasks));
    report_cut(&published, tally.unaccepted);
    figure(
        "crash/restart to listening (ms, median / max)",
        format!(
            "{} / {}",
            restart_ms[restart_ms.len() / 2],
            restart_ms.last().copied().unwrap_or_default()
        ),
    );
    if !tally.lost.is_empty() {
        bail!(
            "accepted events never delivered, e.g. {:?}; log tail:\n{}",
            &tally.lost[..tally.lost.len().min(10)],
            server.log_tail()
        );
    }
    waited?;
    server.stop();
    Ok(())
}

/// `kill -9` the server `kills` times at random points, restarting it on the same
/// configuration each time; returns the last server and the restart times (ms, sorted).
fn kill_repeatedly(
    mut server: Server,
    config: &ServerConfig,
    nodes: &Nodes,
    kills: usize,
    rng: &mut Rng,
) -> Result<(Server, Vec<u64>)> {
    let mut restart_ms = Vec::new();
    for _ in 0..kills {
        // Anywhere from just after the restart (redelivering what the last kill
        // interrupted) to well into the burst.
        std::thread::sleep(rng.duration(Duration::from_millis(50), Duration::from_millis(1500)));
        nodes.set(0, None);
        server.kill9();
        let restarted = Instant::now();
        server = Server::start(config)?;
        restart_ms.push(restarted.elapsed().as_millis() as u64);
        nodes.set(0, Some(server.addr()));
    }
    restart_ms.sort_unstable();
    Ok((server, restart_ms))
}

/// Publishes whose connection a kill cut before the answer: nothing was promised for
/// them, though some were stored (and delivered) before the kill.
fn report_cut(published: &Arc<Published>, delivered_anyway: usize) {
    figure(
        "crash/unanswered publishes",
        format!(
            "{} cut by a kill before their answer ({delivered_anyway} of them were stored and delivered anyway)",
            published.unanswered.load(Ordering::Relaxed)
        ),
    );
}
