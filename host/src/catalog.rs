//! The plugin catalog: keeps the runtime's registry, the database and the plugins
//! directory in step. Built-in plugins load from `--plugins-dir` at start; uploaded ones
//! are stored in the database, survive restarts, and replace a built-in of the same name.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;

use crate::api::{ApiError, AppState};
use crate::runtime::manifest::{Manifest, PrototypeKind};
use crate::runtime::{LoadedPlugin, PluginRegistry, PluginRuntime};
use crate::store::{Store, StoredPlugin};

/// A plugin as the API shows it.
#[derive(Serialize, Clone, Debug)]
pub struct PluginInfo {
    /// `sha256:<hex>` of the component.
    pub id: String,
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Manifest description.
    pub description: String,
    /// `builtin` (plugins directory) or `uploaded` (database).
    pub source: &'static str,
    /// Whether it serves new calls (false for replaced versions kept for rollback).
    pub active: bool,
    /// Set after repeated crashes; a quarantined plugin is not called.
    pub quarantined: bool,
    /// Component size in bytes.
    pub size: u64,
    /// WIT package version it was built against.
    pub wit_version: Option<String>,
    /// Interfaces it imports.
    pub imports: Vec<String>,
    /// Its prototypes, in short.
    pub prototypes: Vec<PrototypeSummary>,
}

/// A prototype in a plugin listing.
#[derive(Serialize, Clone, Debug)]
pub struct PrototypeSummary {
    /// Prototype id (the destination `type` for destinations).
    pub id: String,
    /// Destination or transformer.
    pub kind: PrototypeKind,
    /// Label.
    pub label: String,
}

fn summarize(manifest: &Manifest) -> Vec<PrototypeSummary> {
    manifest
        .prototypes
        .iter()
        .map(|p| PrototypeSummary {
            id: p.id.clone(),
            kind: p.kind,
            label: p.label.clone(),
        })
        .collect()
}

fn loaded_info(
    plugin: &LoadedPlugin,
    registry: &PluginRegistry,
    source: &'static str,
) -> PluginInfo {
    PluginInfo {
        id: plugin.id.clone(),
        name: plugin.manifest.name.clone(),
        version: plugin.manifest.version.clone(),
        description: plugin.manifest.description.clone(),
        source,
        active: true,
        quarantined: registry.is_quarantined(&plugin.id),
        size: plugin.size as u64,
        wit_version: Some(plugin.wit_version.clone()),
        imports: plugin.imports.clone(),
        prototypes: summarize(&plugin.manifest),
    }
}

fn stored_info(stored: &StoredPlugin) -> Result<PluginInfo, ApiError> {
    let manifest: Manifest = serde_json::from_str(&stored.manifest).map_err(ApiError::internal)?;
    Ok(PluginInfo {
        id: stored.id.clone(),
        name: stored.name.clone(),
        version: stored.version.clone(),
        description: manifest.description.clone(),
        source: "uploaded",
        active: false,
        quarantined: false,
        size: stored.size as u64,
        wit_version: None,
        imports: Vec::new(),
        prototypes: summarize(&manifest),
    })
}

/// Every plugin: loaded ones first, then stored versions that are not loaded.
pub async fn list(state: &AppState) -> Result<Vec<PluginInfo>, ApiError> {
    let stored = state.store.list_plugins().await?;
    let uploaded: std::collections::HashSet<&str> = stored.iter().map(|p| p.id.as_str()).collect();
    let mut out: Vec<PluginInfo> = state
        .registry
        .list()
        .iter()
        .map(|p| {
            let source = if uploaded.contains(p.id.as_str()) {
                "uploaded"
            } else {
                "builtin"
            };
            loaded_info(p, &state.registry, source)
        })
        .collect();
    for plugin in &stored {
        if !out.iter().any(|p| p.id == plugin.id) {
            out.push(stored_info(plugin)?);
        }
    }
    Ok(out)
}

