//! Export from one server and import into a fresh one, dry run first, all or nothing;
//! destination secrets travel sealed.

use reqwest::Method;
use serde_json::{json, Value};

use super::{mapping, send};
use crate::harness::TestServer;

#[tokio::test]
async fn export_and_import_into_a_fresh_server() {
    let source = TestServer::builder().start().await;
    send(
        &source,
        Method::POST,
        "/api/v1/configurations/transformer",
        mapping("order-map", "order.id"),
    )
    .await;
    send(&source, Method::POST, "/api/v1/configurations/transformer", json!({
        "identifier": "big-orders", "name": "Big orders",
        "object": {"prototype": "filter", "parameters": {"conditions": [{"path": "total", "op": "gt", "value": 100}]}},
    })).await;
    send(
        &source,
        Method::POST,
        "/api/v1/configurations/transformer",
        mapping("not-exported", "x"),
    )
    .await;
    let (status, exported) = send(
        &source,
        Method::POST,
        "/api/v1/configurations/transformer/export",
        json!({"identifiers": ["order-map", "big-orders"]}),
    )
    .await;
    assert_eq!(status, 200, "{exported}");
    assert_eq!(exported.as_array().unwrap().len(), 2);
    let (_, objects) = send(
        &source,
        Method::POST,
        "/api/v1/configurations/export",
        json!({"objects": [{"type": "transformer", "identifier": "order-map"}]}),
    )
    .await;
    assert_eq!(objects[0]["identifier"], "order-map");

    let target = TestServer::builder().start().await;
    let import = |flags: &'static str, body: String| {
        let req = target
            .admin(
                Method::POST,
                &format!("/api/v1/configurations/import{flags}"),
            )
            .header("content-type", "application/x-ndjson")
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let ndjson: String = exported
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();

    // Dry run: decisions, nothing written.
    let (status, report) = import("?dry-run=true", ndjson.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["valid"], true);
    let decisions: Vec<(&str, &str)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [("create", "none"), ("create", "none")],
        "{report}"
    );
    assert_eq!(
        target.get_json("/api/v1/configurations/transformer").await["metadata"]["totalCount"],
        0
    );

    let (status, report) = import("", ndjson.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["results"][0]["action"], "created");
    let list = target.get_json("/api/v1/configurations/transformer").await;
    assert_eq!(list["metadata"]["totalCount"], 2);
    let (_, out) = send(
        &target,
        Method::POST,
        "/api/v1/configurations/transformer/order-map/run",
        json!({"input": {"order": {"id": 3}}}),
    )
    .await;
    assert_eq!(out["outputs"], json!([{"id": 3}]), "{out}");

    // Again: unchanged objects are skipped; a changed one is an update.
    let mut changed = exported.clone();
    changed[1]["name"] = json!("Bigger orders");
    let (_, report) = import("", changed.to_string()).await;
    let decisions: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == "skip").count(),
        1,
        "{report}"
    );
    assert_eq!(
        decisions.iter().filter(|d| **d == "update").count(),
        1,
        "{report}"
    );

    // All or nothing: one bad object and nothing is written.
    let bad = json!([
        mapping("brand-new", "a"),
        {"type": "transformer", "identifier": "broken", "name": "Broken", "object": {"prototype": "jmespath", "parameters": {"expression": "${UNDEFINED_VAR}"}}},
    ]);
    let (status, report) = import("?validate-variables=true", bad.to_string()).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["valid"], false);
    let broken = &report["results"][1];
    assert!(
        broken["violations"][0]["title"]
            .as_str()
            .unwrap()
            .contains("UNDEFINED_VAR"),
        "{report}"
    );
    let (status, _) = send(
        &target,
        Method::GET,
        "/api/v1/configurations/transformer/brand-new",
        Value::Null,
    )
    .await;
    assert_eq!(status, 404, "nothing of a refused import is written");
}

#[tokio::test]
async fn destination_configurations_keep_their_secrets_sealed() {
    let secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
    let source = TestServer::builder().start().await;
    let (status, created) = send(&source, Method::POST, "/api/v1/configurations/destination", json!({
        "identifier": "crm-hook", "name": "CRM webhook",
        "object": {"prototype": "webhook", "parameters": {"url": "https://crm.example.com/hooks", "secret": secret}},
    })).await;
    assert_eq!(status, 201, "{created}");
    let params = &created["object"]["object"]["parameters"];
    assert_eq!(params["url"], "https://crm.example.com/hooks");
    assert_eq!(
        params["secret"],
        format!("whse{}", "*".repeat(secret.len() - 4)),
        "read back obfuscated"
    );
    let (status, bad) = send(&source, Method::POST, "/api/v1/configurations/destination", json!({
        "identifier": "bad-hook", "name": "Bad", "object": {"prototype": "webhook", "parameters": {"url": "ftp://x"}},
    })).await;
    assert_eq!(
        (status, bad["data"][0]["propertyPath"].as_str()),
        (422, Some("object.parameters.url")),
        "{bad}"
    );

    // Exported sealed: the ciphertext travels, the secret does not.
    let (_, exported) = send(
        &source,
        Method::POST,
        "/api/v1/configurations/destination/export",
        Value::Null,
    )
    .await;
    assert!(
        exported[0]["object"]["parameters"]["secret"]["$sealed"].is_string(),
        "{exported}"
    );
    assert!(!exported.to_string().contains(secret));
    let history = source
        .get_json("/api/v1/configurations/destination/crm-hook/history")
        .await;
    assert!(!history.to_string().contains(secret), "{history}");

    // A server with the same encryption key imports it and can open it.
    let target = TestServer::builder().start().await;
    let (status, report) = send(
        &target,
        Method::POST,
        "/api/v1/configurations/import",
        exported,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let imported = target
        .get_json("/api/v1/configurations/destination/crm-hook")
        .await;
    assert_eq!(
        imported["object"]["object"]["parameters"]["secret"],
        params["secret"]
    );
}
