//! A loaded plugin and the calls the rest of the host makes on it.
//!
//! A call gets an instance from the plugin's `InstancePre` in a fresh `Store` (cheap
//! with the pooling allocator), or a warm one that served the same target before (see
//! [`reuse`](super::reuse)), under the runtime's memory limit and deadline.
//! A trap, timeout or limit fails that call only. Calls first wait (up to the call
//! timeout) for one of the runtime's instance slots, so a burst beyond
//! `max_instances` queues instead of failing.
//!
//! Crash accounting is driven by the caller through
//! [`PluginRegistry::record_crash`](super::PluginRegistry::record_crash) and
//! `record_success`; the count and the `quarantined` flag live here so that whoever
//! holds the `Arc` sees them. A quarantined plugin still answers calls: callers check
//! [`LoadedPlugin::quarantined`] and do not call it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Engine, Store};

use super::call::{self, CallContext, CallLabels, Fault};
use super::calls::{CallError, Target, TransformFailure};
use super::capabilities::state::scope_key;
use super::capabilities::Capabilities;
use super::fields::FieldRules;
use super::guest::{GuestExports, TargetJson, TransformRejection};
use super::manifest::{FieldError, Manifest, Prototype, PrototypeKind, TestCase};
use super::network::HostAllowlist;
use super::reuse::{IdlePool, TargetKey};
use super::slow_lane::{Demote, Suspicion};

mod deliver;

/// Largest linear memory an instance may have grown to and still be kept warm: idle
/// instances keep their memory, so one that grew large (a plugin building a huge
/// output, say) is dropped rather than held for the next call. Rust plugins use 1-2
/// MiB, componentize-js/-py ones start at 9-12 MiB.
const REUSE_MAX_MEMORY: usize = 16 * 1024 * 1024;

/// Per-call limits, copied from the runtime configuration at load.
#[derive(Clone, Debug)]
pub(crate) struct CallLimits {
    pub memory_limit: usize,
    pub call_timeout: Duration,
    pub response_cap: usize,
    pub max_instances: u32,
}

/// Crash accounting.
#[derive(Debug, Default)]
struct Health {
    crash_streak: AtomicU32,
    quarantined: AtomicBool,
    /// When a call last ran long or hit the memory limit (its next calls then start on
    /// the slow lane).
    suspicion: Arc<Suspicion>,
}

