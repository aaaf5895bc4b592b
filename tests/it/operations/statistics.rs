//! Event statistics and retention.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{call, eventually, TestServer};

#[tokio::test]
async fn event_statistics_and_retention() {
    let server = TestServer::builder().start().await;
    call(
        &server,
        Method::PUT,
        "/api/v1/tenants/stats",
        Some(json!({})),
    )
    .await;
    call(
        &server,
        Method::PUT,
        "/api/v1/tenants/other",
        Some(json!({})),
    )
    .await;
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(3);
    let old = old
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (i, (topic, time)) in [
        ("o.a", None),
        ("o.a", None),
        ("o.b", None),
        ("o.a", Some(&old)),
        ("o.b", Some(&old)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({ "tenant_id": "stats", "topic": topic, "data": { "i": i }, "metadata": { "region": "eu" } });
        if let Some(t) = time {
            body["time"] = json!(t);
        }
        let (status, answer) = call(&server, Method::POST, "/api/v1/publish", Some(body)).await;
        assert_eq!(status, 202, "{answer}");
    }
    call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "tenant_id": "other", "topic": "x", "data": {} })),
    )
    .await;

    let topics = server
        .get_json("/api/v1/events/stats/topics?tenant_id=stats")
        .await;
    assert_eq!(
        topics,
        json!([{ "topic": "o.a", "count": 3 }, { "topic": "o.b", "count": 2 }])
    );
    let paged = server
        .get_json("/api/v1/events/stats/topics?tenant_id=stats&limit=1&offset=1")
        .await;
    assert_eq!(paged, json!([{ "topic": "o.b", "count": 2 }]));
    let histogram = server
        .get_json("/api/v1/events/stats?tenant_id=stats&topic=o.a&days=4&interval=day")
        .await;
    let points = histogram.as_array().unwrap();
    assert!(points.len() >= 4, "{histogram}");
    let total: i64 = points.iter().map(|p| p[1].as_i64().unwrap()).sum();
    assert_eq!(total, 3);
    let keys = server
        .get_json("/api/v1/events/stats/keys?tenant_id=stats")
        .await;
    assert_eq!(
        keys,
        json!([{ "tenant_id": "stats", "topics": ["o.a", "o.b"], "metadata_keys": ["region"] }])
    );
    let (status, body) = call(
        &server,
        Method::GET,
        "/api/v1/events/stats?interval=week",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("interval:"));

    // Retention: events older than a day go for this tenant only.
    let (status, body) = call(
        &server,
        Method::PUT,
        "/api/v1/retention/tenants/stats",
        Some(json!({ "events": "1d" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenants"]["stats"]["events"], "86400s");
    let (status, body) = call(
        &server,
        Method::PUT,
        "/api/v1/retention",
        Some(json!({ "events": "soon" })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("events:"));
    let (status, body) = call(&server, Method::POST, "/api/v1/retention/run", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pruned"]["events"], 2);
    let topics = server
        .get_json("/api/v1/events/stats/topics?tenant_id=stats")
        .await;
    assert_eq!(
        topics,
        json!([{ "topic": "o.a", "count": 2 }, { "topic": "o.b", "count": 1 }])
    );
    let shown = server.get_json("/api/v1/retention").await;
    assert_eq!(shown["pruned"]["events"], 2);
    let metrics = server
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("outrider_retention_pruned_rows_total{kind=\"events\"} 2"),
        "{metrics}"
    );

    // Audit entries past a global one-second retention go in a later pass.
    let (status, _) = call(
        &server,
        Method::PUT,
        "/api/v1/retention",
        Some(json!({ "audit": "1s" })),
    )
    .await;
    assert_eq!(status, 200);
    eventually("audit entries pruned", Duration::from_secs(30), || async {
        let (_, body) = call(&server, Method::POST, "/api/v1/retention/run", None).await;
        (body["pruned"]["audit"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;

    // Delete all events of a tenant; the other tenant keeps its own.
    let (status, body) = call(
        &server,
        Method::DELETE,
        "/api/v1/tenants/stats/events/delete_all",
        None,
    )
    .await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(3)), "{body}");
    assert_eq!(
        server
            .get_json("/api/v1/events/stats/topics?tenant_id=stats")
            .await,
        json!([])
    );
    assert_eq!(
        server
            .get_json("/api/v1/events/stats/topics?tenant_id=other")
            .await,
        json!([{ "topic": "x", "count": 1 }])
    );
}
