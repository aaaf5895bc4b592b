//! Stored events: lookups and listings. Writing them (with their deliveries, in one
//! transaction) is `publish.rs`.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{Store, StoreResult};

/// A stored event.
#[derive(Clone, Debug)]
pub struct EventRow {
    /// Id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Topic.
    pub topic: String,
    /// ms since the epoch.
    pub time: i64,
    /// JSON object of strings.
    pub metadata: Option<String>,
    /// JSON payload.
    pub data: String,
    /// Whether failed deliveries are retried.
    pub eligible_for_retry: bool,
    /// Single-destination publish target.
    pub destination_id: Option<String>,
}

/// Filters of an event listing.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only events delivered to this destination.
    pub destination_id: Option<String>,
    /// Only these topics.
    pub topics: Vec<String>,
    /// time >= this.
    pub time_gte: Option<i64>,
    /// time <= this.
    pub time_lte: Option<i64>,
    /// Keyset position: rows strictly after (in `desc` order: before) this (time, id).
    pub after: Option<(i64, String)>,
    /// Newest first.
    pub desc: bool,
    /// Page size; `limit + 1` rows are fetched.
    pub limit: i64,
}

const COLUMNS: &str =
    "id, tenant_id, topic, time, metadata, data, eligible_for_retry, destination_id";

impl Store {
    /// One event of a tenant (any tenant when `tenant_id` is None).
    pub async fn event(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<EventRow>> {
        let row = match tenant_id {
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant)
                .bind(id)
                .fetch_optional(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM events WHERE id = $1 ORDER BY time LIMIT 1"
                ))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
            }
        };
        row.as_ref().map(decode).transpose()
    }

    /// Events by (tenant, id), for a batch of claimed deliveries.
    pub async fn events_by_keys(&self, keys: &[(String, String)]) -> StoreResult<Vec<EventRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE "));
        for (i, (tenant, id)) in keys.iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push_binds(
                "(tenant_id = ? AND id = ?)",
                [Bind::Text(tenant.clone()), Bind::Text(id.clone())],
            );
        }
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// Destinations an event was routed to.
    pub async fn event_destination_ids(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT destination_id FROM deliveries WHERE tenant_id = $1 AND event_id = $2 ORDER BY destination_id")
            .bind(tenant_id)
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// A page of events, keyset-paginated by (time, id).
    pub async fn list_events(&self, q: &EventQuery) -> StoreResult<Vec<EventRow>> {
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS} FROM events e WHERE 1 = 1"));
        if let Some(t) = &q.tenant_id {
            b.push_bind(" AND e.tenant_id = ?", Bind::Text(t.clone()));
        }
        if let Some(d) = &q.destination_id {
            b.push_bind(
                " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.destination_id = ?)",
                Bind::Text(d.clone()),
            );
        }
        b.push_in(" AND e.topic", &q.topics);
        if let Some(t) = q.time_gte {
            b.push_bind(" AND e.time >= ?", Bind::Int(t));
        }
        if let Some(t) = q.time_lte {
            b.push_bind(" AND e.time <= ?", Bind::Int(t));
        }
        b.push_after("e.time", "e.id", &q.after, q.desc);
        let order = if q.desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY e.time {order}, e.id {order} LIMIT ?"),
            Bind::Int(q.limit + 1),
        );
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// Distinct topics seen for a tenant (all tenants when None).
    pub async fn topics(&self, tenant_id: Option<&str>) -> StoreResult<Vec<String>> {
        let rows = match tenant_id {
            Some(t) => {
                sqlx::query("SELECT DISTINCT topic FROM events WHERE tenant_id = $1 ORDER BY topic")
                    .bind(t)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT DISTINCT topic FROM events ORDER BY topic")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        topic: row.try_get("topic")?,
        time: row.try_get("time")?,
        metadata: row.try_get("metadata")?,
        data: row.try_get("data")?,
        eligible_for_retry: row.try_get::<i64, _>("eligible_for_retry")? != 0,
        destination_id: row.try_get("destination_id")?,
    })
}
