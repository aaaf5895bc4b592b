//! `/api/v1/plugins`: upload, list, inspect and remove plugin components.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::catalog::{self, PluginInfo};
use crate::config::ServeConfig;

pub(super) fn router(config: &ServeConfig) -> OpenApiRouter<AppState> {
    let upload_limit = (config.max_plugin_mb as usize) * 1024 * 1024;
    OpenApiRouter::new()
        .routes(routes!(list, upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(get_one, remove))
        .routes(routes!(release))
}

/// [`PluginInfo`] as it reads on the wire (the type lives with the catalog).
#[derive(utoipa::ToSchema)]
#[schema(as = Plugin)]
#[allow(dead_code)] // Describes the wire format of `PluginInfo`.
struct PluginSchema {
    /// `sha256:<hex>` of the component.
    id: String,
    name: String,
    version: String,
    description: String,
    /// `builtin` (plugins directory) or `uploaded`.
    source: String,
    /// Serves new calls (false for replaced versions kept for rollback).
    active: bool,
    /// Set after repeated crashes; a quarantined plugin is not called.
    quarantined: bool,
    /// Component size in bytes.
    size: u64,
    /// WIT package version it was built against.
    wit_version: Option<String>,
    /// Interfaces it imports.
    imports: Vec<String>,
    prototypes: Vec<PrototypeSummarySchema>,
}

/// A prototype in a plugin listing.
#[derive(utoipa::ToSchema)]
#[schema(as = PrototypeSummary)]
#[allow(dead_code)] // Describes the wire format of `catalog::PrototypeSummary`.
struct PrototypeSummarySchema {
    id: String,
    kind: super::prototypes::Kind,
    label: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PluginList {
    #[schema(value_type = Vec<PluginSchema>)]
    models: Vec<PluginInfo>,
    count: usize,
}

/// Every plugin, built-in and uploaded, active or kept for rollback.
#[utoipa::path(
    get,
    path = "/plugins",
    tag = "plugins",
    responses((status = 200, description = "The plugins", body = PluginList))
)]
async fn list(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<PluginList>> {
    principal.require_admin()?;
    let models = catalog::list(&state).await?;
    Ok(Json(PluginList {
        count: models.len(),
        models,
    }))
}

/// One plugin.
#[utoipa::path(
    get,
    path = "/plugins/{id}",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id (`sha256:<hex>`) or name")),
    responses((status = 200, description = "The plugin", body = PluginSchema))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    principal.require_admin()?;
    Ok(Json(catalog::get(&state, &id).await?))
}

/// Body: the component bytes (`application/wasm` or `application/octet-stream`).
/// Validated, stored and loaded; it replaces an active plugin of the same name.
#[utoipa::path(
    post,
    path = "/plugins",
    tag = "plugins",
    request_body(
        description = "A WebAssembly component (`.wasm`)",
        content(
            (Vec<u8> = "application/wasm"),
            (Vec<u8> = "application/octet-stream"),
        ),
    ),
    responses(
        (status = 201, description = "Loaded", body = PluginSchema),
        (status = 400, description = "Empty body", body = super::error::ErrorBody),
        (status = 409, description = "This exact component is already stored", body = super::error::ErrorBody),
        (status = 422, description = "Not a valid plugin component; the message says why", body = super::error::ErrorBody),
    )
)]
async fn upload(
    principal: Principal,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PluginInfo>)> {
    principal.require_admin()?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "body: expected the bytes of a .wasm component",
        ));
    }
    let info = catalog::upload(&state, &body).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Remove an uploaded plugin.
#[utoipa::path(
    delete,
    path = "/plugins/{id}",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id (`sha256:<hex>`) or name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "A built-in plugin cannot be removed", body = super::error::ErrorBody),
    )
)]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require_admin()?;
    catalog::remove(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a plugin's quarantine (after repeated crashes) so deliveries resume.
#[utoipa::path(
    post,
    path = "/plugins/{id}/release",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id (`sha256:<hex>`) or name")),
    responses((status = 200, description = "The plugin, released", body = PluginSchema))
)]
async fn release(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    principal.require_admin()?;
    let info = catalog::get(&state, &id).await?;
    state.registry.release_quarantine(&info.id);
    Ok(Json(catalog::get(&state, &info.id).await?))
}
