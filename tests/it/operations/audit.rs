//! The audit trail: mutations recorded, secrets never.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::call_as;
use crate::harness::{call, eventually, TestReceiver, TestServer};
use crate::tasks::tenant_with_webhook;

async fn audit_entries(server: &TestServer, query: &str) -> Vec<Value> {
    server
        .get_json(&format!("/api/v1/audit-trail{query}"))
        .await["models"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn audit_trail_records_mutations_without_secrets() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    let dest = tenant_with_webhook(&server, "aud", &sink).await;
    let (_, created) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "robot" })),
    )
    .await;
    let token = created["access_token"].as_str().unwrap().to_string();
    let (status, _) = call_as(
        &server,
        &token,
        Method::PATCH,
        &format!("/api/v1/tenants/aud/destinations/{dest}"),
        Some(json!({ "credentials": { "secret": "whsec-rotated-secret-5678" }, "config": { "url": sink.url("/v2") } })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "tenant_id": "aud", "topic": "t", "data": { "password": "in-an-event" } })),
    )
    .await;
    assert_eq!(status, 202);
    // Reads are not recorded.
    server.get_json("/api/v1/tenants/aud").await;

    let entries = eventually("five audit entries", Duration::from_secs(20), || async {
        let entries = audit_entries(&server, "?dir=asc").await;
        (entries.len() >= 5).then_some(entries)
    })
    .await;
    let actions: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["user"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            "admin PUT /api/v1/tenants/aud".to_string(),
            "admin POST /api/v1/tenants/aud/destinations".into(),
            "admin POST /api/v1/api-tokens".into(),
            format!("api-token:robot PATCH /api/v1/tenants/aud/destinations/{dest}"),
            "admin POST /api/v1/publish".into(),
        ]
    );
    let create = &entries[1];
    assert_eq!(create["status"], 201);
    assert_eq!(create["category"], "tenants");
    assert_eq!(create["tenant_id"], "aud");
    assert_eq!(create["ip_address"], "127.0.0.1");
    assert_eq!(create["request"]["credentials"], "[REDACTED]");
    assert_eq!(create["request"]["type"], "webhook");
    let all = audit_entries(&server, "?limit=100").await;
    let text = Value::Array(all).to_string();
    for secret in [
        "whsec-tasks-secret-1234",
        "whsec-rotated-secret-5678",
        "in-an-event",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the audit trail: {text}"
        );
    }

    // Filters, one entry, and the NDJSON export.
    let by_token = audit_entries(&server, "?user=api-token:robot").await;
    assert_eq!(by_token.len(), 1);
    assert_eq!(by_token[0]["user_type"], "api_token");
    let publishes = eventually("publish entry", Duration::from_secs(20), || async {
        let e = audit_entries(&server, "?category=publish").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(publishes[0]["status"], 202);
    assert_eq!(publishes[0]["request"]["summary"], "publish");
    assert_eq!(publishes[0]["request"]["count"], 1);
    let one = server
        .get_json(&format!(
            "/api/v1/audit-trail/{}",
            create["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["id"], create["id"]);
    let res = server
        .admin(Method::GET, "/api/v1/audit-trail/export?method=POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 3, "{body}");
    assert!(lines.iter().all(|l| l["method"] == "POST"));
    let (status, body) = call(
        &server,
        Method::GET,
        "/api/v1/audit-trail?user_type=robot",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("user_type:"));
}
