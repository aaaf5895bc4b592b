//! The slow lane: plugin calls that run long finish on threads of the lowest CPU priority.
//!
//! A call starts where it was made, on the server's tokio workers. Once it has run wasm
//! past its grace (see [`long_calls`](super::long_calls)) its epoch callback marks it,
//! and at its next yield [`LaneCall`] moves the suspended call (store, fiber and all) to
//! the slow lane: a few threads at nice 19 and `SCHED_IDLE` that poll it from there on. The gates still
//! share those threads between plugins; the priority makes the kernel run any other
//! thread of the machine first, so a plugin spinning until its deadline takes only CPU
//! nobody else wants. Before this, a spinning call held one of the two workers of a
//! 2-core machine tick after tick, and a well-behaved destination's p99 grew 4x to 18x.
//!
//! A lowered thread cannot raise its priority again without privileges, which is why the
//! call moves rather than its thread changing priority. While polled on the slow lane a
//! call still sees the server's runtime (`Handle::enter`): its host calls register
//! sockets and timers with the server's drivers and spawn onto the server's workers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Nice value of the slow lane's threads (the lowest priority of normal scheduling).
const SLOW_LANE_NICE: i32 = 19;

/// The process's slow lane, started on first use.
fn slow_lane() -> &'static Runtime {
    static LANE: OnceLock<Runtime> = OnceLock::new();
    LANE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads((cores / 2).max(1))
            .thread_name("outrider-slow-lane")
            .on_thread_start(lower_this_threads_priority)
            .enable_time()
            .build()
            .expect("the slow lane's threads start")
    })
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux `setpriority(PRIO_PROCESS, tid)` sets one thread's nice value.
    // SAFETY: plain syscalls on the calling thread's own id.
    let failed = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, SLOW_LANE_NICE) != 0
    };
    if failed {
        tracing::warn!(error = %std::io::Error::last_os_error(), "slow lane: cannot lower thread priority");
    }
    // SCHED_IDLE on top: any normal thread that wakes up preempts a slow-lane thread at
    // once, where a nice-19 one could finish its slice first (a few milliseconds added
    // to a healthy stream's tail while a spinning plugin ran). Lowering needs no
    // privilege; the thread keeps a share of the CPU, so its calls still progress.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the calling thread's (pid 0) policy; `param` outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "slow lane: cannot set SCHED_IDLE");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {
    let _ = SLOW_LANE_NICE;
}

/// Calls moved to the slow lane since the process started.
static MOVED: AtomicU64 = AtomicU64::new(0);

/// Calls moved to the slow lane so far (`/metrics`).
pub fn moved_calls() -> u64 {
    MOVED.load(Ordering::Relaxed)
}

/// Whether the calling thread is one of the slow lane's (for tests).
pub fn on_slow_lane() -> bool {
    std::thread::current().name() == Some("outrider-slow-lane")
}

/// How long after a plugin's last long call (or memory-limit crash) its new calls start
/// on the slow lane.
const SUSPICION: std::time::Duration = std::time::Duration::from_secs(30);

/// When a plugin last had a call move or die at the memory limit, so its next calls start
/// on the slow lane instead of spending their grace on a worker first. Such a call spends
/// its milliseconds faulting in pages, rarely long enough to move, but again on every
/// call until the plugin is quarantined. Traps are cheap and do not count: one bad input
/// must not send a busy plugin's calls to the slow lane's one low-priority thread.
#[derive(Debug, Default)]
pub struct Suspicion {
    /// Milliseconds since [`process_start`] of the last move, plus one (0: never).
    last_move: AtomicU64,
}

fn process_start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

impl Suspicion {
    /// Note a call that moved or hit the memory limit now.
    pub fn record(&self) {
        let now = process_start().elapsed().as_millis() as u64 + 1;
        self.last_move.store(now, Ordering::Relaxed);
    }

    /// Whether the plugin had a call move within the last [`SUSPICION`].
    pub fn is_recent(&self) -> bool {
        match self.last_move.load(Ordering::Relaxed) {
            0 => false,
            at => {
                process_start().elapsed().as_millis() as u64 + 1 - at < SUSPICION.as_millis() as u64
            }
        }
    }
}

/// A flag the epoch callback sets when its call should move to the slow lane.
#[derive(Clone, Debug, Default)]
pub struct Demote {
    flag: Arc<AtomicBool>,
    plugin: Option<Arc<Suspicion>>,
}

impl Demote {
    /// The flag of a new call of a plugin: already set if the plugin ran long recently.
    pub fn for_plugin(plugin: Arc<Suspicion>) -> Self {
        let flag = Arc::new(AtomicBool::new(plugin.is_recent()));
        Demote {
            flag,
            plugin: Some(plugin),
        }
    }

    /// A fresh flag for the next call on the same store.
    pub fn renewed(&self) -> Self {
        match &self.plugin {
            Some(plugin) => Demote::for_plugin(plugin.clone()),
            None => Demote::default(),
        }
    }

    /// Ask for the move (takes effect at the call's next yield).
    pub fn set(&self) {
        if !self.flag.swap(true, Ordering::Relaxed) {
            if let Some(plugin) = &self.plugin {
                plugin.record();
            }
        }
    }

