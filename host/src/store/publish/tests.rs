use super::*;
use crate::store::{test_support, AttemptRecord, NextStep};
use sqlx::Row;

async fn store_with_destinations(ids: &[&str]) -> (Store, tempfile::TempDir) {
    let (store, dir) = test_support::sqlite().await;
    store.upsert_tenant("t", None).await.unwrap();
    for id in ids {
        sqlx::query(
            "INSERT INTO destinations (id, tenant_id, type, topics, config, credentials, created_at, updated_at) \
             VALUES ($1, 't', 'webhook', '[\"*\"]', '{}', 'enc', 0, 0)",
        )
        .bind(*id)
        .execute(store.pool())
        .await
        .unwrap();
    }
    (store, dir)
}

fn event(id: &str, destinations: &[&str]) -> NewEvent {
    NewEvent {
        id: id.into(),
        tenant_id: "t".into(),
        topic: "order.created".into(),
        time: 1,
        metadata: None,
        data: "{}".into(),
        eligible_for_retry: true,
        destination_id: None,
        destination_ids: destinations.iter().map(|d| d.to_string()).collect(),
    }
}

async fn statuses(store: &Store) -> Vec<(String, String, Option<String>)> {
    let rows = sqlx::query(
        "SELECT event_id, status, lease_owner FROM deliveries ORDER BY event_id, destination_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_batch_writes_each_event_once_and_reports_duplicates() {
    let (store, _dir) = store_with_destinations(&["a", "b"]).await;
    store
        .publish_events(&[event("old", &["a"])], None)
        .await
        .unwrap();
    let batch = [
        event("e1", &["a", "b"]),
        event("e1", &["a"]),  // repeated within the batch
        event("old", &["b"]), // stored before
        event("e2", &[]),
    ];
    let written = store.publish_events(&batch, None).await.unwrap();
    let summary: Vec<(bool, Vec<String>)> = written
        .outcomes
        .iter()
        .map(|o| (o.duplicate, o.destination_ids.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (false, vec!["a".to_string(), "b".to_string()]),
            (true, vec!["a".to_string(), "b".to_string()]),
            (true, vec!["a".to_string()]),
            (false, vec![]),
        ]
    );
    assert!(written.leased.is_empty());
    let pending: Vec<_> = statuses(&store).await;
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert!(pending
        .iter()
        .all(|(_, s, owner)| s == "pending" && owner.is_none()));
}

#[tokio::test]
async fn leased_deliveries_are_not_claimed_again_until_the_lease_expires() {
    let (store, _dir) = store_with_destinations(&["a", "b"]).await;
    let lease = Lease {
        owner: "node-1".into(),
        duration_ms: 60_000,
        max: 1,
    };
    let written = store
        .publish_events(&[event("e1", &["a", "b"])], Some(&lease))
        .await
        .unwrap();
    assert_eq!(written.leased.len(), 1);
    let (index, leased) = &written.leased[0];
    assert_eq!((*index, leased.destination_id.as_str()), (0, "a"));
    let claimed = store.claim_deliveries("node-2", 60_000, 10).await.unwrap();
    let claimed: Vec<&str> = claimed.iter().map(|c| c.destination_id.as_str()).collect();
    assert_eq!(claimed, vec!["b"], "only the delivery left in the queue");
    // After a crash the lease is released (SQLite) and the delivery is claimable again.
    assert_eq!(store.release_all_leases().await.unwrap(), 2);
    let again = store.claim_deliveries("node-3", 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 2);
}

fn record(delivery: &ClaimedDelivery, n: i64, success: bool) -> AttemptRecord {
    AttemptRecord {
        id: ulid::Ulid::new().to_string(),
        delivery: delivery.clone(),
        attempt_number: n,
        status: if success { "success" } else { "failed" },
        response_status_code: Some(if success { 200 } else { 500 }),
        response_body: None,
        error: (!success).then(|| "boom".to_string()),
        error_kind: (!success).then_some("retry"),
        duration_ms: 1,
        plugin_id: None,
        plugin_version: None,
        manual: false,
        next: if success {
            NextStep::Done
        } else {
            NextStep::RetryAt(5)
        },
    }
}

/// (event, status, attempts, next attempt, lease owner, last error)
type DeliveryState = (String, String, i64, i64, Option<String>, Option<String>);

#[tokio::test]
async fn completing_a_batch_moves_deliveries_and_failure_streaks_in_order() {
    let (store, _dir) = store_with_destinations(&["a", "b"]).await;
    let events: Vec<NewEvent> = (0..4).map(|i| event(&format!("e{i}"), &["a"])).collect();
    store.publish_events(&events, None).await.unwrap();
    store
        .publish_events(&[event("x", &["b"])], None)
        .await
        .unwrap();
    let mut claimed = store.claim_deliveries("w", 60_000, 10).await.unwrap();
    claimed.sort_by(|x, y| x.event_id.cmp(&y.event_id));
    let (on_a, on_b): (Vec<_>, Vec<_>) = claimed.iter().partition(|c| c.destination_id == "a");
    let records = vec![
        record(on_a[0], 1, false),
        record(on_b[0], 1, false),
        record(on_a[1], 1, false),
        record(on_a[2], 1, true),
        record(on_a[3], 1, false),
    ];
    let streaks = store.complete_attempts(&records).await.unwrap();
    assert_eq!(streaks, vec![1, 1, 2, 0, 1]);
    // Outcomes commit at NORMAL; the next durable transaction (a publish) must run at FULL.
    let mut writer = store.writer_connection().await.unwrap();
    assert!(
        matches!(writer, crate::store::WriterConnection::Direct(_)),
        "the hot paths drive SQLite directly"
    );
    assert_eq!(
        writer.synchronous().await.unwrap(),
        1,
        "outcomes ran at NORMAL"
    );
    drop(writer.begin().await.unwrap());
    let synchronous = writer.synchronous().await.unwrap();
    assert_eq!(
        synchronous, 2,
        "a durable transaction began at synchronous = {synchronous}"
    );
    drop(writer);
    let stored: Vec<(String, i64)> =
        sqlx::query("SELECT id, consecutive_failures FROM destinations ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(stored, vec![("a".into(), 1), ("b".into(), 1)]);
    let rows = sqlx::query(
        "SELECT event_id, status, attempts, next_attempt_at, lease_owner, last_error FROM deliveries \
         WHERE destination_id = 'a' ORDER BY event_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let got: Vec<DeliveryState> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let pending = |e: &str| {
        (
            e.to_string(),
            "pending".to_string(),
            1,
            5,
            None,
            Some("boom".to_string()),
        )
    };
    assert_eq!(got[0], pending("e0"));
    assert_eq!(got[1], pending("e1"));
    assert_eq!(got[2].1, "success");
    assert_eq!((got[2].2, got[2].5.clone()), (1, None));
    assert_eq!(got[3], pending("e3"));
    let attempts: i64 = sqlx::query("SELECT COUNT(*) FROM attempts")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 5);
}

#[tokio::test]
async fn outcomes_of_a_tenant_deleted_mid_delivery_do_not_block_the_others() {
    let (store, _dir) = store_with_destinations(&["a"]).await;
    store.upsert_tenant("gone", None).await.unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, tenant_id, type, topics, config, credentials, created_at, updated_at) \
         VALUES ('g', 'gone', 'webhook', '[\"*\"]', '{}', 'enc', 0, 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let mut doomed = event("d", &["g"]);
    doomed.tenant_id = "gone".into();
    store
        .publish_events(&[event("kept", &["a"]), doomed], None)
        .await
        .unwrap();
    let mut claimed = store.claim_deliveries("w", 60_000, 10).await.unwrap();
    claimed.sort_by(|x, y| x.event_id.cmp(&y.event_id));
    // The tenant is deleted while its delivery is in flight.
    store.delete_tenant("gone").await.unwrap();
    let records: Vec<AttemptRecord> = claimed.iter().map(|c| record(c, 1, true)).collect();
    let streaks = store.complete_attempts(&records).await.unwrap();
    assert_eq!(streaks.len(), 2);
    let kept: Vec<(String, String)> = sqlx::query("SELECT event_id, status FROM deliveries")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(kept, vec![("kept".to_string(), "success".to_string())]);
    let attempts: Vec<String> = sqlx::query("SELECT tenant_id FROM attempts")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        attempts,
        vec!["t".to_string()],
        "no attempt of the deleted tenant"
    );
}
