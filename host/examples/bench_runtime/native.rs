//! The `webhook` plugin's `deliver` written natively, the baseline the component is
//! measured against.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use outrider::runtime::capabilities::http::{
    HttpCapability, HttpFailure, InboundResponse, OutboundRequest,
};
use outrider::runtime::manifest::NetworkAccess;
use outrider::runtime::network::HostAllowlist;
use outrider::runtime::{Delivered, DeliveryFailure, Event, Target};
use serde_json::Value;
use sha2::Sha256;

pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `webhook` plugin's `deliver` (Outpost signature mode), written natively: read the
/// settings, sign `<timestamp>.<body>` with HMAC-SHA256, build the headers, send through
/// the host's HTTP capability, map the response.
pub async fn native_deliver(
    http: &HttpCapability,
    network: &NetworkAccess,
    target: &Target,
    event: &Event,
) -> Result<Delivered, DeliveryFailure> {
    let misconfigured = |message: &str| DeliveryFailure::Misconfigured {
        message: message.to_string(),
        status_code: None,
        response_body: None,
    };
    let config = &target.config;
    let url = config
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| misconfigured("url"))?;
    let mode = config
        .get("signature_mode")
        .and_then(Value::as_str)
        .unwrap_or("outpost");
    if mode != "outpost" {
        return Err(misconfigured("signature_mode"));
    }
    let mut custom: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(Value::Object(map)) = config.get("custom_headers") {
        for (k, v) in map {
            custom.insert(
                k,
                v.as_str().ok_or_else(|| misconfigured("custom_headers"))?,
            );
        }
    }
    let secret = target.credentials.get("secret").and_then(Value::as_str);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let timestamp = (now_ms / 1000).to_string();
    let body = event.data.as_bytes();

    let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
    headers.push(("content-type".into(), "application/json".into()));
    for (k, v) in custom {
        headers.push((k.to_string(), v.to_string()));
    }
    headers.push(("x-outpost-event-id".into(), event.id.clone()));
    headers.push(("x-outpost-timestamp".into(), timestamp.clone()));
    headers.push(("x-outpost-topic".into(), event.topic.clone()));
    if let Some(secret) = secret {
        let sig = hmac_hex(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
        headers.push(("x-outpost-signature".into(), format!("v0={sig}")));
    }
    let mut metadata = BTreeMap::new();
    for (k, v) in target.delivery_metadata.iter().chain(&event.metadata) {
        metadata.insert(k.to_ascii_lowercase(), v);
    }
    for (k, v) in metadata {
        if is_token(&k) && !["event-id", "timestamp", "topic", "signature"].contains(&k.as_str()) {
            headers.push((format!("x-outpost-{k}"), v.clone()));
        }
    }
    let request = OutboundRequest {
        method: "POST".into(),
        url: url.to_string(),
        headers,
        body: body.to_vec(),
        timeout: None,
        follow_redirects: false,
    };
    let allowlist = HostAllowlist::for_target(network, config);
    let response = http
        .send(request, &allowlist, Duration::from_secs(10))
        .await;
    outcome(response)
}

/// The webhook's outcome for the transport's answer: 2xx delivered, other statuses and
/// transport errors retried, a refusal by the address policy denied.
fn outcome(response: Result<InboundResponse, HttpFailure>) -> Result<Delivered, DeliveryFailure> {
    match response {
        Ok(r) if (200..300).contains(&r.status) => Ok(Delivered {
            status_code: Some(r.status),
            response_body: Some(String::from_utf8_lossy(&r.body).into_owned()),
        }),
        Ok(r) => Err(DeliveryFailure::Retry {
            message: format!("HTTP {}", r.status),
            status_code: Some(r.status),
            response_body: Some(String::from_utf8_lossy(&r.body).into_owned()),
            retry_after: None,
        }),
        Err(HttpFailure::Denied(reason)) => Err(DeliveryFailure::Denied(reason)),
        Err(other) => Err(DeliveryFailure::Retry {
            message: other.to_string(),
            status_code: None,
            response_body: None,
            retry_after: None,
        }),
    }
}
