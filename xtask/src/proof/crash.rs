//! proof/crash: a publisher burst against one server on SQLite, `kill -9` at random points
//! (10 times, `--full` 50), each time restarted on the same data directory. Every event
//! answered 202 must reach the loopback sink at least once afterwards.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::load::{percent, runtime, wait_settled, wait_until, Api, Burst, Nodes, Rng};
use super::sink::Sink;
use super::{figure, Ctx};
use crate::server::{ScratchDir, Server};

pub fn run(ctx: &Ctx) -> Result<()> {
    let kills = ctx.size(10, 50);
    let rt = runtime()?;
    let sink = rt.block_on(Sink::start())?;
    let dir = ScratchDir::new("outrider-proof-crash")?;
    let config = ctx
        .server()
        .data_dir(dir.path())
        .env("OUTRIDER_RETRY_SCHEDULE", "100ms,200ms,500ms,1s,2s,5s");
    let mut server = Server::start(&config)?;
    let api = Api::new(server.addr());
    rt.block_on(api.webhook("crash", &sink.url("/hook"), json!({})))?;

    let nodes = Nodes::new(1);
    nodes.set(0, Some(server.addr()));
    let burst = Burst {
        clients: 8,
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
    let mut restart_ms = Vec::new();
    for _ in 0..kills {
        // A random point: anywhere from just after the restart (redelivering what the
        // last kill interrupted) to well into the burst.
        std::thread::sleep(rng.duration(Duration::from_millis(50), Duration::from_millis(1500)));
        nodes.set(0, None);
        server.kill9();
        let restarted = Instant::now();
        server = Server::start(&config)?;
        restart_ms.push(restarted.elapsed().as_millis() as u64);
        nodes.set(0, Some(server.addr()));
    }
    // A last stretch without kills, then the publishers stop.
    std::thread::sleep(Duration::from_millis(500));
    published.stop();
    rt.block_on(clients)?;

    let accepted: HashSet<String> = published.accepted().into_iter().map(|(id, _)| id).collect();
    if accepted.is_empty() {
        bail!(
            "no publish was accepted (refused: {:?}); log tail:\n{}",
            published.first_refusal.lock().expect("published").clone(),
            server.log_tail()
        );
    }
    let delivered = |sink: &Sink| -> HashSet<String> {
        sink.received()
            .into_iter()
            .filter(|r| r.delivered())
            .map(|r| r.event_id)
            .collect()
    };
    let waited = wait_until(
        "every accepted event delivered",
        Duration::from_secs(60),
        || sink.delivered_count(),
        || accepted.is_subset(&delivered(&sink)),
    );
    // Retries of deliveries whose answer was cut by the last kill land too, so the
    // duplicate figure is complete.
    let tasks = wait_settled(
        &rt,
        &Api::new(server.addr()),
        "crash",
        Duration::from_secs(30),
    )?;
    let received = sink.received();
    let mut deliveries: HashMap<&str, usize> = HashMap::new();
    for r in received.iter().filter(|r| r.delivered()) {
        *deliveries.entry(r.event_id.as_str()).or_default() += 1;
    }
    let lost: Vec<&String> = accepted
        .iter()
        .filter(|id| !deliveries.contains_key(id.as_str()))
        .collect();
    let extra: usize = accepted
        .iter()
        .filter_map(|id| deliveries.get(id.as_str()))
        .map(|n| n - 1)
        .sum();
    let unacknowledged = deliveries
        .keys()
        .filter(|id| !accepted.contains(**id))
        .count();
    restart_ms.sort_unstable();

    figure(
        "crash/kills",
        format!("{kills} (kill -9, restarted on the same SQLite data directory; seed {seed})"),
    );
    figure(
        "crash/accepted",
        format!("{} events answered 202 by 8 clients", accepted.len()),
    );
    figure("crash/lost", lost.len());
    figure(
        "crash/duplicates",
        format!(
            "{} ({extra} extra deliveries of accepted events)",
            percent(extra, accepted.len())
        ),
    );
    figure(
        "crash/tasks",
        format!(
            "{} finished, {} failed, {} still queued or claimed",
            tasks["finished"],
            tasks["failed"],
            tasks["new"].as_u64().unwrap_or(0) + tasks["processing"].as_u64().unwrap_or(0)
        ),
    );
    figure(
        "crash/unanswered publishes",
        format!(
            "{} cut by a kill before their answer ({unacknowledged} of them were stored and delivered anyway)",
            published.unanswered.load(std::sync::atomic::Ordering::Relaxed)
        ),
    );
    figure(
        "crash/restart to listening (ms, median / max)",
        format!(
            "{} / {}",
            restart_ms[restart_ms.len() / 2],
            restart_ms.last().copied().unwrap_or_default()
        ),
    );
    published.no_refusals()?;
    if !lost.is_empty() {
        let mut sample: Vec<&String> = lost.into_iter().collect();
        sample.sort();
        sample.truncate(10);
        bail!(
            "accepted events never delivered, e.g. {sample:?}; log tail:\n{}",
            server.log_tail()
        );
    }
    waited?;
    server.stop();
    Ok(())
}
