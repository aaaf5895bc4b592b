//! The plugin runtime: loads WebAssembly components, validates them, and runs their
//! calls in a sandbox.
//!
//! - [`PluginRuntime`] owns the engine (pooling allocator, epoch deadlines), the linker
//!   with every granted capability, the shared capability state and the compiled-code
//!   cache; [`PluginRuntime::load`] turns component bytes into a [`LoadedPlugin`] or a
//!   [`LoadError`] naming what is wrong.
//! - [`LoadedPlugin`] answers `validate`, `deliver`, `transform` and `self_tests`, each in
//!   an instance (fresh, or warm for the same target) with a memory limit and a
//!   wall-clock deadline.
//! - [`PluginRegistry`] indexes loaded plugins by id and by (kind, prototype).
//!
//! Layout: `engine.rs` (engine + epoch ticker), `cache.rs` (compiled cache),
//! `bindings.rs` (the only `bindgen!`), `guest/` (calls per WIT version), `call.rs`
//! (per-call store state and fault classification), `capabilities/` (what plugins may
//! import), `network.rs` (address policy, host allowlists), `validate.rs` and
//! `manifest.rs` (load-time checks and host-side manifest types), `fields.rs`
//! (configuration checks), `calls.rs` (call inputs and outcomes), `registry.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

pub mod bindings;
pub mod cache;
pub mod call;
pub mod calls;
pub mod capabilities;
pub mod engine;
pub mod fields;
pub mod guest;
pub mod long_calls;
pub mod manifest;
pub mod network;
pub mod plugin;
pub mod registry;
pub mod reuse;
pub mod slow_lane;
pub mod validate;

#[cfg(test)]
mod tests;

pub use call::Fault;
pub use calls::{
    CallError, Delivered, DeliveryFailure, Event, PreparedTarget, Target, TransformFailure,
};
pub use manifest::{FieldError, Manifest, Prototype, PrototypeKind, TestCase};
pub use network::{Denied, NetworkPolicy};
pub use plugin::LoadedPlugin;
pub use registry::PluginRegistry;
pub use validate::{LoadError, ManifestError};

use call::{CallContext, CallLabels};
use capabilities::Capabilities;
use network::HostAllowlist;

/// Configuration of the plugin runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Directory of the compiled-component cache (`<data-dir>/cache`); `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory cap per instance, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// Wall-clock deadline of one call (default 10 s).
    pub call_timeout: Duration,
    /// Address ranges plugins may reach although the default policy refuses them
    /// (`OUTRIDER_ALLOW_NETWORKS`, e.g. `127.0.0.0/8` for tests).
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Cap of HTTP response bodies seen by plugins, and of response bodies they report
    /// (default 1 MiB).
    pub http_response_cap: usize,
    /// Cap of HTTP request bodies plugins send (default 10 MiB).
    pub http_request_cap: usize,
    /// Concurrent instances (calls in flight) across all plugins (default 1000); further
    /// calls wait for a free slot, up to `call_timeout`.
    pub max_instances: u32,
    /// Calls a warm instance may serve for the same target (same tenant, id,
    /// configuration and credentials) before it is discarded; `0` (the default here; the
    /// server defaults to 1000) gives every call a fresh instance. See [`reuse`] for what persists between calls.
    pub instance_reuse: u32,
}

impl RuntimeConfig {
    /// Idle instances kept across all plugins when reuse is on.
    pub fn idle_cap(&self) -> u32 {
        if self.instance_reuse == 0 {
            0
        } else {
            (self.max_instances / 4).clamp(1, 256)
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            memory_limit: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(10),
            allow_networks: Vec::new(),
            http_response_cap: 1024 * 1024,
            http_request_cap: 10 * 1024 * 1024,
            max_instances: 1000,
            instance_reuse: 0,
        }
    }
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<CallContext>,
    caps: Arc<Capabilities>,
    cache: Option<cache::ComponentCache>,
    config: RuntimeConfig,
    cache_hits: AtomicU64,
    compiles: AtomicU64,
    slots: Arc<tokio::sync::Semaphore>,
    idle_budget: Arc<reuse::IdleBudget>,
    _ticker: engine::EpochTicker,
}

