//! Operations end to end: named API tokens, the audit trail, scheduled sends, event
//! statistics and retention.

mod audit;
mod schedules;
mod statistics;
mod tokens;

use reqwest::Method;
use serde_json::Value;

use crate::harness::{status_and_body, TestServer};

async fn call_as(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.anonymous(method, path).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    status_and_body(req).await
}
