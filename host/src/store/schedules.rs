//! Scheduled sends and their runs. The scheduler takes a due schedule by moving its
//! `next_run_at` with a compare-and-set, so on several nodes each slot runs once.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{now_ms, Store, StoreError, StoreResult};

/// A stored schedule.
#[derive(Clone, Debug)]
pub struct ScheduleRow {
    /// Id.
    pub id: String,
    /// Tenant the message is published to.
    pub tenant_id: String,
    /// Label.
    pub name: String,
    /// Cron expression, when timed by cron.
    pub cron: Option<String>,
    /// Fixed interval (ms), when timed by interval.
    pub interval_ms: Option<i64>,
    /// Single run time (ms), for a delayed publish.
    pub run_at: Option<i64>,
    /// IANA time zone of the cron expression.
    pub timezone: String,
    /// Topic of the published event.
    pub topic: String,
    /// JSON object published as `data`.
    pub data: String,
    /// JSON object of strings, or none.
    pub metadata: Option<String>,
    /// Publish to this destination only.
    pub destination_id: Option<String>,
    /// Enabled.
    pub enabled: bool,
    /// Next slot (ms); none when disabled or finished.
    pub next_run_at: Option<i64>,
    /// Last run (ms).
    pub last_run_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
}

/// One run of a schedule.
#[derive(Clone, Debug)]
pub struct ScheduleRunRow {
    /// Id.
    pub id: String,
    /// Schedule.
    pub schedule_id: String,
    /// The slot it ran for (ms).
    pub scheduled_for: i64,
    /// When it ran (ms).
    pub ran_at: i64,
    /// Event published.
    pub event_id: Option<String>,
    /// `published`, `duplicate` or `failed`.
    pub status: String,
    /// Earlier slots skipped by the missed-run policy.
    pub missed: i64,
    /// Why it failed.
    pub error: Option<String>,
}

const COLUMNS: &str =
    "id, tenant_id, name, cron, interval_ms, run_at, timezone, topic, data, metadata, \
    destination_id, enabled, next_run_at, last_run_at, created_at, updated_at";

impl Store {
    /// Insert or update a schedule (all fields; its runs are kept).
    pub async fn save_schedule(&self, s: &ScheduleRow) -> StoreResult<()> {
        let updates = COLUMNS
            .split(", ")
            .filter(|c| *c != "id" && *c != "created_at")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "INSERT INTO schedules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (id) DO UPDATE SET {updates}"
        ))
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(&s.name)
        .bind(&s.cron)
        .bind(s.interval_ms)
        .bind(s.run_at)
        .bind(&s.timezone)
        .bind(&s.topic)
        .bind(&s.data)
        .bind(&s.metadata)
        .bind(&s.destination_id)
        .bind(s.enabled as i64)
        .bind(s.next_run_at)
        .bind(s.last_run_at)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// One schedule.
    pub async fn schedule(&self, id: &str) -> StoreResult<ScheduleRow> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("schedule {id}")))?;
        decode(&row)
    }

    /// A page of schedules by `(created_at, id)`.
    pub async fn list_schedules(
        &self,
        tenant_id: Option<&str>,
        after: &Option<(i64, String)>,
        desc: bool,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleRow>> {
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS} FROM schedules WHERE 1 = 1"));
        if let Some(t) = tenant_id {
            b.push_bind(" AND tenant_id = ?", Bind::Text(t.to_string()));
        }
        b.push_after("created_at", "id", after, desc);
        let order = if desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY created_at {order}, id {order} LIMIT ?"),
            Bind::Int(limit + 1),
        );
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// Delete a schedule and its runs.
    pub async fn delete_schedule(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("schedule {id}")));
        }
        Ok(())
    }

    /// Enabled schedules whose next slot is due.
    pub async fn due_schedules(&self, now: i64, limit: i64) -> StoreResult<Vec<ScheduleRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE enabled = 1 AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Move a schedule from slot `from` to `next`; false when another node already did.
    pub async fn advance_schedule(
        &self,
        id: &str,
        from: i64,
        next: Option<i64>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE schedules SET next_run_at = $3, last_run_at = $4, updated_at = $4 WHERE id = $1 AND next_run_at = $2",
        )
        .bind(id)
        .bind(from)
        .bind(next)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record a run (once per slot).
    pub async fn insert_schedule_run(&self, r: &ScheduleRunRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO schedule_runs (id, schedule_id, scheduled_for, ran_at, event_id, status, missed, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (schedule_id, scheduled_for) DO NOTHING",
        )
        .bind(&r.id)
        .bind(&r.schedule_id)
        .bind(r.scheduled_for)
        .bind(r.ran_at)
        .bind(&r.event_id)
        .bind(&r.status)
        .bind(r.missed)
        .bind(&r.error)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A page of a schedule's runs by `(ran_at, id)`.
    pub async fn list_schedule_runs(
        &self,
        schedule_id: &str,
        after: &Option<(i64, String)>,
        desc: bool,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleRunRow>> {
        let mut b = SqlBuilder::new(
            "SELECT id, schedule_id, scheduled_for, ran_at, event_id, status, missed, error FROM schedule_runs WHERE 1 = 1",
        );
        b.push_bind(" AND schedule_id = ?", Bind::Text(schedule_id.to_string()));
        b.push_after("ran_at", "id", after, desc);
        let order = if desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY ran_at {order}, id {order} LIMIT ?"),
            Bind::Int(limit + 1),
        );
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(ScheduleRunRow {
                    id: r.try_get(0)?,
                    schedule_id: r.try_get(1)?,
                    scheduled_for: r.try_get(2)?,
                    ran_at: r.try_get(3)?,
                    event_id: r.try_get(4)?,
                    status: r.try_get(5)?,
                    missed: r.try_get(6)?,
                    error: r.try_get(7)?,
                })
            })
            .collect()
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<ScheduleRow> {
    Ok(ScheduleRow {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        name: row.try_get(2)?,
        cron: row.try_get(3)?,
        interval_ms: row.try_get(4)?,
        run_at: row.try_get(5)?,
        timezone: row.try_get(6)?,
        topic: row.try_get(7)?,
        data: row.try_get(8)?,
        metadata: row.try_get(9)?,
        destination_id: row.try_get(10)?,
        enabled: row.try_get::<i64, _>(11)? != 0,
        next_run_at: row.try_get(12)?,
        last_run_at: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
    })
}
