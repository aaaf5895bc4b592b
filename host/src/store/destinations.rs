//! Destinations: a tenant's configured instances of destination prototypes. Credentials
//! arrive here already encrypted; this module never sees plaintext secrets.

use super::hot::Columns;
use super::sql::SqlBuilder;
use super::{now_ms, Store, StoreError, StoreResult};

/// A destination as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationRow {
    /// Id, unique across tenants.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Destination prototype id.
    pub r#type: String,
    /// JSON: `["*"]` or a list of topics.
    pub topics: String,
    /// JSON filter, if any.
    pub filter: Option<String>,
    /// JSON config object as the client sent it.
    pub config: String,
    /// Ciphertext of the credentials JSON object.
    pub credentials: String,
    /// JSON object of strings.
    pub delivery_metadata: Option<String>,
    /// JSON object of strings.
    pub metadata: Option<String>,
    /// ms since the epoch, when disabled.
    pub disabled_at: Option<i64>,
    /// Failures in a row since the last success.
    pub consecutive_failures: i64,
    /// Retry schedule overriding the server's, e.g. `10s,1m,10m`.
    pub retry_schedule: Option<String>,
    /// Attempts overriding the server's maximum.
    pub retry_max_attempts: Option<i64>,
    /// JSON array of transformer configuration identifiers events pass through first.
    pub transformers: Option<String>,
    /// ms since the epoch.
    pub created_at: i64,
    /// ms since the epoch.
    pub updated_at: i64,
}

pub(super) const COLUMNS: &str =
    "id, tenant_id, type, topics, filter, config, credentials, delivery_metadata, \
                       metadata, disabled_at, consecutive_failures, created_at, updated_at, retry_schedule, \
                       retry_max_attempts, transformers";

impl Store {
    /// Insert a destination unless the tenant already has `max` of them.
    pub async fn insert_destination(
        &self,
        d: &DestinationRow,
        max: i64,
    ) -> StoreResult<DestinationRow> {
        // One statement, writing first: on SQLite a transaction that reads and then writes
        // fails at once ("database is locked") when another write landed in between; a
        // single INSERT ... SELECT takes the write lock up front and waits its turn.
        let inserted = sqlx::query(&format!(
            "INSERT INTO destinations ({COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11, $12, $13, $15 \
             WHERE (SELECT COUNT(*) FROM destinations WHERE tenant_id = $2) < $14 \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&d.id)
        .bind(&d.tenant_id)
        .bind(&d.r#type)
        .bind(&d.topics)
        .bind(&d.filter)
        .bind(&d.config)
        .bind(&d.credentials)
        .bind(&d.delivery_metadata)
        .bind(&d.metadata)
        .bind(d.disabled_at)
        .bind(now_ms())
        .bind(&d.retry_schedule)
        .bind(d.retry_max_attempts)
        .bind(max)
        .bind(&d.transformers)
        .execute(self.pool())
        .await?
        .rows_affected();
        if inserted == 0 {
            let exists = sqlx::query("SELECT 1 FROM destinations WHERE id = $1")
                .bind(&d.id)
                .fetch_optional(self.pool())
                .await?;
            return Err(StoreError::Conflict(match exists {
                Some(_) => format!("destination {} already exists", d.id),
                None => format!(
                    "tenant {} already has the maximum of {max} destinations",
                    d.tenant_id
                ),
            }));
        }
        self.destination(&d.tenant_id, &d.id).await
    }

    /// Replace every mutable column of a destination.
    pub async fn update_destination(&self, d: &DestinationRow) -> StoreResult<DestinationRow> {
        let done = sqlx::query(
            "UPDATE destinations SET type = $3, topics = $4, filter = $5, config = $6, credentials = $7, \
             delivery_metadata = $8, metadata = $9, disabled_at = $10, updated_at = $11, \
             retry_schedule = $12, retry_max_attempts = $13, transformers = $14 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&d.tenant_id)
        .bind(&d.id)
        .bind(&d.r#type)
        .bind(&d.topics)
        .bind(&d.filter)
        .bind(&d.config)
        .bind(&d.credentials)
        .bind(&d.delivery_metadata)
        .bind(&d.metadata)
        .bind(d.disabled_at)
        .bind(now_ms())
        .bind(&d.retry_schedule)
        .bind(d.retry_max_attempts)
        .bind(&d.transformers)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("destination {}", d.id)));
        }
        self.destination(&d.tenant_id, &d.id).await
    }

    /// Replace the stored credentials ciphertext (key rotation).
    pub async fn set_destination_credentials(
        &self,
        id: &str,
        credentials: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE destinations SET credentials = $2 WHERE id = $1")
            .bind(id)
            .bind(credentials)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Enable (`None`) or disable (`Some(time)`) a destination.
    pub async fn set_destination_disabled(
        &self,
        tenant_id: &str,
        id: &str,
        disabled_at: Option<i64>,
    ) -> StoreResult<DestinationRow> {
        let done = sqlx::query(
            "UPDATE destinations SET disabled_at = $3, consecutive_failures = CASE WHEN $3 IS NULL THEN 0 ELSE consecutive_failures END, \
             updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(disabled_at)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("destination {id}")));
        }
        self.destination(tenant_id, id).await
    }

    /// One destination of a tenant.
    pub async fn destination(&self, tenant_id: &str, id: &str) -> StoreResult<DestinationRow> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM destinations WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("destination {id}")))?;
        decode(&row)
    }

