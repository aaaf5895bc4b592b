//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document the server generates from its
//! code, served without credentials, lists exactly the routes the server serves.
//!
//! "Exactly" is checked against the running binary from both sides: every documented
//! operation is answered by a route (not the router's `route not found`, not 405), every
//! other method on a documented path is 405, and every route path written in the host's
//! source (each string literal that looks like one) that the document does not list is
//! `route not found`. A route added without documenting it fails the last two.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{workspace_root, TestServer};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document's operations: path template -> methods (lowercase).
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .expect("paths is an object")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()) || *k == "head" || *k == "options")
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Whether a concrete path matches a template (`{name}` matches one segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

/// The template a path is routed to, as the router picks it: literal segments before
/// parameters, left to right.
fn route_of<'a>(templates: &'a BTreeMap<String, BTreeSet<String>>, path: &str) -> Option<&'a str> {
    templates
        .keys()
        .filter(|t| matches(t, path))
        .max_by_key(|t| {
            t.split('/')
                .map(|s| if s.starts_with('{') { '0' } else { '1' })
                .collect::<String>()
        })
        .map(String::as_str)
}

/// A template with every parameter filled in.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "probe-1"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every string literal in the Rust files under `dir` that looks like a route path.
fn route_like_literals(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("reading the host's sources") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            route_like_literals(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            for literal in text.split('"').skip(1).step_by(2) {
                let route_like = literal.len() > 1
                    && literal.starts_with('/')
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_-.{}".contains(c));
                if route_like {
                    out.insert(literal.to_string());
                }
            }
        }
    }
}

/// Whether an answer is the router's own 404 (no route has this path).
async fn no_route(response: reqwest::Response) -> bool {
    if response.status() != StatusCode::NOT_FOUND {
        return false;
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["message"] == "route not found"
}

async fn fetch_document(server: &TestServer) -> Value {
    let response = server
        .anonymous(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .expect("GET /api/v1/openapi.json");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "served without credentials"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        response.headers()
    );
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_error_shape_and_security_schemes() {
    let server = TestServer::builder().start().await;
    let doc = fetch_document(&server).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for scheme in ["admin_key", "tenant_jwt", "api_token"] {
        assert_eq!(schemes[scheme]["scheme"], "bearer", "{scheme}");
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        serde_json::json!(["status", "message"]),
        "{error}"
    );
    for field in ["status", "message", "data"] {
        assert!(error["properties"][field].is_object(), "{field}: {error}");
    }
    // Operation ids are unique and every operation documents a success, but the tenant
    // portal stub, which only ever says that there is no portal.
    let mut ids = BTreeSet::new();
    for (path, methods) in operations(&doc) {
        for method in methods {
            let operation = &doc["paths"][&path][&method];
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')) || path.ends_with("/portal"),
                "{method} {path} documents no success"
            );
        }
    }
    // Tenant-scoped operations say so: a tenant JWT may call them.
    let tenant_scoped = |path: &str, method: &str| {
        doc["paths"][path][method]["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("tenant_jwt").is_some()))
    };
    assert!(tenant_scoped(
        "/api/v1/tenants/{tenant_id}/destinations",
        "post"
    ));
    assert!(tenant_scoped("/api/v1/publish", "post"));
    assert!(!tenant_scoped("/api/v1/tenants", "get"));
    assert!(!tenant_scoped("/api/v1/plugins", "post"));
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_serves() {
    let server = TestServer::builder().start().await;
    let doc = fetch_document(&server).await;
    let documented = operations(&doc);
    let total: usize = documented.values().map(BTreeSet::len).sum();
    assert!(total >= 100, "only {total} operations documented");

    // Every documented operation is routed, with the credentials it documents; every
    // other method on its path is 405.
    for (template, methods) in &documented {
        let path = concrete(template);
        for method in METHODS {
            let verb = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let response = server.admin(verb.clone(), &path).send().await.unwrap();
            let status = response.status();
            if methods.contains(method) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !no_route(response).await,
                    "{method} {path}: route not found"
                );
                let operation = &doc["paths"][template][method];
                let public = operation["security"].as_array().is_some_and(|s| {
                    s.iter()
                        .all(|r| r.as_object().is_some_and(|r| r.is_empty()))
                });
                let anonymous = server.anonymous(verb, &path).send().await.unwrap();
                assert_eq!(
                    anonymous.status() == StatusCode::UNAUTHORIZED,
                    !public,
                    "{method} {path} without credentials answered {}",
                    anonymous.status()
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }

    // Every route-like path in the host's source is either documented (a path the
    // checks above covered) or not served at all.
    let mut literals = BTreeSet::new();
    route_like_literals(&workspace_root().join("host/src"), &mut literals);
    let mut probed = 0;
    for literal in literals {
        for path in [concrete(&literal), concrete(&format!("/api/v1{literal}"))] {
            if route_of(&documented, &path).is_some() {
                continue;
            }
            probed += 1;
            let response = server.admin(Method::GET, &path).send().await.unwrap();
            let status = response.status();
            assert!(
                no_route(response).await,
                "{path} is served ({status}) but not in /api/v1/openapi.json"
            );
        }
    }
    assert!(probed > 0, "no undocumented candidate paths were probed");
}
