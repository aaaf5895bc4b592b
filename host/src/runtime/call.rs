//! Per-call state: the data of the fresh `Store` each plugin call runs in, its memory
//! limiter and wall-clock deadline, and the classification of what went wrong.
//!
//! Setting up a call is deliberately cheap: one `Store`, a small struct, the epoch
//! callback; the WASI context is only built if the guest actually touches WASI.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capabilities::{self, Capabilities};
use super::long_calls::Slot;
use super::network::HostAllowlist;
use super::slow_lane::{Demote, LaneCall};

/// Who a call is made for, for log fields.
#[derive(Clone, Debug, Default)]
pub struct CallLabels {
    /// Plugin name (from its manifest, or `sha256:` id before the manifest is known).
    pub plugin: Arc<str>,
    /// Prototype id, when the call is for one.
    pub prototype: Option<String>,
    /// Configured destination/transformer id, when the call is for one.
    pub target: Option<String>,
}

/// Caps a store's linear memories and records whether the cap was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Set when a growth was refused: a failure that follows is reported as a memory
    /// limit, not as a generic trap.
    pub hit: bool,
    /// Largest size any linear memory of the call reached (or was created with), in
    /// bytes: what `outrider plugin test` reports and plugin statistics track.
    pub peak: usize,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes per linear memory.
    pub fn new(limit: usize) -> Self {
        MemoryLimiter {
            limit,
            hit: false,
            peak: 0,
        }
    }
}

/// Tables grow by pointer-sized elements; this bounds them well above what real
/// components need (function tables of large JS/Python runtimes are ~100k entries).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.hit = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one call's `Store`.
pub struct CallContext {
    /// Log fields.
    pub labels: CallLabels,
    /// When the call must be finished.
    pub deadline: Instant,
    /// Set by the epoch callback when the deadline passed.
    pub timed_out: bool,
    /// Memory cap.
    pub limiter: MemoryLimiter,
    /// Resources handed to the guest (WASI streams, tcp connections).
    pub table: ResourceTable,
    /// WASI context, built on first use.
    wasi: Option<WasiCtx>,
    /// Shared capability state (HTTP client, network policy, state store, log caps).
    pub caps: Arc<Capabilities>,
    /// Hosts this call may reach.
    pub allowlist: HostAllowlist,
    /// Key of the `state` scope (plugin + target), if the call has a target.
    pub state_scope: Option<String>,
    /// Network denials during the call, in order (recorded on the attempt).
    pub denials: Vec<String>,
    /// Log messages emitted so far (rate limit).
    pub log_count: u32,
    /// Epoch ticks the call has seen while running wasm (see
    /// [`long_calls`](super::long_calls)).
    pub wasm_ticks: u32,
    /// The long-call slots the call holds for its current tick, if past its grace.
    long_slots: Arc<Mutex<Vec<Slot>>>,
    /// Set past the grace: the call moves to the [`slow_lane`](super::slow_lane).
    pub demote: Demote,
}

impl CallContext {
    /// Fresh call data.
    pub fn new(
        caps: Arc<Capabilities>,
        labels: CallLabels,
        timeout: Duration,
        memory_limit: usize,
        allowlist: HostAllowlist,
        state_scope: Option<String>,
    ) -> Self {
        CallContext {
            labels,
            deadline: Instant::now() + timeout,
            timed_out: false,
            limiter: MemoryLimiter::new(memory_limit),
            table: ResourceTable::new(),
            wasi: None,
            caps,
            allowlist,
            state_scope,
            denials: Vec::new(),
            log_count: 0,
            wasm_ticks: 0,
            long_slots: Arc::default(),
            demote: Demote::default(),
        }
    }

    /// Prepare a reused store's data for another call.
    pub fn begin_call(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
        self.timed_out = false;
        self.limiter.hit = false;
        self.denials.clear();
        self.log_count = 0;
        self.wasm_ticks = 0;
        self.demote = self.demote.renewed();
        self.release_long_slot();
    }

