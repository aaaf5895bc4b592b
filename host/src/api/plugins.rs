//! `/api/v1/plugins`: upload, list, inspect and remove plugin components.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::catalog::{self, PluginInfo};
use crate::config::ServeConfig;

pub(super) fn router(config: &ServeConfig) -> Router<AppState> {
    let upload_limit = (config.max_plugin_mb as usize) * 1024 * 1024;
    Router::new()
        .route(
            "/plugins",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/plugins/{id}", get(get_one).delete(remove))
        .route("/plugins/{id}/release", axum::routing::post(release))
}

#[derive(Serialize)]
struct PluginList {
    models: Vec<PluginInfo>,
    count: usize,
}

async fn list(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<PluginList>> {
    principal.require_admin()?;
    let models = catalog::list(&state).await?;
    Ok(Json(PluginList {
        count: models.len(),
        models,
    }))
}

async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    principal.require_admin()?;
    Ok(Json(catalog::get(&state, &id).await?))
}

/// Body: the component bytes (`application/wasm` or `application/octet-stream`).
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
