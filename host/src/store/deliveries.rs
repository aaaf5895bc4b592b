//! The delivery queue: one row per (event, destination). Workers claim due rows in
//! batches by taking a lease; a worker that dies leaves its lease to expire, and the row is
//! claimed again, so every stored event is delivered at least once.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::hot::HotTx;
use super::sql::{Bind, SqlBuilder};
use super::{now_ms, Dialect, Store, StoreResult, WriterConnection};

/// Attempts per multi-row statement: 16 values each, far under the bound-value limits.
const ROWS_PER_STATEMENT: usize = 100;

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
    /// lease expired (their worker died) are due again. Runs on the hot paths' writer
    /// (on SQLite the direct connection, so claims never wait on SQLite's lock behind a
    /// publish), committed without an fsync of its own: a claim a power cut forgets is
    /// only a delivery that is claimed again.
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
        let mut b = SqlBuilder::for_dialect(self.dialect(), "UPDATE deliveries SET ");
        b.push_binds(
            "status = 'processing', lease_owner = ?, lease_until = ?, updated_at = ? \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'processing' AND lease_until < ?) \
                 ORDER BY next_attempt_at LIMIT ?",
            [
                Bind::Text(owner.into()),
                Bind::Int(now + lease_ms),
                Bind::Int(now),
                Bind::Int(now),
                Bind::Int(now),
                Bind::Int(limit),
            ],
        );
        b.push(&format!(
            " {lock}) RETURNING id, tenant_id, event_id, destination_id, attempts, manual_retry"
        ));
        let mut conn = self.writer_connection().await?;
        let mut tx = conn.begin_unsynced().await?;
        let claimed = tx.fetch::<ClaimedDelivery>(&b).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Record a batch of finished attempts, move their deliveries on and update each
    /// destination's consecutive-failure count, in one transaction of a few multi-row
    /// statements. Returns the new count per destination after each attempt, in order.
    pub async fn complete_attempts(&self, records: &[AttemptRecord]) -> StoreResult<Vec<i64>> {
        let mut conn = self.writer_connection().await?;
        self.complete_attempts_on(&mut conn, records).await
    }

    /// [`Store::complete_attempts`] on a writer connection the caller already holds.
    ///
    /// Outcomes are committed without waiting for their own flush to disk
    /// ([`WriterConnection::begin_unsynced`]): the next publish's fsync of the WAL covers
    /// them on SQLite (or the background checkpoint's within 250 ms), the WAL writer on
    /// PostgreSQL. A crash of the machine may forget the last outcomes, never an accepted
    /// event: their deliveries are still leased, so they are attempted again when the
    /// lease ends (at least once, as always). Publishes stop waiting behind an outcome
    /// batch's fsync.
    pub async fn complete_attempts_on(
        &self,
        conn: &mut WriterConnection,
        records: &[AttemptRecord],
    ) -> StoreResult<Vec<i64>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut tx = conn.begin_unsynced().await?;
        // A delivery deleted while in flight (its tenant was deleted) has no row to advance
        // and may not get an attempt (the foreign key): its outcome is dropped, so one
        // deletion cannot fail, and wedge, the batch of every other delivery's outcomes.
        let live = live_deliveries(self.dialect(), &mut tx, records).await?;
        let live: Vec<&AttemptRecord> = records
            .iter()
            .filter(|r| live.contains(r.delivery.id.as_str()))
            .collect();
        for chunk in live.chunks(ROWS_PER_STATEMENT) {
            insert_attempts(self.dialect(), &mut tx, chunk, now).await?;
            advance_deliveries(self.dialect(), &mut tx, chunk, now).await?;
        }
        let streaks = self.update_streaks(&mut tx, records).await?;
        let committing = std::time::Instant::now();
        tx.commit().await?;
        crate::telemetry::COUNTERS
            .writer_outcome
            .commit(committing.elapsed());
        Ok(streaks)
    }

    /// Move each destination's consecutive-failure count along its attempts of the batch;
    /// writes only the counts that change (none while everything succeeds).
    async fn update_streaks(
        &self,
        tx: &mut HotTx<'_>,
        records: &[AttemptRecord],
    ) -> StoreResult<Vec<i64>> {
        let mut ids: Vec<String> = records
            .iter()
            .map(|r| r.delivery.destination_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let mut b = SqlBuilder::for_dialect(
            self.dialect(),
            "SELECT id, consecutive_failures FROM destinations WHERE 1 = 1",
        );
        b.push_in(" AND id", &ids);
        // Row locks in id order: nodes completing the same destinations queue, never deadlock.
        b.push(match self.dialect() {
            Dialect::Postgres => " ORDER BY id FOR UPDATE",
            Dialect::Sqlite => " ORDER BY id",
        });
        let mut counts: HashMap<String, (i64, i64)> = HashMap::new();
        for (id, count) in tx.fetch::<(String, i64)>(&b).await? {
            counts.insert(id, (count, count));
        }
        let mut streaks = Vec::with_capacity(records.len());
        for r in records {
            let streak = match counts.get_mut(&r.delivery.destination_id) {
                Some((_, current)) => {
                    *current = if r.status == "success" {
                        0
                    } else {
                        *current + 1
                    };
                    *current
                }
                None => 0, // deleted meanwhile
            };
            streaks.push(streak);
        }
        for (id, (before, after)) in counts {
            if before != after {
                let mut b = SqlBuilder::for_dialect(self.dialect(), "UPDATE destinations SET ");
                b.push_binds(
                    "consecutive_failures = ? WHERE id = ?",
                    [Bind::Int(after), Bind::Text(id)],
                );
                tx.execute(&b).await?;
            }
        }
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

/// Which of the records' deliveries still exist.
async fn live_deliveries(
    dialect: Dialect,
    tx: &mut HotTx<'_>,
    records: &[AttemptRecord],
) -> StoreResult<HashSet<String>> {
    let mut live = HashSet::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<String> = chunk.iter().map(|r| r.delivery.id.clone()).collect();
        let mut b = SqlBuilder::for_dialect(dialect, "SELECT id FROM deliveries WHERE 1 = 1");
        b.push_in(" AND id", &ids);
        live.extend(tx.fetch::<String>(&b).await?);
    }
    Ok(live)
}

async fn insert_attempts(
    dialect: Dialect,
    tx: &mut HotTx<'_>,
    records: &[&AttemptRecord],
    now: i64,
) -> StoreResult<()> {
    let mut b = SqlBuilder::for_dialect(
        dialect,
        "INSERT INTO attempts (id, delivery_id, tenant_id, event_id, destination_id, attempt_number, manual, status, \
         response_status_code, response_body, error, error_kind, duration_ms, plugin_id, plugin_version, time) VALUES ",
    );
    for (n, r) in records.iter().enumerate() {
        b.push(if n == 0 { "" } else { ", " });
        b.push_binds(
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                Bind::Text(r.id.clone()),
                Bind::Text(r.delivery.id.clone()),
                Bind::Text(r.delivery.tenant_id.clone()),
                Bind::Text(r.delivery.event_id.clone()),
                Bind::Text(r.delivery.destination_id.clone()),
                Bind::Int(r.attempt_number),
                Bind::Int(r.manual as i64),
                Bind::Text(r.status.into()),
                Bind::OptInt(r.response_status_code),
                Bind::OptText(r.response_body.clone()),
                Bind::OptText(r.error.clone()),
                Bind::OptText(r.error_kind.map(String::from)),
                Bind::Int(r.duration_ms),
                Bind::OptText(r.plugin_id.clone()),
                Bind::OptText(r.plugin_version.clone()),
                Bind::Int(now),
            ],
        );
    }
    tx.execute(&b).await?;
    Ok(())
}

