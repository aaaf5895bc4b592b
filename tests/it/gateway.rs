//! The event gateway end to end: tenants, destinations, publish, signed delivery, retries,
//! attempts, manual retry, filters, tenant isolation, and no lost event across kill -9.

use std::collections::HashSet;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{call, eventually, json_body, TestReceiver, TestServer};

/// A server whose retries come quickly.
pub(crate) async fn server() -> TestServer {
    TestServer::builder()
        .allow_loopback()
        .env("OUTRIDER_RETRY_SCHEDULE", "100ms,200ms,300ms")
        .start()
        .await
}

pub(crate) async fn tenant_with_webhook(
    server: &TestServer,
    tenant: &str,
    sink: &TestReceiver,
    extra: Value,
) -> String {
    let (status, _) = call(
        server,
        Method::PUT,
        &format!("/api/v1/tenants/{tenant}"),
        Some(json!({})),
    )
    .await;
    assert!(status == 201 || status == 200);
    let mut body = json!({
        "type": "webhook",
        "topics": ["user.created", "order.paid"],
        "config": { "url": sink.url("/hook") },
        "credentials": { "secret": "whsec-test-secret-1234" },
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, dest) = call(
        server,
        Method::POST,
        &format!("/api/v1/tenants/{tenant}/destinations"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{dest}");
    dest["id"].as_str().unwrap().to_string()
}

fn verify_outpost_signature(secret: &str, req: &crate::harness::Received) -> bool {
    let timestamp = req.header("x-outpost-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&req.body);
    let expected = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    req.header("x-outpost-signature")
        .split(',')
        .any(|s| s == expected)
}

#[tokio::test]
async fn publish_delivers_signed_event_once() {
    let server = server().await;
    let sink = TestReceiver::start().await;
    let dest = tenant_with_webhook(&server, "acme", &sink, json!({})).await;

    let event = json!({ "id": "evt_1", "tenant_id": "acme", "topic": "user.created", "data": { "user": 1 } });
    let (status, res) = call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(event.clone()),
    )
    .await;
    assert_eq!(status, 202, "{res}");
    assert_eq!(
        res,
        json!({ "id": "evt_1", "duplicate": false, "destination_ids": [dest] })
    );

    let got = eventually("delivery", Duration::from_secs(10), || async {
        sink.requests().into_iter().next()
    })
    .await;
    assert_eq!(got.json(), json!({ "user": 1 }));
    assert!(
        verify_outpost_signature("whsec-test-secret-1234", &got),
        "bad signature"
    );

    let (status, res) = call(&server, Method::POST, "/api/v1/publish", Some(event)).await;
    assert_eq!(status, 202);
    assert_eq!(res["duplicate"], true, "{res}");

    // A topic the destination does not subscribe to goes nowhere.
    let (_, res) = call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "tenant_id": "acme", "topic": "other", "data": {} })),
    )
    .await;
    assert_eq!(res["destination_ids"], json!([]));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.requests().len(),
        1,
        "a duplicate must not be delivered again"
    );
    let attempts = server
        .get_json(&format!(
            "/api/v1/tenants/acme/destinations/{dest}/attempts"
        ))
        .await;
    assert_eq!(
        attempts["models"].as_array().unwrap().len(),
        1,
        "{attempts}"
    );
    assert_eq!(attempts["models"][0]["status"], "success");
    assert_eq!(attempts["models"][0]["code"], "200");
}