/// A validated, compiled plugin ready for calls. Shared as `Arc<LoadedPlugin>`: calls in
/// flight keep the version they started on when a new one replaces it.
pub struct LoadedPlugin {
    /// `sha256:<hex>` of the component bytes.
    pub id: String,
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// `outrider:plugin` WIT version it was built against.
    pub wit_version: String,
    /// Names of the component's imports.
    pub imports: Vec<String>,
    /// Names of the component's exports.
    pub exports: Vec<String>,
    /// Component size in bytes.
    pub size: usize,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<CallContext>,
    pub(crate) guest: GuestExports,
    pub(crate) caps: Arc<Capabilities>,
    pub(crate) limits: CallLimits,
    pub(crate) name: Arc<str>,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) idle: IdlePool,
    warm_calls: AtomicU64,
    peak_memory: std::sync::atomic::AtomicUsize,
    rules: HashMap<(PrototypeKind, String), FieldRules>,
    health: Health,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.id)
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("wit_version", &self.wit_version)
            .field("quarantined", &self.quarantined())
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        manifest: Manifest,
        wit_version: String,
        imports: Vec<String>,
        exports: Vec<String>,
        size: usize,
        from_cache: bool,
        engine: Engine,
        pre: InstancePre<CallContext>,
        guest: GuestExports,
        caps: Arc<Capabilities>,
        limits: CallLimits,
        slots: Arc<Semaphore>,
        idle: IdlePool,
    ) -> Self {
        let rules = manifest
            .prototypes
            .iter()
            .map(|p| ((p.kind, p.id.clone()), FieldRules::new(p)))
            .collect();
        let name = Arc::from(manifest.name.as_str());
        LoadedPlugin {
            id,
            manifest,
            wit_version,
            imports,
            exports,
            size,
            from_cache,
            engine,
            pre,
            guest,
            caps,
            limits,
            name,
            slots,
            idle,
            warm_calls: AtomicU64::new(0),
            peak_memory: std::sync::atomic::AtomicUsize::new(0),
            rules,
            health: Health::default(),
        }
    }

    /// The prototype `id` of `kind`, if this plugin provides it.
    pub fn prototype(&self, kind: PrototypeKind, id: &str) -> Option<&Prototype> {
        self.manifest
            .prototypes
            .iter()
            .find(|p| p.kind == kind && p.id == id)
    }

    /// Whether the plugin is quarantined after repeated crashes.
    pub fn quarantined(&self) -> bool {
        self.health.quarantined.load(Ordering::Relaxed)
    }

    /// Whether new calls start on the slow lane (a call ran long or hit the memory limit
    /// lately).
    pub fn starts_on_slow_lane(&self) -> bool {
        self.health.suspicion.is_recent()
    }

    /// Crashes (traps, timeouts, memory limits) in a row so far.
    pub fn crash_streak(&self) -> u32 {
        self.health.crash_streak.load(Ordering::Relaxed)
    }

    /// Lift a quarantine (operator action); the crash count starts over.
    pub fn release_quarantine(&self) {
        self.health.crash_streak.store(0, Ordering::Relaxed);
        self.health.quarantined.store(false, Ordering::Relaxed);
    }

    /// Count a crash; quarantine at `threshold` in a row. Returns whether this crash
    /// put the plugin in quarantine.
    pub(crate) fn record_crash(&self, threshold: u32) -> bool {
        let streak = self.health.crash_streak.fetch_add(1, Ordering::Relaxed) + 1;
        if streak >= threshold.max(1) && !self.health.quarantined.swap(true, Ordering::Relaxed) {
            tracing::error!(
                plugin = %self.name,
                id = %self.id,
                crashes = streak,
                "plugin quarantined after repeated crashes"
            );
            return true;
        }
        false
    }

    /// A call completed: the crash count starts over (a quarantine stays).
    pub(crate) fn record_success(&self) {
        self.health.crash_streak.store(0, Ordering::Relaxed);
    }

    /// Wait (up to the call timeout) for an instance slot.
    async fn slot(&self) -> Result<SemaphorePermit<'_>, Fault> {
        match tokio::time::timeout(self.limits.call_timeout, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Fault::Unavailable(
                "the plugin runtime is shutting down".into(),
            )),
            Err(_) => Err(Fault::Unavailable(format!(
                "all {} plugin instance slots stayed busy for {:?}",
                self.limits.max_instances, self.limits.call_timeout
            ))),
        }
    }

    /// A fresh store for a call on `prototype` for `target`.
    fn store(&self, prototype: Option<&Prototype>, target: Option<&Target>) -> Store<CallContext> {
        let allowlist = match (prototype, target) {
            (Some(p), Some(t)) => HostAllowlist::for_target(&p.network, &t.config),
            _ => HostAllowlist::deny_all(),
        };
        let labels = CallLabels {
            plugin: self.name.clone(),
            prototype: prototype.map(|p| p.id.clone()),
            target: target.map(|t| t.id.clone()),
        };
        let scope = target.map(|t| scope_key(&self.manifest.name, &t.tenant_id, &t.id));
        let data = CallContext::new(
            self.caps.clone(),
            labels,
            self.limits.call_timeout,
            self.limits.memory_limit,
            allowlist,
            scope,
        );
        let mut store = call::new_store(&self.engine, data);
        store.data_mut().demote = Demote::for_plugin(self.health.suspicion.clone());
        store
    }

    /// Check `config` and `credentials` against the declared fields of a prototype,
    /// normalising values (`"true"` -> `true`, ...) and applying defaults in place. Returns
    /// the problems found; does not call the plugin.
    pub fn normalize(
        &self,
        kind: PrototypeKind,
        prototype: &str,
        config: &mut Value,
        credentials: &mut Value,
    ) -> Result<Vec<FieldError>, CallError> {
        let proto = self
            .prototype(kind, prototype)
            .ok_or_else(|| CallError::UnknownPrototype {
                kind,
                prototype: prototype.to_owned(),
            })?;
        let rules = self.rules.get(&(kind, prototype.to_owned()));
        let default_rules = FieldRules::default();
        Ok(rules
            .unwrap_or(&default_rules)
            .check(proto, config, credentials))
    }

    /// Validate a configuration: the host checks the declared fields first (required,
    /// types, lengths, patterns, options), then asks the plugin with the normalised
    /// values. Returns every field error (plugin errors on a path the host already
    /// reported are dropped); empty means valid.
    pub async fn validate(
        &self,
        kind: PrototypeKind,
        prototype: &str,
        config: &Value,
        credentials: &Value,
    ) -> Result<Vec<FieldError>, CallError> {
        let mut config = config.clone();
        let mut credentials = credentials.clone();
        let mut errors = self.normalize(kind, prototype, &mut config, &mut credentials)?;
        let _slot = self.slot().await?;
        let proto = self
            .prototype(kind, prototype)
            .expect("checked by normalize");
        let target = Target {
            prototype: prototype.to_owned(),
            config,
            credentials,
            ..Target::default()
        };
        let store = self.store(Some(proto), Some(&target));
        let (config_json, credentials_json) =
            (target.config.to_string(), target.credentials.to_string());
        let (pre, guest, prototype_id) =
            (self.pre.clone(), self.guest.clone(), prototype.to_owned());
        let outcome = call::run(store, move |mut store| async move {
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                guest
                    .validate(
                        &mut store,
                        &instance,
                        kind,
                        &prototype_id,
                        config_json,
                        credentials_json,
                    )
                    .await
            }
            .await;
            (result, store)
        })
        .await;
        let (plugin_errors, _store) = self.finish(outcome)?;
        for e in plugin_errors {
            if !errors.iter().any(|h| h.field == e.field) {
                errors.push(e);
            }
        }
        Ok(errors)
    }

    /// Largest linear memory any call of this plugin has used so far, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.peak_memory.load(Ordering::Relaxed)
    }

    /// Classify a call's outcome; on success the store comes back (to be kept or dropped).
    fn finish<T>(&self, outcome: call::Ran<T>) -> Result<(T, Store<CallContext>), Fault> {
        let result = match outcome {
            Ok((result, store)) => {
                store.data().release_long_slot();
                self.peak_memory
                    .fetch_max(store.data().limiter.peak, Ordering::Relaxed);
                match result {
                    Ok(value) => Ok((value, store)),
                    Err(err) => Err(call::classify(&store, err)),
                }
            }
            Err(fault) => Err(fault),
        };
        if let Err(fault) = &result {
            // A call that died at the memory limit spent its time faulting in pages,
            // rarely long enough to move; its next calls start on the slow lane.
            if *fault == Fault::MemoryLimit {
                self.health.suspicion.record();
            }
            tracing::warn!(plugin = %self.name, id = %self.id, error = %fault, "plugin call failed");
        }
        result
    }

    /// Warm instances kept for reuse (0 unless `instance_reuse` is on).
    pub fn idle_instances(&self) -> usize {
        self.idle.len()
    }

    /// Calls served by a warm (reused) instance so far.
    pub fn warm_calls(&self) -> u64 {
        self.warm_calls.load(Ordering::Relaxed)
    }

    /// Drop the warm instances (the plugin was replaced or removed).
    pub fn release_idle(&self) {
        self.idle.clear();
    }

    /// A store and, when reusing, a warm instance for a call on `target`.
    fn store_for_target(
        &self,
        proto: &Prototype,
        target: &Target,
        json: &TargetJson,
    ) -> (Store<CallContext>, Option<Instance>, Option<TargetKey>, u32) {
        if !self.idle.enabled() {
            return (self.store(Some(proto), Some(target)), None, None, 0);
        }
        let key = self.idle.key(target, json);
        match self.idle.take(&key) {
            Some(mut idle) => {
                self.warm_calls.fetch_add(1, Ordering::Relaxed);
                idle.store.data_mut().begin_call(self.limits.call_timeout);
                idle.store.set_epoch_deadline(1);
                (idle.store, Some(idle.instance), Some(key), idle.uses)
            }
            None => (self.store(Some(proto), Some(target)), None, Some(key), 0),
        }
    }

    /// Keep the instance of a call that completed cleanly and stayed small, if reusing.
    fn keep(
        &self,
        key: Option<TargetKey>,
        store: Store<CallContext>,
        instance: Instance,
        uses: u32,
    ) {
        if let Some(key) = key {
            let data = store.data();
            if data.denials.is_empty()
                && !data.timed_out
                && !data.limiter.hit
                && data.limiter.peak <= REUSE_MAX_MEMORY
            {
                self.idle.put(key, store, instance, uses + 1);
            }
        }
    }

    /// Transform `input` for `target` into zero or more outputs.
    pub async fn transform(
        &self,
        target: &Target,
        input: &Value,
    ) -> Result<Vec<Value>, TransformFailure> {
        let Some(proto) = self.prototype(PrototypeKind::Transformer, &target.prototype) else {
            return Err(TransformFailure::Misconfigured(format!(
                "plugin {} has no transformer prototype `{}`",
                self.name, target.prototype
            )));
        };
        let _slot = self.slot().await?;
        let json = TargetJson::new(target);
        let input = input.to_string();
        let (store, warm, key, uses) = self.store_for_target(proto, target, &json);
        let (pre, guest, target) = (self.pre.clone(), self.guest.clone(), target.clone());
        let outcome = call::run(store, move |mut store| async move {
            let result = async {
                let instance = match warm {
                    Some(instance) => instance,
                    None => pre.instantiate_async(&mut store).await?,
                };
                let result = guest
                    .transform(&mut store, &instance, &target, &json, &input)
                    .await?;
                Ok((instance, result))
            }
            .await;
            (result, store)
        })
        .await;
        let ((instance, result), store) = self.finish(outcome).map_err(TransformFailure::from)?;
        let denied = store.data().denials.first().cloned();
        self.keep(key, store, instance, uses);
        match result {
            Ok(outputs) => outputs
                .iter()
                .map(|text| {
                    serde_json::from_str(text).map_err(|e| {
                        TransformFailure::BadOutput(format!("output is not JSON: {e}"))
                    })
                })
                .collect(),
            Err(_) if denied.is_some() => Err(TransformFailure::Denied(denied.unwrap_or_default())),
            Err(TransformRejection::InvalidInput(m)) => Err(TransformFailure::InvalidInput(m)),
            Err(TransformRejection::Misconfigured(m)) => Err(TransformFailure::Misconfigured(m)),
        }
    }

    /// The self-tests the plugin ships (not run here).
    pub async fn self_tests(&self) -> Result<Vec<TestCase>, CallError> {
        let _slot = self.slot().await?;
        let store = self.store(None, None);
        let (pre, guest) = (self.pre.clone(), self.guest.clone());
        let outcome = call::run(store, move |mut store| async move {
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                guest.self_tests(&mut store, &instance).await
            }
            .await;
            (result, store)
        })
        .await;
        Ok(self.finish(outcome)?.0)
    }
}
