//! Running transformer configurations: one alone (`/transformers/run`,
//! `/configurations/transformer/{id}/run`) or a destination's ordered chain before its
//! plugin sees an event ([`before_delivery`], called from the dispatch path).
//!
//! A configuration is prepared for each call: sealed values opened, `${NAME}` references
//! resolved, fields normalised. Faults of a transformer call (timeout, memory limit,
//! trap) fail that delivery attempt and are retried like a destination crash, but do not
//! count towards quarantining the plugin: the JavaScript transformer runs user code, and
//! one tenant's runaway script must not quarantine everyone's transformers.

use std::sync::Arc;

use serde_json::Value;

use super::parameters::{sealing_aad, split, unseal};
use super::variables::resolve_stored;
use crate::crypto::Keyring;
use crate::delivery::retry::Outcome;
use crate::runtime::{LoadedPlugin, PluginRegistry, PrototypeKind, Target, TransformFailure};
use crate::store::{ConfigurationRow, DestinationRow, Store};

/// Why a transformer configuration could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A referenced configuration does not exist.
    #[error("transformer configuration `{0}` does not exist")]
    Missing(String),
    /// The configuration is disabled.
    #[error("transformer configuration `{0}` is disabled")]
    Disabled(String),
    /// No loaded plugin provides the prototype.
    #[error("no loaded plugin provides transformer prototype `{0}`")]
    NoPlugin(String),
    /// The plugin is quarantined.
    #[error("plugin {0} is quarantined after repeated crashes")]
    Quarantined(String),
    /// The configuration cannot be used as stored.
    #[error("transformer configuration `{identifier}`: {message}")]
    Misconfigured {
        /// Configuration identifier.
        identifier: String,
        /// What is wrong.
        message: String,
    },
    /// The transformer call failed.
    #[error("transformer `{identifier}`: {failure}")]
    Transform {
        /// Configuration identifier.
        identifier: String,
        /// The failure.
        failure: TransformFailure,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ChainError {
    /// The attempt's `error_kind` and how the retry policy treats it.
    pub fn classify(&self) -> (&'static str, Outcome) {
        match self {
            ChainError::Transform { failure, .. } => match failure {
                TransformFailure::InvalidInput(_) | TransformFailure::BadOutput(_) => {
                    ("fail", Outcome::Fail)
                }
                TransformFailure::Misconfigured(_) => ("misconfigured", Outcome::Misconfigured),
                TransformFailure::Denied(_) => ("denied", Outcome::Misconfigured),
                TransformFailure::Timeout => ("timeout", Outcome::Crash),
                TransformFailure::MemoryLimit => ("memory", Outcome::Crash),
                TransformFailure::Trap(_) => ("trap", Outcome::Crash),
                TransformFailure::Unavailable(_) => ("retry", Outcome::Retry { retry_after: None }),
            },
            ChainError::Quarantined(_) | ChainError::NoPlugin(_) | ChainError::Store(_) => {
                ("misconfigured", Outcome::Retry { retry_after: None })
            }
            ChainError::Missing(_) | ChainError::Disabled(_) | ChainError::Misconfigured { .. } => {
                ("misconfigured", Outcome::Misconfigured)
            }
        }
    }
}

/// What the host needs to run transformers.
#[derive(Clone, Copy)]
pub struct Transformers<'a> {
    /// The database (configurations, environment variables).
    pub store: &'a Store,
    /// Loaded plugins.
    pub registry: &'a PluginRegistry,
    /// Opens sealed values and encrypted variables.
    pub keyring: &'a Keyring,
}

