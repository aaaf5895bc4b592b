//! `/api/v1/tasks`: every delivery (event × destination) as a task, with filters, bulk
//! retry/skip/resolve, pruning, repair of stuck tasks and statistics. Admin only.
//!
//! Status words follow the integration-platform reference: `new` (waiting for an
//! attempt), `processing`, `finished`, `failed`, `skipped`. Bulk actions take
//! `{"filter": {...}}` and/or `{"ids": [...]}` and answer `{"newStatus", "numberOfTasks"}`.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod stats;

use super::attempts::{attempt_view, AttemptView};
use super::duration::parse_duration_ms;
use super::pagination::{PageQuery, SeekPagination};
use super::wire::{parse_time, rfc3339, split_list};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{AttemptQuery, BulkAction, TaskFilter, TaskRow, TaskStatus};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats::stats_total))
        .routes(routes!(stats::stats_periods))
        .routes(routes!(stats::stats_destinations))
        .routes(routes!(stats::stats_topics))
        .routes(routes!(retry))
        .routes(routes!(skip))
        .routes(routes!(resolve))
        .routes(routes!(prune))
        .routes(routes!(repair))
        .routes(routes!(get_one))
}

/// A status list as one comma-separated string or a JSON array.
#[derive(Deserialize, Debug, Clone, utoipa::ToSchema)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_list(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => split_list(Some(&s)),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The filter keys, alike in the query string of `GET /tasks` and in the `filter` object
/// of bulk actions. Times bound the task's creation.
#[derive(Deserialize, Debug, Default, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaskFilter)]
struct FilterParams {
    status: Option<OneOrMany>,
    tenant_id: Option<String>,
    destination_id: Option<OneOrMany>,
    topic: Option<OneOrMany>,
    #[serde(rename = "time[gte]")]
    time_gte: Option<String>,
    #[serde(rename = "time[lte]")]
    time_lte: Option<String>,
    /// A date (`2026-11-23`, from its start) or date-time.
    #[serde(rename = "dateFrom")]
    date_from: Option<String>,
    /// A date (`2026-11-23`, to its end) or date-time.
    #[serde(rename = "dateTo")]
    date_to: Option<String>,
}

/// A date or RFC 3339 date-time; a bare date is its first (or, `end_of_day`, last) ms.
fn parse_date_or_time(field: &str, text: &str, end_of_day: bool) -> ApiResult<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(text, &format) {
        Ok(date) => {
            let start = date.midnight().assume_utc().unix_timestamp() * 1000;
            Ok(if end_of_day {
                start + 86_400_000 - 1
            } else {
                start
            })
        }
        Err(_) => parse_time(field, text),
    }
}

impl FilterParams {
    fn into_filter(self, prefix: &str) -> ApiResult<TaskFilter> {
        let statuses = self
            .status
            .map(OneOrMany::into_list)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                TaskStatus::parse(s).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{prefix}status: `{s}` is not one of new, processing, finished, failed, skipped"
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let gte = match (&self.time_gte, &self.date_from) {
            (Some(t), _) => Some(parse_time(&format!("{prefix}time[gte]"), t)?),
            (None, Some(d)) => Some(parse_date_or_time(&format!("{prefix}dateFrom"), d, false)?),
            (None, None) => None,
        };
        let lte = match (&self.time_lte, &self.date_to) {
            (Some(t), _) => Some(parse_time(&format!("{prefix}time[lte]"), t)?),
            (None, Some(d)) => Some(parse_date_or_time(&format!("{prefix}dateTo"), d, true)?),
            (None, None) => None,
        };
        Ok(TaskFilter {
            statuses,
            tenant_id: self.tenant_id.filter(|t| !t.is_empty()),
            destination_ids: self
                .destination_id
                .map(OneOrMany::into_list)
                .unwrap_or_default(),
            topics: self.topic.map(OneOrMany::into_list).unwrap_or_default(),
            created_gte: gte,
            created_lte: lte,
        })
    }
}

/// A task on the wire.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Task)]
struct TaskView {
    id: String,
    /// `new`, `processing`, `finished`, `failed` or `skipped`.
    status: &'static str,
    tenant_id: String,
    event_id: String,
    destination_id: String,
    topic: String,
    attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    lease_until: Option<String>,
    last_error: Option<String>,
    resolved: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
}