/// Loads and runs plugins. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Build the engine, linker, capabilities and cache. Call once per process.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let engine = engine::build_engine(&config)?;
        let policy = NetworkPolicy::new(config.allow_networks.clone());
        let http = capabilities::http::HttpConfig {
            response_cap: config.http_response_cap,
            request_cap: config.http_request_cap,
            ..Default::default()
        };
        let caps = Arc::new(Capabilities::new(policy, http)?);
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking host capabilities: {e:?}"))?;
        let cache = match &config.cache_dir {
            Some(dir) => match cache::ComponentCache::open(dir, &engine) {
                Ok(cache) => Some(cache),
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "compiled-component cache disabled");
                    None
                }
            },
            None => None,
        };
        let ticker = engine::EpochTicker::start(engine.clone())?;
        let idle_budget = reuse::IdleBudget::new(config.idle_cap() as usize);
        let slots = Arc::new(tokio::sync::Semaphore::new(
            config.max_instances.max(1) as usize
        ));
        Ok(PluginRuntime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                caps,
                cache,
                config,
                cache_hits: AtomicU64::new(0),
                compiles: AtomicU64::new(0),
                slots,
                idle_budget,
                _ticker: ticker,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Components served from the on-disk cache so far.
    pub fn cache_hits(&self) -> u64 {
        self.inner.cache_hits.load(Ordering::Relaxed)
    }

    /// Warm instances kept for reuse right now, across plugins.
    pub fn idle_instances(&self) -> usize {
        self.inner.idle_budget.count()
    }

    /// Components compiled so far.
    pub fn compiles(&self) -> u64 {
        self.inner.compiles.load(Ordering::Relaxed)
    }

    /// Validate `bytes`, compile them (or take the compiled code from the cache),
    /// instantiate once to read the manifest, and check it.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedPlugin>, LoadError> {
        let inner = &self.inner;
        validate::check_header(bytes)?;
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        let id = format!("sha256:{}", hex::encode(sha));

        let (component, from_cache) = self.compile(bytes, sha).await?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&inner.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let exports: Vec<String> = ty
            .exports(&inner.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let export_set = validate::check_exports(&exports)?;
        validate::check_imports(&imports, &export_set.version)?;
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(call::describe(&e)))?;
        let guest = guest::GuestExports::new(&export_set, &pre)?;

        let labels = CallLabels {
            plugin: Arc::from(id.as_str()),
            ..CallLabels::default()
        };
        let data = CallContext::new(
            inner.caps.clone(),
            labels,
            inner.config.call_timeout,
            inner.config.memory_limit,
            HostAllowlist::deny_all(),
            None,
        );
        let slot = tokio::time::timeout(inner.config.call_timeout, inner.slots.acquire())
            .await
            .map_err(|_| LoadError::Internal("all plugin instance slots are busy".into()))?
            .map_err(|_| LoadError::Internal("the plugin runtime is shutting down".into()))?;
        let store = call::new_store(&inner.engine, data);
        let (pre_call, guest_call) = (pre.clone(), guest.clone());
        let outcome = call::run(store, move |mut store| async move {
            let result = async {
                let instance = pre_call.instantiate_async(&mut store).await?;
                if let Err(err) = guest_call.verify(&mut store, &instance) {
                    return Ok(Err(LoadError::Link(call::describe(&err))));
                }
                Ok(Ok(guest_call.manifest(&mut store, &instance).await?))
            }
            .await;
            (result, store)
        })
        .await;
        let manifest = match outcome {
            Ok((Ok(Ok(m)), _)) => m,
            Ok((Ok(Err(link)), _)) => return Err(link),
            Ok((Err(err), store)) => {
                let fault = call::classify(&store, err);
                return Err(LoadError::ManifestCall(fault.to_string()));
            }
            Err(fault) => return Err(LoadError::ManifestCall(fault.to_string())),
        };
        drop(slot);
        validate::check_manifest(&manifest, &export_set)?;

        let limits = plugin::CallLimits {
            memory_limit: inner.config.memory_limit,
            call_timeout: inner.config.call_timeout,
            response_cap: inner.config.http_response_cap,
            max_instances: inner.config.max_instances,
        };
        Ok(Arc::new(LoadedPlugin::new(
            id,
            manifest,
            export_set.version,
            imports,
            exports,
            bytes.len(),
            from_cache,
            inner.engine.clone(),
            pre,
            guest,
            inner.caps.clone(),
            limits,
            inner.slots.clone(),
            reuse::IdlePool::new(inner.idle_budget.clone(), inner.config.instance_reuse),
        )))
    }

    /// Compile `bytes` on a blocking thread, or load the cached artifact (waiting for a
    /// process compiling the same component into a shared cache, see [`cache`]).
    async fn compile(&self, bytes: &[u8], sha: [u8; 32]) -> Result<(Component, bool), LoadError> {
        let inner = self.inner.clone();
        let bytes = bytes.to_vec();
        let (component, from_cache) = tokio::task::spawn_blocking(move || {
            let cached = || {
                let component = inner.cache.as_ref()?.load(&inner.engine, &sha)?;
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                Some((component, true))
            };
            if let Some(hit) = cached() {
                return Ok(hit);
            }
            // Another server sharing the cache may be compiling it: wait, then take its
            // artifact instead of compiling it a second time. Held until stored.
            let compiling = inner.cache.as_ref().and_then(|c| c.compile_lock(&sha));
            if let Some(hit) = compiling.as_ref().and_then(|_| cached()) {
                return Ok(hit);
            }
            let component = Component::new(&inner.engine, &bytes)
                .map_err(|e| LoadError::Invalid(call::describe(&e)))?;
            inner.compiles.fetch_add(1, Ordering::Relaxed);
            if let Some(cache) = &inner.cache {
                cache.store(&component, &sha);
            }
            Ok((component, false))
        })
        .await
        .map_err(|e| LoadError::Internal(format!("compilation task failed: {e}")))??;
        Ok((component, from_cache))
    }
}
