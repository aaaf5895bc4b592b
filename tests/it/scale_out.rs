//! Scale-out: two `outrider serve` nodes on one PostgreSQL share the delivery queue; every
//! event is delivered, and none is claimed by both nodes.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{eventually, TestReceiver, TestServer};

#[tokio::test]
async fn two_nodes_share_the_queue_without_double_claims() {
    let base = std::env::var("OUTRIDER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    // The first node gets a fresh database; the second joins it.
    let first = TestServer::builder()
        .allow_loopback()
        .start_on_postgres(&base)
        .await;
    let url = first
        .database_url()
        .expect("first node runs on PostgreSQL")
        .to_string();
    let second = TestServer::builder()
        .allow_loopback()
        .database_url(&url)
        .start()
        .await;

    let sink = TestReceiver::start().await;
    first
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    let res = first
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({ "type": "webhook", "topics": "*", "config": { "url": sink.url("/hook") } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let total = 400;
    let mut tasks = Vec::new();
    for (n, node) in [&first, &second].into_iter().enumerate() {
        for worker in 0..4 {
            let url = node.url("/api/v1/publish");
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..total / 8 {
                    let id = format!("evt_{n}_{worker}_{i}");
                    let res = client
                        .post(&url)
                        .bearer_auth(crate::harness::ADMIN_KEY)
                        .json(&json!({ "id": id, "tenant_id": "acme", "topic": "t", "data": { "i": i } }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 202);
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = eventually("every event delivered", Duration::from_secs(60), || async {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in sink.requests() {
            *counts
                .entry(r.header("x-outpost-event-id").to_string())
                .or_default() += 1;
        }
        (counts.len() == total).then_some(counts)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "delivered more than once without any failure: {twice:?}"
    );
    assert_eq!(sink.requests().len(), total);
    // One attempt per event: no delivery was attempted twice.
    let page = first.get_json("/api/v1/attempts?limit=1000").await;
    assert_eq!(page["models"].as_array().unwrap().len(), total);
}