fn task_view(t: TaskRow) -> TaskView {
    TaskView {
        id: t.id,
        status: t.status.as_str(),
        tenant_id: t.tenant_id,
        event_id: t.event_id,
        destination_id: t.destination_id,
        topic: t.topic,
        attempts: t.attempts,
        next_attempt_at: (t.status == TaskStatus::New).then(|| rfc3339(t.next_attempt_at)),
        lease_until: t
            .lease_until
            .filter(|_| t.status == TaskStatus::Processing)
            .map(rfc3339),
        last_error: t.last_error,
        resolved: t.resolved_at.is_some(),
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
        attempt_log: None,
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(flatten)]
    #[param(ignore)]
    filter: ListFilter,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// [`FilterParams`] without `deny_unknown_fields`, which `flatten` cannot honour.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Statuses (comma-separated): `new`, `processing`, `finished`, `failed`, `skipped`.
    status: Option<String>,
    tenant_id: Option<String>,
    /// Destinations (comma-separated).
    destination_id: Option<String>,
    /// Topics (comma-separated).
    topic: Option<String>,
    /// Created at or after (RFC 3339).
    #[serde(rename = "time[gte]")]
    #[param(format = DateTime)]
    time_gte: Option<String>,
    /// Created at or before (RFC 3339).
    #[serde(rename = "time[lte]")]
    #[param(format = DateTime)]
    time_lte: Option<String>,
    /// A date (from its start) or date-time.
    #[serde(rename = "dateFrom")]
    date_from: Option<String>,
    /// A date (to its end) or date-time.
    #[serde(rename = "dateTo")]
    date_to: Option<String>,
}

impl ListFilter {
    fn into_filter(self) -> ApiResult<TaskFilter> {
        FilterParams {
            status: self.status.map(OneOrMany::One),
            tenant_id: self.tenant_id,
            destination_id: self.destination_id.map(OneOrMany::One),
            topic: self.topic.map(OneOrMany::One),
            time_gte: self.time_gte,
            time_lte: self.time_lte,
            date_from: self.date_from,
            date_to: self.date_to,
        }
        .into_filter("")
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TaskPage {
    models: Vec<TaskView>,
    pagination: SeekPagination,
}

/// Tasks, newest first.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    params(ListFilter, PageQuery),
    responses((status = 200, description = "A page of tasks", body = TaskPage))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<TaskPage>> {
    principal.require_admin()?;
    let page = q.page.validate()?;
    let filter = q.filter.into_filter()?;
    let rows = state
        .store
        .list_tasks(&filter, &page.position(), page.desc(), page.limit())
        .await?;
    let (rows, pagination) = page.paginate(rows, |t| (t.created_at, t.id.clone()));
    Ok(Json(TaskPage {
        models: rows.into_iter().map(task_view).collect(),
        pagination,
    }))
}

/// One task with its attempts (`attempt_log`).
#[utoipa::path(
    get,
    path = "/tasks/{task_id}",
    tag = "tasks",
    responses((status = 200, description = "The task", body = TaskView))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(task_id): Path<String>,
) -> ApiResult<Json<TaskView>> {
    principal.require_admin()?;
    let row = state
        .store
        .task(&task_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {task_id}")))?;
    let attempts = state
        .store
        .list_attempts(&AttemptQuery {
            tenant_id: Some(row.tenant_id.clone()),
            event_id: Some(row.event_id.clone()),
            destination_ids: vec![row.destination_id.clone()],
            desc: false,
            limit: 1000,
            ..AttemptQuery::default()
        })
        .await?;
    let mut view = task_view(row);
    view.attempt_log = Some(attempts.into_iter().map(attempt_view).collect());
    Ok(Json(view))
}

/// Body of the bulk actions; `filter` and `ids` combine (both must match).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaskBulkRequest)]
struct BulkRequest {
    filter: Option<FilterParams>,
    ids: Option<Vec<String>>,
}

/// Most ids one bulk request may name.
const MAX_BULK_IDS: usize = 100_000;

/// What a bulk action did.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TaskBulkResult)]
struct BulkResult {
    /// The status the tasks now have.
    new_status: &'static str,
    /// Tasks changed.
    number_of_tasks: u64,
}

async fn bulk(
    state: &AppState,
    action: BulkAction,
    req: BulkRequest,
) -> ApiResult<Json<BulkResult>> {
    if req.filter.is_none() && req.ids.is_none() {
        return Err(ApiError::bad_request(
            "filter: a filter object or an ids list is required",
        ));
    }
    if req.ids.as_ref().is_some_and(|ids| ids.len() > MAX_BULK_IDS) {
        return Err(ApiError::bad_request(format!(
            "ids: at most {MAX_BULK_IDS} ids per request"
        )));
    }
    let filter = req.filter.unwrap_or_default().into_filter("filter.")?;
    let changed = state
        .store
        .bulk_task_action(action, &filter, req.ids.as_deref())
        .await?;
    if action == BulkAction::Retry && changed > 0 {
        state.delivery.wake();
    }
    tracing::info!(action = ?action, count = changed, "bulk task action");
    Ok(Json(BulkResult {
        new_status: action.new_status().as_str(),
        number_of_tasks: changed,
    }))
}

/// Deliver the chosen tasks again now (tasks a worker holds are left alone).
#[utoipa::path(
    post,
    path = "/tasks/retry",
    tag = "tasks",
    responses((status = 200, description = "Done", body = BulkResult))
)]
async fn retry(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<BulkRequest>,
) -> ApiResult<Json<BulkResult>> {
    principal.require_admin()?;
    bulk(&state, BulkAction::Retry, req).await
}

