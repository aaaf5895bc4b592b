//! Named admin API tokens. The store keeps each token's id (its `jti`), name, description
//! and the SHA-256 of the token, never the token itself.

use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};

/// A stored API token.
#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    /// Id, also the token's `jti`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// ms since the epoch.
    pub created_at: i64,
    /// Last time it authenticated a request (to the minute).
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// `last_used_at` is written at most this often per token, so a busy token does not
/// turn every request into a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

const COLUMNS: &str = "id, name, description, created_by, created_at, last_used_at, revoked_at";

impl Store {
    /// Store a new token.
    pub async fn insert_api_token(&self, row: &ApiTokenRow, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, description, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(token_hash)
        .bind(&row.created_by)
        .bind(row.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// All tokens, newest first.
    pub async fn list_api_tokens(&self) -> StoreResult<Vec<ApiTokenRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// One token.
    pub async fn api_token(&self, id: &str) -> StoreResult<ApiTokenRow> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("api token {id}")))?;
        decode(&row)
    }

    /// Rename or re-describe a token.
    pub async fn update_api_token(
        &self,
        id: &str,
        name: &str,
        description: &str,
    ) -> StoreResult<ApiTokenRow> {
        let done = sqlx::query("UPDATE api_tokens SET name = $2, description = $3 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(description)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("api token {id}")));
        }
        self.api_token(id).await
    }

    /// Revoke a token; it stops authenticating at once. Revoking twice keeps the first time.
    pub async fn revoke_api_token(&self, id: &str) -> StoreResult<ApiTokenRow> {
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now_ms())
            .execute(self.writer())
            .await?;
        self.api_token(id).await
    }

    /// Whether `id` names an unrevoked token whose digest is `token_hash`; marks it used.
    pub async fn use_api_token(&self, id: &str, token_hash: &str) -> StoreResult<bool> {
        let found = sqlx::query(
            "SELECT last_used_at FROM api_tokens WHERE id = $1 AND token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = found else {
            return Ok(false);
        };
        let now = now_ms();
        let last: Option<i64> = row.try_get(0)?;
        if last.is_none_or(|t| t < now - LAST_USED_RESOLUTION_MS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(self.writer())
                .await?;
        }
        Ok(true)
    }

    /// The name of a token.
    pub async fn api_token_name(&self, id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query("SELECT name FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        created_by: row.try_get(3)?,
        created_at: row.try_get(4)?,
        last_used_at: row.try_get(5)?,
        revoked_at: row.try_get(6)?,
    })
}
