//! WIT compatibility: components built against a released `outrider:plugin` version are
//! checked in under `tests/compat/` and must keep loading and delivering on every later
//! host.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, workspace_root, TestReceiver, TestServer};

fn compat_fixture(file: &str) -> Vec<u8> {
    let path = workspace_root().join("tests/compat").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn webhook_built_against_wit_0_1_0_loads_and_delivers() {
    let server = TestServer::builder()
        .no_builtin_plugins()
        .allow_loopback()
        .start()
        .await;
    let res = server
        .admin(Method::POST, "/api/v1/plugins")
        .header("content-type", "application/wasm")
        .body(compat_fixture("webhook-0.1.0.wasm"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let plugin: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["name"], "webhook", "{plugin}");
    assert_eq!(plugin["wit_version"], "0.1.0", "{plugin}");

    let sink = TestReceiver::start().await;
    let res = server
        .admin(
            Method::POST,
            "/api/v1/prototypes/destination/webhook/deliver",
        )
        .json(&json!({
            "config": { "url": sink.url("/compat") },
            "credentials": { "secret": "compat-secret-0123" },
            "event": { "id": "evt_compat", "topic": "user.created", "data": { "v": "0.1.0" } }
        }))
        .send()
        .await
        .unwrap();
    let result: Value = res.json().await.unwrap();
    assert_eq!(result["ok"], true, "{result}");

    let request = eventually(
        "the sink to receive the delivery",
        Duration::from_secs(5),
        || async { sink.requests().into_iter().next() },
    )
    .await;
    assert_eq!(request.uri, "/compat");
    assert_eq!(request.json(), json!({ "v": "0.1.0" }));
    assert_eq!(request.header("x-outpost-event-id"), "evt_compat");
    assert!(request.header("x-outpost-signature").starts_with("v0="));
}
