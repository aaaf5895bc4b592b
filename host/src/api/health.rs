//! `GET /healthz` (the process is up and its database answers) and `GET /metrics`
//! (Prometheus text).

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, Json};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// Prometheus text; open like `/healthz`, it shows counts, never tenant data.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    operation_id = "prometheus",
    security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String))
)]
async fn metrics(
    State(state): State<AppState>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    let plugins = state.registry.list();
    let quarantined = plugins
        .iter()
        .filter(|p| state.registry.is_quarantined(&p.id))
        .count();
    let unfinished = state.store.count_unfinished_deliveries().await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::render(plugins.len(), quarantined, unfinished)
            + &crate::retention::render_metrics(),
    ))
}

/// `GET /healthz`.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok` (an unhealthy server answers 500).
    status: &'static str,
    /// Plugins loaded.
    plugins: usize,
}

/// The process is up and its database answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    security(()),
    responses((status = 200, description = "Healthy", body = Health))
)]
async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await.map_err(ApiError::from)?;
    Ok(Json(Health {
        status: "ok",
        plugins: state.registry.list().len(),
    }))
}