#[tokio::test]
async fn failing_sink_is_retried_and_every_attempt_logged() {
    let server = server().await;
    let sink = TestReceiver::with_script(&[503, 500]).await;
    let dest = tenant_with_webhook(&server, "acme", &sink, json!({})).await;
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "id": "evt_r", "tenant_id": "acme", "topic": "order.paid", "data": { "n": 1 } })),
    )
    .await;
    assert_eq!(status, 202);
    let attempts = eventually("three attempts", Duration::from_secs(15), || async {
        let page = server
            .get_json("/api/v1/attempts?tenant_id=acme&event_id=evt_r&dir=asc")
            .await;
        let models = page["models"].as_array().unwrap().clone();
        (models.len() >= 3).then_some(models)
    })
    .await;
    let statuses: Vec<&str> = attempts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "success"]);
    let codes: Vec<&str> = attempts
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["503", "500", "200"]);
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attempt_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(attempts
        .iter()
        .all(|a| a["destination_id"] == dest.as_str()));
    assert_eq!(sink.requests().len(), 3);
    let event = server.get_json("/api/v1/tenants/acme/events/evt_r").await;
    assert_eq!(event["status"], "success", "{event}");
}

#[tokio::test]
async fn permanent_failure_stops_and_manual_retry_delivers() {
    let server = server().await;
    let sink = TestReceiver::with_script(&[400]).await;
    let dest = tenant_with_webhook(&server, "acme", &sink, json!({})).await;
    call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "id": "evt_m", "tenant_id": "acme", "topic": "order.paid", "data": {} })),
    )
    .await;
    eventually("the failed attempt", Duration::from_secs(10), || async {
        (sink.requests().len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sink.requests().len(),
        1,
        "a 400 is permanent: no automatic retry"
    );

    let (status, res) = call(
        &server,
        Method::POST,
        "/api/v1/retry",
        Some(json!({ "event_id": "evt_m", "destination_id": dest, "tenant_id": "acme" })),
    )
    .await;
    assert_eq!(status, 202, "{res}");
    let attempts = eventually("the manual attempt", Duration::from_secs(10), || async {
        let page = server
            .get_json("/api/v1/attempts?event_id=evt_m&dir=asc")
            .await;
        let models = page["models"].as_array().unwrap().clone();
        (models.len() == 2).then_some(models)
    })
    .await;
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[1]["status"], "success");
    assert_eq!(attempts[1]["manual"], true);
}

