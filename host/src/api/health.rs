//! `GET /healthz`: the process is up and its database answers.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, AppState, Json};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.store.ping().await.map_err(ApiError::from)?;
    Ok(Json(
        json!({ "status": "ok", "plugins": state.registry.list().len() }),
    ))
}
