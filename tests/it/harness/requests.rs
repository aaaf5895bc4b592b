//! Requests to the server under test and their answers, for tests that check the status
//! and body of API calls.

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::TestServer;

/// An admin request with an optional JSON body: its status and body (see
/// [`status_and_body`]).
pub async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.admin(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    status_and_body(req).await
}

/// Sends `request` and returns the status and the body as JSON, or as a JSON string when
/// it is not JSON.
pub async fn status_and_body(request: RequestBuilder) -> (u16, Value) {
    let res = request.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sends `request` and returns its body, which must be JSON, whatever the status.
pub async fn json_body(request: RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}
