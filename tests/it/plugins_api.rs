//! Plugins over HTTP: upload, list, prototypes, destination types, persistence across a
//! restart, rejection of bad components, and a real webhook delivery through the address
//! guard.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{eventually, plugin_path, TestReceiver, TestServer};

async fn upload(server: &TestServer, bytes: Vec<u8>) -> (u16, Value) {
    let res = server
        .admin(Method::POST, "/api/v1/plugins")
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(plugin_path(&format!("fixtures/{name}"))).unwrap()
}

#[tokio::test]
async fn uploaded_plugin_is_listed_and_survives_restart() {
    let mut server = TestServer::builder().no_builtin_plugins().start().await;
    let listed = server.get_json("/api/v1/plugins").await;
    assert_eq!(listed["count"], 0, "{listed}");

    let (status, plugin) = upload(&server, std::fs::read(plugin_path("webhook")).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    let id = plugin["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(plugin["name"], "webhook");

    let prototypes = server.get_json("/api/v1/prototypes?kind=destination").await;
    assert!(
        prototypes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "webhook"),
        "{prototypes}"
    );
    let webhook = server.get_json("/api/v1/destination-types/webhook").await;
    let url_field = webhook["config_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "url");
    assert_eq!(url_field.expect("url field")["required"], true, "{webhook}");

    server.restart().await;
    let after = server.get_json(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(after["name"], "webhook");
    let types = server.get_json("/api/v1/destination-types").await;
    assert!(
        types
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "webhook"),
        "{types}"
    );

    let res = server
        .admin(Method::DELETE, &format!("/api/v1/plugins/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = server
        .admin(Method::GET, "/api/v1/destination-types/webhook")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn bad_components_are_rejected_with_distinct_errors() {
    let server = TestServer::builder().no_builtin_plugins().start().await;
    let cases = [
        ("random-bytes", "not a WebAssembly"),
        ("core-module", "core WebAssembly module, not a component"),
        ("fault-import", "outrider:evil"),
    ];
    let mut messages = Vec::new();
    for (name, expected) in cases {
        let (status, body) = upload(&server, fixture(name)).await;
        assert_eq!(status, 422, "{name}: {body}");
        let message = body["message"].as_str().unwrap().to_string();
        assert!(
            message.to_lowercase().contains(&expected.to_lowercase()),
            "{name}: {message}"
        );
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        cases.len(),
        "errors must differ: {messages:?}"
    );
    // Nothing half-written, and the server still works.
    assert_eq!(server.get_json("/api/v1/plugins").await["count"], 0);
    let (status, _) = upload(&server, fixture("echo")).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn api_requires_the_admin_key() {
    let server = TestServer::builder().no_builtin_plugins().start().await;
    let res = server
        .anonymous(Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 401);
    let res = server
        .anonymous(Method::GET, "/api/v1/plugins")
        .bearer_auth("wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = server
        .anonymous(Method::GET, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn test_delivery(sink: &TestReceiver) -> Value {
    json!({
        "config": { "url": sink.url("/hook") },
        "credentials": { "secret": "s3cret-signing-key" },
        "event": { "id": "evt_1", "topic": "user.created", "data": { "hello": "world" } }
    })
}

#[tokio::test]
async fn webhook_delivers_signed_request_to_allowed_loopback() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    let res = server
        .admin(
            Method::POST,
            "/api/v1/prototypes/destination/webhook/deliver",
        )
        .json(&test_delivery(&sink))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let result: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["status_code"], 200, "{result}");

    let request = eventually(
        "the sink to receive the delivery",
        Duration::from_secs(5),
        || async { sink.requests().into_iter().next() },
    )
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/hook");
    assert_eq!(request.json(), json!({ "hello": "world" }));
    assert_eq!(request.header("x-outpost-event-id"), "evt_1");
    assert_eq!(request.header("x-outpost-topic"), "user.created");
    let timestamp = request.header("x-outpost-timestamp");
    let signature = request.header("x-outpost-signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret-signing-key").unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    assert!(
        signature.split(',').any(|s| s == expected),
        "signature {signature} != {expected}"
    );
}

#[tokio::test]
async fn webhook_to_loopback_is_refused_without_allowance() {
    let server = TestServer::builder().start().await;
    let sink = TestReceiver::start().await;
    let res = server
        .admin(
            Method::POST,
            "/api/v1/prototypes/destination/webhook/deliver",
        )
        .json(&test_delivery(&sink))
        .send()
        .await
        .unwrap();
    let result: Value = res.json().await.unwrap();
    assert_eq!(result["ok"], false, "{result}");
    let error = result["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        error.contains("denied") || error.contains("loopback"),
        "{result}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.connections(), 0, "the sink must see no connection");
}
