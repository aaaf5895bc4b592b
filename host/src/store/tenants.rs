//! Tenants: the owners of destinations and events.

use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};

/// A tenant as stored.
#[derive(Clone, Debug)]
pub struct TenantRow {
    /// Client-chosen id.
    pub id: String,
    /// Key/value metadata, JSON object text.
    pub metadata: Option<String>,
    /// ms since the epoch.
    pub created_at: i64,
    /// ms since the epoch.
    pub updated_at: i64,
}

impl Store {
    /// Create the tenant or replace its metadata. Returns the row and whether it was new.
    pub async fn upsert_tenant(
        &self,
        id: &str,
        metadata: Option<&str>,
    ) -> StoreResult<(TenantRow, bool)> {
        let now = now_ms();
        let existed = self.find_tenant(id).await?.is_some();
        sqlx::query(
            "INSERT INTO tenants (id, metadata, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(metadata)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok((self.tenant(id).await?, !existed))
    }

    /// A tenant, or `NotFound`.
    pub async fn tenant(&self, id: &str) -> StoreResult<TenantRow> {
        self.find_tenant(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
    }

    /// A tenant, if it exists.
    pub async fn find_tenant(&self, id: &str) -> StoreResult<Option<TenantRow>> {
        let row =
            sqlx::query("SELECT id, metadata, created_at, updated_at FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Tenants ordered by (created_at, id) after/before a cursor; fetches `limit + 1` so the
    /// caller can tell whether another page exists.
    pub async fn list_tenants(
        &self,
        after: Option<(i64, &str)>,
        desc: bool,
        limit: i64,
    ) -> StoreResult<Vec<TenantRow>> {
        let (cmp, order) = if desc { ("<", "DESC") } else { (">", "ASC") };
        let sql = match after {
            Some(_) => format!(
                "SELECT id, metadata, created_at, updated_at FROM tenants \
                 WHERE (created_at {cmp} $1) OR (created_at = $1 AND id {cmp} $2) \
                 ORDER BY created_at {order}, id {order} LIMIT $3"
            ),
            None => format!(
                "SELECT id, metadata, created_at, updated_at FROM tenants \
                 ORDER BY created_at {order}, id {order} LIMIT $1"
            ),
        };
        let query = sqlx::query(&sql);
        let query = match after {
            Some((time, id)) => query.bind(time).bind(id.to_string()).bind(limit + 1),
            None => query.bind(limit + 1),
        };
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Number of tenants.
    pub async fn count_tenants(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM tenants")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }

    /// Delete a tenant with its destinations, events, deliveries and attempts.
    pub async fn delete_tenant(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM attempts WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM events WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM destinations WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: row.try_get("id")?,
        metadata: row.try_get("metadata")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
