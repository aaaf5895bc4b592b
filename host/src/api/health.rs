//! `GET /healthz` (the process is up and its database answers) and `GET /metrics`
//! (Prometheus text).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, AppState, Json};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Prometheus text; open like `/healthz`, it shows counts, never tenant data.
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

async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.store.ping().await.map_err(ApiError::from)?;
    Ok(Json(
        json!({ "status": "ok", "plugins": state.registry.list().len() }),
    ))
}