/// One UPDATE for the whole chunk, joining a VALUES list of (id, status, next time, error).
async fn advance_deliveries(
    dialect: Dialect,
    tx: &mut HotTx<'_>,
    records: &[&AttemptRecord],
    now: i64,
) -> StoreResult<()> {
    let mut b = SqlBuilder::for_dialect(
        dialect,
        "WITH outcome (id, status, next_at, error) AS (VALUES ",
    );
    for (n, r) in records.iter().enumerate() {
        let (status, next_at) = match r.next {
            // Nothing was sent (a transformer dropped the event): done, but not delivered.
            NextStep::Done if r.error_kind == Some("skipped") => ("skipped", None),
            NextStep::Done => ("success", None),
            NextStep::RetryAt(at) => ("pending", Some(at)),
            NextStep::GiveUp => ("failed", None),
        };
        b.push(if n == 0 { "" } else { ", " });
        b.push_binds(
            "(?, ?, ?, ?)",
            [
                Bind::Text(r.delivery.id.clone()),
                Bind::Text(status.into()),
                Bind::OptInt(next_at),
                Bind::OptText(r.error.clone()),
            ],
        );
    }
    b.push_bind(
        ") UPDATE deliveries SET status = outcome.status, attempts = deliveries.attempts + 1, \
         next_attempt_at = COALESCE(outcome.next_at, deliveries.next_attempt_at), lease_owner = NULL, \
         lease_until = NULL, last_error = outcome.error, manual_retry = 0, updated_at = ? \
         FROM outcome WHERE deliveries.id = outcome.id",
        Bind::Int(now),
    );
    tx.execute(&b).await?;
    Ok(())
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
