//! Events: `GET /events`, `GET /tenants/{t}/events`, one event, its deliveries, the
//! deprecated destination-scoped paths of Outpost, and `GET /topics`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::attempts::{attempt_view, AttemptView};
use super::pagination::{PageQuery, SeekPagination};
use super::wire::{json_column, rfc3339, split_list, Success, TimeRange};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{AttemptQuery, EventQuery, EventRow};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all))
        .routes(routes!(get_any))
        .routes(routes!(deliveries_any))
        .routes(routes!(list_tenant))
        .routes(routes!(get_tenant))
        .routes(routes!(deliveries_tenant))
        .routes(routes!(list_by_destination))
        .routes(routes!(get_by_destination))
        .routes(routes!(retry_by_destination))
        .routes(routes!(topics))
        .routes(routes!(tenant_topics))
}

/// An event on the wire: Outpost's `Event` plus the older `status`/`successful_at`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    id: String,
    tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_id: Option<String>,
    topic: String,
    #[schema(format = DateTime)]
    time: String,
    eligible_for_retry: bool,
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
    #[schema(value_type = Object)]
    data: Value,
    matched_destination_ids: Vec<String>,
    /// `success` when every delivery finished, `failed` when one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EventStatus>)]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    successful_at: Option<String>,
}

/// The summary `status` of an event's deliveries.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the wire format; the values are written as text.
enum EventStatus {
    Success,
    Failed,
}

/// Filters shared by the event listings.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventFilters {
    /// Only this tenant's (admin credentials; a tenant JWT sees its own only).
    tenant_id: Option<String>,
    /// Only events delivered to this destination.
    destination_id: Option<String>,
    /// Only these topics (comma-separated).
    topic: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    time: TimeRange,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

async fn render(
    state: &AppState,
    rows: Vec<EventRow>,
    scope_destination: Option<&str>,
) -> ApiResult<Vec<EventView>> {
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|e| (e.tenant_id.clone(), e.id.clone()))
        .collect();
    let summaries = state.store.delivery_summaries(&keys).await?;
    let mut by_event: HashMap<(String, String), Vec<crate::store::DeliverySummary>> =
        HashMap::new();
    for s in summaries {
        by_event
            .entry((s.tenant_id.clone(), s.event_id.clone()))
            .or_default()
            .push(s);
    }
    Ok(rows
        .into_iter()
        .map(|e| {
            let mut deliveries = by_event
                .remove(&(e.tenant_id.clone(), e.id.clone()))
                .unwrap_or_default();
            if let Some(d) = scope_destination {
                deliveries.retain(|s| s.destination_id == d);
            }
            let status = if deliveries.is_empty() {
                None
            } else if deliveries
                .iter()
                // Skipped (a transformer dropped it) is finished, not failed.
                .all(|s| s.status == "success" || s.status == "skipped")
            {
                Some("success")
            } else if deliveries.iter().any(|s| s.status == "failed") {
                Some("failed")
            } else {
                None
            };
            let successful_at = deliveries
                .iter()
                .filter(|s| s.status == "success")
                .map(|s| s.updated_at)
                .max()
                .map(rfc3339);
            EventView {
                matched_destination_ids: deliveries
                    .iter()
                    .map(|s| s.destination_id.clone())
                    .collect(),
                status,
                successful_at: if status == Some("success") {
                    successful_at
                } else {
                    None
                },
                id: e.id,
                tenant_id: e.tenant_id,
                destination_id: e
                    .destination_id
                    .or_else(|| scope_destination.map(String::from)),
                topic: e.topic,
                time: rfc3339(e.time),
                eligible_for_retry: e.eligible_for_retry,
                metadata: json_column(e.metadata.as_deref()),
                data: json_column(Some(&e.data)),
            }
        })
        .collect())
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventPage {
    models: Vec<EventView>,
    pagination: SeekPagination,
}

async fn list(
    state: &AppState,
    tenant: Option<String>,
    destination: Option<String>,
    f: EventFilters,
) -> ApiResult<Json<EventPage>> {
    let page = f.page.validate()?;
    let (time_gte, time_lte) = f.time.bounds()?;
    let query = EventQuery {
        tenant_id: tenant,
        destination_id: destination.clone(),
        topics: split_list(f.topic.as_deref()),
        time_gte,
        time_lte,
        after: page.position(),
        desc: page.desc(),
        limit: page.limit(),
    };
    let rows = state.store.list_events(&query).await?;
    let (rows, pagination) = page.paginate(rows, |e| (e.time, e.id.clone()));
    let models = render(state, rows, destination.as_deref()).await?;
    Ok(Json(EventPage { models, pagination }))
}

