//! Scheduled sends: on an interval, once, and after downtime.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{call, eventually, TestReceiver, TestServer};
use crate::tasks::tenant_with_webhook;

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
