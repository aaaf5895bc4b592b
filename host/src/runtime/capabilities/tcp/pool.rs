//! The host-side pool of broker connections, and the limits on open connections.
//!
//! Every open connection, in use by a call or idle in the pool, holds a [`Lease`]: one
//! slot of its destination's `max_per_destination` and of the global `max_connections`.
//! Dropping the connection drops the lease and frees the slot. Idle connections wait
//! under their [`PoolKey`] (destination, host, port, TLS settings) with the plugin's
//! session blob, and are closed after `idle_timeout` by a sweeper task.
//!
//! A destination grows its connections only under sustained demand: while it has a
//! connection open, a call that finds none idle first waits up to `grow_after` for one
//! to be released, and opens another only if none was. A steady stream, even from many
//! concurrent deliveries, so keeps to one connection and one protocol handshake; a
//! backlog that outlasts `grow_after` (a slow broker, a far one) opens more, up to the
//! limit.
//!
//! When a destination is at its limit, `checkout` waits for a connection of it to be
//! released (up to the caller's deadline); when the whole host is at its limit, the
//! least recently used idle connection of any destination is closed to make room.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::stream::{Stream, TlsSettings};

/// Where a pooled connection may be reused: the same destination (plugin, tenant,
/// target), host, port and TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The destination (the call's state scope).
    pub scope: String,
    /// Normalised host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS settings, `None` for plain TCP.
    pub tls: Option<TlsSettings>,
}

/// Process-wide `tcp` counters, served at `/metrics`.
#[derive(Debug, Default)]
pub struct TcpMetrics {
    /// New connections opened (each one costs the plugin a protocol handshake).
    pub opened: AtomicU64,
    /// Connects answered with a pooled connection.
    pub reused: AtomicU64,
    /// Pooled connections found closed or unexpectedly readable, and dropped.
    pub stale: AtomicU64,
    /// Connects refused by network access or address policy.
    pub denied: AtomicU64,
    /// Open connections now (in use and idle).
    pub open: AtomicU64,
}

static METRICS: TcpMetrics = TcpMetrics {
    opened: AtomicU64::new(0),
    reused: AtomicU64::new(0),
    stale: AtomicU64::new(0),
    denied: AtomicU64::new(0),
    open: AtomicU64::new(0),
};

/// The process-wide `tcp` counters.
pub fn metrics() -> &'static TcpMetrics {
    &METRICS
}

/// Append the `tcp` counters in Prometheus text format.
pub fn render_metrics(out: &mut String) {
    let m = metrics();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let lines = [
        (
            "outrider_tcp_connections_opened_total",
            "counter",
            "New plugin TCP connections opened (each one a broker handshake).",
            get(&m.opened),
        ),
        (
            "outrider_tcp_connections_reused_total",
            "counter",
            "Plugin TCP connects served from the connection pool.",
            get(&m.reused),
        ),
        (
            "outrider_tcp_connections_stale_total",
            "counter",
            "Pooled TCP connections found closed by the peer and replaced.",
            get(&m.stale),
        ),
        (
            "outrider_tcp_connects_denied_total",
            "counter",
            "Plugin TCP connects refused by network access or address policy.",
            get(&m.denied),
        ),
        (
            "outrider_tcp_connections_open",
            "gauge",
            "Plugin TCP connections open now, in use or pooled.",
            get(&m.open),
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// An idle pooled connection.
#[derive(Debug)]
pub struct Idle {
    /// The socket.
    pub stream: Stream,
    /// The plugin's session blob.
    pub session: Vec<u8>,
    /// Its slot under the limits.
    pub lease: Lease,
    since: Instant,
}

#[derive(Debug, Default)]
struct State {
    idle: HashMap<PoolKey, Vec<Idle>>,
    per_scope: HashMap<String, usize>,
    total: usize,
}

impl State {
    fn free(&mut self, scope: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_scope.get_mut(scope) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_scope.remove(scope);
            }
        }
        METRICS.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Remove the least recently used idle connection, optionally only of `scope`.
    fn take_lru(&mut self, scope: Option<&str>) -> Option<Idle> {
        let key = self
            .idle
            .iter()
            .filter(|(k, v)| !v.is_empty() && scope.is_none_or(|s| k.scope == s))
            .min_by_key(|(_, v)| v[0].since)
            .map(|(k, _)| k.clone())?;
        let list = self.idle.get_mut(&key)?;
        let idle = list.remove(0);
        if list.is_empty() {
            self.idle.remove(&key);
        }
        Some(idle)
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    released: Notify,
    max_total: usize,
    max_per_scope: usize,
    idle_timeout: Duration,
    grow_after: Duration,
}

/// A slot of one destination under the connection limits. Dropping it frees the slot.
#[derive(Debug)]
pub struct Lease {
    shared: Weak<Shared>,
    scope: String,
    /// Already freed by whoever evicted it (under the pool lock).
    freed: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.freed {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            shared
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .free(&self.scope);
            shared.released.notify_waiters();
        }
    }
}

/// What [`Pool::checkout`] found.
#[derive(Debug)]
pub enum Checkout {
    /// A pooled connection (check it is still open before use).
    Pooled(Idle),
    /// A slot for a new connection.
    Open(Lease),
}

/// Why [`Pool::checkout`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum LimitError {
    /// The destination kept `max` connections busy until the deadline.
    PerDestination(usize),
    /// The host kept `max` connections busy until the deadline.
    Total(usize),
    /// The destination's connections are all in use, for less than `grow_after` so far
    /// (internal to `checkout`, never returned).
    Busy,
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitError::PerDestination(max) => write!(
                f,
                "all {max} connections of this destination stayed busy (OUTRIDER_TCP_MAX_PER_DESTINATION)"
            ),
            LimitError::Total(max) => write!(
                f,
                "all {max} plugin TCP connections stayed busy (OUTRIDER_TCP_MAX_CONNECTIONS)"
            ),
            LimitError::Busy => write!(f, "the destination's connections are busy"),
        }
    }
}

