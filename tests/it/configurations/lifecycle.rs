//! The life cycle of a transformer configuration: create, list with filters and totals,
//! patch, labels, disable, history, restore, and violations in the reference's shape.

use reqwest::Method;
use serde_json::{json, Value};

use super::{mapping, send};
use crate::harness::TestServer;

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
