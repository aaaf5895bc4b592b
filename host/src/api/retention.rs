//! `/api/v1/retention`: how long events, attempts and audit entries are kept, globally
//! and per tenant, with the figures of what was pruned; `POST /retention/run` runs a
//! pass now (the background pass runs every minute, see [`crate::retention`]). Admin only.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::duration::parse_duration_ms;
use super::wire::rfc3339;
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::retention::{self, PassFigures};
use crate::store::{RetentionPolicy, GLOBAL_SCOPE};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, set_global))
        .routes(routes!(run_now))
        .routes(routes!(set_tenant, clear_tenant))
}

/// Each field a duration (`30d`, `12h`), or `null` to keep forever.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionRequest)]
struct PolicyRequest {
    /// Keep events (with their deliveries and attempts) this long; at least `1s`.
    events: Option<String>,
    /// Keep attempts this long.
    attempts: Option<String>,
    /// Keep audit entries this long.
    audit: Option<String>,
}

/// A retention policy: durations in seconds (`"2592000s"`), `null` to keep forever.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RetentionPolicy)]
struct PolicyView {
    events: Option<String>,
    attempts: Option<String>,
    audit: Option<String>,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// Rows deleted.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PrunedRows)]
#[allow(dead_code)] // Describes the wire format of `retention::PassFigures`.
struct PassFiguresSchema {
    events: u64,
    attempts: u64,
    audit: u64,
}

/// The policies and what the passes pruned since the server started.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Retention)]
struct RetentionView {
    /// The global policy, if one is set.
    global: Option<PolicyView>,
    /// Policies of single tenants, by tenant id.
    tenants: BTreeMap<String, PolicyView>,
    #[schema(value_type = PassFiguresSchema)]
    pruned: PassFigures,
    passes: u64,
    #[schema(format = DateTime)]
    last_pass_at: Option<String>,
}

/// What one pass pruned.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RetentionPass)]
struct PassView {
    #[schema(value_type = PassFiguresSchema)]
    pruned: PassFigures,
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

fn policy_view(p: &RetentionPolicy) -> PolicyView {
    let secs = |ms: Option<i64>| ms.map(|ms| format!("{}s", ms / 1000));
    PolicyView {
        events: secs(p.events_ms),
        attempts: secs(p.attempts_ms),
        audit: secs(p.audit_ms),
        updated_at: rfc3339(p.updated_at),
    }
}

/// The policies and the figures of the passes so far.
#[utoipa::path(
    get,
    path = "/retention",
    tag = "retention",
    responses((status = 200, description = "Retention", body = RetentionView))
)]
async fn show(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<RetentionView>> {
    principal.require_admin()?;
    let policies = state.store.retention_policies().await?;
    let global = policies.iter().find(|p| p.scope == GLOBAL_SCOPE);
    let tenants: BTreeMap<String, PolicyView> = policies
        .iter()
        .filter(|p| p.scope != GLOBAL_SCOPE)
        .map(|p| (p.scope.clone(), policy_view(p)))
        .collect();
    let totals = retention::totals();
    Ok(Json(RetentionView {
        global: global.map(policy_view),
        tenants,
        pruned: totals.pruned,
        passes: totals.passes,
        last_pass_at: (totals.last_pass_at > 0).then(|| rfc3339(totals.last_pass_at)),
    }))
}

/// Set the global policy.
#[utoipa::path(
    put,
    path = "/retention",
    tag = "retention",
    responses((status = 200, description = "Retention as changed", body = RetentionView))
)]
async fn set_global(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<PolicyRequest>,
) -> ApiResult<Json<RetentionView>> {
    principal.require_admin()?;
    state
        .store
        .save_retention_policy(&policy(GLOBAL_SCOPE, &req)?)
        .await?;
    show(principal, State(state)).await
}

/// Set a tenant's policy (it overrides the global one field by field).
#[utoipa::path(
    put,
    path = "/retention/tenants/{tenant_id}",
    tag = "retention",
    responses((status = 200, description = "Retention as changed", body = RetentionView))
)]
async fn set_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Json(req): Json<PolicyRequest>,
) -> ApiResult<Json<RetentionView>> {
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

/// Clear a tenant's policy.
#[utoipa::path(
    delete,
    path = "/retention/tenants/{tenant_id}",
    tag = "retention",
    responses((status = 200, description = "Retention as changed", body = RetentionView))
)]
async fn clear_tenant(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<RetentionView>> {
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

/// Run a pass now.
#[utoipa::path(
    post,
    path = "/retention/run",
    tag = "retention",
    responses((status = 200, description = "What it pruned", body = PassView))
)]
async fn run_now(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<PassView>> {
    principal.require_admin()?;
    let pruned = retention::run_pass(&state.store).await?;
    Ok(Json(PassView { pruned }))
}
