//! Attempts: `GET /attempts`, `GET /attempts/{id}` and the destination-scoped
//! `GET /tenants/{t}/destinations/{d}/attempts[/{id}]`, in Outpost's `Attempt` shape.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageQuery, SeekPagination};
use super::wire::{rfc3339, split_list, TimeRange};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{AttemptQuery, AttemptRow};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all))
        .routes(routes!(get_any))
        .routes(routes!(list_destination))
        .routes(routes!(get_destination))
}

/// Outpost's `Attempt`, with our error details in `response_data`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Attempt)]
pub struct AttemptView {
    id: String,
    tenant_id: String,
    event_id: String,
    destination_id: String,
    /// `success`, `failed` or `skipped` (a transformer dropped the event).
    status: String,
    #[schema(format = DateTime)]
    time: String,
    /// Status code as text, or the error class when the receiver gave none.
    code: String,
    response_data: ResponseData,
    attempt_number: i64,
    manual: bool,
    latency_ms: i64,
    topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin_version: Option<String>,
    // Older Outpost delivery fields.
    #[schema(format = DateTime)]
    delivered_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
}

/// What the receiver answered, or why there was no answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResponseData {
    /// The receiver's status code.
    status: Option<i64>,
    /// Its body: JSON when it was JSON, else text (capped); `null` when none.
    #[schema(value_type = Option<Object>)]
    body: Value,
    /// The error, when the delivery failed.
    error: Option<String>,
    /// Its class (`retry`, `fail`, `misconfigured`, `denied`, `timeout`, ...).
    error_kind: Option<String>,
}

/// Render a stored attempt.
pub fn attempt_view(a: AttemptRow) -> AttemptView {
    let body: Value = a
        .response_body
        .as_deref()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_string())))
        .unwrap_or(Value::Null);
    let code = match (a.response_status_code, &a.error_kind) {
        (Some(code), _) => code.to_string(),
        (None, Some(kind)) => kind.clone(),
        (None, None) => String::new(),
    };
    AttemptView {
        response_data: ResponseData {
            status: a.response_status_code,
            body,
            error: a.error,
            error_kind: a.error_kind,
        },
        code,
        id: a.id,
        tenant_id: a.tenant_id,
        event_id: a.event_id,
        destination_id: a.destination_id,
        status: a.status,
        time: rfc3339(a.time),
        attempt_number: a.attempt_number,
        manual: a.manual,
        latency_ms: a.duration_ms,
        topic: a.topic,
        plugin_version: a.plugin_version,
        delivered_at: rfc3339(a.time),
        response_status_code: a.response_status_code,
        response_body: a.response_body,
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptFilters {
    /// Only this tenant's (admin credentials; a tenant JWT sees its own only).
    tenant_id: Option<String>,
    /// Only attempts of this event.
    event_id: Option<String>,
    /// Only these destinations (comma-separated).
    destination_id: Option<String>,
    /// `success` or `failed`.
    #[param(value_type = Option<AttemptStatusFilter>)]
    status: Option<String>,
    /// Only these topics (comma-separated).
    topic: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    time: TimeRange,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The `status` filter of attempt lists.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the query parameter; it is read as text.
enum AttemptStatusFilter {
    Success,
    Failed,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AttemptPage {
    models: Vec<AttemptView>,
    pagination: SeekPagination,
}

async fn list(
    state: &AppState,
    tenant: Option<String>,
    destination: Option<String>,
    f: AttemptFilters,
) -> ApiResult<Json<AttemptPage>> {
    let page = f.page.validate()?;
    if let Some(status) = &f.status {
        if status != "success" && status != "failed" {
            return Err(ApiError::bad_request("status: must be success or failed"));
        }
    }
    let mut destination_ids = split_list(f.destination_id.as_deref());
    if let Some(d) = destination {
        destination_ids = vec![d];
    }
    let (time_gte, time_lte) = f.time.bounds()?;
    let query = AttemptQuery {
        tenant_id: tenant,
        event_id: f.event_id,
        destination_ids,
        status: f.status,
        topics: split_list(f.topic.as_deref()),
        time_gte,
        time_lte,
        after: page.position(),
        desc: page.desc(),
        limit: page.limit(),
    };
    let rows = state.store.list_attempts(&query).await?;
    let (rows, pagination) = page.paginate(rows, |a| (a.time, a.id.clone()));
    Ok(Json(AttemptPage {
        models: rows.into_iter().map(attempt_view).collect(),
        pagination,
    }))
}

/// Delivery attempts of every tenant (admin) or of the caller's tenant (tenant JWT).
#[utoipa::path(
    get,
    path = "/attempts",
    tag = "attempts",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(AttemptFilters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of attempts", body = AttemptPage))
)]
async fn list_all(
    principal: Principal,
    State(state): State<AppState>,
    Query(f): Query<AttemptFilters>,
) -> ApiResult<Json<AttemptPage>> {
    let tenant = match principal.tenant_id() {
        Some(own) => Some(own.to_string()),
        None => f.tenant_id.clone(),
    };
    list(&state, tenant, None, f).await
}

/// A destination's delivery attempts.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/attempts",
    tag = "attempts",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(AttemptFilters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of attempts", body = AttemptPage))
)]
async fn list_destination(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, destination_id)): Path<(String, String)>,
    Query(f): Query<AttemptFilters>,
) -> ApiResult<Json<AttemptPage>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.destination(&tenant_id, &destination_id).await?;
    list(&state, Some(tenant_id), Some(destination_id), f).await
}

/// One attempt.
#[utoipa::path(
    get,
    path = "/attempts/{attempt_id}",
    tag = "attempts",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The attempt", body = AttemptView))
)]
async fn get_any(
    principal: Principal,
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
) -> ApiResult<Json<AttemptView>> {
    let row = state
        .store
        .attempt(principal.tenant_id(), &attempt_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("attempt {attempt_id}")))?;
    principal.require_tenant_access(&row.tenant_id)?;
    Ok(Json(attempt_view(row)))
}

/// One attempt of a destination.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/attempts/{attempt_id}",
    tag = "attempts",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The attempt", body = AttemptView))
)]
async fn get_destination(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, destination_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<AttemptView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state
        .store
        .attempt(Some(&tenant_id), &attempt_id)
        .await?
        .filter(|a| a.destination_id == destination_id)
        .ok_or_else(|| ApiError::not_found(format!("attempt {attempt_id}")))?;
    Ok(Json(attempt_view(row)))
}
