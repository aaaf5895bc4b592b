//! The wasmtime engine every plugin runs on, and the clock that interrupts them.
//!
//! One [`wasmtime::Engine`] per runtime: component model, async, the pooling instance
//! allocator (a fresh instance per call is then a few slot resets, not mmaps) and epoch
//! interruption driven by a background ticker thread ([`EpochTicker`], every
//! [`EPOCH_TICK`]). Each call's store yields to tokio on every tick and traps once its
//! wall-clock deadline has passed (see `call.rs`).
//!
//! Fuel is not used: epochs cost a load and compare at loop headers and function entries,
//! while fuel instruments every basic block (often 10-30% slower guest code), and what we
//! promise operators is a wall-clock bound per call, not an instruction count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeConfig;

/// How often the epoch advances. A call overruns its deadline by at most about this much,
/// and a spinning call holds a tokio worker for at most this long before it yields: at
/// 10 ms, calls stuck in loops delayed every other task on their worker by that much
/// (`cargo xtask proof --only faults`); a 1 ms tick costs one ticker wake-up and, per
/// running call, one yield per millisecond of wasm.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Wasm page size: the pooling allocator's memory cap must be a multiple of it.
const WASM_PAGE: usize = 64 * 1024;

/// Resident linear memory reset in place (memset) rather than released (madvise) when a
/// slot is reused. With `PAGEMAP_SCAN` (Linux 6.7+) only pages the guest actually touched
/// are reset, so this can cover a typical Rust/JS plugin heap: measured on a Rust SDK
/// plugin, a call (instantiate + validate + teardown) took ~15 us with it against
/// ~25-40 us with the default madvise-and-fault-back path.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// Build the engine for `config`.
pub fn build_engine(config: &RuntimeConfig) -> anyhow::Result<Engine> {
    let memory_cap = config.memory_limit.div_ceil(WASM_PAGE).max(1) * WASM_PAGE;
    // Calls in flight plus warm instances kept for reuse.
    let instances = config
        .max_instances
        .max(1)
        .saturating_add(config.idle_cap());

    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // Components built by componentize-py link several core modules; Rust and JS
        // components have one or two plus adapters.
        .total_core_instances(instances.saturating_mul(8))
        .max_core_instances_per_component(64)
        // One linear memory per component is the norm. Each memory slot reserves 4 GiB
        // of address space plus guards (so bounds checks compile away): ~5 TiB for the
        // default 1000 calls + 250 idle, of the 128 TiB a process has. Tests that create
        // many runtimes at once should use a small `max_instances`.
        .total_memories(instances.saturating_add(16))
        .max_memories_per_component(4)
        .total_tables(instances.saturating_mul(2))
        .max_tables_per_component(16)
        .total_stacks(instances)
        .max_memory_size(memory_cap)
        // Keep touched pages of a warm slot resident (see KEEP_RESIDENT).
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto)
        .table_keep_resident(16 * 1024)
        .async_stack_keep_resident(64 * 1024);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        // The crate is built with wasmtime's `gc` feature but no collector; plugins
        // (Rust, componentize-js/-py) use linear memory only, so GC types stay off.
        .gc_support(false)
        .epoch_interruption(true)
        .consume_fuel(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true);

    Engine::new(&wasm).map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:?}"))
}

/// Advances an engine's epoch every [`EPOCH_TICK`] on a background thread until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("outrider-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Detach rather than wait: the thread exits within one tick.
            drop(thread);
        }
    }
}

impl std::fmt::Debug for EpochTicker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochTicker").finish_non_exhaustive()
    }
}
