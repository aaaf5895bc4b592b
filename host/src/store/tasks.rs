//! Deliveries seen as tasks: filtered listings, bulk retry/skip/resolve, pruning, repair of
//! tasks stuck in processing, and counts per status.
//!
//! A task is one row of `deliveries` (one per event × destination). Its stored status
//! maps onto the task vocabulary: `pending` → `new`, `processing`, `success` →
//! `finished`, `failed`, `skipped`. Bulk statements never touch a row a worker holds
//! (`processing`), so they cannot race a delivery in flight.

use sqlx::Row;

use super::sql::{Bind, SqlBuilder};
use super::{now_ms, Store, StoreResult};

/// A task's status, in the API's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskStatus {
    /// Waiting for its first or next attempt.
    New,
    /// Claimed by a worker.
    Processing,
    /// Delivered, or resolved by hand.
    Finished,
    /// Out of attempts, or failed permanently.
    Failed,
    /// Will not be delivered.
    Skipped,
}

impl TaskStatus {
    /// Every status, in the order statistics list them.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::New,
        TaskStatus::Processing,
        TaskStatus::Finished,
        TaskStatus::Failed,
        TaskStatus::Skipped,
    ];

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::New => "new",
            TaskStatus::Processing => "processing",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }

    /// From the API's name.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The `deliveries.status` value.
    pub fn stored(self) -> &'static str {
        match self {
            TaskStatus::New => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Finished => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }

    /// From a `deliveries.status` value (unknown values read as `new`).
    pub fn from_stored(text: &str) -> TaskStatus {
        TaskStatus::ALL
            .into_iter()
            .find(|s| s.stored() == text)
            .unwrap_or(TaskStatus::New)
    }
}

/// Which tasks a listing or bulk action applies to; empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    /// Any of these statuses.
    pub statuses: Vec<TaskStatus>,
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Any of these destinations.
    pub destination_ids: Vec<String>,
    /// Events of any of these topics.
    pub topics: Vec<String>,
    /// Created at or after (ms).
    pub created_gte: Option<i64>,
    /// Created at or before (ms).
    pub created_lte: Option<i64>,
}

/// A task as listed.
#[derive(Clone, Debug)]
pub struct TaskRow {
    /// Delivery id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Event.
    pub event_id: String,
    /// Destination.
    pub destination_id: String,
    /// The event's topic.
    pub topic: String,
    /// Status.
    pub status: TaskStatus,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (meaningful for `new`).
    pub next_attempt_at: i64,
    /// Lease end while processing.
    pub lease_until: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Resolved by hand at.
    pub resolved_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// Grouping of task statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskGrouping {
    /// One total.
    Total,
    /// Per period of this many ms of `created_at`.
    Period(i64),
    /// Per destination.
    Destination,
    /// Per event topic.
    Topic,
}

/// A bulk change of status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// Deliver again now (any status but processing).
    Retry,
    /// Do not deliver (new or failed tasks).
    Skip,
    /// Mark finished without delivering (new, failed or skipped tasks).
    Resolve,
}

impl BulkAction {
    /// The status tasks end up in.
    pub fn new_status(self) -> TaskStatus {
        match self {
            BulkAction::Retry => TaskStatus::New,
            BulkAction::Skip => TaskStatus::Skipped,
            BulkAction::Resolve => TaskStatus::Finished,
        }
    }

    fn assignments(self) -> &'static str {
        match self {
            BulkAction::Retry => {
                "status = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, \
                 manual_retry = 1, resolved_at = NULL, updated_at = ?"
            }
            BulkAction::Skip => {
                "status = 'skipped', last_error = 'skipped by operator', updated_at = ?"
            }
            BulkAction::Resolve => "status = 'success', resolved_at = ?, updated_at = ?",
        }
    }

    fn applies_to_statuses(self) -> &'static str {
        match self {
            BulkAction::Retry => "('pending', 'success', 'failed', 'skipped')",
            BulkAction::Skip => "('pending', 'failed')",
            BulkAction::Resolve => "('pending', 'failed', 'skipped')",
        }
    }
}

/// Statuses a task can no longer leave by itself; only these are pruned.
const FINAL_STATUSES: &str = "('success', 'failed', 'skipped')";

/// Rows changed per statement by pruning, so the writer lock is held briefly.
const PRUNE_BATCH: i64 = 1000;