impl Transformers<'_> {
    /// The plugin and call target for a stored transformer configuration.
    pub async fn prepare(
        &self,
        row: &ConfigurationRow,
    ) -> Result<(Arc<LoadedPlugin>, Target), ChainError> {
        let mut params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
        let misconfigured = |message: String| ChainError::Misconfigured {
            identifier: row.identifier.clone(),
            message,
        };
        unseal(
            self.keyring,
            &sealing_aad(&row.r#type, &row.identifier),
            &mut params,
        )
        .map_err(|e| misconfigured(format!("sealed parameters cannot be opened: {e}")))?;
        let missing = resolve_stored(self.store, self.keyring, &mut params).await?;
        if !missing.is_empty() {
            let names: Vec<_> = missing.into_iter().collect();
            return Err(misconfigured(format!(
                "undefined environment variables: {}",
                names.join(", ")
            )));
        }
        self.target_for(&row.identifier, &row.prototype, &params)
    }

    /// The plugin and call target for a prototype with plain `params` (no variables).
    pub fn target_for(
        &self,
        identifier: &str,
        prototype: &str,
        params: &Value,
    ) -> Result<(Arc<LoadedPlugin>, Target), ChainError> {
        let plugin = self
            .registry
            .find_prototype(PrototypeKind::Transformer, prototype)
            .ok_or_else(|| ChainError::NoPlugin(prototype.to_owned()))?;
        let proto = plugin
            .prototype(PrototypeKind::Transformer, prototype)
            .ok_or_else(|| ChainError::NoPlugin(prototype.to_owned()))?;
        let (mut config, mut credentials) = split(proto, params);
        let problems = plugin
            .normalize(
                PrototypeKind::Transformer,
                prototype,
                &mut config,
                &mut credentials,
            )
            .map_err(|e| ChainError::Misconfigured {
                identifier: identifier.to_owned(),
                message: e.to_string(),
            })?;
        if !problems.is_empty() {
            return Err(ChainError::Misconfigured {
                identifier: identifier.to_owned(),
                message: problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let target = Target {
            prototype: prototype.to_owned(),
            id: identifier.to_owned(),
            config,
            credentials,
            ..Target::default()
        };
        Ok((plugin, target))
    }

    /// Run one prepared transformer on `input`.
    pub async fn call(
        &self,
        plugin: &LoadedPlugin,
        target: &Target,
        input: &Value,
    ) -> Result<Vec<Value>, ChainError> {
        if plugin.quarantined() {
            return Err(ChainError::Quarantined(plugin.manifest.name.clone()));
        }
        plugin
            .transform(target, input)
            .await
            .map_err(|failure| ChainError::Transform {
                identifier: target.id.clone(),
                failure,
            })
    }

    /// Run a stored configuration on `input`.
    pub async fn run(
        &self,
        row: &ConfigurationRow,
        input: &Value,
    ) -> Result<Vec<Value>, ChainError> {
        if row.disabled {
            return Err(ChainError::Disabled(row.identifier.clone()));
        }
        let (plugin, target) = self.prepare(row).await?;
        self.call(&plugin, &target, input).await
    }

    /// Pass `inputs` through the configurations `chain` in order; every output of one
    /// step is an input of the next. Returns the final outputs, or which transformer
    /// dropped everything.
    pub async fn run_chain(
        &self,
        chain: &[String],
        inputs: Vec<Value>,
    ) -> Result<ChainOutput, ChainError> {
        let rows = self
            .store
            .configurations_by_ids("transformer", chain)
            .await?;
        let mut current = inputs;
        for identifier in chain {
            let row = rows
                .iter()
                .find(|r| &r.identifier == identifier)
                .ok_or_else(|| ChainError::Missing(identifier.clone()))?;
            if row.disabled {
                // A disabled transformer is skipped: disabling it takes it out of chains.
                continue;
            }
            let (plugin, target) = self.prepare(row).await?;
            let mut next = Vec::new();
            for input in &current {
                next.extend(self.call(&plugin, &target, input).await?);
            }
            if next.is_empty() {
                return Ok(ChainOutput::Dropped {
                    by: identifier.clone(),
                });
            }
            current = next;
        }
        Ok(ChainOutput::Outputs(current))
    }
}

/// The result of a chain.
#[derive(Debug, PartialEq)]
pub enum ChainOutput {
    /// What to deliver (one event per output).
    Outputs(Vec<Value>),
    /// A transformer returned no output: nothing to deliver.
    Dropped {
        /// Identifier of the transformer that dropped the event.
        by: String,
    },
}

/// A destination's transformer chain, if it has one.
pub fn chain_of(destination: &DestinationRow) -> Vec<String> {
    destination
        .transformers
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// The dispatch hook: the payloads (JSON text) to deliver for `data` to `destination`.
/// A destination without transformers gets `data` back untouched, without a query.
pub async fn before_delivery(
    transformers: Transformers<'_>,
    destination: &DestinationRow,
    data: &str,
) -> Result<ChainOutputText, ChainError> {
    let chain = chain_of(destination);
    if chain.is_empty() {
        return Ok(ChainOutputText::Outputs(vec![data.to_owned()]));
    }
    let input: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    Ok(match transformers.run_chain(&chain, vec![input]).await? {
        ChainOutput::Outputs(outputs) => {
            ChainOutputText::Outputs(outputs.iter().map(Value::to_string).collect())
        }
        ChainOutput::Dropped { by } => ChainOutputText::Dropped { by },
    })
}

/// [`ChainOutput`] with payloads as JSON text, as the destination plugin takes them.
#[derive(Debug, PartialEq)]
pub enum ChainOutputText {
    /// Payloads to deliver, in order.
    Outputs(Vec<String>),
    /// Dropped by this transformer.
    Dropped {
        /// Its identifier.
        by: String,
    },
}
