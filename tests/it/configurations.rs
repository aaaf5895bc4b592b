//! Configurations end to end: the life cycle of a transformer configuration (create,
//! list with filters and totals, patch, labels, disable, history, restore), violations
//! in the reference's `{propertyPath, title, helpText}` shape, environment variables
//! (encrypted at rest, resolved at call time, usages, undefined references), and export
//! from one server and import into a fresh one, dry run first, all or nothing.

mod environment;
mod export_import;
mod lifecycle;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{status_and_body, TestServer};

async fn send(server: &TestServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    status_and_body(server.admin(method, path).json(&body)).await
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
