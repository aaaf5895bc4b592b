//! `/api/v1/retention`: how long events, attempts and audit entries are kept, globally
//! and per tenant, with the figures of what was pruned; `POST /retention/run` runs a
//! pass now (the background pass runs every minute, see [`crate::retention`]). Admin only.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::duration::parse_duration_ms;
use super::wire::rfc3339;
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::retention;
use crate::store::{RetentionPolicy, GLOBAL_SCOPE};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/retention", get(show).put(set_global))
        .route("/retention/run", post(run_now))
        .route(
            "/retention/tenants/{tenant_id}",
            put(set_tenant).delete(clear_tenant),
        )
}

/// Each field a duration (`30d`, `12h`), or `null` to keep forever.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    events: Option<String>,
    attempts: Option<String>,
    audit: Option<String>,
}

/// Shortest retention accepted; shorter would delete what is still being delivered.
const MIN_RETENTION_MS: i64 = 1_000;

fn keep(field: &str, value: &Option<String>) -> ApiResult<Option<i64>> {
    value
        .as_deref()
        .map(|v| {
            let ms = parse_duration_ms(field, v)?;
            if ms < MIN_RETENTION_MS {
                return Err(ApiError::bad_request(format!("{field}: at least 1s")));
            }
            Ok(ms)
        })
        .transpose()
}

fn policy(scope: &str, req: &PolicyRequest) -> ApiResult<RetentionPolicy> {
    Ok(RetentionPolicy {
        scope: scope.to_string(),
        events_ms: keep("events", &req.events)?,
        attempts_ms: keep("attempts", &req.attempts)?,
        audit_ms: keep("audit", &req.audit)?,
        updated_at: 0,
    })
}

fn policy_view(p: &RetentionPolicy) -> Value {
    let secs = |ms: Option<i64>| ms.map(|ms| format!("{}s", ms / 1000));
    json!({
        "events": secs(p.events_ms),
        "attempts": secs(p.attempts_ms),
        "audit": secs(p.audit_ms),
        "updated_at": rfc3339(p.updated_at),
    })
}

async fn show(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let policies = state.store.retention_policies().await?;
    let global = policies.iter().find(|p| p.scope == GLOBAL_SCOPE);
    let tenants: serde_json::Map<String, Value> = policies
        .iter()
        .filter(|p| p.scope != GLOBAL_SCOPE)
        .map(|p| (p.scope.clone(), policy_view(p)))
        .collect();
    let totals = retention::totals();
    Ok(Json(json!({
        "global": global.map(policy_view),
        "tenants": tenants,
        "pruned": totals.pruned,
        "passes": totals.passes,
        "last_pass_at": (totals.last_pass_at > 0).then(|| rfc3339(totals.last_pass_at)),
    })))
}

async fn set_global(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<PolicyRequest>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    state
        .store
        .save_retention_policy(&policy(GLOBAL_SCOPE, &req)?)
        .await?;
    show(principal, State(state)).await
}

async fn set_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Json(req): Json<PolicyRequest>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    if tenant_id == GLOBAL_SCOPE {
        return Err(ApiError::bad_request("tenant_id: `*` is not a tenant"));
    }
    state.store.tenant(&tenant_id).await?;
    state
        .store
        .save_retention_policy(&policy(&tenant_id, &req)?)
        .await?;
    show(principal, State(state)).await
}

async fn clear_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let none = PolicyRequest {
        events: None,
        attempts: None,
        audit: None,
    };
    state
        .store
        .save_retention_policy(&policy(&tenant_id, &none)?)
        .await?;
    show(principal, State(state)).await
}

async fn run_now(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let figures = retention::run_pass(&state.store).await?;
    Ok(Json(json!({ "pruned": figures })))
}
