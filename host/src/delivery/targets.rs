//! Prepared delivery targets, kept per destination while its stored row is unchanged.
//!
//! Preparing a target decrypts the credentials, parses the configuration, lets the plugin
//! type both (defaults, `"true"` → `true`) and serializes them for the call. That is the
//! same work for every event to a destination, so it is done once and reused until the
//! destination's stored configuration, credentials or metadata change (compared in full,
//! so an update, a key rotation or a plugin upgrade is seen by the next delivery).
//! Decrypted credentials stay only in this bounded map, like the plugin instances that
//! receive them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::crypto::Keyring;
use crate::runtime::manifest::PrototypeKind;
use crate::runtime::{LoadedPlugin, PreparedTarget, Target};
use crate::store::DestinationRow;

/// Most destinations kept; past it the map starts over (the next delivery of each
/// prepares it again).
const MAX_TARGETS: usize = 4096;

/// Why a destination's target could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unprepared {
    /// The credentials do not decrypt with the server's keys.
    Undecryptable(String),
    /// The plugin rejects the stored configuration or credentials.
    Misconfigured(String),
}

/// Prepared targets by destination id.
#[derive(Default)]
pub struct TargetCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    /// The plugin version (`sha256:...`) that typed the values.
    plugin_id: String,
    /// The stored row's values the target was made from.
    config: String,
    credentials: String,
    delivery_metadata: Option<String>,
    prepared: Arc<PreparedTarget>,
}

impl Entry {
    fn matches(&self, destination: &DestinationRow, plugin: &LoadedPlugin) -> bool {
        self.plugin_id == plugin.id
            && self.config == destination.config
            && self.credentials == destination.credentials
            && self.delivery_metadata == destination.delivery_metadata
    }
}

impl TargetCache {
    /// The prepared target of `destination` for `plugin`, made now if the stored row
    /// changed since last time.
    pub fn get(
        &self,
        keyring: &Keyring,
        destination: &DestinationRow,
        plugin: &LoadedPlugin,
    ) -> Result<Arc<PreparedTarget>, Unprepared> {
        if let Some(entry) = self.lock().get(&destination.id) {
            if entry.matches(destination, plugin) {
                return Ok(entry.prepared.clone());
            }
        }
        let prepared = Arc::new(prepare(keyring, destination, plugin)?);
        let mut entries = self.lock();
        if entries.len() >= MAX_TARGETS {
            entries.clear();
        }
        entries.insert(
            destination.id.clone(),
            Entry {
                plugin_id: plugin.id.clone(),
                config: destination.config.clone(),
                credentials: destination.credentials.clone(),
                delivery_metadata: destination.delivery_metadata.clone(),
                prepared: prepared.clone(),
            },
        );
        Ok(prepared)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the map leaves it consistent (inserts are whole).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decrypt, parse and type a destination's values for its plugin.
fn prepare(
    keyring: &Keyring,
    destination: &DestinationRow,
    plugin: &LoadedPlugin,
) -> Result<PreparedTarget, Unprepared> {
    let mut credentials = keyring
        .decrypt_json(
            &destination.credentials,
            super::credentials_aad(&destination.id).as_bytes(),
        )
        .map_err(|err| Unprepared::Undecryptable(err.to_string()))?;
    let mut config = serde_json::from_str(&destination.config).unwrap_or_default();
    // Stored values are as the client sent them ("true", "30"); the plugin sees them
    // typed, with defaults applied.
    if let Ok(problems) = plugin.normalize(
        PrototypeKind::Destination,
        &destination.r#type,
        &mut config,
        &mut credentials,
    ) {
        if !problems.is_empty() {
            return Err(Unprepared::Misconfigured(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
    }
    Ok(PreparedTarget::new(Target {
        prototype: destination.r#type.clone(),
        id: destination.id.clone(),
        tenant_id: destination.tenant_id.clone(),
        config,
        credentials,
        delivery_metadata: string_map(destination.delivery_metadata.as_deref()),
    }))
}

/// A stored JSON object of strings (metadata), empty when absent or unreadable.
pub(super) fn string_map(json: Option<&str>) -> BTreeMap<String, String> {
    json.and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}
