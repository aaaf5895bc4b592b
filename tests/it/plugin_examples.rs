//! The plugin examples for authors (`examples/`), built by `cargo xtask plugins` into
//! `target/plugins/NAME.wasm`: each uploaded to a running server as a plugin author would,
//! configured, and seen delivering or transforming: Rust (with the SDK), JavaScript
//! (componentize-js) and Python (componentize-py). A server started on `target/plugins`
//! loads all three as built-in plugins before it reports that it listens.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, plugin_path, TestReceiver, TestServer};

async fn server() -> TestServer {
    TestServer::builder()
        .no_builtin_plugins()
        .allow_loopback()
        .start()
        .await
}

async fn call(server: &TestServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    let res = server.admin(method, path).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads the component `name` (under `target/plugins/`) and returns the plugin.
async fn upload(server: &TestServer, name: &str) -> Value {
    let res = server
        .admin(Method::POST, "/api/v1/plugins")
        .header("content-type", "application/wasm")
        .body(std::fs::read(plugin_path(name)).unwrap())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let plugin: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{name}: {plugin}");
    plugin
}

/// Creates tenant `acme` with a destination, publishes one `order.paid` event and
/// returns what the sink received.
async fn deliver_one(server: &TestServer, sink: &TestReceiver, destination: Value) -> Value {
    let (status, body) = call(server, Method::PUT, "/api/v1/tenants/acme", json!({})).await;
    assert!(status == 200 || status == 201, "{body}");
    let (status, dest) = call(
        server,
        Method::POST,
        "/api/v1/tenants/acme/destinations",
        destination,
    )
    .await;
    assert_eq!(status, 201, "{dest}");
    let event = json!({
        "id": "evt_example", "tenant_id": "acme", "topic": "order.paid",
        "data": { "customer": "Ada", "amount": 42 }
    });
    let (status, body) = call(server, Method::POST, "/api/v1/publish", event).await;
    assert_eq!(status, 202, "{body}");
    let request = eventually(
        "the sink to receive the delivery",
        Duration::from_secs(20),
        || async { sink.requests().into_iter().next() },
    )
    .await;
    assert_eq!(request.method, "POST");
    json!({
        "uri": request.uri,
        "authorization": request.header("authorization"),
        "body": request.json(),
    })
}

#[tokio::test]
async fn rust_example_posts_a_chat_message() {
    let server = server().await;
    let plugin = upload(&server, "rust-destination").await;
    assert_eq!(plugin["name"], "rust-destination", "{plugin}");
    let sink = TestReceiver::start().await;

    // A bad configuration is refused naming the field (the plugin's own validate).
    let (status, _) = call(&server, Method::PUT, "/api/v1/tenants/acme", json!({})).await;
    assert!(status == 200 || status == 201);
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/tenants/acme/destinations",
        json!({ "type": "chat_webhook", "topics": ["order.paid"], "config": { "url": "ftp://x" } }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("config.url"), "{body}");

    let got = deliver_one(
        &server,
        &sink,
        json!({
            "type": "chat_webhook",
            "topics": ["order.paid"],
            "config": {
                "url": sink.url("/services/T000/B000"),
                "template": "{{topic}}: {{data.customer}} paid {{data.amount}}",
                "username": "outrider"
            }
        }),
    )
    .await;
    assert_eq!(got["uri"], "/services/T000/B000");
    assert_eq!(
        got["body"],
        json!({ "text": "order.paid: Ada paid 42", "username": "outrider" })
    );
}

#[tokio::test]
async fn javascript_example_posts_an_envelope() {
    let server = server().await;
    let plugin = upload(&server, "js-destination").await;
    assert_eq!(plugin["name"], "js-destination", "{plugin}");
    let sink = TestReceiver::start().await;
    let got = deliver_one(
        &server,
        &sink,
        json!({
            "type": "js_webhook",
            "topics": ["order.paid"],
            "config": { "url": sink.url("/js") },
            "credentials": { "token": "tok-0123456789" }
        }),
    )
    .await;
    assert_eq!(got["uri"], "/js");
    assert_eq!(got["authorization"], "Bearer tok-0123456789");
    assert_eq!(got["body"]["id"], "evt_example", "{got}");
    assert_eq!(got["body"]["topic"], "order.paid", "{got}");
    assert!(got["body"]["time"].as_u64().unwrap() > 0, "{got}");
    assert_eq!(
        got["body"]["data"],
        json!({ "customer": "Ada", "amount": 42 })
    );
}

#[tokio::test]
async fn python_example_splits_and_keeps_fields() {
    let server = server().await;
    let plugin = upload(&server, "python-transformer").await;
    assert_eq!(plugin["name"], "python-transformer", "{plugin}");

    let (status, result) = call(
        &server,
        Method::POST,
        "/api/v1/transformers/run",
        json!({
            "prototype": "py_reshape",
            "parameters": { "keep": "order", "split_on": "items" },
            "input": { "order": 7, "secret": "x", "items": [{ "sku": "a" }, { "sku": "b" }] }
        }),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(
        result["outputs"],
        json!([
            { "order": 7, "items": { "sku": "a" } },
            { "order": 7, "items": { "sku": "b" } }
        ])
    );

    // An input the transformer cannot handle is its error, classified, not a crash.
    let (status, result) = call(
        &server,
        Method::POST,
        "/api/v1/transformers/run",
        json!({
            "prototype": "py_reshape",
            "parameters": { "split_on": "items" },
            "input": { "items": "not a list" }
        }),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["error_kind"], "invalid_input", "{result}");
}

#[tokio::test]
async fn examples_are_built_in_plugins_of_target_plugins() {
    // The default test server loads `target/plugins`.
    let server = TestServer::builder().allow_loopback().start().await;
    let plugins = server.get_json("/api/v1/plugins").await;
    for name in ["rust-destination", "js-destination", "python-transformer"] {
        assert!(
            plugins["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name && p["source"] == "builtin"),
            "{name} not loaded as a built-in plugin: {plugins}"
        );
    }
    let types = server.get_json("/api/v1/destination-types").await;
    for t in ["chat_webhook", "js_webhook"] {
        assert!(
            types.as_array().unwrap().iter().any(|d| d["type"] == t),
            "{t} not listed: {types}"
        );
    }

    // Loaded, not just listed: the built-in JavaScript example delivers.
    let sink = TestReceiver::start().await;
    let got = deliver_one(
        &server,
        &sink,
        json!({
            "type": "js_webhook",
            "topics": ["order.paid"],
            "config": { "url": sink.url("/builtin-js") },
            "credentials": { "token": "tok-builtin-0123" }
        }),
    )
    .await;
    assert_eq!(got["uri"], "/builtin-js");
    assert_eq!(got["authorization"], "Bearer tok-builtin-0123");
    assert_eq!(
        got["body"]["data"],
        json!({ "customer": "Ada", "amount": 42 })
    );
}