/// The connection pool. One per runtime.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// A pool with these limits; starts the idle sweeper if a tokio runtime is running.
    pub fn new(
        max_total: usize,
        max_per_scope: usize,
        idle_timeout: Duration,
        grow_after: Duration,
    ) -> Arc<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            released: Notify::new(),
            max_total: max_total.max(1),
            max_per_scope: max_per_scope.max(1),
            idle_timeout,
            grow_after,
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&shared);
            let period =
                (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
            handle.spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    let Some(shared) = weak.upgrade() else { return };
                    sweep(&shared);
                }
            });
        }
        Arc::new(Pool { shared })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease(&self, state: &mut State, scope: &str) -> Lease {
        state.total += 1;
        *state.per_scope.entry(scope.to_owned()).or_default() += 1;
        METRICS.open.fetch_add(1, Ordering::Relaxed);
        Lease {
            shared: Arc::downgrade(&self.shared),
            scope: scope.to_owned(),
            freed: false,
        }
    }

    /// A pooled connection for `key` (most recently released first) or a slot to open
    /// one, waiting until `deadline` when the limits are reached. While the destination
    /// has connections open, waits up to `grow_after` for one of them before opening
    /// another.
    pub async fn checkout(&self, key: &PoolKey, deadline: Instant) -> Result<Checkout, LimitError> {
        let grow_at = (Instant::now() + self.shared.grow_after).min(deadline);
        loop {
            let notified = self.shared.released.notified();
            let mut evicted: Option<Idle>;
            let outcome = {
                let mut state = self.lock();
                if let Some(list) = state.idle.get_mut(key) {
                    if let Some(idle) = list.pop() {
                        if list.is_empty() {
                            state.idle.remove(key);
                        }
                        return Ok(Checkout::Pooled(idle));
                    }
                }
                let in_scope = state.per_scope.get(&key.scope).copied().unwrap_or(0);
                let limit = if in_scope > 0 && Instant::now() < grow_at {
                    // Busy, not yet for long: wait for one of its connections.
                    evicted = None;
                    LimitError::Busy
                } else if in_scope >= self.shared.max_per_scope {
                    // Room only by closing an idle connection of this destination to
                    // another endpoint.
                    evicted = state.take_lru(Some(&key.scope));
                    LimitError::PerDestination(self.shared.max_per_scope)
                } else if state.total >= self.shared.max_total {
                    evicted = state.take_lru(None);
                    LimitError::Total(self.shared.max_total)
                } else {
                    return Ok(Checkout::Open(self.lease(&mut state, &key.scope)));
                };
                match evicted.as_mut() {
                    Some(victim) => {
                        victim.lease.freed = true;
                        let scope = victim.lease.scope.clone();
                        state.free(&scope);
                        Ok(self.lease(&mut state, &key.scope))
                    }
                    None => Err(limit),
                }
            };
            drop(evicted); // closes the evicted socket outside the lock
            match outcome {
                Ok(lease) => return Ok(Checkout::Open(lease)),
                Err(LimitError::Busy) => {
                    let wait = grow_at.saturating_duration_since(Instant::now());
                    let _ = tokio::time::timeout(wait, notified).await;
                }
                Err(limit) => {
                    if Instant::now() >= deadline {
                        return Err(limit);
                    }
                    // Wake on a release, and re-check now and then in any case.
                    let wait = deadline
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(100));
                    let _ = tokio::time::timeout(wait, notified).await;
                }
            }
        }
    }

    /// Put a connection back for later calls of `key`.
    pub fn put(&self, key: PoolKey, stream: Stream, session: Vec<u8>, lease: Lease) {
        self.lock().idle.entry(key).or_default().push(Idle {
            stream,
            session,
            lease,
            since: Instant::now(),
        });
        self.shared.released.notify_waiters();
    }

    /// Idle connections now, for tests.
    pub fn idle_count(&self) -> usize {
        self.lock().idle.values().map(Vec::len).sum()
    }
}