/// Ids per `IN (...)` list.
const IDS_CHUNK: usize = 500;

/// Appends ` AND ...` conditions of `f` on the unaliased `deliveries` table.
fn push_filter(b: &mut SqlBuilder, f: &TaskFilter) {
    let statuses: Vec<String> = f.statuses.iter().map(|s| s.stored().to_string()).collect();
    b.push_in(" AND deliveries.status", &statuses);
    if let Some(t) = &f.tenant_id {
        b.push_bind(" AND deliveries.tenant_id = ?", Bind::Text(t.clone()));
    }
    b.push_in(" AND deliveries.destination_id", &f.destination_ids);
    if !f.topics.is_empty() {
        b.push(
            " AND EXISTS (SELECT 1 FROM events te WHERE te.tenant_id = deliveries.tenant_id \
             AND te.id = deliveries.event_id",
        );
        b.push_in(" AND te.topic", &f.topics);
        b.push(")");
    }
    if let Some(t) = f.created_gte {
        b.push_bind(" AND deliveries.created_at >= ?", Bind::Int(t));
    }
    if let Some(t) = f.created_lte {
        b.push_bind(" AND deliveries.created_at <= ?", Bind::Int(t));
    }
}

const COLUMNS: &str = "deliveries.id, deliveries.tenant_id, deliveries.event_id, deliveries.destination_id, \
    e.topic, deliveries.status, deliveries.attempts, deliveries.next_attempt_at, deliveries.lease_until, \
    deliveries.last_error, deliveries.resolved_at, deliveries.created_at, deliveries.updated_at";

const FROM: &str =
    " FROM deliveries JOIN events e ON e.tenant_id = deliveries.tenant_id AND e.id = deliveries.event_id";