#[tokio::test]
async fn filters_route_only_matching_events() {
    let server = server().await;
    let sink = TestReceiver::start().await;
    tenant_with_webhook(
        &server,
        "acme",
        &sink,
        json!({ "filter": { "data": { "amount": { "$gte": 10 } } } }),
    )
    .await;
    for (i, amount) in [5, 10, 50].iter().enumerate() {
        let (_, res) = call(
            &server,
            Method::POST,
            "/api/v1/publish",
            Some(json!({ "id": format!("evt_f{i}"), "tenant_id": "acme", "topic": "order.paid", "data": { "amount": amount } })),
        )
        .await;
        assert_eq!(
            res["destination_ids"].as_array().unwrap().len(),
            usize::from(*amount >= 10),
            "{res}"
        );
    }
    eventually("two deliveries", Duration::from_secs(10), || async {
        (sink.requests().len() == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bad_destinations_are_refused_naming_the_field() {
    let server = server().await;
    call(&server, Method::PUT, "/api/v1/tenants/acme", None).await;
    let cases = [
        (
            json!({ "type": "nope", "topics": "*", "config": {} }),
            "type",
        ),
        (
            json!({ "type": "webhook", "topics": "*", "config": {} }),
            "config.url",
        ),
        (
            json!({ "type": "webhook", "topics": "*", "config": { "url": "ftp://x" } }),
            "config.url",
        ),
        (
            json!({ "type": "webhook", "topics": [], "config": { "url": "http://127.0.0.1/" } }),
            "topics",
        ),
        (
            json!({ "type": "webhook", "topics": "*", "config": { "url": "http://127.0.0.1/" }, "filter": { "data": { "$bogus": 1 } } }),
            "filter",
        ),
    ];
    for (body, field) in cases {
        let (status, res) = call(
            &server,
            Method::POST,
            "/api/v1/tenants/acme/destinations",
            Some(body.clone()),
        )
        .await;
        assert!((400..500).contains(&status), "{body} -> {status} {res}");
        assert!(
            res["message"].as_str().unwrap().contains(field),
            "{body} -> {res}"
        );
    }
    let list = server.get_json("/api/v1/tenants/acme/destinations").await;
    assert_eq!(list, json!([]), "nothing half-written");
}

#[tokio::test]
async fn tenant_token_sees_only_its_tenant() {
    let server = server().await;
    let sink = TestReceiver::start().await;
    let dest_a = tenant_with_webhook(&server, "tenant-a", &sink, json!({})).await;
    let dest_b = tenant_with_webhook(&server, "tenant-b", &sink, json!({})).await;
    let token = server.get_json("/api/v1/tenants/tenant-a/token").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let as_a = |method: Method, path: &str| server.anonymous(method, path).bearer_auth(&token);

    let res = as_a(
        Method::GET,
        &format!("/api/v1/tenants/tenant-a/destinations/{dest_a}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = as_a(Method::GET, "/api/v1/tenants/tenant-b/destinations")
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == 401 || res.status() == 403,
        "{}",
        res.status()
    );
    let res = as_a(
        Method::GET,
        &format!("/api/v1/tenants/tenant-b/destinations/{dest_b}"),
    )
    .send()
    .await
    .unwrap();
    assert!(res.status() == 401 || res.status() == 403);
    let res = as_a(Method::GET, "/api/v1/tenants").send().await.unwrap();
    assert!(
        res.status() == 401 || res.status() == 403,
        "listing tenants is admin only"
    );
    let res = as_a(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "tenant-b", "topic": "user.created", "data": {} }))
        .send()
        .await
        .unwrap();
    assert!(res.status() == 401 || res.status() == 403);
    // Publishing as tenant-b (admin) and listing events as tenant-a shows nothing of b.
    call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "id": "b1", "tenant_id": "tenant-b", "topic": "user.created", "data": {} })),
    )
    .await;
    let events = json_body(as_a(Method::GET, "/api/v1/events?tenant_id=tenant-b")).await;
    assert_eq!(events["models"], json!([]), "{events}");
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_accepted_event() {
    // A short plugin deadline keeps the delivery lease short: on PostgreSQL the restarted
    // node waits for the dead one's claims to expire.
    let mut server = TestServer::builder()
        .allow_loopback()
        .env("OUTRIDER_RETRY_SCHEDULE", "100ms,200ms,300ms")
        .env("OUTRIDER_PLUGIN_TIMEOUT_MS", "3000")
        .start()
        .await;
    let sink = TestReceiver::start().await;
    tenant_with_webhook(&server, "acme", &sink, json!({})).await;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let url = server.url("/api/v1/publish");
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, url, accepted) = (client.clone(), url.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let id = format!("evt_{worker}_{i}");
                let res = client
                    .post(&url)
                    .bearer_auth(crate::harness::ADMIN_KEY)
                    .json(&json!({ "id": id, "tenant_id": "acme", "topic": "user.created", "data": { "i": i } }))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 202 => accepted.lock().unwrap().push(id),
                    _ => break, // the server died
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().await;
    for t in tasks {
        t.await.unwrap();
    }
    let accepted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert!(
        !accepted.is_empty(),
        "some publishes must have been accepted before the kill"
    );
    server.restart().await;
    eventually(
        "every accepted event delivered",
        Duration::from_secs(60),
        || async {
            let seen: HashSet<String> = sink
                .requests()
                .iter()
                .map(|r| r.header("x-outpost-event-id").to_string())
                .collect();
            accepted.is_subset(&seen).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn consecutive_failures_alert_and_auto_disable() {
    let alerts = TestReceiver::start().await;
    let server = TestServer::builder()
        .allow_loopback()
        .env(
            "OUTRIDER_RETRY_SCHEDULE",
            "300ms,300ms,300ms,300ms,300ms,300ms,300ms",
        )
        .env("OUTRIDER_ALERT_CONSECUTIVE_FAILURES", "4")
        .env("OUTRIDER_ALERT_AUTO_DISABLE", "true")
        .env("OUTRIDER_ALERT_CALLBACK_URL", &alerts.url("/alerts"))
        .start()
        .await;
    let sink = TestReceiver::with_script(&[500; 50]).await;
    let dest = tenant_with_webhook(&server, "acme", &sink, json!({})).await;
    call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "id": "evt_a", "tenant_id": "acme", "topic": "user.created", "data": {} })),
    )
    .await;
    let disabled = eventually("auto-disable", Duration::from_secs(15), || async {
        let d = server
            .get_json(&format!("/api/v1/tenants/acme/destinations/{dest}"))
            .await;
        d["disabled_at"].is_string().then_some(d)
    })
    .await;
    assert!(disabled["disabled_at"].is_string());
    // Alerts at 50% (2), 70% (3, rounded up), 90% (4, rounded up) and 100% (4) of 4 failures.
    let bodies = eventually("alert callbacks", Duration::from_secs(10), || async {
        let got: Vec<Value> = alerts.requests().iter().map(|r| r.json()).collect();
        got.iter()
            .any(|b| b["data"]["will_disable"] == true)
            .then_some(got)
    })
    .await;
    assert!(
        bodies
            .iter()
            .all(|b| b["topic"] == "alert.destination.consecutive_failure"),
        "{bodies:?}"
    );
    assert!(bodies
        .iter()
        .all(|b| b["data"]["destination"]["id"] == dest.as_str()));
    assert!(
        bodies
            .iter()
            .all(|b| b["data"]["destination"].get("credentials").is_none()),
        "no secrets in alerts"
    );
    // Disabled: no more attempts.
    let attempts_now = sink.requests().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.requests().len(),
        attempts_now,
        "a disabled destination receives nothing"
    );
    assert_eq!(attempts_now, 4);
}

