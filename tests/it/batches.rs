//! Batch delivery (`batch-destination`, WIT 0.1.1): the deliveries due together for one
//! destination reach its plugin in one call, each still with an attempt of its own. The
//! `batch-probe` fixture POSTs each call's event ids to a loopback sink.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, plugin_path, TestReceiver, TestServer};

async fn server_with_probe() -> TestServer {
    let server = TestServer::builder().allow_loopback().start().await;
    let wasm = std::fs::read(plugin_path("fixtures/batch-probe")).unwrap();
    let res = server
        .admin(Method::POST, "/api/v1/plugins")
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let plugin: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["wit_version"], "0.1.1", "{plugin}");
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    server
}

async fn probe_destination(server: &TestServer, url: String, mode: &str) -> String {
    let dest: Value = server
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({ "type": "batch_probe", "topics": "*", "config": { "url": url, "mode": mode } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    dest["id"].as_str().expect("destination id").to_owned()
}

async fn publish(server: &TestServer, n: usize) -> String {
    let res = server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "acme", "topic": "t", "data": { "n": n } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn attempts(server: &TestServer, destination: &str) -> Vec<Value> {
    let page = server
        .get_json(&format!(
            "/api/v1/tenants/acme/destinations/{destination}/attempts?limit=1000"
        ))
        .await;
    page["models"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_burst_to_a_batch_destination_arrives_in_batches_with_an_attempt_each() {
    let server = server_with_probe().await;
    let sink = TestReceiver::start().await;
    let destination = probe_destination(&server, sink.url("/batch"), "ok").await;

    const N: usize = 300;
    let published: HashSet<String> = futures::stream::iter(0..N)
        .map(|i| publish(&server, i))
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(published.len(), N);

    let calls = eventually(
        "every event to reach the sink",
        Duration::from_secs(30),
        || async {
            let calls: Vec<Vec<String>> = sink
                .requests()
                .iter()
                .map(|r| serde_json::from_value(r.json()["ids"].clone()).unwrap())
                .collect();
            let seen: HashSet<String> = calls.iter().flatten().cloned().collect();
            (seen == published).then_some(calls)
        },
    )
    .await;
    let largest = calls.iter().map(Vec::len).max().unwrap();
    assert!(
        calls.len() < N && largest > 1,
        "{} calls for {N} events: no batch formed",
        calls.len()
    );
    assert!(largest <= 128, "a call of {largest} events (at most 128)");
    // One attempt per event, not per call.
    let attempts = eventually("an attempt per event", Duration::from_secs(10), || async {
        let a = attempts(&server, &destination).await;
        (a.len() >= N).then_some(a)
    })
    .await;
    assert_eq!(attempts.len(), N);
    assert!(attempts.iter().all(|a| a["status"] == "success"));
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert_eq!(counted("outrider_plugin_batch_events_total"), N as u64);
    assert_eq!(
        counted("outrider_plugin_batch_calls_total"),
        calls.len() as u64
    );
}

#[tokio::test]
async fn a_batch_call_answering_too_few_results_fails_each_event_as_a_crash() {
    let server = server_with_probe().await;
    let sink = TestReceiver::start().await;
    let destination = probe_destination(&server, sink.url("/short"), "short").await;
    let event = publish(&server, 1).await;
    let attempt = eventually("the failed attempt", Duration::from_secs(10), || async {
        attempts(&server, &destination).await.into_iter().next()
    })
    .await;
    assert_eq!(attempt["event_id"], event.as_str(), "{attempt}");
    assert_eq!(attempt["status"], "failed", "{attempt}");
    let error = attempt["response_data"].to_string();
    assert!(
        error.contains("deliver-batch returned 0 results for 1 events"),
        "{attempt}"
    );
}
