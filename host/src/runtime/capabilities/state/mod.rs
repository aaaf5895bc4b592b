//! `outrider:plugin/state`: small key/value state per configured target (e.g. a cached
//! access token), kept in memory with optional TTL and size caps.
//!
//! Scope: one map per plugin + tenant + target id; calls without a target (manifest,
//! self-tests) get `unsupported`. State is per process: it is lost on restart and not
//! shared between nodes, which suits caches (the WIT says entries may be evicted).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::v0_1_1::state;
use crate::runtime::call::CallContext;

mod host;

/// Caps of the state store.
#[derive(Clone, Debug)]
pub struct StateLimits {
    /// Longest key, in bytes.
    pub max_key: usize,
    /// Largest value, in bytes.
    pub max_value: usize,
    /// Most entries per target.
    pub max_entries: usize,
    /// Most bytes (keys + values) across all targets.
    pub max_total: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            max_key: 256,
            max_value: 64 * 1024,
            max_entries: 256,
            max_total: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

#[derive(Debug, Default)]
struct Inner {
    scopes: HashMap<String, HashMap<String, Entry>>,
    total: usize,
}

/// Why a `set` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Key, value, per-target or total cap exceeded.
    TooLarge,
}

/// In-memory state of every target.
#[derive(Debug, Default)]
pub struct StateStore {
    limits: StateLimits,
    inner: Mutex<Inner>,
}

impl StateStore {
    /// A store with `limits`.
    pub fn with_limits(limits: StateLimits) -> Self {
        StateStore {
            limits,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way
        // that matters for a cache; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Value of `key` in `scope`, unless absent or expired.
    pub fn get(&self, scope: &str, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let entries = inner.scopes.get_mut(scope)?;
        match entries.get(key) {
            Some(e) if e.live(now) => Some(e.value.clone()),
            Some(_) => {
                let gone = entries.remove(key).map(|e| e.value.len() + key.len());
                inner.total -= gone.unwrap_or(0);
                None
            }
            None => None,
        }
    }

    /// Store `value` under `key` in `scope`, expiring after `ttl` if given.
    pub fn set(
        &self,
        scope: &str,
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), StateError> {
        if key.len() > self.limits.max_key || value.len() > self.limits.max_value {
            return Err(StateError::TooLarge);
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { scopes, total } = &mut *inner;
        let entries = scopes.entry(scope.to_owned()).or_default();
        // Drop expired entries of this scope first.
        entries.retain(|k, e| {
            let live = e.live(now);
            if !live {
                *total -= k.len() + e.value.len();
            }
            live
        });
        let old = entries
            .get(&key)
            .map(|e| key.len() + e.value.len())
            .unwrap_or(0);
        let new = key.len() + value.len();
        let is_new_key = old == 0 && !entries.contains_key(&key);
        if is_new_key && entries.len() >= self.limits.max_entries {
            return Err(StateError::TooLarge);
        }
        if *total - old + new > self.limits.max_total {
            return Err(StateError::TooLarge);
        }
        *total = *total - old + new;
        entries.insert(
            key,
            Entry {
                value,
                expires: ttl.map(|d| now + d),
            },
        );
        Ok(())
    }

    /// Remove `key` from `scope`.
    pub fn delete(&self, scope: &str, key: &str) {
        let mut inner = self.lock();
        let Inner { scopes, total } = &mut *inner;
        if let Some(entries) = scopes.get_mut(scope) {
            if let Some(e) = entries.remove(key) {
                *total -= key.len() + e.value.len();
            }
            if entries.is_empty() {
                scopes.remove(scope);
            }
        }
    }

    /// Forget everything of scopes starting with `prefix` (a removed plugin or target).
    pub fn clear_prefix(&self, prefix: &str) {
        let mut inner = self.lock();
        let Inner { scopes, total } = &mut *inner;
        scopes.retain(|scope, entries| {
            let keep = !scope.starts_with(prefix);
            if !keep {
                *total -= entries
                    .iter()
                    .map(|(k, e)| k.len() + e.value.len())
                    .sum::<usize>();
            }
            keep
        });
    }
}

/// The scope key of a target's state.
pub fn scope_key(plugin: &str, tenant: &str, target: &str) -> String {
    format!("{plugin}\u{0}{tenant}\u{0}{target}")
}

/// Add `outrider:plugin/state` to `linker`: reads and writes the calling target's map.
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    state::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete_and_ttl() {
        let s = StateStore::default();
        s.set("a", "k".into(), b"v".to_vec(), None).unwrap();
        assert_eq!(s.get("a", "k").as_deref(), Some(&b"v"[..]));
        assert_eq!(s.get("b", "k"), None);
        s.set("a", "t".into(), b"x".to_vec(), Some(Duration::ZERO))
            .unwrap();
        assert_eq!(s.get("a", "t"), None);
        s.delete("a", "k");
        assert_eq!(s.get("a", "k"), None);
        assert_eq!(s.lock().total, 0);
    }

    #[test]
    fn caps_are_enforced() {
        let s = StateStore::with_limits(StateLimits {
            max_key: 4,
            max_value: 4,
            max_entries: 2,
            max_total: 12,
        });
        assert_eq!(
            s.set("a", "long-key".into(), vec![], None),
            Err(StateError::TooLarge)
        );
        assert_eq!(
            s.set("a", "k".into(), vec![0; 5], None),
            Err(StateError::TooLarge)
        );
        s.set("a", "k1".into(), vec![0; 4], None).unwrap();
        s.set("a", "k2".into(), vec![0; 4], None).unwrap();
        assert_eq!(
            s.set("a", "k3".into(), vec![0; 1], None),
            Err(StateError::TooLarge)
        );
        // Overwriting an existing key is fine within the caps.
        s.set("a", "k1".into(), vec![1; 2], None).unwrap();
        assert_eq!(
            s.set("b", "k".into(), vec![0; 4], None),
            Err(StateError::TooLarge)
        );
        s.clear_prefix("a");
        assert_eq!(s.lock().total, 0);
    }
}
