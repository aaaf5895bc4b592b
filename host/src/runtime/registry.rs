//! Loaded plugins by id, and which plugin serves each (kind, prototype id).
//!
//! Inserting a new version of a plugin (same manifest name, different id) replaces the
//! old one for new lookups; calls in flight hold their own `Arc<LoadedPlugin>` and finish
//! on the old version.
//!
//! Crash accounting: the caller reports each call's outcome with
//! [`PluginRegistry::record_crash`] (trap, timeout, memory limit) or
//! [`PluginRegistry::record_success`] (the call completed, whatever the plugin
//! answered); after [`PluginRegistry::quarantine_threshold`] crashes in a row the plugin
//! is quarantined (`LoadedPlugin::quarantined`, [`PluginRegistry::is_quarantined`]) and
//! callers stop calling it until [`PluginRegistry::release_quarantine`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::manifest::PrototypeKind;
use super::plugin::LoadedPlugin;

#[derive(Default)]
struct Inner {
    /// In insertion order.
    plugins: Vec<Arc<LoadedPlugin>>,
    index: HashMap<(PrototypeKind, String), Arc<LoadedPlugin>>,
}

impl Inner {
    fn reindex(&mut self) {
        self.index.clear();
        for plugin in &self.plugins {
            for p in &plugin.manifest.prototypes {
                let key = (p.kind, p.id.clone());
                if let Some(other) = self.index.get(&key) {
                    tracing::warn!(
                        prototype = %p.id,
                        kind = %p.kind,
                        replaced = %other.manifest.name,
                        by = %plugin.manifest.name,
                        "two plugins provide the same prototype; the later one serves it"
                    );
                }
                self.index.insert(key, plugin.clone());
            }
        }
    }
}

/// Consecutive crashes that quarantine a plugin unless configured otherwise.
pub const DEFAULT_QUARANTINE_THRESHOLD: u32 = 5;

/// The loaded plugins. Share it as `Arc<PluginRegistry>`.
pub struct PluginRegistry {
    inner: RwLock<Inner>,
    threshold: u32,
}

impl Default for PluginRegistry {
    fn default() -> Self {
        PluginRegistry::with_quarantine_threshold(DEFAULT_QUARANTINE_THRESHOLD)
    }
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list().iter().map(|p| &p.id))
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry quarantining plugins after `threshold` crashes in a row.
    pub fn with_quarantine_threshold(threshold: u32) -> Self {
        PluginRegistry {
            inner: RwLock::default(),
            threshold: threshold.max(1),
        }
    }

    /// Crashes in a row that quarantine a plugin.
    pub fn quarantine_threshold(&self) -> u32 {
        self.threshold
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Add `plugin`. A loaded plugin with the same name (another version) is replaced
    /// and returned; inserting the same id again is a no-op that returns `None`.
    pub fn insert(&self, plugin: Arc<LoadedPlugin>) -> Option<Arc<LoadedPlugin>> {
        let mut inner = self.write();
        if inner.plugins.iter().any(|p| p.id == plugin.id) {
            return None;
        }
        let replaced = inner
            .plugins
            .iter()
            .position(|p| p.manifest.name == plugin.manifest.name)
            .map(|i| inner.plugins.remove(i));
        inner.plugins.push(plugin);
        inner.reindex();
        if let Some(old) = &replaced {
            old.release_idle();
        }
        replaced
    }

    /// Remove the plugin with `id`, returning it.
    pub fn remove(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        let mut inner = self.write();
        let at = inner.plugins.iter().position(|p| p.id == id)?;
        let removed = inner.plugins.remove(at);
        inner.reindex();
        removed.release_idle();
        Some(removed)
    }

    /// Every loaded plugin, in insertion order.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.read().plugins.clone()
    }

    /// The plugin with `id` (`sha256:...`).
    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.read().plugins.iter().find(|p| p.id == id).cloned()
    }

    /// The loaded plugin named `name`.
    pub fn get_by_name(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.read()
            .plugins
            .iter()
            .find(|p| p.manifest.name == name)
            .cloned()
    }

    /// The plugin serving prototype `id` of `kind`.
    pub fn find_prototype(&self, kind: PrototypeKind, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.read().index.get(&(kind, id.to_owned())).cloned()
    }

    /// Whether the plugin with `id` is quarantined (false when not loaded).
    pub fn is_quarantined(&self, id: &str) -> bool {
        self.get(id).is_some_and(|p| p.quarantined())
    }

    /// Count a crash (trap, timeout, memory limit) of the plugin with `id`. Returns
    /// whether this crash quarantined it.
    pub fn record_crash(&self, id: &str) -> bool {
        self.get(id).is_some_and(|p| p.record_crash(self.threshold))
    }

    /// A call of the plugin with `id` completed (whatever the plugin answered): its
    /// crash count starts over.
    pub fn record_success(&self, id: &str) {
        if let Some(p) = self.get(id) {
            p.record_success();
        }
    }

    /// Lift the quarantine of the plugin with `id`; false when not loaded.
    pub fn release_quarantine(&self, id: &str) -> bool {
        match self.get(id) {
            Some(p) => {
                p.release_quarantine();
                true
            }
            None => false,
        }
    }
}