    /// Whether the move was asked for.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// The slow lane's runtime went away before the call finished (process shutting down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneStopped;

/// A call that runs where it is polled until [`Demote`] is set, then on the slow lane.
/// Dropping it cancels the call wherever it runs.
pub struct LaneCall<F: Future> {
    state: State<F>,
    demote: Demote,
}

enum State<F: Future> {
    Here(Pin<Box<F>>),
    Moved(JoinHandle<F::Output>),
    Done,
}

impl<F> LaneCall<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Wrap `call`; `demote` is the flag its epoch callback sets.
    pub fn new(demote: Demote, call: F) -> Self {
        LaneCall {
            state: State::Here(Box::pin(call)),
            demote,
        }
    }
}

impl<F> Future for LaneCall<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, LaneStopped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Here(call) => {
                    // Marked before its first poll (the plugin ran long recently), or at
                    // its last yield: move now.
                    if !this.demote.is_set() {
                        if let Poll::Ready(out) = call.as_mut().poll(cx) {
                            this.state = State::Done;
                            return Poll::Ready(Ok(out));
                        }
                        if !this.demote.is_set() {
                            return Poll::Pending;
                        }
                    }
                    let State::Here(call) = std::mem::replace(&mut this.state, State::Done) else {
                        unreachable!("matched above")
                    };
                    let server = Handle::try_current().ok();
                    MOVED.fetch_add(1, Ordering::Relaxed);
                    this.state = State::Moved(slow_lane().spawn(InRuntime { server, call }));
                }
                State::Moved(handle) => {
                    let out = std::task::ready!(Pin::new(handle).poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(match out {
                        Ok(out) => Ok(out),
                        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                        Err(_) => Err(LaneStopped),
                    });
                }
                State::Done => panic!("LaneCall polled after completion"),
            }
        }
    }
}

impl<F: Future> Drop for LaneCall<F> {
    fn drop(&mut self) {
        if let State::Moved(handle) = &self.state {
            handle.abort();
        }
    }
}

/// Polls `call` with the server's runtime entered, so what it registers or spawns lives
/// on the server's runtime, not on the slow lane.
struct InRuntime<F> {
    server: Option<Handle>,
    call: Pin<Box<F>>,
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.server.as_ref().map(Handle::enter);
        this.call.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A future that records the thread of each poll and asks to move after its first.
    struct Probe {
        demote: Demote,
        polls: u32,
        threads: Vec<bool>,
    }

    impl Future for Probe {
        type Output = Vec<bool>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<bool>> {
            self.threads.push(on_slow_lane());
            self.polls += 1;
            if self.polls == 3 {
                return Poll::Ready(std::mem::take(&mut self.threads));
            }
            self.demote.set();
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_marked_call_continues_on_the_slow_lane() {
        let demote = Demote::default();
        let probe = Probe {
            demote: demote.clone(),
            polls: 0,
            threads: Vec::new(),
        };
        let threads = LaneCall::new(demote, probe).await.unwrap();
        assert_eq!(threads, vec![false, true, true]);
    }

    #[tokio::test]
    async fn after_a_long_call_the_plugins_next_calls_start_on_the_slow_lane() {
        let plugin = Arc::new(Suspicion::default());
        let first = Demote::for_plugin(plugin.clone());
        assert!(!first.is_set(), "a plugin starts unsuspected");
        first.set();
        let next = first.renewed();
        assert!(next.is_set());
        let call = LaneCall::new(next, async { on_slow_lane() });
        assert_eq!(call.await, Ok(true), "the call ran on a worker first");
        let other = Demote::for_plugin(Arc::new(Suspicion::default()));
        assert!(!other.is_set(), "suspicion is per plugin");
    }

    #[tokio::test]
    async fn an_unmarked_call_stays_where_it_was_made() {
        let call = LaneCall::new(Demote::default(), async { on_slow_lane() });
        assert_eq!(call.await, Ok(false));
    }

    #[tokio::test]
    async fn a_moved_call_uses_the_servers_runtime_and_stops_when_dropped() {
        let demote = Demote::default();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let (alive_tx, alive_rx) = tokio::sync::oneshot::channel::<()>();
        let marker = demote.clone();
        let call = LaneCall::new(demote, async move {
            marker.set();
            tokio::task::yield_now().await;
            let flavor = Handle::current().runtime_flavor();
            let _ = seen_tx.send((on_slow_lane(), flavor));
            let _dropped_when_cancelled = alive_tx;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(200), call).await;
        assert!(timed_out.is_err());
        let (moved, flavor) = seen_rx.await.unwrap();
        assert!(moved, "the call did not move");
        // `#[tokio::test]` is a current-thread runtime; the slow lane is multi-threaded.
        assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
        // Dropping the call aborted it on the slow lane, which drops what it captured.
        let closed = tokio::time::timeout(Duration::from_secs(5), alive_rx).await;
        assert!(matches!(closed, Ok(Err(_))), "the moved call kept running");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_slow_lane_runs_at_the_lowest_priority() {
        let demote = Demote::default();
        let marker = demote.clone();
        let nice = LaneCall::new(demote, async move {
            marker.set();
            tokio::task::yield_now().await;
            // SAFETY: reads the calling thread's nice value and scheduling policy.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                (
                    libc::getpriority(libc::PRIO_PROCESS, tid),
                    libc::sched_getscheduler(0),
                )
            }
        });
        assert_eq!(nice.await, Ok((SLOW_LANE_NICE, libc::SCHED_IDLE)));
    }
}
