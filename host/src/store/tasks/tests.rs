//! Tests of `store::tasks` on a real SQLite store, with rows in states the API cannot
//! produce on demand (a task stuck in processing after its worker died).

use super::*;
use crate::store::test_support;

#[test]
fn statuses_map_both_ways() {
    for s in TaskStatus::ALL {
        assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        assert_eq!(TaskStatus::from_stored(s.stored()), s);
    }
    assert_eq!(TaskStatus::parse("done"), None);
}

const HOUR: i64 = 3_600_000;

/// One tenant, and per (delivery id, stored status, lease end, created) an event and
/// its delivery.
async fn seed(store: &Store, rows: &[(&str, &str, Option<i64>, i64)]) {
    let now = now_ms();
    sqlx::query("INSERT INTO tenants (id, created_at, updated_at) VALUES ('t', $1, $1)")
        .bind(now)
        .execute(store.pool())
        .await
        .unwrap();
    for (id, status, lease_until, created_at) in rows {
        sqlx::query(
            "INSERT INTO events (tenant_id, id, topic, time, data, eligible_for_retry, created_at) \
             VALUES ('t', $1, 'topic', $2, '{}', 1, $2)",
        )
        .bind(format!("evt_{id}"))
        .bind(created_at)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO deliveries (id, tenant_id, event_id, destination_id, status, attempts, next_attempt_at, \
             lease_until, lease_owner, created_at, updated_at) VALUES ($1, 't', $2, 'des_1', $3, 1, $4, $5, 'gone', $4, $4)",
        )
        .bind(*id)
        .bind(format!("evt_{id}"))
        .bind(*status)
        .bind(created_at)
        .bind(*lease_until)
        .execute(store.pool())
        .await
        .unwrap();
    }
}

async fn status_of(store: &Store, id: &str) -> Option<TaskStatus> {
    store.task(id).await.unwrap().map(|t| t.status)
}

#[tokio::test]
async fn repair_prune_and_bulk_respect_states() {
    let (store, _dir) = test_support::sqlite().await;
    let now = now_ms();
    seed(
        &store,
        &[
            ("stuck", "processing", Some(now - 2 * HOUR), now - 3 * HOUR),
            ("live", "processing", Some(now + HOUR), now - HOUR),
            ("old", "success", None, now - 48 * HOUR),
            ("recent", "failed", None, now),
        ],
    )
    .await;
    let all = TaskFilter::default();

    // Only the task whose lease ended at least an hour ago is repaired.
    assert_eq!(
        store
            .repair_tasks(&all, HOUR, TaskStatus::New)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status_of(&store, "stuck").await, Some(TaskStatus::New));
    assert_eq!(
        status_of(&store, "live").await,
        Some(TaskStatus::Processing)
    );

    // Pruning by age takes only finished rows past it; by count keeps the newest.
    assert_eq!(
        store
            .prune_tasks(&all, Some(now - 24 * HOUR), None)
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(status_of(&store, "old").await, None);

    // Skip applies to new and failed tasks, never to one a worker holds.
    let skipped = store
        .bulk_task_action(BulkAction::Skip, &all, None)
        .await
        .unwrap();
    assert_eq!(skipped, 2);
    assert_eq!(
        status_of(&store, "live").await,
        Some(TaskStatus::Processing)
    );
    let counts = store.task_counts(&all, TaskGrouping::Total).await.unwrap();
    let skipped: i64 = counts
        .iter()
        .filter(|(_, s, _)| *s == TaskStatus::Skipped)
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(skipped, 2);

    // Retry by id, with a filter that excludes one of them.
    let filter = TaskFilter {
        created_gte: Some(now - HOUR / 2),
        ..TaskFilter::default()
    };
    let ids = ["stuck".to_string(), "recent".to_string()];
    let retried = store
        .bulk_task_action(BulkAction::Retry, &filter, Some(&ids))
        .await
        .unwrap();
    assert_eq!(retried, 1);
    assert_eq!(status_of(&store, "recent").await, Some(TaskStatus::New));
    assert_eq!(status_of(&store, "stuck").await, Some(TaskStatus::Skipped));

    // maxCount 0 of the finished ones: the remaining skipped task goes.
    assert_eq!(
        store.prune_tasks(&all, None, Some(0)).await.unwrap(),
        (0, 1)
    );
    assert_eq!(status_of(&store, "stuck").await, None);
}