#[tokio::test]
async fn a_destination_can_override_the_retry_policy() {
    let server = server().await;
    let sink = TestReceiver::with_script(&[500; 20]).await;
    let dest = tenant_with_webhook(
        &server,
        "acme",
        &sink,
        json!({ "retry_schedule": "50ms", "retry_max_attempts": 2 }),
    )
    .await;
    let (status, res) = call(
        &server,
        Method::PATCH,
        &format!("/api/v1/tenants/acme/destinations/{dest}"),
        Some(json!({ "retry_schedule": "soon" })),
    )
    .await;
    assert_eq!(status, 400, "{res}");
    assert!(
        res["message"]
            .as_str()
            .unwrap()
            .starts_with("retry_schedule:"),
        "{res}"
    );
    call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "tenant_id": "acme", "topic": "order.paid", "data": {} })),
    )
    .await;
    eventually("two attempts", Duration::from_secs(10), || async {
        (sink.requests().len() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sink.requests().len(),
        2,
        "the destination allows 2 attempts, the server 4"
    );
}

#[tokio::test]
async fn an_event_timed_in_the_future_is_delivered_when_due() {
    let server = server().await;
    let sink = TestReceiver::start().await;
    tenant_with_webhook(&server, "acme", &sink, json!({})).await;
    let due = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let due_text = due
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, res) = call(
        &server,
        Method::POST,
        "/api/v1/publish",
        Some(json!({ "tenant_id": "acme", "topic": "order.paid", "time": due_text, "data": { "n": 1 } })),
    )
    .await;
    assert_eq!(status, 202, "{res}");
    // Well before its time, nothing has been sent.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sink.requests().len(), 0, "delivered before its time");
    let got = eventually("the delayed delivery", Duration::from_secs(15), || async {
        sink.requests().into_iter().next()
    })
    .await;
    assert_eq!(got.json(), json!({ "n": 1 }));
    assert!(
        time::OffsetDateTime::now_utc() >= due,
        "delivered before the event's time"
    );
}