impl Store {
    /// A page of tasks by `(created_at, id)`: `limit + 1` rows after `after`.
    pub async fn list_tasks(
        &self,
        f: &TaskFilter,
        after: &Option<(i64, String)>,
        desc: bool,
        limit: i64,
    ) -> StoreResult<Vec<TaskRow>> {
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS}{FROM} WHERE 1 = 1"));
        push_filter(&mut b, f);
        b.push_after("deliveries.created_at", "deliveries.id", after, desc);
        let order = if desc { "DESC" } else { "ASC" };
        b.push_bind(
            &format!(" ORDER BY deliveries.created_at {order}, deliveries.id {order} LIMIT ?"),
            Bind::Int(limit + 1),
        );
        b.fetch_all(self.pool()).await?.iter().map(decode).collect()
    }

    /// One task.
    pub async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let mut b = SqlBuilder::new(format!("SELECT {COLUMNS}{FROM} WHERE 1 = 1"));
        b.push_bind(" AND deliveries.id = ?", Bind::Text(id.to_string()));
        b.fetch_all(self.pool())
            .await?
            .first()
            .map(decode)
            .transpose()
    }

    /// Apply `action` to the tasks matching `f` and, when given, with these ids. Returns
    /// how many changed.
    pub async fn bulk_task_action(
        &self,
        action: BulkAction,
        f: &TaskFilter,
        ids: Option<&[String]>,
    ) -> StoreResult<u64> {
        let now = now_ms();
        let statement = |chunk: Option<&[String]>| {
            let sql = format!(
                "UPDATE deliveries SET {} WHERE status IN {}",
                action.assignments(),
                action.applies_to_statuses()
            );
            let times = std::iter::repeat_n(Bind::Int(now), sql.matches('?').count());
            let mut b = SqlBuilder::new(String::new());
            b.push_binds(&sql, times);
            push_filter(&mut b, f);
            if let Some(chunk) = chunk {
                b.push_in(" AND deliveries.id", chunk);
            }
            b
        };
        match ids {
            None => Ok(statement(None)
                .query()
                .execute(self.writer())
                .await?
                .rows_affected()),
            Some(ids) => {
                let mut changed = 0;
                for chunk in ids.chunks(IDS_CHUNK) {
                    changed += statement(Some(chunk))
                        .query()
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                }
                Ok(changed)
            }
        }
    }

    /// Delete finished, failed and skipped tasks created before `older_than` (ms), and
    /// beyond the `keep` most recent of them. Returns (expired, excess).
    pub async fn prune_tasks(
        &self,
        f: &TaskFilter,
        older_than: Option<i64>,
        keep: Option<i64>,
    ) -> StoreResult<(u64, u64)> {
        let mut expired = 0;
        if let Some(cutoff) = older_than {
            expired = self
                .delete_tasks_in_batches(f, |b| {
                    b.push_bind(" AND deliveries.created_at < ?", Bind::Int(cutoff));
                })
                .await?;
        }
        let mut excess = 0;
        if let Some(keep) = keep {
            let mut b = SqlBuilder::new(format!(
                "SELECT deliveries.created_at, deliveries.id FROM deliveries WHERE status IN {FINAL_STATUSES}"
            ));
            push_filter(&mut b, f);
            b.push_bind(
                " ORDER BY deliveries.created_at DESC, deliveries.id DESC LIMIT 1 OFFSET ?",
                Bind::Int(keep),
            );
            if let Some(row) = b.fetch_all(self.pool()).await?.first() {
                let (time, id): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
                excess = self
                    .delete_tasks_in_batches(f, |b| {
                        b.push_binds(
                            " AND (deliveries.created_at < ? OR (deliveries.created_at = ? AND deliveries.id <= ?))",
                            [Bind::Int(time), Bind::Int(time), Bind::Text(id.clone())],
                        );
                    })
                    .await?;
            }
        }
        Ok((expired, excess))
    }

    async fn delete_tasks_in_batches(
        &self,
        f: &TaskFilter,
        extra: impl Fn(&mut SqlBuilder),
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut b = SqlBuilder::new(format!(
                "DELETE FROM deliveries WHERE id IN (SELECT deliveries.id FROM deliveries WHERE status IN {FINAL_STATUSES}"
            ));
            push_filter(&mut b, f);
            extra(&mut b);
            b.push_bind(" LIMIT ?)", Bind::Int(PRUNE_BATCH));
            let n = b.query().execute(self.writer()).await?.rows_affected();
            total += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Put tasks whose processing lease ended at least `age_ms` ago into `to` (`new`
    /// makes them due now). Returns how many.
    pub async fn repair_tasks(
        &self,
        f: &TaskFilter,
        age_ms: i64,
        to: TaskStatus,
    ) -> StoreResult<u64> {
        let now = now_ms();
        let mut b = SqlBuilder::new(String::new());
        b.push_binds(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, \
             updated_at = ? WHERE status = 'processing' AND lease_until < ?",
            [
                Bind::Text(to.stored().to_string()),
                Bind::Int(now),
                Bind::Int(now),
                Bind::Int(now - age_ms),
            ],
        );
        push_filter(&mut b, f);
        Ok(b.query().execute(self.writer()).await?.rows_affected())
    }

    /// Task counts per (group key, status). The key is the period start (ms) as text, the
    /// destination id, the topic, or empty for [`TaskGrouping::Total`].
    pub async fn task_counts(
        &self,
        f: &TaskFilter,
        grouping: TaskGrouping,
    ) -> StoreResult<Vec<(String, TaskStatus, i64)>> {
        let mut b = SqlBuilder::new(String::new());
        let key = match grouping {
            TaskGrouping::Total => "CAST('' AS TEXT)".to_string(),
            TaskGrouping::Period(ms) => {
                format!("CAST((deliveries.created_at / {ms}) * {ms} AS TEXT)")
            }
            TaskGrouping::Destination => "deliveries.destination_id".to_string(),
            TaskGrouping::Topic => "e.topic".to_string(),
        };
        b.push(&format!(
            "SELECT {key} AS k, deliveries.status, COUNT(*) AS n"
        ));
        match grouping {
            TaskGrouping::Topic => b.push(FROM),
            _ => b.push(" FROM deliveries"),
        };
        b.push(" WHERE 1 = 1");
        push_filter(&mut b, f);
        b.push(" GROUP BY k, deliveries.status ORDER BY k");
        b.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    TaskStatus::from_stored(&r.try_get::<String, _>(1)?),
                    r.try_get(2)?,
                ))
            })
            .collect()
    }
}

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<TaskRow> {
    Ok(TaskRow {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        event_id: row.try_get(2)?,
        destination_id: row.try_get(3)?,
        topic: row.try_get(4)?,
        status: TaskStatus::from_stored(&row.try_get::<String, _>(5)?),
        attempts: row.try_get(6)?,
        next_attempt_at: row.try_get(7)?,
        lease_until: row.try_get(8)?,
        last_error: row.try_get(9)?,
        resolved_at: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

#[cfg(test)]
mod tests;
