//! The publish request and how Pub/Sub's answer maps to an outcome.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::http::{Request, Response};
use outrider_sdk::log;
use outrider_sdk::prelude::*;

use crate::settings::Settings;

/// Pub/Sub attribute limits: keys up to 256 bytes, values up to 1024 bytes, keys not
/// starting with `goog`.
fn is_valid_attribute(key: &str, value: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && value.len() <= 1024
        && !key.to_ascii_lowercase().starts_with("goog")
}

/// Message attributes: delivery metadata, overridden by event metadata, with
/// `event-id`, `topic` and `timestamp` (Unix seconds) set by the gateway.
fn attributes(
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        if is_valid_attribute(key, value) {
            attributes.insert(key.clone(), value.clone());
        } else {
            log::warn!("metadata `{key}` skipped: not a valid Pub/Sub attribute");
        }
    }
    attributes.insert("event-id".into(), event.id.clone());
    attributes.insert("topic".into(), event.topic.clone());
    attributes.insert("timestamp".into(), now_s.to_string());
    attributes
}

/// The publish request for `event` (without authorization).
pub(crate) fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> Request {
    let body = json!({
        "messages": [{
            "data": BASE64.encode(event.data.as_bytes()),
            "attributes": attributes(event, delivery_metadata, now_s),
        }]
    });
    Request::post(settings.publish_url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string())
}

pub(crate) fn authorized(request: Request, access_token: &str) -> Request {
    request.header("authorization", format!("Bearer {access_token}"))
}

/// Maps the publish answer: 2xx delivered (`{"messageIds": [...]}`), otherwise by
/// status with Google's error message (429 and 5xx retried, other 4xx failed).
pub(crate) fn interpret(response: &Response) -> Result<Delivered, DeliveryError> {
    if response.is_success() {
        return Ok(Delivered::from_response(response));
    }
    let error = DeliveryError::from_response(response);
    let detail = response.json::<Value>().ok().and_then(|body| {
        let e = body.get("error")?;
        let status = e.get("status").and_then(Value::as_str).unwrap_or("");
        let message = e.get("message").and_then(Value::as_str)?;
        Some(if status.is_empty() {
            message.to_string()
        } else {
            format!("{status}: {message}")
        })
    });
    Err(match detail {
        Some(detail) => replace_message(
            error,
            format!("Pub/Sub answered HTTP {}: {detail}", response.status),
        ),
        None => error,
    })
}

/// `error` with `message` instead of its own, keeping kind, status, body and delay.
pub(crate) fn replace_message(error: DeliveryError, message: String) -> DeliveryError {
    let failure = error.failure().clone();
    let retry_after = error.retry_after_ms();
    let mut rebuilt = match error {
        DeliveryError::Retry { .. } => DeliveryError::retry(message),
        DeliveryError::Fail(_) => DeliveryError::fail(message),
        DeliveryError::Misconfigured(_) => DeliveryError::misconfigured(message),
    };
    if let Some(ms) = retry_after {
        rebuilt = rebuilt.retry_after(ms);
    }
    if let Some(status) = failure.status_code {
        rebuilt = rebuilt.status(status);
    }
    if let Some(body) = failure.response_body {
        rebuilt = rebuilt.response_body(body);
    }
    rebuilt
}
