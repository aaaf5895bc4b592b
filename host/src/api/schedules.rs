//! `/api/v1/schedules`: scheduled sends of a stored message (topic, data, metadata) to a
//! tenant, by cron expression (with time zone), fixed interval, or once at `run_at` (a
//! delayed publish). Enable, disable, upcoming runs and the record of past runs. The
//! loop that runs them and the missed-run policy are in [`crate::scheduler`].
//!
//! Admin credentials manage every schedule; a tenant JWT manages its own tenant's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::duration::parse_duration_ms;
use super::pagination::{PageQuery, SeekPagination};
use super::wire::{json_column, map_column, parse_time, rfc3339, string_map, Success};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::scheduler::Timing;
use crate::store::{now_ms, ScheduleRow};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, update, delete))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(upcoming))
        .routes(routes!(runs))
}

/// Create or update body; on update, absent fields keep their value.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ScheduleRequest)]
struct ScheduleRequest {
    /// Required on create with admin credentials (a tenant JWT's own by default);
    /// cannot change.
    tenant_id: Option<String>,
    name: Option<String>,
    /// 5 or 6 fields, in `timezone`. One of `cron`, `interval`, `run_at`.
    cron: Option<String>,
    /// `30s`, `5m`, ... or a number of ms; at least 1 s.
    #[schema(value_type = Option<String>)]
    interval: Option<Value>,
    /// RFC 3339 time of a single run.
    #[schema(format = DateTime)]
    run_at: Option<String>,
    /// IANA time zone of `cron` (default `UTC`).
    timezone: Option<String>,
    topic: Option<String>,
    /// The event's payload; required on create.
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Option<Value>,
    /// Deliver to this destination only (empty: every matching one).
    destination_id: Option<String>,
    enabled: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Schedule)]
struct ScheduleView {
    id: String,
    tenant_id: String,
    name: String,
    /// `cron`, `interval` or `once`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    run_at: Option<String>,
    timezone: String,
    topic: String,
    #[schema(value_type = Object)]
    data: Value,
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
    destination_id: Option<String>,
    enabled: bool,
    #[schema(format = DateTime)]
    next_run_at: Option<String>,
    #[schema(format = DateTime)]
    last_run_at: Option<String>,
    /// After downtime: one run for the latest missed slot, then the schedule resumes.
    missed_run_policy: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// The policy every schedule follows after downtime (see [`crate::scheduler`]).
const MISSED_RUN_POLICY: &str = "fire_once_then_resume";

fn view(s: ScheduleRow) -> ScheduleView {
    let kind = match (&s.cron, s.interval_ms) {
        (Some(_), _) => "cron",
        (None, Some(_)) => "interval",
        (None, None) => "once",
    };
    ScheduleView {
        kind,
        data: json_column(Some(&s.data)),
        metadata: json_column(s.metadata.as_deref()),
        run_at: s.run_at.map(rfc3339),
        next_run_at: s.next_run_at.map(rfc3339),
        last_run_at: s.last_run_at.map(rfc3339),
        created_at: rfc3339(s.created_at),
        updated_at: rfc3339(s.updated_at),
        id: s.id,
        tenant_id: s.tenant_id,
        name: s.name,
        cron: s.cron,
        interval_ms: s.interval_ms,
        timezone: s.timezone,
        topic: s.topic,
        destination_id: s.destination_id,
        enabled: s.enabled,
        missed_run_policy: MISSED_RUN_POLICY,
    }
}

fn interval_ms(value: &Value) -> ApiResult<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("interval: must be a whole number of ms")),
        Value::String(s) => parse_duration_ms("interval", s),
        _ => Err(ApiError::bad_request(
            "interval: must be a duration like `30s` or a number of ms",
        )),
    }
}

