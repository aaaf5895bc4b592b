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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::load::{percent, runtime, task_line, wait_settled, wait_until, Api, Burst, Nodes};
use super::procfs::socket_owner;
use super::sink::{Behaviour, Sink, Tally};
use super::{figure, Ctx};
use crate::server::{PostgresDatabase, Server, ServerConfig};

/// Plugin deadline of both nodes. A claim's lease is three times that plus 5 s (at the
/// default delivery concurrency of 256, a delivery may wait two batch calls in its lane
/// before its own), which is how long the dead node's claims wait before the other node
/// may take them.
const PLUGIN_TIMEOUT_MS: u64 = 2000;

/// The lease of a claim, seconds (see `PLUGIN_TIMEOUT_MS`).
const LEASE_SECS: u64 = PLUGIN_TIMEOUT_MS * 3 / 1000 + 5;

/// Server process ids and the names the sink gives their connections.
type Names = Arc<Mutex<Vec<(u32, String)>>>;

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
    let names = name_senders(&sink);
    let first = Server::start(&config)?;
    let second = Server::start(&config)?;
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
    let killed_at = Instant::now();
    let delivered_at_kill = sink.delivered_count();
    let second = kill_and_restart(second, &config, &nodes, &names)?;
    rt.block_on(clients)?;
    published.no_refusals()?;

    let accepted = published.accepted_ids();
    let waited = sink.wait_delivered(&accepted, Duration::from_secs(60));
    let drained = killed_at.elapsed();
    // The dead node's claims are retried only once their lease ends: wait for that, so
    // the duplicate figure and the attempt log are complete.
    let tasks = wait_settled(&rt, &api, "scale", Duration::from_secs(30))?;
    let attempts = rt.block_on(api.all(&format!(
        "/api/v1/attempts?tenant_id=scale&destination_id={destination}"
    )))?;
    let outcome = Outcome {
        total,
        accepted: accepted.len(),
        unanswered: published.unanswered.load(Ordering::Relaxed),
        tally: sink.tally(&accepted),
        concurrent: sink.concurrent(),
        twice: attempt_numbers_twice(&attempts),
        attempts: attempts.len(),
        tasks,
        drained,
        delivered_at_kill,
    };
    outcome.report();
    if !outcome.tally.lost.is_empty() {
        bail!(
            "{} accepted events never delivered, e.g. {:?}; node 1 log tail:\n{}",
            outcome.tally.lost.len(),
            &outcome.tally.lost[..outcome.tally.lost.len().min(10)],
            first.log_tail()
        );
    }
    waited?;
    if !outcome.concurrent.is_empty() || !outcome.twice.is_empty() {
        bail!(
            "deliveries claimed twice at once: at the sink {:?}, in the attempt log {:?}",
            &outcome.concurrent[..outcome.concurrent.len().min(10)],
            &outcome.twice[..outcome.twice.len().min(10)]
        );
    }
    first.stop();
    second.stop();
    Ok(())
}

/// What the run showed.
struct Outcome {
    total: usize,
    accepted: usize,
    unanswered: usize,
    tally: Tally,
    /// Events with two requests open at once at the sink.
    concurrent: Vec<String>,
    /// (event, attempt number) recorded twice.
    twice: Vec<(String, i64)>,
    attempts: usize,
    tasks: Value,
    /// From the kill to the last accepted event delivered.
    drained: Duration,
    delivered_at_kill: usize,
}

impl Outcome {
    fn report(&self) {
        figure(
            "scale-out/accepted",
            format!(
                "{} of {} events answered 202 by two nodes on one PostgreSQL database (node 2 killed with kill -9 after {}; {} publishes cut by the kill)",
                self.accepted,
                self.total,
                self.total / 3,
                self.unanswered,
            ),
        );
        figure("scale-out/lost", self.tally.lost.len());
        figure(
            "scale-out/claimed twice at the same time",
            format!(
                "{} (requests for one event open at once at the sink: {}; attempt numbers recorded twice: {} of {} attempts)",
                self.concurrent.len() + self.twice.len(),
                self.concurrent.len(),
                self.twice.len(),
                self.attempts
            ),
        );
        figure(
            "scale-out/duplicates",
            format!(
                "{} ({} repeated deliveries: answered by the sink, but the node died before recording it)",
                percent(self.tally.duplicates, self.accepted),
                self.tally.duplicates
            ),
        );
        let by_node: Vec<String> = self
            .tally
            .by_sender
            .iter()
            .map(|(node, n)| format!("{node} {n}"))
            .collect();
        figure("scale-out/deliveries by node", by_node.join(", "));
        figure("scale-out/tasks", task_line(&self.tasks));
        figure(
            "scale-out/kill to last delivery (s)",
            format!(
                "{:.1} ({} of the events were delivered when node 2 died; its claims lease for {} s)",
                self.drained.as_secs_f64(),
                self.delivered_at_kill,
                LEASE_SECS
            ),
        );
    }
}

/// Lets the sink name each connection by the server process holding its other end.
fn name_senders(sink: &Sink) -> Names {
    let names: Names = Arc::default();
    let lookup = names.clone();
    sink.identify_peers(Arc::new(move |peer| {
        let names = lookup.lock().expect("names").clone();
        let pids: Vec<u32> = names.iter().map(|(pid, _)| *pid).collect();
        let pid = socket_owner(peer, &pids)?;
        names.into_iter().find(|(p, _)| *p == pid).map(|(_, n)| n)
    }));
    names
}

/// `kill -9` node 2, and after a second start it again (its claims stay leased).
fn kill_and_restart(
    node: Server,
    config: &ServerConfig,
    nodes: &Nodes,
    names: &Names,
) -> Result<Server> {
    nodes.set(1, None);
    node.kill9();
    std::thread::sleep(Duration::from_secs(1));
    let node = Server::start(config)?;
    names
        .lock()
        .expect("names")
        .push((node.pid(), "node 2 restarted".to_string()));
    nodes.set(1, Some(node.addr()));
    Ok(node)
}

/// (event, attempt number) pairs the attempt log holds more than once.
fn attempt_numbers_twice(attempts: &[Value]) -> Vec<(String, i64)> {
    let mut numbers: HashMap<(String, i64), usize> = HashMap::new();
    for a in attempts {
        let key = (
            a["event_id"].as_str().unwrap_or_default().to_string(),
            a["attempt_number"].as_i64().unwrap_or_default(),
        );
        *numbers.entry(key).or_default() += 1;
    }
    let mut twice: Vec<(String, i64)> = numbers
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    twice.sort();
    twice
}