/// One plugin by id (`sha256:...`) or by name (its active version).
pub async fn get(state: &AppState, id: &str) -> Result<PluginInfo, ApiError> {
    list(state)
        .await?
        .into_iter()
        .find(|p| p.id == id || (p.active && p.name == id))
        .ok_or_else(|| ApiError::not_found(format!("plugin {id}")))
}

/// Validate, store and hot-load a component. In-flight calls finish on the version they
/// started with.
pub async fn upload(state: &AppState, bytes: &[u8]) -> Result<PluginInfo, ApiError> {
    let plugin = state
        .runtime
        .load(bytes)
        .await
        .map_err(|err| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()))?;
    let record = StoredPlugin {
        id: plugin.id.clone(),
        name: plugin.manifest.name.clone(),
        version: plugin.manifest.version.clone(),
        size: bytes.len() as i64,
        manifest: serde_json::to_string(&plugin.manifest).map_err(ApiError::internal)?,
        active: true,
        created_at: 0,
    };
    state.store.put_plugin(&record, bytes).await?;
    state.registry.insert(plugin.clone());
    tracing::info!(plugin = %plugin.manifest.name, version = %plugin.manifest.version, id = %plugin.id, "plugin uploaded");
    Ok(loaded_info(&plugin, &state.registry, "uploaded"))
}

/// Remove an uploaded plugin; the previous stored version of its name, if any, takes
/// over. Built-in plugins are removed from the plugins directory, not through the API.
pub async fn remove(state: &AppState, id: &str) -> Result<(), ApiError> {
    let info = get(state, id).await?;
    if info.source == "builtin" {
        return Err(ApiError::conflict(format!(
            "plugin {} is built in (loaded from the plugins directory); remove the file instead",
            info.name
        )));
    }
    state.store.delete_plugin(&info.id).await?;
    state.registry.remove(&info.id);
    // Reload the version that became active, if one remains.
    if let Some(next) = state
        .store
        .list_plugins()
        .await?
        .into_iter()
        .find(|p| p.active && p.name == info.name)
    {
        let bytes = state.store.plugin_wasm(&next.id).await?;
        let plugin = state
            .runtime
            .load(&bytes)
            .await
            .map_err(ApiError::internal)?;
        state.registry.insert(plugin);
    }
    Ok(())
}

/// Load every `*.wasm` file directly inside `dir`. A file that fails to load is logged and
/// skipped, so one bad file does not keep the server down.
pub async fn load_dir(
    runtime: &PluginRuntime,
    registry: &PluginRegistry,
    dir: &Path,
) -> anyhow::Result<usize> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("plugins dir {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "wasm") && p.is_file())
        .collect();
    entries.sort();
    let mut loaded = 0;
    for path in entries {
        let bytes = std::fs::read(&path)?;
        match runtime.load(&bytes).await {
            Ok(plugin) => {
                tracing::info!(plugin = %plugin.manifest.name, version = %plugin.manifest.version, path = %path.display(), "built-in plugin loaded");
                registry.insert(plugin);
                loaded += 1;
            }
            Err(err) => tracing::error!(path = %path.display(), error = %err, "plugin rejected"),
        }
    }
    Ok(loaded)
}

/// Load the active version of every uploaded plugin.
pub async fn load_stored(
    runtime: &PluginRuntime,
    registry: &PluginRegistry,
    store: &Store,
) -> anyhow::Result<usize> {
    let mut loaded = 0;
    for stored in store.list_plugins().await?.into_iter().filter(|p| p.active) {
        let bytes = store.plugin_wasm(&stored.id).await?;
        match runtime.load(&bytes).await {
            Ok(plugin) => {
                registry.insert(plugin);
                loaded += 1;
            }
            Err(err) => {
                tracing::error!(plugin = %stored.name, id = %stored.id, error = %err, "stored plugin no longer loads")
            }
        }
    }
    Ok(loaded)
}

/// Used by handlers that need one loaded plugin by prototype.
pub fn plugin_for(
    registry: &PluginRegistry,
    kind: PrototypeKind,
    prototype: &str,
) -> Option<Arc<LoadedPlugin>> {
    registry.find_prototype(kind, prototype)
}
