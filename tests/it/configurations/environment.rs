//! Environment variables: encrypted at rest, resolved at call time, usages, undefined
//! references.

use reqwest::Method;
use serde_json::{json, Value};

use super::send;
use crate::harness::TestServer;

#[tokio::test]
async fn environment_variables_are_sealed_resolved_and_tracked() {
    let server = TestServer::builder().start().await;
    let secret = "sk_live_very_secret_value_42";
    let (status, created) = send(
        &server,
        Method::POST,
        "/api/v1/environment-variables",
        json!({
            "name": "ORDER_FIELD", "value": "order.id", "description": "which field to map",
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, sealed) = send(
        &server,
        Method::POST,
        "/api/v1/environment-variables",
        json!({
            "name": "API_SECRET", "value": secret, "encrypted": true,
        }),
    )
    .await;
    assert_eq!(status, 201, "{sealed}");
    assert_ne!(sealed["object"]["value"], secret);
    let list = server.get_json("/api/v1/environment-variables").await;
    assert_eq!(list["metadata"]["totalCount"], 2);
    assert!(
        !list.to_string().contains(secret),
        "never returned in plain text: {list}"
    );
    let (status, bad) = send(
        &server,
        Method::POST,
        "/api/v1/environment-variables",
        json!({"name": "no spaces", "value": "x"}),
    )
    .await;
    assert_eq!(
        (status, bad["data"][0]["field"].as_str()),
        (422, Some("name")),
        "{bad}"
    );

    // Referenced as ${NAME}, resolved when the configuration runs, secrets included.
    let (status, body) = send(&server, Method::POST, "/api/v1/configurations/transformer", json!({
        "identifier": "env-map", "name": "Env map",
        "object": {"prototype": "value_template", "parameters": {"template": {"id": "{{${ORDER_FIELD}}}", "auth": "Bearer ${API_SECRET}"}}},
    })).await;
    assert_eq!(status, 201, "{body}");
    let run = |server: &TestServer| {
        let server = server.admin(
            Method::POST,
            "/api/v1/configurations/transformer/env-map/run",
        );
        async move {
            server
                .json(&json!({"input": {"order": {"id": 5}}}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        run(&server).await["outputs"],
        json!([{"id": 5, "auth": format!("Bearer {secret}")}])
    );
    send(
        &server,
        Method::PATCH,
        "/api/v1/environment-variables/ORDER_FIELD",
        json!({"value": "order"}),
    )
    .await;
    assert_eq!(
        run(&server).await["outputs"][0]["id"],
        json!({"id": 5}),
        "changing a variable changes its users"
    );
    let (_, kept) = send(
        &server,
        Method::PATCH,
        "/api/v1/environment-variables/API_SECRET",
        json!({"value": "", "description": "kept"}),
    )
    .await;
    assert_eq!(kept["object"]["description"], "kept");
    assert!(
        run(&server).await["outputs"][0]["auth"]
            .as_str()
            .unwrap()
            .ends_with(secret),
        "a blank value keeps an encrypted one"
    );

    // Relations: the configuration uses both variables (down).
    let (status, relations) = send(
        &server,
        Method::POST,
        "/api/v1/configurations/relations?direction=down",
        json!({"objects": [{"type": "transformer", "identifier": "env-map"}]}),
    )
    .await;
    assert_eq!(status, 200, "{relations}");
    let used: Vec<&str> = relations["nodes"][0]["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"]["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(used, ["API_SECRET", "ORDER_FIELD"], "{relations}");

    // Usages, and deleting a used variable is refused.
    let usages = server
        .get_json("/api/v1/environment-variables/API_SECRET/usages")
        .await;
    assert_eq!(usages["results"][0]["identifier"], "env-map", "{usages}");
    let (status, body) = send(
        &server,
        Method::DELETE,
        "/api/v1/environment-variables/API_SECRET",
        Value::Null,
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Undefined references are violations on create, and listed.
    let (status, body) = send(
        &server,
        Method::POST,
        "/api/v1/configurations/transformer",
        json!({
            "identifier": "needs-missing", "name": "Missing",
            "object": {"prototype": "jmespath", "parameters": {"expression": "${MISSING_EXPR}"}},
        }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["data"][0]["title"]
            .as_str()
            .unwrap()
            .contains("MISSING_EXPR"),
        "{body}"
    );
    let refs = server
        .get_json("/api/v1/environment-variable-references")
        .await;
    let defined: Vec<(&str, bool)> = refs["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["defined"].as_bool().unwrap()))
        .collect();
    assert_eq!(defined, [("API_SECRET", true), ("ORDER_FIELD", true)]);

    // At rest the value is ciphertext under the server's key: with another key it cannot
    // be recovered, and the configuration using it reports the variable as unusable.
    let mut server = server;
    server.set_env(
        "OUTRIDER_ENCRYPTION_KEY",
        "k9:a-different-key-0123456789abcdef",
    );
    server.restart().await;
    let (status, body) = send(
        &server,
        Method::POST,
        "/api/v1/configurations/transformer/env-map/run",
        json!({"input": {}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("API_SECRET"),
        "{body}"
    );
    assert!(!body.to_string().contains(secret));
}
