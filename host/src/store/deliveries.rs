//! The delivery queue: one row per (event, destination). Workers claim due rows in
//! batches by taking a lease; a worker that dies leaves its lease to expire, and the row is
//! claimed again, so every stored event is delivered at least once.

use sqlx::Row;

use super::{now_ms, Dialect, Store, StoreResult};

/// A delivery claimed by a worker.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Event to deliver.
    pub event_id: String,
    /// Where to.
    pub destination_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The attempt was asked for by hand (`POST /retry`).
    pub manual: bool,
}

/// How an attempt ended, as the queue records it.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// Attempt id (ULID).
    pub id: String,
    /// The delivery.
    pub delivery: ClaimedDelivery,
    /// 1-based.
    pub attempt_number: i64,
    /// `success` or `failed`.
    pub status: &'static str,
    /// Receiver's status code.
    pub response_status_code: Option<i64>,
    /// Receiver's response (capped).
    pub response_body: Option<String>,
    /// Error message.
    pub error: Option<String>,
    /// retry | fail | misconfigured | timeout | trap | memory | denied | skipped.
    pub error_kind: Option<&'static str>,
    /// Duration of the plugin call.
    pub duration_ms: i64,
    /// Plugin id that handled it.
    pub plugin_id: Option<String>,
    /// Its version.
    pub plugin_version: Option<String>,
    /// Manual retry.
    pub manual: bool,
    /// What happens to the delivery next.
    pub next: NextStep,
}

/// The delivery's state after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum NextStep {
    /// Delivered.
    Done,
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    /// Give up.
    GiveUp,
}

impl Store {
    /// Claim up to `limit` due deliveries for `owner` with a lease of `lease_ms`. Rows whose
    /// lease expired (their worker died) are due again.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let now = now_ms();
        let lock = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET status = 'processing', lease_owner = $1, lease_until = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE (status = 'pending' AND next_attempt_at <= $3) OR (status = 'processing' AND lease_until < $3) \
                 ORDER BY next_attempt_at LIMIT $4 {lock}) \
             RETURNING id, tenant_id, event_id, destination_id, attempts, manual_retry"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: row.try_get("id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    event_id: row.try_get("event_id")?,
                    destination_id: row.try_get("destination_id")?,
                    attempts: row.try_get("attempts")?,
                    manual: row.try_get::<i64, _>("manual_retry")? != 0,
                })
            })
            .collect()
    }

    /// Record a batch of finished attempts, move their deliveries on and update each
    /// destination's consecutive-failure count, in one transaction. Returns the new count
    /// per destination after each attempt, in order.
    pub async fn complete_attempts(&self, records: &[AttemptRecord]) -> StoreResult<Vec<i64>> {
        let mut streaks = Vec::with_capacity(records.len());
        if records.is_empty() {
            return Ok(streaks);
        }
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO attempts (id, delivery_id, tenant_id, event_id, destination_id, attempt_number, manual, status, \
                 response_status_code, response_body, error, error_kind, duration_ms, plugin_id, plugin_version, time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&r.id)
            .bind(&r.delivery.id)
            .bind(&r.delivery.tenant_id)
            .bind(&r.delivery.event_id)
            .bind(&r.delivery.destination_id)
            .bind(r.attempt_number)
            .bind(r.manual as i64)
            .bind(r.status)
            .bind(r.response_status_code)
            .bind(&r.response_body)
            .bind(&r.error)
            .bind(r.error_kind)
            .bind(r.duration_ms)
            .bind(&r.plugin_id)
            .bind(&r.plugin_version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let (status, next_at) = match r.next {
                NextStep::Done => ("success", None),
                NextStep::RetryAt(at) => ("pending", Some(at)),
                NextStep::GiveUp => ("failed", None),
            };
            sqlx::query(
                "UPDATE deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = COALESCE($3, next_attempt_at), \
                 lease_owner = NULL, lease_until = NULL, last_error = $4, manual_retry = 0, updated_at = $5 WHERE id = $1",
            )
            .bind(&r.delivery.id)
            .bind(status)
            .bind(next_at)
            .bind(&r.error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let streak = sqlx::query(
                "UPDATE destinations SET consecutive_failures = \
                 CASE WHEN $2 = 1 THEN 0 ELSE consecutive_failures + 1 END WHERE id = $1 RETURNING consecutive_failures",
            )
            .bind(&r.delivery.destination_id)
            .bind((r.status == "success") as i64)
            .fetch_optional(&mut *tx)
            .await?;
            streaks.push(match streak {
                Some(row) => row.try_get(0)?,
                None => 0,
            });
        }
        tx.commit().await?;
        Ok(streaks)
    }

    /// Return every claimed delivery to the queue (start-up of the only node on SQLite).
    pub async fn release_all_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_until = NULL WHERE status = 'processing'",
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Queue a manual retry of the delivery of `event_id` to `destination_id` now.
    /// Returns false when no such delivery exists.
    pub async fn requeue_delivery(
        &self,
        tenant_id: &str,
        event_id: &str,
        destination_id: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $4, lease_owner = NULL, lease_until = NULL, \
             manual_retry = 1, updated_at = $4 \
             WHERE tenant_id = $1 AND event_id = $2 AND destination_id = $3 AND status <> 'processing'",
        )
        .bind(tenant_id)
        .bind(event_id)
        .bind(destination_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // An event that predates the destination, or was published elsewhere: create it.
        let exists = sqlx::query("SELECT 1 FROM deliveries WHERE tenant_id = $1 AND event_id = $2 AND destination_id = $3")
            .bind(tenant_id)
            .bind(event_id)
            .bind(destination_id)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_some() {
            return Ok(true); // in flight already
        }
        let inserted = sqlx::query(
            "INSERT INTO deliveries (id, tenant_id, event_id, destination_id, status, attempts, manual_retry, next_attempt_at, created_at, updated_at) \
             SELECT $1, $2, $3, $4, 'pending', 0, 1, $5, $5, $5 WHERE EXISTS (SELECT 1 FROM events WHERE tenant_id = $2 AND id = $3)",
        )
        .bind(ulid::Ulid::new().to_string())
        .bind(tenant_id)
        .bind(event_id)
        .bind(destination_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(inserted.rows_affected() > 0)
    }

    /// Deliveries not yet finished (pending or processing).
    pub async fn count_unfinished_deliveries(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query(
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'processing')",
            )
            .fetch_one(self.pool())
            .await?
            .try_get(0)?,
        )
    }

    /// The earliest time a pending delivery becomes due, if any.
    pub async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        let row =
            sqlx::query("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }
}

/// The state of one delivery, for event listings.
#[derive(Clone, Debug)]
pub struct DeliverySummary {
    /// Owner.
    pub tenant_id: String,
    /// Event.
    pub event_id: String,
    /// Destination.
    pub destination_id: String,
    /// pending | processing | success | failed | skipped.
    pub status: String,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

impl Store {
    /// Delivery states of a set of events.
    pub async fn delivery_summaries(
        &self,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<DeliverySummary>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = super::sql::SqlBuilder::new(
            "SELECT tenant_id, event_id, destination_id, status, updated_at FROM deliveries WHERE ",
        );
        for (i, (tenant, id)) in keys.iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push_binds(
                "(tenant_id = ? AND event_id = ?)",
                [
                    super::sql::Bind::Text(tenant.clone()),
                    super::sql::Bind::Text(id.clone()),
                ],
            );
        }
        b.push(" ORDER BY destination_id");
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(DeliverySummary {
                    tenant_id: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    destination_id: r.try_get(2)?,
                    status: r.try_get(3)?,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}
