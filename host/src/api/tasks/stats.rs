//! `/api/v1/tasks/stats[/periods|/destinations|/topics]`: tasks counted per status, in
//! total or per period, destination or topic, under the list's filters.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ListFilter;
use crate::api::wire::rfc3339;
use crate::api::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{TaskGrouping, TaskStatus};

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsQuery {
    #[serde(flatten)]
    #[param(ignore)]
    filter: ListFilter,
    /// `hourly` or `daily` (periods only; default `daily`).
    aggregation: Option<String>,
}

/// Tasks per status.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TaskCounts)]
#[allow(dead_code)] // Describes the wire format of `status_counts`.
struct CountsSchema {
    new: i64,
    processing: i64,
    finished: i64,
    failed: i64,
    skipped: i64,
    total: i64,
}

/// Tasks per status of one group: its `date`, `destination_id` or `topic`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TaskGroupCounts)]
#[allow(dead_code)] // Describes the wire format of `grouped`.
struct GroupCountsSchema {
    #[serde(flatten)]
    counts: CountsSchema,
    /// Start of the period (`/tasks/stats/periods`).
    #[schema(format = DateTime)]
    date: Option<String>,
    /// `/tasks/stats/destinations`.
    destination_id: Option<String>,
    /// `/tasks/stats/topics`.
    topic: Option<String>,
}

/// `{"results": ...}`.
#[derive(Serialize, utoipa::ToSchema)]
struct TaskStats<T> {
    results: T,
}

/// Counts per status, every status present (0 when none).
fn status_counts(rows: impl Iterator<Item = (TaskStatus, i64)>) -> serde_json::Map<String, Value> {
    let mut counts: BTreeMap<TaskStatus, i64> = TaskStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for (status, n) in rows {
        *counts.entry(status).or_default() += n;
    }
    let mut map = serde_json::Map::new();
    for status in TaskStatus::ALL {
        map.insert(status.as_str().into(), json!(counts[&status]));
    }
    map.insert("total".into(), json!(counts.values().sum::<i64>()));
    map
}

async fn grouped(
    state: &AppState,
    filter: ListFilter,
    grouping: TaskGrouping,
    key_name: &str,
    key_value: impl Fn(&str) -> Value,
) -> ApiResult<Json<Value>> {
    let rows = state
        .store
        .task_counts(&filter.into_filter()?, grouping)
        .await?;
    let mut groups: BTreeMap<String, Vec<(TaskStatus, i64)>> = BTreeMap::new();
    for (key, status, n) in rows {
        groups.entry(key).or_default().push((status, n));
    }
    let results: Vec<Value> = groups
        .into_iter()
        .map(|(key, counts)| {
            let mut map = status_counts(counts.into_iter());
            map.insert(key_name.into(), key_value(&key));
            Value::Object(map)
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// Tasks per status.
#[utoipa::path(
    get,
    path = "/tasks/stats",
    tag = "tasks",
    params(StatsQuery, ListFilter),
    responses((status = 200, description = "Counts", body = TaskStats<CountsSchema>))
)]
pub(super) async fn stats_total(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let rows = state
        .store
        .task_counts(&q.filter.into_filter()?, TaskGrouping::Total)
        .await?;
    let counts = status_counts(rows.into_iter().map(|(_, s, n)| (s, n)));
    Ok(Json(json!({ "results": counts })))
}

/// Tasks per status and period (`aggregation`).
#[utoipa::path(
    get,
    path = "/tasks/stats/periods",
    tag = "tasks",
    params(StatsQuery, ListFilter),
    responses((status = 200, description = "Counts", body = TaskStats<Vec<GroupCountsSchema>>))
)]
pub(super) async fn stats_periods(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let period_ms = match q.aggregation.as_deref().unwrap_or("daily") {
        "hourly" | "hour" => 3_600_000,
        "daily" | "day" => 86_400_000,
        other => {
            return Err(ApiError::bad_request(format!(
                "aggregation: `{other}` is not hourly or daily"
            )))
        }
    };
    grouped(
        &state,
        q.filter,
        TaskGrouping::Period(period_ms),
        "date",
        |key| json!(rfc3339(key.parse().unwrap_or_default())),
    )
    .await
}

/// Tasks per status and destination.
#[utoipa::path(
    get,
    path = "/tasks/stats/destinations",
    tag = "tasks",
    params(StatsQuery, ListFilter),
    responses((status = 200, description = "Counts", body = TaskStats<Vec<GroupCountsSchema>>))
)]
pub(super) async fn stats_destinations(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    grouped(
        &state,
        q.filter,
        TaskGrouping::Destination,
        "destination_id",
        |key| json!(key),
    )
    .await
}

/// Tasks per status and topic.
#[utoipa::path(
    get,
    path = "/tasks/stats/topics",
    tag = "tasks",
    params(StatsQuery, ListFilter),
    responses((status = 200, description = "Counts", body = TaskStats<Vec<GroupCountsSchema>>))
)]
pub(super) async fn stats_topics(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    grouped(&state, q.filter, TaskGrouping::Topic, "topic", |key| {
        json!(key)
    })
    .await
}
