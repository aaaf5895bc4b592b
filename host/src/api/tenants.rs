//! `/api/v1/tenants`: Outpost's tenant resource, plus tenant JWTs and the portal stub.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageLimits, PageQuery, SeekPagination};
use super::wire::{json_column, map_column, rfc3339, string_map, Success};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::TenantRow;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one, upsert, remove))
        .routes(routes!(token))
        .routes(routes!(portal))
}

/// Outpost's `Tenant`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
pub struct TenantView {
    id: String,
    destinations_count: usize,
    /// Topics of its destinations.
    topics: Vec<String>,
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

async fn view(state: &AppState, row: TenantRow) -> ApiResult<TenantView> {
    let destinations = state.store.list_destinations(&row.id).await?;
    let mut topics: Vec<String> = destinations
        .iter()
        .filter_map(|d| serde_json::from_str::<Vec<String>>(&d.topics).ok())
        .flatten()
        .collect();
    topics.sort();
    topics.dedup();
    Ok(TenantView {
        id: row.id,
        destinations_count: destinations.len(),
        topics,
        metadata: json_column(row.metadata.as_deref()),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

/// Tenant ids: 1..=255 chars of letters, digits, `_`, `-`, `.`, `:`.
pub fn check_tenant_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "tenant_id: must be 1 to 255 characters of letters, digits, `_`, `-`, `.` or `:`",
        ))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TenantPage {
    models: Vec<TenantView>,
    pagination: SeekPagination,
    count: i64,
}

/// Tenants, oldest or newest first.
#[utoipa::path(
    get,
    path = "/tenants",
    tag = "tenants",
    params(PageQuery),
    responses((status = 200, description = "A page of tenants", body = TenantPage))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<TenantPage>> {
    principal.require_admin()?;
    let page = page.validate_with(PageLimits::TENANTS)?;
    let after = page.position();
    let rows = state
        .store
        .list_tenants(
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            page.desc(),
            page.limit(),
        )
        .await?;
    let (rows, pagination) = page.paginate(rows, |r| (r.created_at, r.id.clone()));
    let mut models = Vec::with_capacity(rows.len());
    for row in rows {
        models.push(view(&state, row).await?);
    }
    let count = state.store.count_tenants().await?;
    Ok(Json(TenantPage {
        models,
        pagination,
        count,
    }))
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}",
    tag = "tenants",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The tenant", body = TenantView))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state.store.tenant(&tenant_id).await?;
    Ok(Json(view(&state, row).await?))
}

/// Body of `PUT /tenants/{tenant_id}`; it may be left out.
#[derive(Deserialize, Default, utoipa::ToSchema)]
struct TenantUpsert {
    /// String values only.
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
}

/// Create a tenant, or replace its metadata.
#[utoipa::path(
    put,
    path = "/tenants/{tenant_id}",
    tag = "tenants",
    params(("tenant_id" = String, Path, description = "1 to 255 characters of letters, digits, `_`, `-`, `.` or `:`")),
    request_body(content = Option<TenantUpsert>, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = TenantView),
        (status = 201, description = "Created", body = TenantView),
    )
)]
async fn upsert(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    principal.require_admin()?;
    check_tenant_id(&tenant_id)?;
    // The body is optional: `PUT /tenants/acme` with nothing creates a bare tenant.
    let body: TenantUpsert = if body.iter().all(u8::is_ascii_whitespace) {
        TenantUpsert::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("body: invalid JSON: {e}")))?
    };
    let metadata = string_map("metadata", &body.metadata)?;
    let (row, created) = state
        .store
        .upsert_tenant(&tenant_id, map_column(&metadata).as_deref())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&state, row).await?)))
}

/// Delete a tenant with its destinations, events and attempts.
#[utoipa::path(
    delete,
    path = "/tenants/{tenant_id}",
    tag = "tenants",
    responses((status = 200, description = "Deleted", body = Success))
)]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Success>> {
    principal.require_admin()?;
    state.store.delete_tenant(&tenant_id).await?;
    Ok(Success::json())
}

/// A tenant JWT.
#[derive(Serialize, utoipa::ToSchema)]
struct TenantToken {
    /// Bearer token scoped to the tenant, valid 24 hours.
    token: String,
    tenant_id: String,
}

/// Issue a JWT scoped to the tenant (24 hours).
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/token",
    tag = "tenants",
    responses((status = 200, description = "The token", body = TenantToken))
)]
async fn token(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantToken>> {
    principal.require_admin()?;
    state.store.tenant(&tenant_id).await?;
    let token = state
        .auth
        .issue_tenant_token(&tenant_id)
        .map_err(ApiError::internal)?;
    Ok(Json(TenantToken { token, tenant_id }))
}

/// Outpost's portal redirect. Outrider has no tenant portal: the answer is always 404
/// saying so (a client error to act on, not a server failure).
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/portal",
    tag = "tenants",
    responses((status = 404, description = "There is no tenant portal in this version", body = super::error::ErrorBody))
)]
async fn portal(principal: Principal, Path(tenant_id): Path<String>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("the tenant portal is not available in this version (tenant {tenant_id})"),
    ))
}
