//! The attempt log: one row per delivery attempt, listed by tenant, event, destination,
//! status, topic and time.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{Store, StoreResult};

/// A stored attempt.
#[derive(Clone, Debug)]
pub struct AttemptRow {
    /// Attempt id.
    pub id: String,
    /// Delivery it belongs to.
    pub delivery_id: String,
    /// Owner.
    pub tenant_id: String,
    /// Event.
    pub event_id: String,
    /// Destination.
    pub destination_id: String,
    /// 1-based.
    pub attempt_number: i64,
    /// Manual retry.
    pub manual: bool,
    /// `success` or `failed`.
    pub status: String,
    /// Receiver's status code.
    pub response_status_code: Option<i64>,
    /// Receiver's response (capped).
    pub response_body: Option<String>,
    /// Error message.
    pub error: Option<String>,
    /// Error class.
    pub error_kind: Option<String>,
    /// Plugin call duration.
    pub duration_ms: i64,
    /// Plugin id.
    pub plugin_id: Option<String>,
    /// Plugin version.
    pub plugin_version: Option<String>,
    /// ms since the epoch.
    pub time: i64,
    /// Topic of the event.
    pub topic: String,
}

/// Filters of an attempt listing.
#[derive(Clone, Debug, Default)]
pub struct AttemptQuery {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this event.
    pub event_id: Option<String>,
    /// Only these destinations.
    pub destination_ids: Vec<String>,
    /// `success` or `failed`.
    pub status: Option<String>,
    /// Only these topics.
    pub topics: Vec<String>,
    /// time >= this.
    pub time_gte: Option<i64>,
    /// time <= this.
    pub time_lte: Option<i64>,
    /// Keyset position.
    pub after: Option<(i64, String)>,
    /// Newest first.
    pub desc: bool,
    /// Page size; `limit + 1` rows are fetched.
    pub limit: i64,
}

const COLUMNS: &str = "a.id, a.delivery_id, a.tenant_id, a.event_id, a.destination_id, a.attempt_number, a.manual, \
    a.status, a.response_status_code, a.response_body, a.error, a.error_kind, a.duration_ms, a.plugin_id, \
    a.plugin_version, a.time, e.topic";

impl Store {
    /// A page of attempts.
    pub async fn list_attempts(&self, q: &AttemptQuery) -> StoreResult<Vec<AttemptRow>> {
        let mut b = SqlBuilder::new(format!(
            "SELECT {COLUMNS} FROM attempts a JOIN events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE 1 = 1"
        ));
        if let Some(t) = &q.tenant_id {
            b.push_bind(" AND a.tenant_id = ?", Bind::Text(t.clone()));
        }
        if let Some(e) = &q.event_id {
            b.push_bind(" AND a.event_id = ?", Bind::Text(e.clone()));
        }
        b.push_in(" AND a.destination_id", &q.destination_ids);
        if let Some(s) = &q.status {
            b.push_bind(" AND a.status = ?", Bind::Text(s.clone()));
        }
        b.push_in(" AND e.topic", &q.topics);
        if let Some(t) = q.time_gte {
            b.push_bind(" AND a.time >= ?", Bind::Int(t));
        }
        if let Some(t) = q.time_lte {
            b.push_bind(" AND a.time <= ?", Bind::Int(t));
        }
        b.push_after("a.time", "a.id", &q.after, q.desc);
        let order = if q.desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY a.time {order}, a.id {order} LIMIT ?"),
            Bind::Int(q.limit + 1),
        );
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// One attempt, optionally restricted to a tenant.
    pub async fn attempt(
        &self,
        tenant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<Option<AttemptRow>> {
        let mut b = SqlBuilder::new(format!(
            "SELECT {COLUMNS} FROM attempts a JOIN events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE 1 = 1"
        ));
        b.push_bind(" AND a.id = ?", Bind::Text(id.to_string()));
        if let Some(t) = tenant_id {
            b.push_bind(" AND a.tenant_id = ?", Bind::Text(t.to_string()));
        }
        b.fetch_all(self.pool())
            .await?
            .first()
            .map(decode)
            .transpose()
    }

    /// Counts of attempts per (bucket start, status, destination, topic) between two
    /// times, bucketed by `bucket_ms`.
    pub async fn attempt_counts(
        &self,
        tenant_id: Option<&str>,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, String, String, String, i64)>> {
        let mut b = SqlBuilder::new(String::new());
        b.push_binds(
            "SELECT (a.time / ?) * ? AS bucket, a.status, a.destination_id, e.topic, COUNT(*) AS n \
             FROM attempts a JOIN events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id \
             WHERE a.time >= ? AND a.time < ?",
            [Bind::Int(bucket_ms), Bind::Int(bucket_ms), Bind::Int(from), Bind::Int(to)],
        );
        if let Some(t) = tenant_id {
            b.push_bind(" AND a.tenant_id = ?", Bind::Text(t.to_string()));
        }
        b.push(" GROUP BY bucket, a.status, a.destination_id, e.topic ORDER BY bucket");
        let rows = b.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    /// Counts of events per (bucket start, topic) between two times.
    pub async fn event_counts(
        &self,
        tenant_id: Option<&str>,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        let mut b = SqlBuilder::new(String::new());
        b.push_binds(
            "SELECT (time / ?) * ? AS bucket, topic, COUNT(*) AS n FROM events WHERE time >= ? AND time < ?",
            [Bind::Int(bucket_ms), Bind::Int(bucket_ms), Bind::Int(from), Bind::Int(to)],
        );
        if let Some(t) = tenant_id {
            b.push_bind(" AND tenant_id = ?", Bind::Text(t.to_string()));
        }
        b.push(" GROUP BY bucket, topic ORDER BY bucket");
        let rows = b.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<AttemptRow> {
    Ok(AttemptRow {
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        tenant_id: row.try_get("tenant_id")?,
        event_id: row.try_get("event_id")?,
        destination_id: row.try_get("destination_id")?,
        attempt_number: row.try_get("attempt_number")?,
        manual: row.try_get::<i64, _>("manual")? != 0,
        status: row.try_get("status")?,
        response_status_code: row.try_get("response_status_code")?,
        response_body: row.try_get("response_body")?,
        error: row.try_get("error")?,
        error_kind: row.try_get("error_kind")?,
        duration_ms: row.try_get("duration_ms")?,
        plugin_id: row.try_get("plugin_id")?,
        plugin_version: row.try_get("plugin_version")?,
        time: row.try_get("time")?,
        topic: row.try_get("topic")?,
    })
}
