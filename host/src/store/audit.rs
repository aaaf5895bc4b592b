//! The audit trail: one row per mutating API call, written in batches by a background
//! writer and listed by actor, tenant, method, category, status and time.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{Store, StoreResult};

/// One recorded call.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// ULID.
    pub id: String,
    /// ms since the epoch.
    pub time: i64,
    /// `admin`, `api_token` or `tenant`.
    pub actor_type: String,
    /// `admin`, `api-token:<name>` or `tenant:<id>`.
    pub actor: String,
    /// The token id for `api_token`.
    pub actor_id: Option<String>,
    /// Tenant the call addressed, when known.
    pub tenant_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path, with `/api/v1`.
    pub path: String,
    /// First path segment after `/api/v1`.
    pub category: String,
    /// Response status.
    pub status: i64,
    /// Client address.
    pub ip_address: Option<String>,
    /// Request body with secrets removed, or a summary; JSON text.
    pub request: Option<String>,
    /// Time to answer.
    pub duration_ms: i64,
}

/// Filters of an audit listing.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Exact actor (`admin`, `api-token:ci`, `tenant:t1`).
    pub actor: Option<String>,
    /// `admin`, `api_token` or `tenant`.
    pub actor_type: Option<String>,
    /// Only calls addressing this tenant.
    pub tenant_id: Option<String>,
    /// Only these methods.
    pub methods: Vec<String>,
    /// Only these categories.
    pub categories: Vec<String>,
    /// Only this status.
    pub status: Option<i64>,
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

const COLUMNS: &str =
    "id, time, actor_type, actor, actor_id, tenant_id, method, path, category, status, \
    ip_address, request, duration_ms";

impl Store {
    /// Write a batch of entries in one transaction.
    pub async fn insert_audit_entries(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer().begin().await?;
        for e in entries {
            sqlx::query(&format!(
                "INSERT INTO audit_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(&e.id)
            .bind(e.time)
            .bind(&e.actor_type)
            .bind(&e.actor)
            .bind(&e.actor_id)
            .bind(&e.tenant_id)
            .bind(&e.method)
            .bind(&e.path)
            .bind(&e.category)
            .bind(e.status)
            .bind(&e.ip_address)
            .bind(&e.request)
            .bind(e.duration_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A page of entries.
    pub async fn list_audit_entries(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS} FROM audit_entries WHERE 1 = 1"));
        if let Some(a) = &q.actor {
            b.push_bind(" AND actor = ?", Bind::Text(a.clone()));
        }
        if let Some(a) = &q.actor_type {
            b.push_bind(" AND actor_type = ?", Bind::Text(a.clone()));
        }
        if let Some(t) = &q.tenant_id {
            b.push_bind(" AND tenant_id = ?", Bind::Text(t.clone()));
        }
        b.push_in(" AND method", &q.methods);
        b.push_in(" AND category", &q.categories);
        if let Some(s) = q.status {
            b.push_bind(" AND status = ?", Bind::Int(s));
        }
        if let Some(t) = q.time_gte {
            b.push_bind(" AND time >= ?", Bind::Int(t));
        }
        if let Some(t) = q.time_lte {
            b.push_bind(" AND time <= ?", Bind::Int(t));
        }
        b.push_after("time", "id", &q.after, q.desc);
        let order = if q.desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY time {order}, id {order} LIMIT ?"),
            Bind::Int(q.limit + 1),
        );
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// One entry.
    pub async fn audit_entry(&self, id: &str) -> StoreResult<Option<AuditEntry>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(decode)
        .transpose()
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get(0)?,
        time: row.try_get(1)?,
        actor_type: row.try_get(2)?,
        actor: row.try_get(3)?,
        actor_id: row.try_get(4)?,
        tenant_id: row.try_get(5)?,
        method: row.try_get(6)?,
        path: row.try_get(7)?,
        category: row.try_get(8)?,
        status: row.try_get(9)?,
        ip_address: row.try_get(10)?,
        request: row.try_get(11)?,
        duration_ms: row.try_get(12)?,
    })
}
