//! proof/scale-out: two `outrider serve` nodes on one fresh PostgreSQL database, a burst
//! published to both, one node killed with `kill -9` a third of the way in and restarted.
//! No accepted event may be lost, and no delivery may be claimed by two workers at once:
//!
//! - at the sink, no request for an event arrives while another request for the same
//!   event is still open (each request is held 20 ms to widen the window), and
//! - in the attempt log, no delivery has the same attempt number recorded twice (two
//!   claims of one delivery at once would both record `attempts + 1`).
//!
//! The sink names the node behind each connection from `/proc`, so the figures show that
//! both nodes delivered and that the dead node's claims were taken over.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::load::{percent, runtime, wait_settled, wait_until, Api, Burst, Nodes};
use super::procfs::socket_owner;
use super::sink::{Behaviour, Sink};
use super::{figure, Ctx};
use crate::server::{PostgresDatabase, Server};

/// Plugin deadline of both nodes: a claim's lease is twice that plus 5 s, which is how
/// long the dead node's claims wait before the other node may take them.
const PLUGIN_TIMEOUT_MS: u64 = 2000;

pub fn run(ctx: &Ctx) -> Result<()> {
    let total = ctx.size(4000, 20_000);
    let db = PostgresDatabase::create(&ctx.postgres)?;
    let config = ctx
        .server()
        .database(db.url())
        .env("OUTRIDER_PLUGIN_TIMEOUT_MS", PLUGIN_TIMEOUT_MS.to_string())
        .env("OUTRIDER_RETRY_SCHEDULE", "200ms,500ms,1s,2s,5s");
    let rt = runtime()?;
    let sink = rt.block_on(Sink::start())?;
    sink.set(Behaviour::Answer {
        status: 200,
        after: Duration::from_millis(20),
    });
    // Which process is which node: (pid, name), updated on restart.
    let names: Arc<Mutex<Vec<(u32, String)>>> = Arc::default();
    let lookup = names.clone();
    sink.identify_peers(Arc::new(move |peer| {
        let names = lookup.lock().expect("names").clone();
        let pids: Vec<u32> = names.iter().map(|(pid, _)| *pid).collect();
        let pid = socket_owner(peer, &pids)?;
        names.into_iter().find(|(p, _)| *p == pid).map(|(_, n)| n)
    }));

    let first = Server::start(&config)?;
    let mut second = Server::start(&config)?;
    names.lock().expect("names").extend([
        (first.pid(), "node 1".to_string()),
        (second.pid(), "node 2".to_string()),
    ]);
    let api = Api::new(first.addr());
    let destination = rt.block_on(api.webhook("scale", &sink.url("/hook"), json!({})))?;

    let nodes = Nodes::new(2);
    nodes.set(0, Some(first.addr()));
    nodes.set(1, Some(second.addr()));
    let burst = Burst {
        clients: 8,
        tenant: "scale".into(),
        prefix: "scale".into(),
        limit: Some(total),
        rate: None,
    };
    let (published, clients) = {
        let _enter = rt.enter();
        burst.start(nodes.clone())
    };
    wait_until(
        "a third of the burst accepted",
        Duration::from_secs(60),
        || published.accepted_count(),
        || published.accepted_count() >= total / 3,
    )?;
    nodes.set(1, None);
    second.kill9();
    let killed_at = Instant::now();
    let delivered_at_kill = sink.delivered_count();
    std::thread::sleep(Duration::from_secs(1));
    second = Server::start(&config)?;
    names
        .lock()
        .expect("names")
        .push((second.pid(), "node 2 restarted".to_string()));
    nodes.set(1, Some(second.addr()));
    rt.block_on(clients)?;

    let accepted: HashSet<String> = published.accepted().into_iter().map(|(id, _)| id).collect();
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
    let drained = killed_at.elapsed();
    // The dead node's claims are retried only once their lease ends: wait for that, so
    // the duplicate figure and the attempt log are complete.
    let tasks = wait_settled(&rt, &api, "scale", Duration::from_secs(30))?;
    let attempts = rt.block_on(api.all(&format!(
        "/api/v1/attempts?tenant_id=scale&destination_id={destination}"
    )))?;

    let received = sink.received();
    let mut deliveries: HashMap<&str, usize> = HashMap::new();
    let mut by_node: HashMap<String, usize> = HashMap::new();
    for r in received.iter().filter(|r| r.delivered()) {
        *deliveries.entry(r.event_id.as_str()).or_default() += 1;
        *by_node
            .entry(r.sender.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let lost = accepted
        .iter()
        .filter(|id| !deliveries.contains_key(id.as_str()))
        .count();
    let extra: usize = deliveries.values().map(|n| n - 1).sum();
    let concurrent = sink.concurrent();
    let mut numbers: HashMap<(String, i64), usize> = HashMap::new();
    for a in &attempts {
        let key = (
            a["event_id"].as_str().unwrap_or_default().to_string(),
            a["attempt_number"].as_i64().unwrap_or_default(),
        );
        *numbers.entry(key).or_default() += 1;
    }
    let twice: Vec<&(String, i64)> = numbers
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    let mut nodes_line: Vec<String> = by_node.iter().map(|(n, c)| format!("{n} {c}")).collect();
    nodes_line.sort();

    figure(
        "scale-out/accepted",
        format!(
            "{} of {total} events answered 202 by two nodes on one PostgreSQL database (node 2 killed with kill -9 after {}; {} publishes cut by the kill)",
            accepted.len(),
            total / 3,
            published.unanswered.load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
    figure("scale-out/lost", lost);
    figure(
        "scale-out/claimed twice at the same time",
        format!(
            "{} (requests for one event open at once at the sink: {}; attempt numbers recorded twice: {} of {} attempts)",
            concurrent.len() + twice.len(),
            concurrent.len(),
            twice.len(),
            attempts.len()
        ),
    );
    figure(
        "scale-out/duplicates",
        format!(
            "{} ({extra} repeated deliveries: answered by the sink, but the node died before recording it)",
            percent(extra, accepted.len())
        ),
    );
    figure("scale-out/deliveries by node", nodes_line.join(", "));
    figure(
        "scale-out/tasks",
        format!(
            "{} finished, {} failed, {} still queued or claimed",
            tasks["finished"],
            tasks["failed"],
            tasks["new"].as_u64().unwrap_or(0) + tasks["processing"].as_u64().unwrap_or(0)
        ),
    );
    figure(
        "scale-out/kill to last delivery (s)",
        format!(
            "{:.1} ({} of the events were delivered when node 2 died; its claims lease for {} s)",
            drained.as_secs_f64(),
            delivered_at_kill,
            PLUGIN_TIMEOUT_MS * 2 / 1000 + 5
        ),
    );
    published.no_refusals()?;
    if lost > 0 {
        bail!(
            "{lost} accepted events never delivered; node 1 log tail:\n{}",
            first.log_tail()
        );
    }
    waited?;
    if !concurrent.is_empty() || !twice.is_empty() {
        bail!(
            "deliveries claimed twice at once: at the sink {:?}, in the attempt log {:?}",
            &concurrent[..concurrent.len().min(10)],
            &twice[..twice.len().min(10)]
        );
    }
    first.stop();
    second.stop();
    Ok(())
}
