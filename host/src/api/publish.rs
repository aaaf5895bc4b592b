//! `POST /api/v1/publish` (answered 202 only once the event and its deliveries are
//! durable) and `POST /api/v1/retry` (manual retry of one delivery).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{parse_time, string_map, Success};
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::delivery::publisher::Publication;
use crate::delivery::PublishError;
use crate::store::now_ms;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(retry))
}

/// Outpost's `PublishRequest`.
#[derive(Deserialize, utoipa::ToSchema)]
struct PublishRequest {
    /// Idempotency key (1 to 255 characters); generated when absent.
    id: Option<String>,
    /// Required.
    tenant_id: Option<String>,
    /// Deliver to this destination only.
    destination_id: Option<String>,
    topic: Option<String>,
    /// Default `true`.
    eligible_for_retry: Option<bool>,
    /// RFC 3339; a future time delays the deliveries until then.
    #[schema(format = DateTime)]
    time: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
    /// Required: the event's payload. Kept as text: parsing it into a tree only to write
    /// it back out cost ~6% of the server's CPU per publish.
    #[schema(value_type = Object)]
    data: Option<Box<RawValue>>,
}

/// Outpost's `PublishResponse`.
#[derive(Serialize, utoipa::ToSchema)]
struct Published {
    /// The event id.
    id: String,
    /// The id was published before; nothing new was stored.
    duplicate: bool,
    /// The destinations it will be delivered to.
    destination_ids: Vec<String>,
}

/// Publish an event: 202 once it and one delivery per matching destination are durably
/// stored.
#[utoipa::path(
    post,
    path = "/publish",
    tag = "publish",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses(
        (status = 404, description = "The tenant or destination does not exist", body = super::error::ErrorBody),
        (status = 202, description = "Stored; deliveries will follow", body = Published))
)]
async fn publish(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<PublishRequest>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let tenant_id = req
        .tenant_id
        .ok_or_else(|| ApiError::bad_request("tenant_id: is required"))?;
    principal.require_tenant_access(&tenant_id)?;
    let data = match req.data {
        // The text is valid JSON (serde checked it); an object's begins with `{`.
        Some(data) if data.get().trim_start().starts_with('{') => data,
        Some(_) => return Err(ApiError::bad_request("data: must be a JSON object")),
        None => return Err(ApiError::bad_request("data: is required")),
    };
    check_escapes(&data)?;
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
        Json(Published {
            id: outcome.id,
            duplicate: outcome.duplicate,
            destination_ids: outcome.destination_ids,
        }),
    ))
}

/// serde_json checks a raw value's syntax but not what its `\u` escapes encode, so a lone
/// UTF-16 surrogate (`"\ud800"`, no character at all) would pass where parsing the payload
/// refuses it. Escapes in the surrogate range are rare: only then is the payload parsed.
fn check_escapes(data: &RawValue) -> ApiResult<()> {
    let may_hold_surrogate = data
        .get()
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2].eq_ignore_ascii_case(&b'd'));
    if may_hold_surrogate {
        serde_json::from_str::<Value>(data.get())
            .map_err(|err| ApiError::bad_request(format!("data: {err}")))?;
    }
    Ok(())
}

/// Outpost's `RetryRequest`.
#[derive(Deserialize, utoipa::ToSchema)]
struct RetryRequest {
    /// Required.
    event_id: Option<String>,
    /// Required.
    destination_id: Option<String>,
    /// The event's tenant (a tenant JWT's own by default).
    tenant_id: Option<String>,
}

/// Retry the delivery of an event to a destination now.
#[utoipa::path(
    post,
    path = "/retry",
    tag = "publish",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses(
        (status = 404, description = "The event or destination does not exist", body = super::error::ErrorBody),
        (status = 202, description = "Queued", body = Success),
        (status = 400, description = "A field is missing, or the destination is disabled", body = super::error::ErrorBody),
    )
)]
async fn retry(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<RetryRequest>,
) -> ApiResult<(StatusCode, Json<Success>)> {
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
) -> ApiResult<(StatusCode, Json<Success>)> {
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
    Ok((StatusCode::ACCEPTED, Success::json()))
}