/// Apply `req` onto `s` (a fresh row on create), check it and set its next run.
fn apply(mut s: ScheduleRow, req: ScheduleRequest, timing_changed: bool) -> ApiResult<ScheduleRow> {
    if let Some(name) = req.name {
        s.name = name;
    }
    if req.cron.is_some() || req.interval.is_some() || req.run_at.is_some() {
        s.cron = req.cron;
        s.interval_ms = req.interval.as_ref().map(interval_ms).transpose()?;
        s.run_at = req
            .run_at
            .as_deref()
            .map(|t| parse_time("run_at", t))
            .transpose()?;
    }
    if let Some(tz) = req.timezone {
        s.timezone = tz;
    }
    if let Some(topic) = req.topic {
        s.topic = topic;
    }
    match req.data {
        Some(data @ Value::Object(_)) => s.data = data.to_string(),
        Some(_) => return Err(ApiError::bad_request("data: must be a JSON object")),
        None if s.data.is_empty() => return Err(ApiError::bad_request("data: is required")),
        None => {}
    }
    if let Some(metadata) = req.metadata {
        s.metadata = map_column(&string_map("metadata", &metadata)?);
    }
    if let Some(d) = req.destination_id {
        s.destination_id = Some(d).filter(|d| !d.is_empty());
    }
    if let Some(enabled) = req.enabled {
        s.enabled = enabled;
    }
    let timing = Timing::of(&s).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = now_ms();
    if timing_changed || !s.enabled {
        s.next_run_at = if s.enabled {
            timing.next_after(now)
        } else {
            None
        };
    }
    if let (Timing::Once(at), true, true) = (&timing, s.enabled, timing_changed) {
        if *at <= now {
            // A delayed publish whose time has come runs at once.
            s.next_run_at = Some(*at);
        }
    }
    s.updated_at = now;
    Ok(s)
}

/// Create a schedule.
#[utoipa::path(
    post,
    path = "/schedules",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses(
        (status = 404, description = "The tenant or destination does not exist", body = super::error::ErrorBody),
        (status = 201, description = "Created", body = ScheduleView))
)]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let tenant_id = req
        .tenant_id
        .clone()
        .or_else(|| principal.tenant_id().map(String::from))
        .ok_or_else(|| ApiError::bad_request("tenant_id: is required"))?;
    principal.require_tenant_access(&tenant_id)?;
    state.store.tenant(&tenant_id).await?;
    if let Some(d) = req.destination_id.as_deref().filter(|d| !d.is_empty()) {
        state.store.destination(&tenant_id, d).await?;
    }
    let now = now_ms();
    let fresh = ScheduleRow {
        id: format!("sch_{}", ulid::Ulid::new().to_string().to_lowercase()),
        tenant_id,
        name: String::new(),
        cron: None,
        interval_ms: None,
        run_at: None,
        timezone: "UTC".into(),
        topic: String::new(),
        data: String::new(),
        metadata: None,
        destination_id: None,
        enabled: true,
        next_run_at: None,
        last_run_at: None,
        created_at: now,
        updated_at: now,
    };
    let row = apply(fresh, req, true)?;
    state.store.save_schedule(&row).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// The schedule, if the caller may see it.
async fn owned(principal: &Principal, state: &AppState, id: &str) -> ApiResult<ScheduleRow> {
    let row = state.store.schedule(id).await?;
    // Another tenant's schedule answers as a missing one: neither its existence nor its
    // owner is revealed.
    if principal
        .tenant_id()
        .is_some_and(|own| own != row.tenant_id)
    {
        return Err(ApiError::not_found(format!("schedule {id}")));
    }
    principal.require_tenant_access(&row.tenant_id)?;
    Ok(row)
}

/// One schedule.
#[utoipa::path(
    get,
    path = "/schedules/{schedule_id}",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The schedule", body = ScheduleView))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(view(owned(&principal, &state, &id).await?)))
}

/// Change a schedule (as `PATCH`).
#[utoipa::path(
    put,
    path = "/schedules/{schedule_id}",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The schedule as changed", body = ScheduleView))
)]
async fn replace(
    principal: Principal,
    state: State<AppState>,
    path: Path<String>,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<Json<ScheduleView>> {
    update(principal, state, path, Json(req)).await
}

/// Change a schedule; absent fields keep their value.
#[utoipa::path(
    patch,
    path = "/schedules/{schedule_id}",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The schedule as changed", body = ScheduleView))
)]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<Json<ScheduleView>> {
    let current = owned(&principal, &state, &id).await?;
    if req
        .tenant_id
        .as_ref()
        .is_some_and(|t| t != &current.tenant_id)
    {
        return Err(ApiError::bad_request("tenant_id: cannot be changed"));
    }
    let timing_changed = req.cron.is_some()
        || req.interval.is_some()
        || req.run_at.is_some()
        || req.timezone.is_some()
        || req.enabled == Some(true) && !current.enabled;
    let row = apply(current, req, timing_changed)?;
    state.store.save_schedule(&row).await?;
    Ok(Json(view(row)))
}

async fn set_enabled(
    principal: Principal,
    state: AppState,
    id: String,
    enabled: bool,
) -> ApiResult<Json<ScheduleView>> {
    let current = owned(&principal, &state, &id).await?;
    let changed = current.enabled != enabled;
    let req = ScheduleRequest {
        enabled: Some(enabled),
        ..ScheduleRequest::default()
    };
    let row = apply(current, req, changed)?;
    state.store.save_schedule(&row).await?;
    Ok(Json(view(row)))
}