    /// Give back the long-call slots the call holds, if any (its tick or the call ended).
    pub fn release_long_slot(&self) {
        let mut held = self.long_slots.lock().unwrap_or_else(|p| p.into_inner());
        let slots = std::mem::take(&mut *held);
        drop(held);
        drop(slots);
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Log and remember a network denial.
    pub fn record_denial(&mut self, capability: &str, reason: &str) {
        tracing::warn!(
            plugin = %self.labels.plugin,
            prototype = self.labels.prototype.as_deref().unwrap_or(""),
            target = self.labels.target.as_deref().unwrap_or(""),
            capability,
            reason,
            "plugin network access denied"
        );
        if self.denials.len() < 16 {
            self.denials.push(reason.to_owned());
        }
    }
}

impl WasiView for CallContext {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let labels = &self.labels;
        let ctx = self
            .wasi
            .get_or_insert_with(|| capabilities::wasi::build_ctx(labels));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// A new store for one call: memory limiter, and an epoch deadline that yields to tokio
/// on every tick (past [`GRACE_TICKS`](super::long_calls::GRACE_TICKS), to queue for a
/// long-call slot) and traps once the wall-clock deadline has passed.
pub fn new_store(engine: &wasmtime::Engine, data: CallContext) -> Store<CallContext> {
    let mut store = Store::new(engine, data);
    store.limiter(|data| &mut data.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let data = ctx.data_mut();
        if Instant::now() >= data.deadline {
            data.timed_out = true;
            return Err(wasmtime::Error::msg("plugin call exceeded its deadline"));
        }
        data.wasm_ticks = data.wasm_ticks.saturating_add(1);
        let gates = data.caps.long_calls.gates_for(data.wasm_ticks);
        if gates.is_empty() {
            return Ok(UpdateDeadline::Yield(1));
        }
        // A long call: on to the slow lane (at this yield, the first time), give its
        // slots back and queue for the next tick's.
        data.demote.set();
        data.release_long_slot();
        let (held, plugin) = (data.long_slots.clone(), data.labels.plugin.clone());
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                let mut slots = Vec::with_capacity(gates.len());
                for gate in gates {
                    slots.push(gate.acquire(plugin.clone()).await);
                }
                *held.lock().unwrap_or_else(|p| p.into_inner()) = slots;
            }),
        ))
    });
    store
}

/// What stopped a call that did not return normally. Each is an error of that call only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The guest trapped (panic, unreachable, out-of-bounds, ...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("plugin call timed out")]
    Timeout,
    /// The guest wanted more memory than the limit.
    #[error("plugin exceeded its memory limit")]
    MemoryLimit,
    /// The host could not run the call now (every instance slot busy); nothing is
    /// wrong with the plugin or the input.
    #[error("plugin unavailable: {0}")]
    Unavailable(String),
}

impl Fault {
    /// Whether this counts as a crash of the plugin (for quarantine).
    pub fn is_crash(&self) -> bool {
        !matches!(self, Fault::Unavailable(_))
    }
}

/// Classify an error from instantiating or calling into the guest.
pub fn classify(store: &Store<CallContext>, err: wasmtime::Error) -> Fault {
    let data = store.data();
    if data.timed_out {
        return Fault::Timeout;
    }
    if data.limiter.hit {
        return Fault::MemoryLimit;
    }
    if let Some(limit) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return Fault::Unavailable(limit.to_string());
    }
    Fault::Trap(describe(&err))
}

/// One-line description of a wasmtime error: the trap or message, then its causes
/// (without the multi-line wasm backtrace).
pub fn describe(err: &wasmtime::Error) -> String {
    let mut text = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => err.to_string(),
    };
    let mut source = std::error::Error::source(&**err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) && !cause_text.contains('\n') {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What a guest call that owned its store gives back: its result and the store, or the
/// fault that stopped it before it returned (the store is then gone with the call).
pub type Ran<T> = Result<(wasmtime::Result<T>, Store<CallContext>), Fault>;

/// Run `call`, a guest call that owns `store`, under the store's deadline (plus a small
/// grace for the epoch ticker: a guest blocked in a host call is stopped here, a guest
/// spinning in wasm by its epoch callback). Past its grace the call moves to the
/// [`slow_lane`](super::slow_lane), which is why it must own what it uses.
pub async fn run<T, F>(
    store: Store<CallContext>,
    call: impl FnOnce(Store<CallContext>) -> F,
) -> Ran<T>
where
    F: std::future::Future<Output = (wasmtime::Result<T>, Store<CallContext>)> + Send + 'static,
    T: Send + 'static,
{
    let deadline = store.data().deadline;
    let demote = store.data().demote.clone();
    let grace = Duration::from_millis(50);
    let budget = deadline.saturating_duration_since(Instant::now()) + grace;
    match tokio::time::timeout(budget, LaneCall::new(demote, call(store))).await {
        Ok(Ok((result, store))) => Ok((result, store)),
        Ok(Err(_stopped)) => Err(Fault::Unavailable(
            "the plugin runtime is shutting down".into(),
        )),
        Err(_elapsed) => Err(Fault::Timeout),
    }
}
