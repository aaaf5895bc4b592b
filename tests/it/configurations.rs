//! Configurations end to end: the life cycle of a transformer configuration (create,
//! list with filters and totals, patch, labels, disable, history, restore), violations
//! in the reference's `{propertyPath, title, helpText}` shape, environment variables
//! (encrypted at rest, resolved at call time, usages, undefined references), and export
//! from one server and import into a fresh one, dry run first, all or nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestServer;

async fn send(server: &TestServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    let res = server.admin(method, path).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn mapping(identifier: &str, field: &str) -> Value {
    json!({
        "identifier": identifier,
        "name": format!("Map {field}"),
        "description": "maps an order",
        "object": {"prototype": "json_map", "parameters": {"mapping": {"id": field}}},
        "label": ["orders"],
    })
}

#[tokio::test]
async fn a_configuration_lives_patches_and_restores_from_history() {
    let server = TestServer::builder().start().await;
    let base = "/api/v1/configurations/transformer";
    let (status, created) = send(
        &server,
        Method::POST,
        base,
        mapping("order-map", "order.id"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["object"]["object"]["parameters"]["mapping"]["id"],
        "order.id"
    );
    assert_eq!(created["object"]["editor"], "admin");
    let (status, _) = send(&server, Method::POST, base, mapping("order-map", "x")).await;
    assert_eq!(status, 409, "identifiers are unique per type");
    send(&server, Method::POST, base, mapping("user-map", "user.id")).await;

    // Violations name the property, say what is wrong and how to fix it.
    let mut bad = mapping("Bad_Id", "x");
    bad["object"]["parameters"] = json!({"mapping": {"id": 5}});
    let (status, body) = send(&server, Method::POST, base, bad).await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["propertyPath"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"identifier"), "{body}");
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("object.parameters.mapping")),
        "{body}"
    );
    assert!(body["data"][0]["helpText"].is_string(), "{body}");
    let (status, body) = send(
        &server,
        Method::POST,
        base,
        json!({"identifier": "ab", "name": "x", "object": {"prototype": "nope"}}),
    )
    .await;
    assert_eq!(
        (status, body["data"][0]["propertyPath"].as_str()),
        (422, Some("object.prototype")),
        "{body}"
    );

    // List: filters and the total.
    let list = server.get_json(&format!("{base}?name=order&limit=1")).await;
    assert_eq!(list["metadata"]["totalCount"], 1, "{list}");
    assert_eq!(list["results"][0]["identifier"], "order-map");
    let list = server
        .get_json(&format!("{base}?label=orders&limit=1"))
        .await;
    assert_eq!(
        (
            list["metadata"]["totalCount"].as_u64(),
            list["results"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    let list = server
        .get_json(&format!("{base}?prototype=json_map&disabled=true"))
        .await;
    assert_eq!(list["metadata"]["totalCount"], 0);

    // Patch the parameters and the name; label and disable.
    let (status, patched) = send(
        &server,
        Method::PATCH,
        &format!("{base}/order-map"),
        json!({
            "name": "Order id", "object": {"parameters": {"mapping": {"order_id": "order.id"}}},
        }),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["object"]["object"]["parameters"]["mapping"],
        json!({"id": "order.id", "order_id": "order.id"})
    );
    let (status, labels) = send(
        &server,
        Method::PUT,
        &format!("{base}/order-map/labels"),
        json!({"labels": ["crm"]}),
    )
    .await;
    assert_eq!(
        (status, &labels["results"]),
        (200, &json!([{"name": "crm"}]))
    );
    let (status, disabled) = send(
        &server,
        Method::PUT,
        &format!("{base}/order-map/disable"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &disabled["object"]["disabled"]),
        (200, &json!(true))
    );
    let list = server.get_json(&format!("{base}?disabled=true")).await;
    assert_eq!(list["metadata"]["totalCount"], 1);

    // History holds every state, newest first; restoring the first brings it back.
    let history = server.get_json(&format!("{base}/order-map/history")).await;
    let states = history["results"].as_array().unwrap();
    assert_eq!(history["metadata"]["totalCount"], 4, "{history}");
    assert_eq!(states[0]["disabled"], true);
    let first = states.last().unwrap();
    assert_eq!(
        (first["action"].as_str(), first["name"].as_str()),
        (Some("create"), Some("Map order.id"))
    );
    let (status, restored) = send(
        &server,
        Method::POST,
        &format!("{base}/order-map/restore"),
        json!({"ulid": first["ulid"]}),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["object"]["name"], "Map order.id");
    assert_eq!(
        restored["object"]["object"]["parameters"]["mapping"],
        json!({"id": "order.id"})
    );
    assert_eq!(restored["object"]["label"], json!(["orders"]));
    let history = server.get_json(&format!("{base}/order-map/history")).await;
    assert_eq!(history["results"][0]["action"], "restore");

    // Replace it whole; enable it again through the status flag.
    let mut replacement = mapping("order-map", "order.id");
    replacement["disabled"] = json!(true);
    let (status, replaced) = send(
        &server,
        Method::PUT,
        &format!("{base}/order-map"),
        replacement,
    )
    .await;
    assert_eq!(
        (status, &replaced["object"]["disabled"]),
        (200, &json!(true)),
        "{replaced}"
    );
    let (status, enabled) = send(
        &server,
        Method::PUT,
        &format!("{base}/order-map/status"),
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(
        (status, &enabled["object"]["disabled"]),
        (200, &json!(false)),
        "{enabled}"
    );
    let (status, _) = send(
        &server,
        Method::PUT,
        &format!("{base}/other-id"),
        mapping("order-map", "x"),
    )
    .await;
    assert_eq!(
        status, 422,
        "the identifier in the body must match the path"
    );
    let (status, _) = send(
        &server,
        Method::GET,
        "/api/v1/configurations/widget",
        Value::Null,
    )
    .await;
    assert_eq!(status, 404, "unknown configuration types are not found");

    // Run a stored configuration.
    let (status, out) = send(
        &server,
        Method::POST,
        &format!("{base}/order-map/run"),
        json!({"input": {"order": {"id": 9}}}),
    )
    .await;
    assert_eq!(
        (status, &out["outputs"]),
        (200, &json!([{"id": 9}])),
        "{out}"
    );

    // Delete one, then delete by filter (the count), and the history records both.
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("{base}/user-map"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(&server, Method::DELETE, base, json!({"label": "orders"})).await;
    assert_eq!((status, &body["deleted"]), (200, &json!(1)), "{body}");
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("{base}/order-map"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    let history = server.get_json(&format!("{base}/order-map/history")).await;
    assert_eq!(history["results"][0]["action"], "delete");
}

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
