//! The audit middleware: records every mutating call (POST, PUT, PATCH, DELETE) under
//! `/api/v1` once it is answered: who (admin key, API token name or tenant), method,
//! path, status, time, client address and the request body with secrets removed.
//!
//! Recording stays off the request path: entries go through a bounded channel to one
//! background writer that inserts them in batches (one transaction per batch). Calls of
//! `POST /publish` (the data plane, by far the most frequent) are recorded as a summary
//! without their body, whose bytes are neither buffered nor parsed, and are dropped
//! (and counted) rather than wait when the writer falls behind; every other call waits
//! for room, so management calls are never lost.
//!
//! Calls that fail authentication (401) carry no identity and are not recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ApiError;
use crate::auth::{Principal, PrincipalSlot};
use crate::store::{now_ms, AuditEntry, Store};

/// Entries waiting for the writer, at most.
const QUEUE: usize = 10_000;
/// Entries per insert transaction, at most.
const BATCH: usize = 500;
/// Value that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// What the middleware hands to the writer.
struct Pending {
    entry: AuditEntry,
    principal: Principal,
}

/// Handle of the background audit writer; cheap to clone.
#[derive(Clone)]
pub struct AuditRecorder {
    queue: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
    body_limit: usize,
}

impl AuditRecorder {
    /// Start the writer on the current runtime. `body_limit` caps the request bodies it
    /// buffers (the API's JSON limit).
    pub fn start(store: Store, body_limit: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, rx));
        Self {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            body_limit,
        }
    }

    /// Publish summaries dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut token_names: HashMap<String, String> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut entries = Vec::with_capacity(batch.len());
        for Pending {
            mut entry,
            principal,
        } in batch.drain(..)
        {
            if let Principal::ApiToken { id } = &principal {
                if !token_names.contains_key(id) {
                    let name = store.api_token_name(id).await.ok().flatten();
                    token_names.insert(id.clone(), name.unwrap_or_else(|| id.clone()));
                }
                entry.actor = format!("api-token:{}", token_names[id]);
            }
            entries.push(entry);
        }
        if let Err(e) = store.insert_audit_entries(&entries).await {
            tracing::error!(error = %e, count = entries.len(), "writing audit entries failed");
        }
    }
}

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
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) && !v.is_null() {
                        (k, Value::String(REDACTED.into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
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
async fn capture_body(req: Request, limit: usize) -> Result<(Option<Value>, Request), Response> {
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
        Ok(value) => Some(redact(value)),
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
        (
            Some(json!({ "summary": "publish (body not recorded)" })),
            req,
        )
    } else {
        match capture_body(req, recorder.body_limit).await {
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
    let pending = Pending { entry, principal };
    if is_publish {
        if recorder.queue.try_send(pending).is_err() {
            recorder.dropped.fetch_add(1, Ordering::Relaxed);
        }
    } else if recorder.queue.send(pending).await.is_err() {
        tracing::error!("audit writer stopped; entry lost");
    }
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
    fn tenant_and_category_come_from_the_path() {
        assert_eq!(
            tenant_in_path("/api/v1/tenants/t1/destinations"),
            Some("t1".into())
        );
        assert_eq!(tenant_in_path("/api/v1/publish"), None);
    }
}
