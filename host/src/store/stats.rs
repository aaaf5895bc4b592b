//! Event statistics: histograms, counts by topic and the topics and metadata keys seen,
//! served from the `(tenant_id, topic, time)` and `(tenant_id, time, id)` indexes.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{Store, StoreResult};

/// Which events statistics cover.
#[derive(Clone, Debug, Default)]
pub struct EventScope {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only these topics.
    pub topics: Vec<String>,
    /// time >= this (ms).
    pub time_gte: Option<i64>,
    /// time <= this (ms).
    pub time_lte: Option<i64>,
}

fn push_scope(b: &mut SqlBuilder, s: &EventScope) {
    if let Some(t) = &s.tenant_id {
        b.push_bind(" AND tenant_id = ?", Bind::Text(t.clone()));
    }
    b.push_in(" AND topic", &s.topics);
    if let Some(t) = s.time_gte {
        b.push_bind(" AND time >= ?", Bind::Int(t));
    }
    if let Some(t) = s.time_lte {
        b.push_bind(" AND time <= ?", Bind::Int(t));
    }
}

/// Events sampled (newest first) to list metadata keys, per tenant.
pub const METADATA_KEY_SAMPLE: i64 = 10_000;

impl Store {
    /// (bucket start ms, count) for the events in scope, bucketed by `bucket_ms`.
    pub async fn event_histogram(
        &self,
        scope: &EventScope,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let mut b = SqlBuilder::new(format!(
            "SELECT (time / {bucket_ms}) * {bucket_ms} AS bucket, COUNT(*) FROM events WHERE 1 = 1"
        ));
        push_scope(&mut b, scope);
        b.push(" GROUP BY bucket ORDER BY bucket");
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// (topic, count), most frequent first.
    pub async fn events_by_topic(
        &self,
        scope: &EventScope,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<(String, i64)>> {
        let mut b = SqlBuilder::new("SELECT topic, COUNT(*) AS n FROM events WHERE 1 = 1");
        push_scope(&mut b, scope);
        b.push_binds(
            " GROUP BY topic ORDER BY n DESC, topic LIMIT ? OFFSET ?",
            [Bind::Int(limit), Bind::Int(offset)],
        );
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// (tenant, topic) pairs seen.
    pub async fn topics_by_tenant(
        &self,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut b = SqlBuilder::new("SELECT DISTINCT tenant_id, topic FROM events WHERE 1 = 1");
        if let Some(t) = tenant_id {
            b.push_bind(" AND tenant_id = ?", Bind::Text(t.to_string()));
        }
        b.push(" ORDER BY tenant_id, topic");
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Metadata (JSON text) of a tenant's newest [`METADATA_KEY_SAMPLE`] events.
    pub async fn recent_event_metadata(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT metadata FROM events WHERE tenant_id = $1 AND metadata IS NOT NULL \
             ORDER BY time DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(METADATA_KEY_SAMPLE)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
