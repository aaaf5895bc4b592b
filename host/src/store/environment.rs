//! Environment variables referenced by configurations as `${NAME}`. Encrypted values
//! arrive here already sealed; this module never sees their plaintext.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};

/// An environment variable as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentVariableRow {
    /// `^[a-zA-Z0-9_-]+$`.
    pub name: String,
    /// Up to 150 characters.
    pub description: String,
    /// The value, or its ciphertext when `encrypted`.
    pub value: String,
    /// Whether `value` is ciphertext.
    pub encrypted: bool,
    /// ms since the epoch.
    pub created_at: i64,
    /// ms since the epoch.
    pub updated_at: i64,
}

const COLUMNS: &str = "name, description, value, encrypted, created_at, updated_at";

impl Store {
    /// Every environment variable, by name.
    pub async fn list_environment_variables(&self) -> StoreResult<Vec<EnvironmentVariableRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM environment_variables ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// One environment variable.
    pub async fn environment_variable(&self, name: &str) -> StoreResult<EnvironmentVariableRow> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM environment_variables WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("environment variable {name}")))?;
        decode(&row)
    }

    /// Insert a variable; conflict when the name exists.
    pub async fn insert_environment_variable(
        &self,
        v: &EnvironmentVariableRow,
    ) -> StoreResult<EnvironmentVariableRow> {
        let done = sqlx::query(&format!(
            "INSERT INTO environment_variables ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (name) DO NOTHING"
        ))
        .bind(&v.name)
        .bind(&v.description)
        .bind(&v.value)
        .bind(v.encrypted as i64)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "environment variable {} already exists",
                v.name
            )));
        }
        self.environment_variable(&v.name).await
    }

    /// Replace a variable's description, value and flag.
    pub async fn update_environment_variable(
        &self,
        v: &EnvironmentVariableRow,
    ) -> StoreResult<EnvironmentVariableRow> {
        let done = sqlx::query(
            "UPDATE environment_variables SET description = $2, value = $3, encrypted = $4, updated_at = $5 \
             WHERE name = $1",
        )
        .bind(&v.name)
        .bind(&v.description)
        .bind(&v.value)
        .bind(v.encrypted as i64)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "environment variable {}",
                v.name
            )));
        }
        self.environment_variable(&v.name).await
    }

    /// Delete a variable.
    pub async fn delete_environment_variable(&self, name: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM environment_variables WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("environment variable {name}")));
        }
        Ok(())
    }
}

fn decode(row: &AnyRow) -> StoreResult<EnvironmentVariableRow> {
    let encrypted: i64 = row.try_get("encrypted")?;
    Ok(EnvironmentVariableRow {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        value: row.try_get("value")?,
        encrypted: encrypted != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