/// Events of every tenant (admin) or of the caller's tenant (tenant JWT).
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(EventFilters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of events", body = EventPage))
)]
async fn list_all(
    principal: Principal,
    State(state): State<AppState>,
    Query(f): Query<EventFilters>,
) -> ApiResult<Json<EventPage>> {
    // Tenants see their own events only, whatever they ask for.
    let tenant = match principal.tenant_id() {
        Some(own) => Some(own.to_string()),
        None => f.tenant_id.clone(),
    };
    let destination = f.destination_id.clone();
    list(&state, tenant, destination, f).await
}

/// A tenant's events.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/events",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(EventFilters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of events", body = EventPage))
)]
async fn list_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Query(f): Query<EventFilters>,
) -> ApiResult<Json<EventPage>> {
    principal.require_tenant_access(&tenant_id)?;
    let destination = f.destination_id.clone();
    list(&state, Some(tenant_id), destination, f).await
}

/// Events delivered to a destination (Outpost's deprecated path).
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/events",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(EventFilters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of events", body = EventPage))
)]
async fn list_by_destination(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, destination_id)): Path<(String, String)>,
    Query(f): Query<EventFilters>,
) -> ApiResult<Json<EventPage>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.destination(&tenant_id, &destination_id).await?;
    list(&state, Some(tenant_id), Some(destination_id), f).await
}

async fn one(
    state: &AppState,
    principal: &Principal,
    tenant: Option<&str>,
    id: &str,
    destination: Option<&str>,
) -> ApiResult<EventView> {
    let tenant = tenant.or(principal.tenant_id());
    let row = state
        .store
        .event(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {id}")))?;
    principal.require_tenant_access(&row.tenant_id)?;
    let mut views = render(state, vec![row], destination).await?;
    Ok(views.remove(0))
}

/// One event.
#[utoipa::path(
    get,
    path = "/events/{event_id}",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The event", body = EventView))
)]
async fn get_any(
    principal: Principal,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<Json<EventView>> {
    Ok(Json(one(&state, &principal, None, &event_id, None).await?))
}

/// One event of a tenant.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/events/{event_id}",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The event", body = EventView))
)]
async fn get_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<EventView>> {
    principal.require_tenant_access(&tenant_id)?;
    Ok(Json(
        one(&state, &principal, Some(&tenant_id), &event_id, None).await?,
    ))
}

/// One event as delivered to a destination (Outpost's deprecated path).
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/events/{event_id}",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The event", body = EventView))
)]
async fn get_by_destination(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, destination_id, event_id)): Path<(String, String, String)>,
) -> ApiResult<Json<EventView>> {
    principal.require_tenant_access(&tenant_id)?;
    Ok(Json(
        one(
            &state,
            &principal,
            Some(&tenant_id),
            &event_id,
            Some(&destination_id),
        )
        .await?,
    ))
}

/// Retry the delivery of an event to a destination (Outpost's deprecated path).
#[utoipa::path(
    post,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/events/{event_id}/retry",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses(
        (status = 202, description = "Queued", body = Success),
        (status = 400, description = "The destination is disabled", body = super::error::ErrorBody),
    )
)]
async fn retry_by_destination(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, destination_id, event_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<Success>)> {
    principal.require_tenant_access(&tenant_id)?;
    super::publish::retry_delivery(
        &principal,
        &state,
        Some(&tenant_id),
        &event_id,
        &destination_id,
    )
    .await
}

async fn deliveries(
    state: &AppState,
    principal: &Principal,
    tenant: Option<&str>,
    event_id: &str,
) -> ApiResult<Json<Vec<AttemptView>>> {
    let event = one(state, principal, tenant, event_id, None).await?;
    let rows = state
        .store
        .list_attempts(&AttemptQuery {
            tenant_id: Some(event.tenant_id.clone()),
            event_id: Some(event.id.clone()),
            desc: true,
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok(Json(
        rows.into_iter().take(1000).map(attempt_view).collect(),
    ))
}

/// An event's delivery attempts (at most 1000).
#[utoipa::path(
    get,
    path = "/events/{event_id}/deliveries",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Its attempts, newest first", body = Vec<AttemptView>))
)]
async fn deliveries_any(
    principal: Principal,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Vec<AttemptView>>> {
    deliveries(&state, &principal, None, &event_id).await
}

/// An event's delivery attempts (at most 1000).
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/events/{event_id}/deliveries",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Its attempts, newest first", body = Vec<AttemptView>))
)]
async fn deliveries_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<AttemptView>>> {
    principal.require_tenant_access(&tenant_id)?;
    deliveries(&state, &principal, Some(&tenant_id), &event_id).await
}

/// Topics of the stored events (a tenant JWT: its own).
#[utoipa::path(
    get,
    path = "/topics",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Topic names", body = Vec<String>))
)]
async fn topics(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(state.store.topics(principal.tenant_id()).await?))
}

/// Topics of a tenant's events.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/topics",
    tag = "events",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Topic names", body = Vec<String>))
)]
async fn tenant_topics(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    principal.require_tenant_access(&tenant_id)?;
    Ok(Json(state.store.topics(Some(&tenant_id)).await?))
}