    /// A destination by id alone (delivery workers).
    pub async fn destination_by_id(&self, id: &str) -> StoreResult<DestinationRow> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM destinations WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("destination {id}")))?;
        decode(&row)
    }

    /// Destinations by id (any tenant), for a batch of claimed deliveries.
    pub async fn destinations_by_ids(&self, ids: &[String]) -> StoreResult<Vec<DestinationRow>> {
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS} FROM destinations WHERE 1 = 1"));
        b.push_in(" AND id", &unique);
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// All destinations of a tenant, oldest first.
    pub async fn list_destinations(&self, tenant_id: &str) -> StoreResult<Vec<DestinationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM destinations WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Every destination (key rotation, plugin usage checks).
    pub async fn all_destinations(&self) -> StoreResult<Vec<DestinationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM destinations ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Delete a destination and its pending deliveries (attempt history stays).
    pub async fn delete_destination(&self, tenant_id: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM destinations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("destination {id}")));
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', last_error = 'destination deleted' \
                     WHERE destination_id = $1 AND status IN ('pending', 'processing')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A destination from a row of either the pool or the hot path's connection.
pub(super) fn decode(row: &impl Columns) -> StoreResult<DestinationRow> {
    Ok(DestinationRow {
        id: row.column("id")?,
        tenant_id: row.column("tenant_id")?,
        r#type: row.column("type")?,
        topics: row.column("topics")?,
        filter: row.column("filter")?,
        config: row.column("config")?,
        credentials: row.column("credentials")?,
        delivery_metadata: row.column("delivery_metadata")?,
        metadata: row.column("metadata")?,
        disabled_at: row.column("disabled_at")?,
        consecutive_failures: row.column("consecutive_failures")?,
        retry_schedule: row.column("retry_schedule")?,
        retry_max_attempts: row.column("retry_max_attempts")?,
        transformers: row.column("transformers")?,
        created_at: row.column("created_at")?,
        updated_at: row.column("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support;

    fn row(id: &str) -> DestinationRow {
        DestinationRow {
            id: id.into(),
            tenant_id: "t".into(),
            r#type: "webhook".into(),
            topics: "[\"*\"]".into(),
            filter: None,
            config: "{}".into(),
            credentials: "enc".into(),
            delivery_metadata: None,
            metadata: None,
            disabled_at: None,
            consecutive_failures: 0,
            retry_schedule: None,
            retry_max_attempts: None,
            transformers: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[tokio::test]
    async fn insert_enforces_the_cap_and_unique_ids() {
        let (store, _dir) = test_support::sqlite().await;
        store.upsert_tenant("t", None).await.unwrap();
        store.insert_destination(&row("a"), 2).await.unwrap();
        let dup = store.insert_destination(&row("a"), 2).await.unwrap_err();
        assert!(dup.to_string().contains("already exists"), "{dup}");
        store.insert_destination(&row("b"), 2).await.unwrap();
        let cap = store.insert_destination(&row("c"), 2).await.unwrap_err();
        assert!(cap.to_string().contains("maximum of 2"), "{cap}");
        assert_eq!(store.list_destinations("t").await.unwrap().len(), 2);
    }
}
