//! `/api/v1/tenants`: Outpost's tenant resource, plus tenant JWTs and the portal stub.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pagination::{PageLimits, PageQuery, SeekPagination};
use super::wire::{json_column, map_column, rfc3339, string_map};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::TenantRow;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list))
        .route(
            "/tenants/{tenant_id}",
            get(get_one).put(upsert).delete(remove),
        )
        .route("/tenants/{tenant_id}/token", get(token))
        .route("/tenants/{tenant_id}/portal", get(portal))
}

/// Outpost's `Tenant`.
#[derive(Serialize)]
pub struct TenantView {
    id: String,
    destinations_count: usize,
    topics: Vec<String>,
    metadata: Value,
    created_at: String,
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

#[derive(Serialize)]
struct TenantPage {
    models: Vec<TenantView>,
    pagination: SeekPagination,
    count: i64,
}

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

async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state.store.tenant(&tenant_id).await?;
    Ok(Json(view(&state, row).await?))
}

#[derive(Deserialize, Default)]
struct TenantUpsert {
    #[serde(default)]
    metadata: Value,
}

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

async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    state.store.delete_tenant(&tenant_id).await?;
    Ok(Json(serde_json::json!({ "success": true })))
}

async fn token(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    state.store.tenant(&tenant_id).await?;
    let token = state
        .auth
        .issue_tenant_token(&tenant_id)
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::json!({ "token": token, "tenant_id": tenant_id }),
    ))
}

async fn portal(principal: Principal, Path(tenant_id): Path<String>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("the tenant portal is not available in this version (tenant {tenant_id})"),
    ))
}
