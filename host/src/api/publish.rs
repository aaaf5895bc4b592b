//! `POST /api/v1/publish` (answered 202 only once the event and its deliveries are
//! durable) and `POST /api/v1/retry` (manual retry of one delivery).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::wire::{parse_time, string_map};
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::delivery::publisher::Publication;
use crate::delivery::PublishError;
use crate::store::now_ms;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/publish", post(publish))
        .route("/retry", post(retry))
}

/// Outpost's `PublishRequest`.
#[derive(Deserialize)]
struct PublishRequest {
    id: Option<String>,
    tenant_id: Option<String>,
    destination_id: Option<String>,
    topic: Option<String>,
    eligible_for_retry: Option<bool>,
    time: Option<String>,
    #[serde(default)]
    metadata: Value,
    data: Option<Value>,
}

async fn publish(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<PublishRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant_id = req
        .tenant_id
        .ok_or_else(|| ApiError::bad_request("tenant_id: is required"))?;
    principal.require_tenant_access(&tenant_id)?;
    let data = match req.data {
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(ApiError::bad_request("data: must be a JSON object")),
        None => return Err(ApiError::bad_request("data: is required")),
    };
    let metadata = string_map("metadata", &req.metadata)?;
    let time = match &req.time {
        Some(t) => parse_time("time", t)?,
        None => now_ms(),
    };
    let id = match req.id {
        Some(id) if id.is_empty() || id.len() > 255 => {
            return Err(ApiError::bad_request("id: must be 1 to 255 characters"))
        }
        Some(id) => id,
        None => format!("evt_{}", ulid::Ulid::new().to_string().to_lowercase()),
    };
    let publication = Publication {
        id,
        tenant_id,
        topic: req.topic.unwrap_or_default(),
        time,
        metadata,
        data,
        eligible_for_retry: req.eligible_for_retry.unwrap_or(true),
        destination_id: req.destination_id,
    };
    let outcome = state
        .delivery
        .publisher
        .publish(publication)
        .await
        .map_err(|err| match err {
            PublishError::TenantNotFound(id) => ApiError::not_found(format!("tenant {id}")),
            PublishError::DestinationNotFound(id) => {
                ApiError::not_found(format!("destination {id}"))
            }
            other => ApiError::internal(other),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "id": outcome.id, "duplicate": outcome.duplicate, "destination_ids": outcome.destination_ids }),
        ),
    ))
}

/// Outpost's `RetryRequest`.
#[derive(Deserialize)]
struct RetryRequest {
    event_id: Option<String>,
    destination_id: Option<String>,
    tenant_id: Option<String>,
}

async fn retry(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<RetryRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event_id = req
        .event_id
        .ok_or_else(|| ApiError::bad_request("event_id: is required"))?;
    let destination_id = req
        .destination_id
        .ok_or_else(|| ApiError::bad_request("destination_id: is required"))?;
    let tenant = req
        .tenant_id
        .or_else(|| principal.tenant_id().map(String::from));
    retry_delivery(
        &principal,
        &state,
        tenant.as_deref(),
        &event_id,
        &destination_id,
    )
    .await
}

/// Queue a manual retry; shared by `/retry` and the deprecated destination-scoped path.
pub(super) async fn retry_delivery(
    principal: &Principal,
    state: &AppState,
    tenant_id: Option<&str>,
    event_id: &str,
    destination_id: &str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event = state
        .store
        .event(tenant_id, event_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {event_id}")))?;
    principal.require_tenant_access(&event.tenant_id)?;
    let destination = state
        .store
        .destination(&event.tenant_id, destination_id)
        .await?;
    if destination.disabled_at.is_some() {
        return Err(ApiError::bad_request(format!(
            "destination_id: destination {destination_id} is disabled"
        )));
    }
    if !state
        .store
        .requeue_delivery(&event.tenant_id, event_id, destination_id)
        .await?
    {
        return Err(ApiError::not_found(format!("event {event_id}")));
    }
    state.delivery.wake();
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true }))))
}