/// Mark the chosen tasks skipped.
#[utoipa::path(
    post,
    path = "/tasks/skip",
    tag = "tasks",
    responses((status = 200, description = "Done", body = BulkResult))
)]
async fn skip(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<BulkRequest>,
) -> ApiResult<Json<BulkResult>> {
    principal.require_admin()?;
    bulk(&state, BulkAction::Skip, req).await
}

/// Mark the chosen failed tasks resolved.
#[utoipa::path(
    post,
    path = "/tasks/resolve",
    tag = "tasks",
    responses((status = 200, description = "Done", body = BulkResult))
)]
async fn resolve(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<BulkRequest>,
) -> ApiResult<Json<BulkResult>> {
    principal.require_admin()?;
    bulk(&state, BulkAction::Resolve, req).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaskPruneRequest)]
struct PruneRequest {
    #[serde(rename = "maxAge")]
    max_age: Option<String>,
    #[serde(rename = "maxCount")]
    max_count: Option<i64>,
    filter: Option<FilterParams>,
}

/// What a prune deleted.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TaskPruneResult)]
struct Pruned {
    /// Older than `maxAge`.
    expired: u64,
    /// Beyond the `maxCount` most recent.
    excess: u64,
}

/// Deletes finished, failed and skipped tasks (never ones still to deliver) older than
/// `maxAge` or beyond the `maxCount` most recent.
#[utoipa::path(
    post,
    path = "/tasks/prune",
    tag = "tasks",
    responses((status = 200, description = "Done", body = Pruned))
)]
async fn prune(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<PruneRequest>,
) -> ApiResult<Json<Pruned>> {
    principal.require_admin()?;
    if req.max_age.is_none() && req.max_count.is_none() {
        return Err(ApiError::bad_request(
            "maxAge: maxAge or maxCount is required",
        ));
    }
    let older_than = req
        .max_age
        .as_deref()
        .map(|a| parse_duration_ms("maxAge", a))
        .transpose()?
        .map(|age| crate::store::now_ms() - age);
    if req.max_count.is_some_and(|n| n < 0) {
        return Err(ApiError::bad_request("maxCount: must be 0 or more"));
    }
    let filter = req.filter.unwrap_or_default().into_filter("filter.")?;
    let (expired, excess) = state
        .store
        .prune_tasks(&filter, older_than, req.max_count)
        .await?;
    tracing::info!(expired, excess, "tasks pruned");
    Ok(Json(Pruned { expired, excess }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaskRepairRequest)]
struct RepairRequest {
    age: Option<String>,
    #[serde(rename = "newStatus")]
    new_status: Option<String>,
    filter: Option<FilterParams>,
}

/// Tasks still `processing` whose lease ended at least `age` ago (default 1 hour): their
/// What a repair changed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TaskRepairResult)]
struct Repaired {
    count: u64,
    #[serde(rename = "newStatus")]
    new_status: &'static str,
}

/// worker is gone. They move to `newStatus` (default `new`, due now).
#[utoipa::path(
    post,
    path = "/tasks/repair",
    tag = "tasks",
    responses((status = 200, description = "Done", body = Repaired))
)]
async fn repair(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<RepairRequest>,
) -> ApiResult<Json<Repaired>> {
    principal.require_admin()?;
    let age = parse_duration_ms("age", req.age.as_deref().unwrap_or("1 hour"))?;
    let to = match req.new_status.as_deref().unwrap_or("new") {
        "processing" => None,
        s => TaskStatus::parse(s),
    }
    .ok_or_else(|| {
        ApiError::bad_request("newStatus: must be one of new, finished, failed, skipped")
    })?;
    let filter = req.filter.unwrap_or_default().into_filter("filter.")?;
    let count = state.store.repair_tasks(&filter, age, to).await?;
    if count > 0 && to == TaskStatus::New {
        state.delivery.wake();
    }
    Ok(Json(Repaired {
        count,
        new_status: to.as_str(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filter_errors_name_the_field() {
        let params: FilterParams =
            serde_json::from_value(json!({"status": ["failed", "done"]})).unwrap();
        let err = params.into_filter("filter.").unwrap_err();
        assert!(
            err.message().starts_with("filter.status:"),
            "{}",
            err.message()
        );
        let err = serde_json::from_value::<FilterParams>(json!({"stauts": "new"}));
        assert!(err.is_err());
    }

    #[test]
    fn dates_cover_whole_days() {
        let from = parse_date_or_time("dateFrom", "2026-11-23", false).unwrap();
        let to = parse_date_or_time("dateTo", "2026-11-23", true).unwrap();
        assert_eq!(to - from, 86_400_000 - 1);
        assert_eq!(rfc3339(from), "2026-11-23T00:00:00Z");
    }
}