/// Close idle connections older than the idle timeout.
fn sweep(shared: &Shared) {
    let now = Instant::now();
    let mut expired = Vec::new();
    {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut freed = Vec::new();
        state.idle.retain(|_, list| {
            let (old, fresh): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|i| now.duration_since(i.since) >= shared.idle_timeout);
            *list = fresh;
            for mut idle in old {
                idle.lease.freed = true;
                freed.push(idle.lease.scope.clone());
                expired.push(idle);
            }
            !list.is_empty()
        });
        for scope in freed {
            state.free(&scope);
        }
    }
    if !expired.is_empty() {
        shared.released.notify_waiters();
    }
    drop(expired);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    fn key(scope: &str, port: u16) -> PoolKey {
        PoolKey {
            scope: scope.into(),
            host: "127.0.0.1".into(),
            port,
            tls: None,
        }
    }

    async fn stream(listener: &TcpListener) -> Stream {
        let addr = listener.local_addr().unwrap();
        Stream::Plain(TcpStream::connect(addr).await.unwrap())
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    #[tokio::test]
    async fn released_connections_come_back_with_their_session() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(10, 2, Duration::from_secs(60), Duration::ZERO);
        let k = key("dest-a", 1);
        let Checkout::Open(lease) = pool.checkout(&k, soon()).await.unwrap() else {
            panic!("empty pool must give a slot")
        };
        pool.put(
            k.clone(),
            stream(&listener).await,
            b"chan=1".to_vec(),
            lease,
        );
        match pool.checkout(&k, soon()).await.unwrap() {
            Checkout::Pooled(idle) => assert_eq!(idle.session, b"chan=1"),
            Checkout::Open(_) => panic!("expected the pooled connection"),
        }
        // Another destination never sees it.
        assert!(matches!(
            pool.checkout(&key("dest-b", 1), soon()).await.unwrap(),
            Checkout::Open(_)
        ));
    }

    #[tokio::test]
    async fn a_busy_destination_waits_for_its_connection_before_opening_another() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(10, 4, Duration::from_secs(60), Duration::from_secs(5));
        let k = key("dest-a", 1);
        let Checkout::Open(lease) = pool.checkout(&k, soon()).await.unwrap() else {
            panic!("empty pool must give a slot")
        };
        let conn = stream(&listener).await;
        // A second delivery arrives while the first holds the connection...
        let waiter = {
            let pool = pool.clone();
            let k = k.clone();
            tokio::spawn(async move {
                pool.checkout(&k, Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "it must wait, not open a second one");
        // ...and gets that connection back instead of a second handshake.
        pool.put(k.clone(), conn, b"chan=1".to_vec(), lease);
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(pool.lock().total, 1, "one connection open in all");
        match got {
            Checkout::Pooled(idle) => assert_eq!(idle.session, b"chan=1"),
            Checkout::Open(_) => panic!("opened a second connection for a short wait"),
        }
    }

    #[tokio::test]
    async fn a_backlog_longer_than_grow_after_opens_another_connection() {
        let pool = Pool::new(10, 4, Duration::from_secs(60), Duration::from_millis(30));
        let k = key("dest-a", 1);
        let _held = pool.checkout(&k, soon()).await.unwrap();
        let second = pool.checkout(&k, soon()).await.unwrap();
        assert!(matches!(second, Checkout::Open(_)));
        assert_eq!(pool.lock().total, 2);
    }

    #[tokio::test]
    async fn per_destination_limit_waits_then_gives_up() {
        let pool = Pool::new(10, 1, Duration::from_secs(60), Duration::ZERO);
        let k = key("dest-a", 1);
        let held = pool.checkout(&k, soon()).await.unwrap();
        let err = pool
            .checkout(&k, Instant::now() + Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(err, LimitError::PerDestination(1));
        drop(held);
        let again = pool.checkout(&k, soon()).await.unwrap();
        assert!(matches!(again, Checkout::Open(_)));
        assert_eq!(pool.lock().total, 1);
        drop(again);
        assert_eq!(pool.lock().total, 0);
    }

    #[tokio::test]
    async fn total_limit_evicts_idle_of_other_destinations() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(1, 4, Duration::from_secs(60), Duration::ZERO);
        let a = key("dest-a", 1);
        let Checkout::Open(lease) = pool.checkout(&a, soon()).await.unwrap() else {
            panic!()
        };
        pool.put(a, stream(&listener).await, Vec::new(), lease);
        assert_eq!(pool.idle_count(), 1);
        let got = pool.checkout(&key("dest-b", 1), soon()).await.unwrap();
        assert!(matches!(got, Checkout::Open(_)));
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn idle_connections_expire() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(4, 4, Duration::from_millis(1), Duration::ZERO);
        let k = key("dest-a", 1);
        let Checkout::Open(lease) = pool.checkout(&k, soon()).await.unwrap() else {
            panic!()
        };
        pool.put(k.clone(), stream(&listener).await, Vec::new(), lease);
        tokio::time::sleep(Duration::from_millis(5)).await;
        sweep(&pool.shared);
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(pool.lock().total, 0);
    }
}