/// Enable a schedule; its next run is computed from now.
#[utoipa::path(
    post,
    path = "/schedules/{schedule_id}/enable",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The schedule, enabled", body = ScheduleView))
)]
async fn enable(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    set_enabled(principal, state, id, true).await
}

/// Disable a schedule.
#[utoipa::path(
    post,
    path = "/schedules/{schedule_id}/disable",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The schedule, disabled", body = ScheduleView))
)]
async fn disable(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    set_enabled(principal, state, id, false).await
}

/// Delete a schedule and its runs.
#[utoipa::path(
    delete,
    path = "/schedules/{schedule_id}",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Deleted", body = Success))
)]
async fn delete(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Success>> {
    owned(&principal, &state, &id).await?;
    state.store.delete_schedule(&id).await?;
    Ok(Success::json())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UpcomingQuery {
    /// How many runs, 1 to 100 (default 5).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    count: Option<String>,
}

/// The next runs of a schedule.
#[derive(Serialize, utoipa::ToSchema)]
struct Upcoming {
    schedule_id: String,
    /// Times of the next runs (none when disabled or finished).
    runs: Vec<String>,
}

/// Most upcoming runs one call lists.
const MAX_UPCOMING: usize = 100;

/// When a schedule runs next.
#[utoipa::path(
    get,
    path = "/schedules/{schedule_id}/upcoming",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(UpcomingQuery),
    responses((status = 200, description = "The next runs", body = Upcoming))
)]
async fn upcoming(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<UpcomingQuery>,
) -> ApiResult<Json<Upcoming>> {
    let row = owned(&principal, &state, &id).await?;
    let count = match q.count.as_deref() {
        None => 5,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=MAX_UPCOMING).contains(c))
            .ok_or_else(|| ApiError::bad_request(format!("count: must be 1 to {MAX_UPCOMING}")))?,
    };
    let runs: Vec<String> = match (row.enabled, row.next_run_at) {
        (true, Some(next)) => {
            let timing = Timing::of(&row).map_err(ApiError::internal)?;
            std::iter::once(next)
                .chain(timing.upcoming(next, count - 1))
                .map(rfc3339)
                .collect()
        }
        _ => Vec::new(),
    };
    Ok(Json(Upcoming {
        schedule_id: row.id,
        runs,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this tenant's (admin credentials; a tenant JWT sees its own only).
    tenant_id: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Page<T> {
    models: Vec<T>,
    pagination: SeekPagination,
}

/// One run of a schedule.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ScheduleRun)]
struct RunView {
    id: String,
    schedule_id: String,
    /// The slot it ran for.
    #[schema(format = DateTime)]
    scheduled_for: String,
    #[schema(format = DateTime)]
    ran_at: String,
    /// The event it published (`sch_<id>_<slot>`).
    event_id: Option<String>,
    status: String,
    /// Slots skipped after downtime.
    missed: i64,
    error: Option<String>,
}

/// Schedules, newest first.
#[utoipa::path(
    get,
    path = "/schedules",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(ListQuery, PageQuery),
    responses((status = 200, description = "A page of schedules", body = Page<ScheduleView>))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<ScheduleView>>> {
    let tenant = match principal.tenant_id() {
        Some(own) => Some(own.to_string()),
        None => q.tenant_id.clone(),
    };
    let page = q.page.validate()?;
    let rows = state
        .store
        .list_schedules(
            tenant.as_deref(),
            &page.position(),
            page.desc(),
            page.limit(),
        )
        .await?;
    let (rows, pagination) = page.paginate(rows, |s| (s.created_at, s.id.clone()));
    Ok(Json(Page {
        models: rows.into_iter().map(view).collect(),
        pagination,
    }))
}

/// The record of a schedule's runs, newest first.
#[utoipa::path(
    get,
    path = "/schedules/{schedule_id}/runs",
    tag = "schedules",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of runs", body = Page<RunView>))
)]
async fn runs(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<RunView>>> {
    owned(&principal, &state, &id).await?;
    let page = q.validate()?;
    let rows = state
        .store
        .list_schedule_runs(&id, &page.position(), page.desc(), page.limit())
        .await?;
    let (rows, pagination) = page.paginate(rows, |r| (r.ran_at, r.id.clone()));
    let models = rows
        .into_iter()
        .map(|r| RunView {
            id: r.id,
            schedule_id: r.schedule_id,
            scheduled_for: rfc3339(r.scheduled_for),
            ran_at: rfc3339(r.ran_at),
            event_id: r.event_id,
            status: r.status,
            missed: r.missed,
            error: r.error,
        })
        .collect();
    Ok(Json(Page { models, pagination }))
}
