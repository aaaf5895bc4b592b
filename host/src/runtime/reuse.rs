//! Reuse of warm instances for calls of the same target.
//!
//! With [`RuntimeConfig::instance_reuse`](super::RuntimeConfig::instance_reuse) above 0
//! (the server's `plugin_instance_reuse`, 1000 by default), an instance
//! whose `deliver`/`transform` returned normally is kept and serves later calls of the
//! *same* target (same tenant, target id, prototype, configuration and credentials), up
//! to that many calls. Any trap, timeout, memory-limit hit or network denial discards
//! it. Guest state (heap, globals) then persists between calls of one destination; it
//! never crosses targets or tenants. What this saves, measured on the webhook plugin:
//! instantiation and teardown, the guest's first-call setup and heap growth (mprotect),
//! about half of a call's cost.
//!
//! Idle instances hold pooling-allocator slots: the engine's pool is sized
//! `max_instances + cap`, and a runtime-wide [`IdleBudget`] keeps the total idle count at
//! or under `cap` (a plugin over budget evicts its own least recently used instance).

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::Instance;
use wasmtime::Store;

use super::call::CallContext;
use super::calls::Target;
use super::guest::TargetJson;

/// Most idle instances one plugin keeps (lookups scan them).
const PER_PLUGIN: usize = 256;

/// The runtime-wide budget of idle instances.
#[derive(Debug)]
pub struct IdleBudget {
    count: AtomicUsize,
    cap: usize,
}

impl IdleBudget {
    /// A budget of `cap` idle instances (0 disables keeping any).
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(IdleBudget {
            count: AtomicUsize::new(0),
            cap,
        })
    }

    /// Idle instances kept now, across plugins.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn try_acquire(self: &Arc<Self>) -> Option<BudgetToken> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .ok()
            .map(|_| BudgetToken(self.clone()))
    }
}

/// One unit of the idle budget, returned on drop.
struct BudgetToken(Arc<IdleBudget>);

impl Drop for BudgetToken {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who an idle instance may serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetKey {
    hash: u64,
    tenant: String,
    id: String,
}

/// A warm instance and its store.
pub(crate) struct Idle {
    key: TargetKey,
    pub store: Store<CallContext>,
    pub instance: Instance,
    /// Calls served so far.
    pub uses: u32,
    _token: BudgetToken,
}

/// One plugin's idle instances.
pub(crate) struct IdlePool {
    entries: Mutex<VecDeque<Idle>>,
    budget: Arc<IdleBudget>,
    max_uses: u32,
    hasher: RandomState,
}

impl IdlePool {
    pub fn new(budget: Arc<IdleBudget>, max_uses: u32) -> Self {
        IdlePool {
            entries: Mutex::default(),
            budget,
            max_uses,
            hasher: RandomState::new(),
        }
    }

    /// Whether instances are kept at all.
    pub fn enabled(&self) -> bool {
        self.max_uses > 0 && self.budget.cap > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Idle instances of this plugin.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The key of `target`. The hash (keyed per process) covers configuration and
    /// credentials; tenant and id are compared in full.
    pub fn key(&self, target: &Target, json: &TargetJson) -> TargetKey {
        let mut h = self.hasher.build_hasher();
        (&target.prototype, &target.tenant_id, &target.id).hash(&mut h);
        (&json.config, &json.credentials).hash(&mut h);
        for (k, v) in &target.delivery_metadata {
            (k, v).hash(&mut h);
        }
        TargetKey {
            hash: h.finish(),
            tenant: target.tenant_id.clone(),
            id: target.id.clone(),
        }
    }

    /// Take the most recently used idle instance for `key`.
    pub fn take(&self, key: &TargetKey) -> Option<Idle> {
        let mut entries = self.lock();
        let at = entries.iter().rposition(|e| e.key == *key)?;
        entries.remove(at)
    }

    /// Keep an instance that just served a call (its `uses` already counted).
    pub fn put(&self, key: TargetKey, store: Store<CallContext>, instance: Instance, uses: u32) {
        if uses >= self.max_uses {
            return;
        }
        let mut entries = self.lock();
        let token = match self.budget.try_acquire() {
            Some(token) if entries.len() < PER_PLUGIN => token,
            // Over a budget: make room by evicting this plugin's oldest instance.
            Some(token) => {
                entries.pop_front();
                token
            }
            None => match entries.pop_front() {
                Some(oldest) => oldest._token,
                None => return,
            },
        };
        entries.push_back(Idle {
            key,
            store,
            instance,
            uses,
            _token: token,
        });
    }

    /// Drop every idle instance (the plugin is being replaced or removed).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
