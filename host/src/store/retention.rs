//! Retention: per-tenant and global limits on how long events, attempts and audit
//! entries are kept, and the batched deletes that enforce them.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{now_ms, Store, StoreResult};

/// Scope of the global policy.
pub const GLOBAL_SCOPE: &str = "*";

/// Rows deleted per statement, so no delete holds the writer for long.
pub const RETENTION_BATCH: i64 = 1000;

/// One policy: how long each kind of row is kept (ms); `None` keeps it forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `*` or a tenant id.
    pub scope: String,
    /// Events (with their deliveries and attempts), by event time.
    pub events_ms: Option<i64>,
    /// Attempts, by attempt time.
    pub attempts_ms: Option<i64>,
    /// Audit entries, by time.
    pub audit_ms: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

/// Which table a prune applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainedKind {
    /// `events` (deliveries and attempts follow by cascade).
    Events,
    /// `attempts`.
    Attempts,
    /// `audit_entries`.
    Audit,
}

impl RetainedKind {
    fn column(self) -> &'static str {
        match self {
            RetainedKind::Events => "events_ms",
            RetainedKind::Attempts => "attempts_ms",
            RetainedKind::Audit => "audit_ms",
        }
    }
}

impl Store {
    /// Every policy, the global one first.
    pub async fn retention_policies(&self) -> StoreResult<Vec<RetentionPolicy>> {
        let rows = sqlx::query(
            "SELECT scope, events_ms, attempts_ms, audit_ms, updated_at FROM retention_policies \
             ORDER BY CASE WHEN scope = '*' THEN 0 ELSE 1 END, scope",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RetentionPolicy {
                    scope: r.try_get(0)?,
                    events_ms: r.try_get(1)?,
                    attempts_ms: r.try_get(2)?,
                    audit_ms: r.try_get(3)?,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Set (or, with every limit `None`, remove) a policy.
    pub async fn save_retention_policy(&self, p: &RetentionPolicy) -> StoreResult<()> {
        if p.events_ms.is_none() && p.attempts_ms.is_none() && p.audit_ms.is_none() {
            sqlx::query("DELETE FROM retention_policies WHERE scope = $1")
                .bind(&p.scope)
                .execute(self.writer())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO retention_policies (scope, events_ms, attempts_ms, audit_ms, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope) DO UPDATE SET events_ms = excluded.events_ms, \
             attempts_ms = excluded.attempts_ms, audit_ms = excluded.audit_ms, updated_at = excluded.updated_at",
        )
        .bind(&p.scope)
        .bind(p.events_ms)
        .bind(p.attempts_ms)
        .bind(p.audit_ms)
        .bind(now_ms())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Delete up to [`RETENTION_BATCH`] rows of `kind` older than `cutoff` (ms), for one
    /// tenant, or for the global scope every tenant without a policy of its own for this
    /// kind. Events with a delivery still in flight (processing) are kept. Returns how
    /// many rows went.
    pub async fn prune_batch(
        &self,
        kind: RetainedKind,
        scope: &str,
        cutoff: i64,
    ) -> StoreResult<u64> {
        let (table, time, key, selected) = match kind {
            RetainedKind::Events => ("events", "time", "(tenant_id, id)", "t.tenant_id, t.id"),
            RetainedKind::Attempts => ("attempts", "time", "id", "t.id"),
            RetainedKind::Audit => ("audit_entries", "time", "id", "t.id"),
        };
        let mut b = SqlBuilder::new(format!(
            "DELETE FROM {table} WHERE {key} IN (SELECT {selected} FROM {table} t WHERE 1 = 1"
        ));
        b.push_bind(&format!(" AND t.{time} < ?"), Bind::Int(cutoff));
        if scope == GLOBAL_SCOPE {
            b.push(&format!(
                " AND (t.tenant_id IS NULL OR t.tenant_id NOT IN \
                 (SELECT scope FROM retention_policies WHERE {} IS NOT NULL AND scope <> '*'))",
                kind.column()
            ));
        } else {
            b.push_bind(" AND t.tenant_id = ?", Bind::Text(scope.to_string()));
        }
        if kind == RetainedKind::Events {
            b.push(
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.tenant_id = t.tenant_id \
                 AND d.event_id = t.id AND d.status = 'processing')",
            );
        }
        b.push_bind(" LIMIT ?)", Bind::Int(RETENTION_BATCH));
        Ok(b.query().execute(self.writer()).await?.rows_affected())
    }

    /// Delete every event of a tenant (with deliveries and attempts), in batches, except
    /// events with a delivery in flight. Returns (deleted, kept in flight).
    pub async fn delete_tenant_events(&self, tenant_id: &str) -> StoreResult<(u64, i64)> {
        let mut deleted = 0;
        loop {
            let n = self
                .prune_batch(RetainedKind::Events, tenant_id, i64::MAX)
                .await?;
            deleted += n;
            if n < RETENTION_BATCH as u64 {
                break;
            }
        }
        let kept: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        Ok((deleted, kept))
    }
}
