//! The audit middleware: records every mutating call (POST, PUT, PATCH, DELETE) under
//! `/api/v1` once it is answered: who (admin key, API token name or tenant), method,
//! path, status, time, client address and the request body with secrets removed.
//!
//! Recording stays off the request path: entries go to the background writer
//! ([`super::audit_writer`]). Calls of `POST /publish` (the data plane, by far the most
//! frequent) are recorded as summaries: their bodies are neither buffered nor parsed, and
//! the writer folds them into one entry per caller, tenant and status each second
//! (`{"summary": "publish", "count": N, ...}`), so publishing costs no extra database
//! write per event.
//!
//! Calls that fail authentication (401) carry no identity and are not recorded.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::audit_writer::{AuditRecorder, Pending};
use super::ApiError;
use crate::auth::{Principal, PrincipalSlot};
use crate::store::{now_ms, AuditEntry};

/// Value that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Whether a JSON key names a secret.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    const MARKERS: [&str; 10] = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "authorization",
        "api_key",
        "apikey",
        "private_key",
        "signature",
    ];
    MARKERS.iter().any(|m| key.contains(m)) || key == "key" || key.ends_with("_key")
}

/// `value` with every secret-named field's value replaced by [`REDACTED`].
pub fn redact(value: Value) -> Value {
    redact_also(value, &[])
}

/// [`redact`], also replacing fields named in `extra` (e.g. `value` of environment
/// variables, which may be secrets whatever their name).
pub fn redact_also(value: Value, extra: &[&str]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if (is_secret_key(&k) || extra.contains(&k.as_str())) && !v.is_null() {
                        (k, Value::String(REDACTED.into()))
                    } else {
                        (k, redact_also(v, extra))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| redact_also(item, extra))
                .collect(),
        ),
        other => other,
    }
}

/// Fields redacted in the bodies of one API category beyond the secret-named ones.
fn extra_secret_fields(category: &str) -> &'static [&'static str] {
    match category {
        // Variables are referenced as `${NAME}` from configurations: often credentials.
        "environment-variables" => &["value"],
        _ => &[],
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.starts_with("application/json") || ct.contains("+json"))
        .unwrap_or(false)
}

/// The audited form of the body, and the request to pass on (its body restored).
async fn capture_body(
    req: Request,
    limit: usize,
    extra_secrets: &[&str],
) -> Result<(Option<Value>, Request), Response> {
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !is_json(&req) {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let summary = (content_type.is_some() || length.is_some_and(|n| n > 0))
            .then(|| json!({ "content_type": content_type, "bytes": length }));
        return Ok((summary, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than {} KiB", limit / 1024),
        )
        .into_response()
    })?;
    let recorded = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => Some(redact_also(value, extra_secrets)),
        Err(_) if bytes.is_empty() => None,
        Err(_) => Some(json!({ "unparsed_bytes": bytes.len() })),
    };
    Ok((recorded, Request::from_parts(parts, Body::from(bytes))))
}

/// The tenant a path addresses (`/tenants/{id}/...`).
fn tenant_in_path(path: &str) -> Option<String> {
    let mut segments = path.split('/').skip_while(|s| *s != "tenants").skip(1);
    segments.next().filter(|s| !s.is_empty()).map(String::from)
}

/// The middleware; install with `axum::middleware::from_fn_with_state`.
pub async fn record(
    State(recorder): State<AuditRecorder>,
    mut req: Request,
    next: Next,
) -> Response {
    if !is_mutating(req.method()) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let time = now_ms();
    let slot = PrincipalSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let ip_address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let category = path
        .trim_start_matches("/api/v1")
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let is_publish = method == "POST" && category == "publish";
    let (request, req) = if is_publish {
        (None, req)
    } else {
        match capture_body(req, recorder.body_limit(), extra_secret_fields(&category)).await {
            Ok(captured) => captured,
            Err(response) => return response,
        }
    };
    let response = next.run(req).await;
    let Some(principal) = slot.get() else {
        return response;
    };
    let (actor_type, actor, actor_id, principal_tenant) = match &principal {
        Principal::Admin => ("admin", "admin".to_string(), None, None),
        Principal::ApiToken { id } => (
            "api_token",
            format!("api-token:{id}"),
            Some(id.clone()),
            None,
        ),
        Principal::Tenant(t) => ("tenant", format!("tenant:{t}"), None, Some(t.clone())),
    };
    let entry = AuditEntry {
        id: ulid::Ulid::new().to_string(),
        time,
        actor_type: actor_type.into(),
        actor,
        actor_id,
        tenant_id: principal_tenant.or_else(|| tenant_in_path(&path)),
        method,
        path,
        category,
        status: i64::from(response.status().as_u16()),
        ip_address,
        request: request.map(|r| r.to_string()),
        duration_ms: started.elapsed().as_millis() as i64,
    };
    recorder
        .submit(Pending {
            entry,
            principal,
            publish_summary: is_publish,
        })
        .await;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let body = json!({
            "type": "webhook",
            "config": { "url": "http://x", "api_key": "k1", "auth_token": "t" },
            "credentials": { "secret": "s", "username": "u" },
            "list": [{ "password": "p", "name": "n" }],
            "Authorization": "Bearer x",
            "empty_secret": null,
        });
        let out = redact(body);
        assert_eq!(out["config"]["url"], "http://x");
        assert_eq!(out["config"]["api_key"], REDACTED);
        assert_eq!(out["config"]["auth_token"], REDACTED);
        assert_eq!(out["credentials"], REDACTED);
        assert_eq!(out["list"][0]["password"], REDACTED);
        assert_eq!(out["list"][0]["name"], "n");
        assert_eq!(out["Authorization"], REDACTED);
        assert_eq!(out["empty_secret"], Value::Null);
        assert!(!out.to_string().contains("\"s\""));
    }

    #[test]
    fn environment_variable_values_are_redacted() {
        let body = json!({ "name": "DB", "value": "hunter2", "description": "d" });
        let out = redact_also(body, extra_secret_fields("environment-variables"));
        assert_eq!(out["value"], REDACTED);
        assert_eq!(out["description"], "d");
        assert_eq!(redact(json!({ "value": 1 }))["value"], 1);
    }

    #[test]
    fn tenant_and_category_come_from_the_path() {
        assert_eq!(
            tenant_in_path("/api/v1/tenants/t1/destinations"),
            Some("t1".into())
        );
        assert_eq!(tenant_in_path("/api/v1/publish"), None);
    }
}
