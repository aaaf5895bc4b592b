//! Configurations: named, validated instances of prototypes (`type` is the prototype
//! kind), and their history. Every change writes the new state to
//! `configuration_history` under a ULID in the same transaction, so the history is
//! complete and a restore can bring any state back.

use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{now_ms, Store, StoreError, StoreResult};

/// A configuration as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigurationRow {
    /// Prototype kind: `destination` or `transformer`.
    pub r#type: String,
    /// Identifier, unique within the type.
    pub identifier: String,
    /// Human readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Prototype id.
    pub prototype: String,
    /// JSON object of parameters (sensitive values sealed).
    pub parameters: String,
    /// Labels, as given.
    pub labels: Vec<String>,
    /// Whether the configuration is disabled.
    pub disabled: bool,
    /// Who made the last change.
    pub editor: String,
    /// ms since the epoch.
    pub created_at: i64,
    /// ms since the epoch.
    pub updated_at: i64,
}

impl ConfigurationRow {
    /// The state kept in history (and restored from it).
    pub fn state(&self) -> Value {
        let parameters: Value = serde_json::from_str(&self.parameters).unwrap_or(json!({}));
        json!({
            "name": self.name,
            "description": self.description,
            "object": {"prototype": self.prototype, "parameters": parameters},
            "disabled": self.disabled,
            "label": self.labels,
        })
    }

    /// Apply a history state to this row (identity and times are kept).
    pub fn apply_state(&mut self, state: &Value) -> StoreResult<()> {
        let corrupt = || StoreError::Corrupt("history state".into());
        self.name = state["name"].as_str().ok_or_else(corrupt)?.to_owned();
        self.description = state["description"].as_str().unwrap_or("").to_owned();
        self.prototype = state["object"]["prototype"]
            .as_str()
            .ok_or_else(corrupt)?
            .to_owned();
        self.parameters = state["object"]["parameters"].to_string();
        self.disabled = state["disabled"].as_bool().unwrap_or(false);
        self.labels = serde_json::from_value(state["label"].clone()).unwrap_or_default();
        Ok(())
    }
}

/// One recorded state of a configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// Time-ordered id of the state.
    pub ulid: String,
    /// Configuration type.
    pub r#type: String,
    /// Configuration identifier.
    pub identifier: String,
    /// `create`, `update`, `restore`, `delete` or `import`.
    pub action: String,
    /// The state (see [`ConfigurationRow::state`]).
    pub state: Value,
    /// Who made the change.
    pub editor: String,
    /// ms since the epoch.
    pub created_at: i64,
}

/// How a write treats an existing row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Insert; conflict if the identifier exists.
    Create,
    /// Replace; not found if it does not exist.
    Update,
}

const COLUMNS: &str = "type, identifier, name, description, prototype, parameters, labels, \
                       disabled, editor, created_at, updated_at";

