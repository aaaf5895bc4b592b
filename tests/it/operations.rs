//! Operations end to end: named API tokens, the audit trail, scheduled sends, event
//! statistics and retention.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, TestReceiver, TestServer, ADMIN_KEY};
use crate::tasks::{call, tenant_with_webhook};

async fn call_as(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.anonymous(method, path).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn api_tokens_are_created_used_and_revoked() {
    let server = TestServer::builder().start().await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "ci", "description": "deploy pipeline" })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["access_token"].as_str().unwrap().to_string();
    let id = created["identifier"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    // It acts as admin.
    let (status, body) = call_as(
        &server,
        &token,
        Method::PUT,
        "/api/v1/tenants/tok-t",
        Some(json!({})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, _) = call_as(&server, &token, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 200);

    let listed = server.get_json("/api/v1/api-tokens").await;
    assert_eq!(listed["metadata"]["totalCount"], 1);
    let entry = &listed["results"][0];
    assert_eq!(entry["identifier"], id.as_str());
    assert_eq!(entry["name"], "ci");
    assert_eq!(entry["description"], "deploy pipeline");
    assert_eq!(entry["createdBy"], "admin");
    assert!(entry["lastUsed"].is_string(), "{entry}");
    assert!(
        !listed.to_string().contains(&token),
        "the token is never shown again"
    );

    // Renaming keeps it working; revoking stops it at once; the admin key still works.
    let (status, body) = call(
        &server,
        Method::PATCH,
        &format!("/api/v1/api-tokens/{id}"),
        Some(json!({ "name": "ci-2" })),
    )
    .await;
    assert_eq!(
        (status, body["object"]["name"].clone()),
        (200, json!("ci-2"))
    );
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("/api/v1/api-tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"]["revoked"], true);
    let (status, _) = call_as(&server, &token, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 401);
    let (status, _) = call_as(&server, ADMIN_KEY, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 200);

    // A token signed by another server's key is refused.
    let other = TestServer::builder()
        .env("OUTRIDER_JWT_SECRET", "another-secret-0123456789")
        .start()
        .await;
    let (_, foreign) = call(
        &other,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "x" })),
    )
    .await;
    let foreign = foreign["access_token"].as_str().unwrap();
    let (status, _) = call_as(&server, foreign, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 401);

    // Bad input names the field; tenants may not mint admin tokens.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "" })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().starts_with("name:"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "x".repeat(46) })),
    )
    .await;
    assert_eq!(status, 400);
    let tenant_token = server.get_json("/api/v1/tenants/tok-t/token").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call_as(
        &server,
        &tenant_token,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "t" })),
    )
    .await;
    assert_eq!(status, 403);
}

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

