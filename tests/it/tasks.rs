//! `/api/v1/tasks`: deliveries as tasks, bulk retry/skip/resolve on thousands of them,
//! statistics, pruning and repair, end to end through the real binary.

use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{call, eventually, TestReceiver, TestServer};

/// Tasks the bulk test works on.
const TASKS: usize = 2000;

/// A tenant with one webhook destination to `sink`; returns the destination id.
pub(crate) async fn tenant_with_webhook(
    server: &TestServer,
    tenant: &str,
    sink: &TestReceiver,
) -> String {
    let (status, body) = call(
        server,
        Method::PUT,
        &format!("/api/v1/tenants/{tenant}"),
        Some(json!({})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, dest) = call(
        server,
        Method::POST,
        &format!("/api/v1/tenants/{tenant}/destinations"),
        Some(json!({
            "type": "webhook",
            "topics": ["*"],
            "config": { "url": sink.url("/hook") },
            "credentials": { "secret": "whsec-tasks-secret-1234" },
        })),
    )
    .await;
    assert_eq!(status, 201, "{dest}");
    dest["id"].as_str().unwrap().to_string()
}

/// Publish `n` events (topics alternating `a.one` / `a.two`), 32 at a time.
async fn publish_many(server: &TestServer, tenant: &str, n: usize, retry: bool) {
    stream::iter(0..n)
        .map(|i| async move {
            let topic = if i % 2 == 0 { "a.one" } else { "a.two" };
            let (status, body) = call(
                server,
                Method::POST,
                "/api/v1/publish",
                Some(json!({
                    "tenant_id": tenant,
                    "topic": topic,
                    "eligible_for_retry": retry,
                    "data": { "n": i },
                })),
            )
            .await;
            assert_eq!(status, 202, "{body}");
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn totals(server: &TestServer, query: &str) -> Value {
    server
        .get_json(&format!("/api/v1/tasks/stats{query}"))
        .await["results"]
        .clone()
}

async fn wait_for(server: &TestServer, query: &str, status: &str, n: i64) {
    eventually(
        &format!("{n} tasks {status} ({query})"),
        Duration::from_secs(180),
        || async {
            let t = totals(server, query).await;
            (t[status] == n).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn bulk_actions_on_thousands_of_tasks() {
    let server = TestServer::builder().allow_loopback().start().await;
    // Every first delivery fails; afterwards the sink accepts.
    let sink = TestReceiver::with_script(&[500; TASKS]).await;
    let dest = tenant_with_webhook(&server, "bulk", &sink).await;
    publish_many(&server, "bulk", TASKS, false).await;
    let n = TASKS as i64;
    wait_for(&server, "", "failed", n).await;

    let t = totals(&server, "?tenant_id=bulk").await;
    assert_eq!(t["total"], n, "{t}");
    assert_eq!(t["new"], 0);

    // Per destination, per topic, per period.
    let per_dest = server.get_json("/api/v1/tasks/stats/destinations").await;
    assert_eq!(per_dest["results"][0]["destination_id"], dest);
    assert_eq!(per_dest["results"][0]["failed"], n);
    let per_topic = server.get_json("/api/v1/tasks/stats/topics").await;
    let topics: Vec<(String, i64)> = per_topic["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["topic"].as_str().unwrap().to_string(),
                r["failed"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        topics,
        vec![("a.one".into(), n / 2), ("a.two".into(), n / 2)]
    );
    let per_hour = server
        .get_json("/api/v1/tasks/stats/periods?aggregation=hourly")
        .await;
    let summed: i64 = per_hour["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total"].as_i64().unwrap())
        .sum();
    assert_eq!(summed, n);

    // The list filters and pages.
    let page = server
        .get_json("/api/v1/tasks?status=failed&topic=a.two&limit=100")
        .await;
    let models = page["models"].as_array().unwrap();
    assert_eq!(models.len(), 100);
    assert!(models
        .iter()
        .all(|m| m["topic"] == "a.two" && m["status"] == "failed"));
    assert!(page["pagination"]["next"].is_string());
    let ids: Vec<String> = models
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let one = server.get_json(&format!("/api/v1/tasks/{}", ids[0])).await;
    assert_eq!(one["attempts"], 1);
    assert_eq!(one["attempt_log"].as_array().unwrap().len(), 1);
    assert_eq!(one["attempt_log"][0]["status"], "failed");

    // Skip 100 by id.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/skip",
        Some(json!({ "ids": ids })),
    )
    .await;
    assert_eq!(
        (status, &body["newStatus"], &body["numberOfTasks"]),
        (200, &json!("skipped"), &json!(100))
    );

    // Retry every other failed one by filter: they are delivered now.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/retry",
        Some(json!({ "filter": { "status": "failed", "destination_id": dest } })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["numberOfTasks"], n - 100);
    assert_eq!(body["newStatus"], "new");
    wait_for(&server, "", "finished", n - 100).await;
    assert_eq!(totals(&server, "").await["skipped"], 100);

    // Resolve the skipped ones without delivering.
    let delivered_before = sink.requests().len();
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/resolve",
        Some(json!({ "filter": { "status": ["skipped"] } })),
    )
    .await;
    assert_eq!(
        (status, &body["numberOfTasks"]),
        (200, &json!(100)),
        "{body}"
    );
    let t = totals(&server, "").await;
    assert_eq!(
        (t["finished"].clone(), t["skipped"].clone()),
        (json!(n), json!(0))
    );
    assert_eq!(sink.requests().len(), delivered_before);
    let resolved = server.get_json(&format!("/api/v1/tasks/{}", ids[0])).await;
    assert_eq!(
        (resolved["status"].clone(), resolved["resolved"].clone()),
        (json!("finished"), json!(true))
    );

    // Nothing is stuck; pruning keeps the 500 newest.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/repair",
        Some(json!({ "age": "0s" })),
    )
    .await;
    assert_eq!(
        (status, body["count"].clone(), body["newStatus"].clone()),
        (200, json!(0), json!("new"))
    );
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/prune",
        Some(json!({ "maxAge": "1 hour", "maxCount": 500 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["expired"].clone(), body["excess"].clone()),
        (json!(0), json!(n - 500))
    );
    assert_eq!(totals(&server, "").await["total"], 500);
}

#[tokio::test]
async fn bad_task_requests_name_the_field() {
    let server = TestServer::builder().start().await;
    let cases = [
        ("/api/v1/tasks/retry", json!({}), "filter"),
        (
            "/api/v1/tasks/skip",
            json!({ "filter": { "status": "done" } }),
            "filter.status",
        ),
        (
            "/api/v1/tasks/retry",
            json!({ "filter": { "time[gte]": "yesterday" } }),
            "filter.time[gte]",
        ),
        ("/api/v1/tasks/prune", json!({}), "maxAge"),
        ("/api/v1/tasks/prune", json!({ "maxAge": "soon" }), "maxAge"),
        (
            "/api/v1/tasks/repair",
            json!({ "newStatus": "processing" }),
            "newStatus",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = call(&server, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{path} {body}: {message}"
        );
    }
    // A misspelt filter key is refused rather than ignored.
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/tasks/retry",
        Some(json!({ "filter": { "stauts": "failed" } })),
    )
    .await;
    assert!((400..500).contains(&status), "{status}");
    let (status, body) = call(&server, Method::GET, "/api/v1/tasks?status=nope", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        &server,
        Method::GET,
        "/api/v1/tasks/stats/periods?aggregation=weekly",
        None,
    )
    .await;
    assert_eq!(status, 400);

    // Tasks are for admins: a tenant token is refused.
    call(&server, Method::PUT, "/api/v1/tenants/t1", Some(json!({}))).await;
    let token = server.get_json("/api/v1/tenants/t1/token").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = server
        .anonymous(Method::GET, "/api/v1/tasks")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}
