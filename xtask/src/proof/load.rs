//! Driving servers from the proof scenarios: an admin API client, a publisher burst that
//! records which events got their 202 (and keeps going across server restarts), a seeded
//! random source, and the tokio runtime they run on.
//!
//! Scenarios orchestrate on their own thread (starting and killing servers is blocking)
//! and run the sink and publishers on [`runtime`]'s threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::bench::http::Conn;
use crate::server::API_KEY;

/// The runtime of a scenario's sinks and publishers (two worker threads, as the CI
/// machines have two cores).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The admin API of one server.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    addr: SocketAddr,
}

impl Api {
    /// The server listening on `addr`, with the harness's admin key.
    pub fn new(addr: SocketAddr) -> Api {
        Api { addr }
    }

    /// One request; the status and the JSON answer (`Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut conn = Conn::open(self.addr, Some(&format!("Bearer {API_KEY}"))).await?;
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let (status, answer) = tokio::time::timeout(
            Duration::from_secs(60),
            conn.send(method.clone(), path, body),
        )
        .await
        .with_context(|| format!("{method} {path}: no answer within 60 s"))??;
        Ok((
            status,
            serde_json::from_slice(&answer).unwrap_or(Value::Null),
        ))
    }

    /// One request that must succeed (2xx); its JSON answer.
    pub async fn ok(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, answer) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {answer}");
        }
        Ok(answer)
    }

    /// Every model of a paginated list (`?limit=1000`, following `pagination.next`).
    pub async fn all(&self, path: &str) -> Result<Vec<Value>> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut models = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page_path = match &next {
                Some(cursor) => format!("{path}{join}limit=1000&next={cursor}"),
                None => format!("{path}{join}limit=1000"),
            };
            let page = self.ok(Method::GET, &page_path, None).await?;
            let batch = page["models"].as_array().cloned().unwrap_or_default();
            let empty = batch.is_empty();
            models.extend(batch);
            next = page["pagination"]["next"].as_str().map(str::to_string);
            if next.is_none() || empty {
                return Ok(models);
            }
        }
    }

    /// Creates tenant `tenant` and a webhook destination for it to `url` with extra
    /// destination fields (`retry_schedule`, `credentials`, ...); returns its id.
    pub async fn webhook(&self, tenant: &str, url: &str, extra: Value) -> Result<String> {
        self.ok(Method::PUT, &format!("/api/v1/tenants/{tenant}"), None)
            .await?;
        let mut body = serde_json::json!({
            "type": "webhook",
            "topics": "*",
            "config": { "url": url },
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let created = self
            .ok(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/destinations"),
                Some(&body),
            )
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .context("the created destination has no id")
    }
}

/// Waits until no delivery of `tenant` is queued or claimed any more (`new` and
/// `processing` tasks both 0 in `GET /api/v1/tasks/stats`): every one has finished,
/// failed or been skipped, claims of dead nodes included. Returns the final counts.
pub fn wait_settled(
    rt: &tokio::runtime::Runtime,
    api: &Api,
    tenant: &str,
    stall: Duration,
) -> Result<Value> {
    let path = format!("/api/v1/tasks/stats?tenant_id={tenant}");
    let counts = std::cell::RefCell::new(Value::Null);
    let read = |field: &str| counts.borrow()["results"][field].as_u64().unwrap_or(0) as usize;
    let mut error = None;
    wait_until(
        &format!("every delivery of {tenant} settled"),
        stall,
        || read("finished") + read("failed") + read("skipped"),
        || {
            match rt.block_on(api.ok(Method::GET, &path, None)) {
                Ok(now) => *counts.borrow_mut() = now,
                Err(e) => error = Some(e),
            }
            error.is_some() || (read("total") > 0 && read("new") + read("processing") == 0)
        },
    )?;
    if let Some(e) = error {
        return Err(e);
    }
    Ok(counts.into_inner()["results"].clone())
}

/// `N finished, N failed, N still queued or claimed`, from [`wait_settled`]'s counts.
pub fn task_line(tasks: &Value) -> String {
    let open = tasks["new"].as_u64().unwrap_or(0) + tasks["processing"].as_u64().unwrap_or(0);
    format!(
        "{} finished, {} failed, {open} still queued or claimed",
        tasks["finished"], tasks["failed"]
    )
}

/// Where publishers send: one address per node, `None` while that node is down.
#[derive(Default)]
pub struct Nodes {
    addrs: Mutex<Vec<Option<SocketAddr>>>,
}

impl Nodes {
    /// `n` nodes, all down.
    pub fn new(n: usize) -> Arc<Nodes> {
        Arc::new(Nodes {
            addrs: Mutex::new(vec![None; n]),
        })
    }

    /// Node `i` is up at `addr`, or down (`None`).
    pub fn set(&self, i: usize, addr: Option<SocketAddr>) {
        self.addrs.lock().expect("nodes")[i] = addr;
    }

    /// Node `preferred` (modulo their number) if it is up, else the first one up.
    fn pick(&self, preferred: usize) -> Option<SocketAddr> {
        let addrs = self.addrs.lock().expect("nodes");
        if addrs.is_empty() {
            return None;
        }
        addrs[preferred % addrs.len()].or_else(|| addrs.iter().flatten().next().copied())
    }
}

/// A stream of publishes from concurrent keep-alive clients.
#[derive(Clone, Debug)]
pub struct Burst {
    /// Concurrent clients; client `k` prefers node `k`.
    pub clients: usize,
    /// Tenant published to.
    pub tenant: String,
    /// Event ids are `{prefix}-{n}`.
    pub prefix: String,
    /// Publishes to attempt in all; `None`: until stopped.
    pub limit: Option<usize>,
    /// Publishes per second over all clients (open loop); `None`: as fast as answered.
    pub rate: Option<f64>,
}

/// What a burst recorded, shared while it runs.
#[derive(Default)]
pub struct Published {
    /// Events answered 202, with when their publish was sent.
    accepted: Mutex<Vec<(String, Instant)>>,
    accepted_count: AtomicUsize,
    /// Answered with something else than 202.
    pub refused: AtomicUsize,
    /// Sent, but the connection broke before an answer (a killed server): the event may
    /// or may not be stored; nothing was promised.
    pub unanswered: AtomicUsize,
    /// The first refusal's status and body, to show.
    pub first_refusal: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Published {
    /// Ask the clients to stop after their current publish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Events answered 202 so far.
    pub fn accepted_count(&self) -> usize {
        self.accepted_count.load(Ordering::Relaxed)
    }

    /// Every accepted event so far, with when it was sent.
    pub fn accepted(&self) -> Vec<(String, Instant)> {
        self.accepted.lock().expect("published").clone()
    }

    /// Fails when any publish was answered with something else than 202 (a server
    /// that is up must accept every publish), showing the first answer.
    pub fn no_refusals(&self) -> Result<()> {
        let refused = self.refused.load(Ordering::Relaxed);
        if refused > 0 {
            let first = self.first_refusal.lock().expect("published").clone();
            bail!(
                "{refused} publishes refused, the first with {}",
                first.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The ids of every accepted event so far.
    pub fn accepted_ids(&self) -> std::collections::HashSet<String> {
        let accepted = self.accepted.lock().expect("published");
        accepted.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Takes the accepted events recorded so far (for window-by-window accounting).
    pub fn drain_accepted(&self) -> Vec<(String, Instant)> {
        std::mem::take(&mut *self.accepted.lock().expect("published"))
    }
}

impl Burst {
    /// Starts the clients on the current runtime; the handle finishes when they all have.
    pub fn start(&self, nodes: Arc<Nodes>) -> (Arc<Published>, tokio::task::JoinHandle<()>) {
        let published = Arc::new(Published::default());
        let next = Arc::new(AtomicUsize::new(0));
        let started = tokio::time::Instant::now();
        let mut clients = Vec::new();
        for k in 0..self.clients.max(1) {
            let client = Client {
                k,
                burst: self.clone(),
                nodes: nodes.clone(),
                published: published.clone(),
                next: next.clone(),
                started,
            };
            clients.push(tokio::spawn(client.run()));
        }
        let handle = tokio::spawn(async move {
            for client in clients {
                let _ = client.await;
            }
        });
        (published, handle)
    }
}

struct Client {
    k: usize,
    burst: Burst,
    nodes: Arc<Nodes>,
    published: Arc<Published>,
    next: Arc<AtomicUsize>,
    started: tokio::time::Instant,
}

impl Client {
    async fn run(self) {
        let mut conn: Option<(SocketAddr, Conn)> = None;
        while let Some((id, body)) = self.next_event().await {
            if !self.publish(&mut conn, id, body).await {
                return;
            }
        }
    }

    /// The next event to publish, when it is due; `None` once stopped or at the limit.
    async fn next_event(&self) -> Option<(String, Bytes)> {
        if self.published.stop.load(Ordering::Relaxed) {
            return None;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if self.burst.limit.is_some_and(|limit| seq >= limit) {
            return None;
        }
        if let Some(rate) = self.burst.rate {
            let due = self.started + Duration::from_secs_f64(seq as f64 / rate);
            tokio::time::sleep_until(due).await;
        }
        let id = format!("{}-{seq}", self.burst.prefix);
        let body = serde_json::json!({
            "id": id,
            "tenant_id": self.burst.tenant,
            "topic": "proof.tick",
            "data": { "seq": seq, "note": "an event of the proof harness, about the size of a small webhook" },
        });
        Some((id, Bytes::from(body.to_string())))
    }

    /// Sends one publish once: waits for a node to be up and (re)connects first. Records
    /// the outcome; `false` when asked to stop meanwhile.
    async fn publish(
        &self,
        conn: &mut Option<(SocketAddr, Conn)>,
        id: String,
        body: Bytes,
    ) -> bool {
        let auth = format!("Bearer {API_KEY}");
        let c = loop {
            if self.published.stop.load(Ordering::Relaxed) {
                return false;
            }
            let Some(addr) = self.nodes.pick(self.k) else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            if conn.as_ref().is_none_or(|(at, _)| *at != addr) {
                match Conn::open(addr, Some(&auth)).await {
                    Ok(c) => *conn = Some((addr, c)),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            break &mut conn.as_mut().expect("connected above").1;
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            c.send(Method::POST, "/api/v1/publish", body),
        )
        .await;
        let published = &self.published;
        match answer {
            Ok(Ok((StatusCode::ACCEPTED, _))) => {
                published
                    .accepted
                    .lock()
                    .expect("published")
                    .push((id, sent));
                published.accepted_count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok((status, answer))) => {
                published.refused.fetch_add(1, Ordering::Relaxed);
                let mut first = published.first_refusal.lock().expect("published");
                if first.is_none() {
                    *first = Some(format!("{status}: {}", String::from_utf8_lossy(&answer)));
                }
            }
            Ok(Err(_)) | Err(_) => {
                published.unanswered.fetch_add(1, Ordering::Relaxed);
                *conn = None;
            }
        }
        true
    }
}

/// A small seeded random source (xorshift64*): kill points and the like. The seed is
/// `OUTRIDER_PROOF_SEED` when set, else the time; scenarios print it so a run can be
/// repeated.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `OUTRIDER_PROOF_SEED` or the clock.
    pub fn from_env() -> Rng {
        let seed = std::env::var("OUTRIDER_PROOF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9E37_79B9_7F4A_7C15)
            });
        Rng(seed.max(1))
    }

    /// The seed it started from (before any draw).
    pub fn seed(&self) -> u64 {
        self.0
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..high`.
    pub fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_micros().max(1) as u64;
        low + Duration::from_micros(self.next() % span)
    }
}

/// Waits until `done()` holds, polling every 100 ms; fails with `what` when `progress()`
/// has not changed for `stall`.
pub fn wait_until(
    what: &str,
    stall: Duration,
    mut progress: impl FnMut() -> usize,
    mut done: impl FnMut() -> bool,
) -> Result<()> {
    let mut last = (progress(), Instant::now());
    loop {
        if done() {
            return Ok(());
        }
        let now = progress();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > stall {
            bail!("{what}: no progress for {} s (at {now})", stall.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` as a percentage of `of`, two decimals.
pub fn percent(n: usize, of: usize) -> String {
    if of == 0 {
        return "0.00%".into();
    }
    format!("{:.2}%", 100.0 * n as f64 / of as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_stay_in_range() {
        let mut rng = Rng(42);
        for _ in 0..1000 {
            let d = rng.duration(Duration::from_millis(50), Duration::from_millis(70));
            assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(70));
        }
    }

    #[test]
    fn a_node_that_is_down_is_replaced_by_one_that_is_up() {
        let nodes = Nodes::new(2);
        assert_eq!(nodes.pick(0), None);
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        nodes.set(1, Some(a));
        assert_eq!(nodes.pick(0), Some(a));
        assert_eq!(nodes.pick(1), Some(a));
    }
}
