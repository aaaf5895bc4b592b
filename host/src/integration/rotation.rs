//! Key rotation for the integration layer's secrets (`outrider keys rotate`): encrypted
//! environment variables, and sealed configuration parameters both in the current
//! configurations and in their recorded history (so a restore still opens them once the
//! old key is gone). Contents do not change, so no history is recorded for it.

use serde_json::Value;

use super::parameters::{reseal, sealing_aad};
use super::variables::variable_aad;
use crate::crypto::{CryptoError, Keyring};
use crate::store::{Store, StoreError};

/// Why rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// A secret could not be opened with any configured key.
    #[error("{what}: cannot decrypt with any configured key: {source}")]
    Undecryptable {
        /// Which secret.
        what: String,
        /// The failure.
        source: CryptoError,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-encrypt every integration secret not under the current key; returns how many
/// values were rewritten.
pub async fn rotate(store: &Store, keyring: &Keyring) -> Result<u64, RotationError> {
    let mut rewritten = 0;
    for mut variable in store.list_environment_variables().await? {
        if variable.encrypted && keyring.needs_rotation(&variable.value) {
            variable.value = keyring
                .reencrypt(&variable.value, variable_aad(&variable.name).as_bytes())
                .map_err(|source| RotationError::Undecryptable {
                    what: format!("environment variable {}", variable.name),
                    source,
                })?;
            store.update_environment_variable(&variable).await?;
            rewritten += 1;
        }
    }
    for r#type in super::CONFIGURATION_TYPES {
        for row in store.list_configurations(r#type).await? {
            let mut params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
            let aad = sealing_aad(&row.r#type, &row.identifier);
            let n = reseal(keyring, &aad, &mut params).map_err(|source| {
                RotationError::Undecryptable {
                    what: format!("{} configuration {}", row.r#type, row.identifier),
                    source,
                }
            })?;
            if n > 0 {
                store
                    .set_configuration_parameters(&row.r#type, &row.identifier, &params.to_string())
                    .await?;
                rewritten += n;
            }
        }
    }
    for (ulid, r#type, identifier, mut state) in store.all_configuration_history().await? {
        let aad = sealing_aad(&r#type, &identifier);
        let Some(params) = state
            .get_mut("object")
            .and_then(|o| o.get_mut("parameters"))
        else {
            continue;
        };
        let n = reseal(keyring, &aad, params).map_err(|source| RotationError::Undecryptable {
            what: format!("history state {ulid}"),
            source,
        })?;
        if n > 0 {
            store.set_history_state(&ulid, &state).await?;
            rewritten += n;
        }
    }
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::parameters::unseal;
    use crate::store::{test_support, ConfigurationRow, EnvironmentVariableRow, Write};
    use serde_json::json;

    #[tokio::test]
    async fn rotation_reseals_variables_parameters_and_history() {
        let (store, _dir) = test_support::sqlite().await;
        let old = Keyring::from_env_value("old:old-key-0123456789abcdef").unwrap();
        let both =
            Keyring::from_env_value("new:new-key-0123456789abcdef,old:old-key-0123456789abcdef")
                .unwrap();
        let new_only = Keyring::from_env_value("new:new-key-0123456789abcdef").unwrap();
        store
            .insert_environment_variable(&EnvironmentVariableRow {
                name: "TOKEN".into(),
                description: String::new(),
                value: old.encrypt(b"t0ken", variable_aad("TOKEN").as_bytes()),
                encrypted: true,
                created_at: 0,
                updated_at: 0,
            })
            .await
            .unwrap();
        let aad = sealing_aad("destination", "hook");
        // As `parameters::seal` stores a secret: its JSON text, sealed.
        let params = json!({
            "url": "https://x",
            "secret": {"$sealed": old.encrypt(b"\"s3cret\"", aad.as_bytes())},
        });
        let row = ConfigurationRow {
            r#type: "destination".into(),
            identifier: "hook".into(),
            name: "Hook".into(),
            description: String::new(),
            prototype: "webhook".into(),
            parameters: params.to_string(),
            labels: vec![],
            disabled: false,
            editor: "admin".into(),
            created_at: 0,
            updated_at: 0,
        };
        store
            .write_configuration(&row, Write::Create, "create")
            .await
            .unwrap();

        // The variable, the parameters and the one history state.
        assert_eq!(rotate(&store, &both).await.unwrap(), 3);
        assert_eq!(
            rotate(&store, &both).await.unwrap(),
            0,
            "nothing left under old"
        );
        let variable = store.environment_variable("TOKEN").await.unwrap();
        let plain = new_only
            .decrypt(&variable.value, variable_aad("TOKEN").as_bytes())
            .unwrap();
        assert_eq!(plain, b"t0ken");
        let stored = store.configuration("destination", "hook").await.unwrap();
        let mut params: Value = serde_json::from_str(&stored.parameters).unwrap();
        unseal(&new_only, &aad, &mut params).unwrap();
        assert_eq!(params["secret"], "s3cret");
        let history = store
            .configuration_history("destination", "hook")
            .await
            .unwrap();
        let mut state_params = history[0].state["object"]["parameters"].clone();
        unseal(&new_only, &aad, &mut state_params).unwrap();
        assert_eq!(state_params["secret"], "s3cret");
    }
}