async fn schedule_runs(server: &TestServer, id: &str) -> Vec<Value> {
    server
        .get_json(&format!("/api/v1/schedules/{id}/runs?dir=asc"))
        .await["models"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn schedules_fire_on_an_interval_and_once() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    tenant_with_webhook(&server, "sched", &sink).await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/api/v1/schedules",
        Some(json!({
            "tenant_id": "sched",
            "name": "heartbeat",
            "interval": "1s",
            "topic": "heartbeat",
            "data": { "ping": true },
            "metadata": { "source": "schedule" },
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "interval");
    assert_eq!(created["missed_run_policy"], "fire_once_then_resume");
    let id = created["id"].as_str().unwrap().to_string();
    let upcoming = server
        .get_json(&format!("/api/v1/schedules/{id}/upcoming?count=3"))
        .await;
    assert_eq!(upcoming["runs"].as_array().unwrap().len(), 3);

    let runs = eventually("two runs", Duration::from_secs(30), || async {
        let runs = schedule_runs(&server, &id).await;
        (runs.len() >= 2).then_some(runs)
    })
    .await;
    assert!(runs.iter().all(|r| r["status"] == "published"), "{runs:?}");
    assert_ne!(runs[0]["event_id"], runs[1]["event_id"]);
    eventually(
        "two scheduled deliveries",
        Duration::from_secs(30),
        || async {
            let got: Vec<_> = sink
                .requests()
                .into_iter()
                .filter(|r| r.json()["ping"] == true)
                .collect();
            (got.len() >= 2).then_some(())
        },
    )
    .await;
    let event = server
        .get_json(&format!(
            "/api/v1/events/{}",
            runs[0]["event_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(event["topic"], "heartbeat");

    // Disabled, it stops and lists no upcoming runs.
    let (status, body) = call(
        &server,
        Method::POST,
        &format!("/api/v1/schedules/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["enabled"].clone(), body["next_run_at"].clone()),
        (200, json!(false), Value::Null)
    );
    let upcoming = server
        .get_json(&format!("/api/v1/schedules/{id}/upcoming"))
        .await;
    assert_eq!(upcoming["runs"], json!([]));

    // A delayed publish: one run at `run_at`, then nothing more.
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, once) = call(
        &server,
        Method::POST,
        "/api/v1/schedules",
        Some(
            json!({ "tenant_id": "sched", "run_at": at, "topic": "later", "data": { "later": 1 } }),
        ),
    )
    .await;
    assert_eq!(
        (status, once["kind"].clone()),
        (201, json!("once")),
        "{once}"
    );
    let once_id = once["id"].as_str().unwrap().to_string();
    eventually("the delayed publish", Duration::from_secs(30), || async {
        let runs = schedule_runs(&server, &once_id).await;
        (runs.len() == 1).then_some(())
    })
    .await;
    let after = server
        .get_json(&format!("/api/v1/schedules/{once_id}"))
        .await;
    assert_eq!(after["next_run_at"], Value::Null);

    // Bad timings name the field.
    let cases = [
        (json!({ "cron": "61 * * * *" }), "cron"),
        (
            json!({ "cron": "0 9 * * *", "timezone": "Mars/Olympus" }),
            "timezone",
        ),
        (json!({ "interval": "10ms" }), "interval"),
        (json!({ "cron": "* * * * *", "interval": "1s" }), "cron"),
        (json!({ "run_at": "tomorrow" }), "run_at"),
    ];
    for (timing, field) in cases {
        let mut body = json!({ "tenant_id": "sched", "topic": "x", "data": {} });
        for (k, v) in timing.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = call(&server, Method::POST, "/api/v1/schedules", Some(body)).await;
        assert_eq!(status, 400, "{timing}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{timing}: {message}"
        );
    }
    let (status, cron) = call(
        &server,
        Method::POST,
        "/api/v1/schedules",
        Some(json!({ "tenant_id": "sched", "cron": "0 9 * * 1", "timezone": "Europe/Amsterdam", "topic": "weekly", "data": {} })),
    )
    .await;
    assert_eq!(status, 201, "{cron}");
    let next = cron["next_run_at"].as_str().unwrap();
    assert!(
        next.ends_with("T08:00:00Z") || next.ends_with("T07:00:00Z"),
        "{next}"
    );
}

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

#[tokio::test]
async fn missed_schedule_runs_fire_once_after_downtime() {
    let mut server = TestServer::builder().start().await;
    call(
        &server,
        Method::PUT,
        "/api/v1/tenants/down",
        Some(json!({})),
    )
    .await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/api/v1/schedules",
        Some(json!({ "tenant_id": "down", "interval": "1s", "topic": "tick", "data": {} })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    eventually("a first run", Duration::from_secs(30), || async {
        (!schedule_runs(&server, &id).await.is_empty()).then_some(())
    })
    .await;

    // Down for several slots.
    server.stop().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.restart().await;
    let before = schedule_runs(&server, &id).await;
    let resumed = eventually(
        "a run after the restart",
        Duration::from_secs(30),
        || async {
            let runs = schedule_runs(&server, &id).await;
            runs.iter()
                .find(|r| r["missed"].as_i64().unwrap_or(0) > 0)
                .cloned()
        },
    )
    .await;
    // The backlog is not replayed: one run stands for the missed slots.
    let after = schedule_runs(&server, &id).await;
    let from_backlog = after
        .iter()
        .filter(|r| r["ran_at"].as_str() < resumed["ran_at"].as_str())
        .count();
    assert!(from_backlog <= before.len(), "backlog replayed: {after:?}");
    assert!(resumed["missed"].as_i64().unwrap() >= 2, "{resumed}");
    assert_eq!(resumed["status"], "published");
}