impl Store {
    /// Every configuration of `type`, by identifier.
    pub async fn list_configurations(&self, r#type: &str) -> StoreResult<Vec<ConfigurationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM configurations WHERE type = $1 ORDER BY identifier"
        ))
        .bind(r#type)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Configurations of `type` with these identifiers (missing ones are left out).
    pub async fn configurations_by_ids(
        &self,
        r#type: &str,
        identifiers: &[String],
    ) -> StoreResult<Vec<ConfigurationRow>> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = super::sql::SqlBuilder::new(format!(
            "SELECT {COLUMNS} FROM configurations WHERE 1 = 1"
        ));
        b.push_bind(" AND type = ?", super::sql::Bind::Text(r#type.to_owned()));
        b.push_in(" AND identifier", identifiers);
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// One configuration.
    pub async fn configuration(
        &self,
        r#type: &str,
        identifier: &str,
    ) -> StoreResult<ConfigurationRow> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM configurations WHERE type = $1 AND identifier = $2"
        ))
        .bind(r#type)
        .bind(identifier)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{type} configuration {identifier}")))?;
        decode(&row)
    }

    /// Insert or replace a configuration and record its new state under `action`.
    pub async fn write_configuration(
        &self,
        row: &ConfigurationRow,
        write: Write,
        action: &str,
    ) -> StoreResult<ConfigurationRow> {
        let mut tx = self.pool().begin().await?;
        write_in(&mut tx, row, write, action).await?;
        tx.commit().await?;
        self.configuration(&row.r#type, &row.identifier).await
    }

    /// Write several configurations in one transaction: all or nothing (import).
    pub async fn write_configurations(
        &self,
        rows: &[(ConfigurationRow, Write)],
        action: &str,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        for (row, write) in rows {
            write_in(&mut tx, row, *write, action).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete configurations of `type` by identifier, recording a `delete` state for
    /// each. Returns how many were deleted.
    pub async fn delete_configurations(
        &self,
        r#type: &str,
        identifiers: &[String],
        editor: &str,
    ) -> StoreResult<u64> {
        let existing = self.configurations_by_ids(r#type, identifiers).await?;
        let mut tx = self.pool().begin().await?;
        let mut deleted = 0;
        for row in &existing {
            deleted +=
                sqlx::query("DELETE FROM configurations WHERE type = $1 AND identifier = $2")
                    .bind(&row.r#type)
                    .bind(&row.identifier)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            let mut gone = row.clone();
            gone.editor = editor.to_owned();
            record(&mut tx, &gone, "delete").await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// The recorded states of a configuration, newest first.
    pub async fn configuration_history(
        &self,
        r#type: &str,
        identifier: &str,
    ) -> StoreResult<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT ulid, type, identifier, action, state, editor, created_at \
             FROM configuration_history WHERE type = $1 AND identifier = $2 ORDER BY ulid DESC",
        )
        .bind(r#type)
        .bind(identifier)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(HistoryRow {
                    ulid: r.try_get("ulid")?,
                    r#type: r.try_get("type")?,
                    identifier: r.try_get("identifier")?,
                    action: r.try_get("action")?,
                    state: serde_json::from_str(&state)
                        .map_err(|e| StoreError::Corrupt(format!("history state: {e}")))?,
                    editor: r.try_get("editor")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// Maintenance writes that change no content, so record no history (key rotation).
impl Store {
    /// Every recorded state of every configuration: (ulid, type, identifier, state).
    pub async fn all_configuration_history(
        &self,
    ) -> StoreResult<Vec<(String, String, String, Value)>> {
        let rows = sqlx::query(
            "SELECT ulid, type, identifier, state FROM configuration_history ORDER BY ulid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                let state = serde_json::from_str(&state)
                    .map_err(|e| StoreError::Corrupt(format!("history state: {e}")))?;
                Ok((
                    r.try_get("ulid")?,
                    r.try_get("type")?,
                    r.try_get("identifier")?,
                    state,
                ))
            })
            .collect()
    }

    /// Replace a recorded state (its content re-sealed, not changed).
    pub async fn set_history_state(&self, ulid: &str, state: &Value) -> StoreResult<()> {
        sqlx::query("UPDATE configuration_history SET state = $2 WHERE ulid = $1")
            .bind(ulid)
            .bind(state.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replace a configuration's parameters (re-sealed, not changed).
    pub async fn set_configuration_parameters(
        &self,
        r#type: &str,
        identifier: &str,
        parameters: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE configurations SET parameters = $3 WHERE type = $1 AND identifier = $2",
        )
        .bind(r#type)
        .bind(identifier)
        .bind(parameters)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

async fn write_in(
    tx: &mut Transaction<'static, Any>,
    row: &ConfigurationRow,
    write: Write,
    action: &str,
) -> StoreResult<()> {
    let now = now_ms();
    let labels = serde_json::to_string(&row.labels).expect("labels serialise");
    let insert = format!(
        "INSERT INTO configurations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (type, identifier) DO NOTHING"
    );
    let done = match write {
        Write::Create => sqlx::query(&insert),
        Write::Update => sqlx::query(
            "UPDATE configurations SET name = $3, description = $4, prototype = $5, parameters = $6, \
             labels = $7, disabled = $8, editor = $9, updated_at = $10 WHERE type = $1 AND identifier = $2",
        ),
    }
    .bind(&row.r#type)
    .bind(&row.identifier)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.prototype)
    .bind(&row.parameters)
    .bind(labels)
    .bind(row.disabled as i64)
    .bind(&row.editor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(match write {
            Write::Create => StoreError::Conflict(format!(
                "{} configuration {} already exists",
                row.r#type, row.identifier
            )),
            Write::Update => {
                StoreError::NotFound(format!("{} configuration {}", row.r#type, row.identifier))
            }
        });
    }
    record(tx, row, action).await
}

async fn record(
    tx: &mut Transaction<'static, Any>,
    row: &ConfigurationRow,
    action: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO configuration_history (ulid, type, identifier, action, state, editor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ulid::Ulid::new().to_string())
    .bind(&row.r#type)
    .bind(&row.identifier)
    .bind(action)
    .bind(row.state().to_string())
    .bind(&row.editor)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn decode(row: &AnyRow) -> StoreResult<ConfigurationRow> {
    let labels: String = row.try_get("labels")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(ConfigurationRow {
        r#type: row.try_get("type")?,
        identifier: row.try_get("identifier")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        prototype: row.try_get("prototype")?,
        parameters: row.try_get("parameters")?,
        labels: serde_json::from_str(&labels)
            .map_err(|e| StoreError::Corrupt(format!("labels: {e}")))?,
        disabled: disabled != 0,
        editor: row.try_get("editor")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support;

    fn row(identifier: &str) -> ConfigurationRow {
        ConfigurationRow {
            r#type: "transformer".into(),
            identifier: identifier.into(),
            name: "Map".into(),
            description: String::new(),
            prototype: "json_map".into(),
            parameters: r#"{"mapping":{"id":"user.id"}}"#.into(),
            labels: vec!["orders".into()],
            disabled: false,
            editor: "admin".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[tokio::test]
    async fn every_change_is_recorded_and_can_be_restored() {
        let (store, _dir) = test_support::sqlite().await;
        let first = store
            .write_configuration(&row("map-a"), Write::Create, "create")
            .await
            .unwrap();
        let dup = store
            .write_configuration(&row("map-a"), Write::Create, "create")
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
        let mut changed = first.clone();
        changed.name = "Renamed".into();
        store
            .write_configuration(&changed, Write::Update, "update")
            .await
            .unwrap();
        let history = store
            .configuration_history("transformer", "map-a")
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].state["name"], "Renamed");
        let mut restored = changed.clone();
        restored.apply_state(&history[1].state).unwrap();
        assert_eq!(restored.name, "Map");
        assert_eq!(restored.parameters, first.parameters);
        let deleted = store
            .delete_configurations("transformer", &["map-a".into(), "nope".into()], "admin")
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(
            store
                .configuration_history("transformer", "map-a")
                .await
                .unwrap()
                .len(),
            3
        );
    }
}
