//! Event statistics after the bucket-events reference, with the tenant as the bucket:
//! `GET /events/stats` (histogram over `days` by `interval`), `GET /events/stats/topics`
//! (events by topic, `limit`/`offset`), `GET /events/stats/keys` (topics and metadata
//! keys per tenant) and `DELETE /tenants/{id}/events/delete_all`.
//!
//! Metadata keys come from each tenant's newest
//! [`METADATA_KEY_SAMPLE`](crate::store::METADATA_KEY_SAMPLE) events, so the answer stays
//! fast however many events are stored; a key only seen in older events is not listed.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{split_list, TimeRange};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{now_ms, EventScope};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(histogram))
        .routes(routes!(by_topic))
        .routes(routes!(keys))
        .routes(routes!(delete_all))
}

/// Most points one histogram returns.
const MAX_POINTS: i64 = 10_000;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// Only this tenant (admin credentials; a tenant JWT sees its own only).
    tenant_id: Option<String>,
    /// Only these topics (comma-separated); also `event_name`, as in the reference.
    topic: Option<String>,
    /// Same as `topic`.
    event_name: Option<String>,
    /// Histogram: the last `days` days (default 2).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 3650)]
    days: Option<String>,
    /// Histogram: bucket size, `minute` (default), `hour` or `day`.
    #[param(value_type = Option<StatsInterval>)]
    interval: Option<String>,
    /// Topics: at most this many (default 100).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1000)]
    limit: Option<String>,
    /// Topics: skip this many.
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    time: TimeRange,
}

/// Bucket size of the event histogram.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the query parameter; it is read as text.
enum StatsInterval {
    Minute,
    Hour,
    Day,
}

/// Events of one topic.
#[derive(Serialize, utoipa::ToSchema)]
struct TopicCount {
    topic: String,
    count: i64,
}

/// The topics and metadata keys of one tenant's events.
#[derive(Serialize, utoipa::ToSchema)]
struct TenantKeys {
    tenant_id: String,
    topics: BTreeSet<String>,
    /// Keys seen in the metadata of its newest events.
    metadata_keys: BTreeSet<String>,
}

/// What `DELETE /tenants/{tenant_id}/events/delete_all` removed.
#[derive(Serialize, utoipa::ToSchema)]
struct Deleted {
    /// Events deleted with their deliveries and attempts.
    deleted: u64,
    /// Events kept because a delivery of theirs was in flight.
    kept_in_flight: i64,
}

impl StatsQuery {
    /// The scope, the tenant forced to the caller's own for a tenant JWT.
    fn scope(&self, principal: &Principal) -> ApiResult<EventScope> {
        let tenant_id = match principal.tenant_id() {
            Some(own) => Some(own.to_string()),
            None => self.tenant_id.clone(),
        };
        if let Some(t) = &tenant_id {
            principal.require_tenant_access(t)?;
        }
        let (time_gte, time_lte) = self.time.bounds()?;
        let mut topics = split_list(self.topic.as_deref());
        topics.extend(split_list(self.event_name.as_deref()));
        Ok(EventScope {
            tenant_id,
            topics,
            time_gte,
            time_lte,
        })
    }
}

fn int_param(name: &str, value: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("{name}: must be 0 to {max}"))),
    }
}

/// `[[bucket start ms, count], ...]` over the last `days` (default 2), every bucket of
/// `interval` (`minute` default, `hour`, `day`) present, zeros included.
#[utoipa::path(
    get,
    path = "/events/stats",
    tag = "event-stats",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(StatsQuery, TimeRange),
    responses((status = 200, description = "`[bucket start in ms, count]` pairs, oldest first", body = Vec<Vec<i64>>))
)]
async fn histogram(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Vec<[i64; 2]>>> {
    let days = int_param("days", q.days.as_deref(), 2, 3650)?.max(1);
    let bucket = match q.interval.as_deref().unwrap_or("minute") {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        other => {
            return Err(ApiError::bad_request(format!(
                "interval: `{other}` is not minute, hour or day"
            )))
        }
    };
    let mut scope = q.scope(&principal)?;
    let now = now_ms();
    let from = ((now - days * 86_400_000) / bucket) * bucket;
    if (now - from) / bucket > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "interval: {days} days by {} gives more than {MAX_POINTS} points; use a longer interval",
            q.interval.as_deref().unwrap_or("minute")
        )));
    }
    scope.time_gte = Some(scope.time_gte.map_or(from, |t| t.max(from)));
    let counts: BTreeMap<i64, i64> = state
        .store
        .event_histogram(&scope, bucket)
        .await?
        .into_iter()
        .collect();
    let points: Vec<[i64; 2]> = (0..)
        .map(|i| from + i * bucket)
        .take_while(|t| *t <= now)
        .map(|t| [t, counts.get(&t).copied().unwrap_or(0)])
        .collect();
    Ok(Json(points))
}

/// `[{"topic", "count"}, ...]`, most frequent first.
#[utoipa::path(
    get,
    path = "/events/stats/topics",
    tag = "event-stats",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(StatsQuery, TimeRange),
    responses((status = 200, description = "Events per topic, most frequent first", body = Vec<TopicCount>))
)]
async fn by_topic(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Vec<TopicCount>>> {
    let limit = int_param("limit", q.limit.as_deref(), 100, 1000)?.max(1);
    let offset = int_param("offset", q.offset.as_deref(), 0, i64::MAX)?;
    let scope = q.scope(&principal)?;
    let rows = state.store.events_by_topic(&scope, limit, offset).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(topic, count)| TopicCount { topic, count })
            .collect(),
    ))
}

/// `[{"tenant_id", "topics": [...], "metadata_keys": [...]}, ...]`.
#[utoipa::path(
    get,
    path = "/events/stats/keys",
    tag = "event-stats",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(StatsQuery, TimeRange),
    responses((status = 200, description = "Topics and metadata keys per tenant", body = Vec<TenantKeys>))
)]
async fn keys(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Vec<TenantKeys>>> {
    let scope = q.scope(&principal)?;
    let mut tenants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Some(t) = &scope.tenant_id {
        tenants.entry(t.clone()).or_default();
    }
    for (tenant, topic) in state
        .store
        .topics_by_tenant(scope.tenant_id.as_deref())
        .await?
    {
        tenants.entry(tenant).or_default().insert(topic);
    }
    let mut out = Vec::with_capacity(tenants.len());
    for (tenant, topics) in tenants {
        let mut keys = BTreeSet::new();
        for text in state.store.recent_event_metadata(&tenant).await? {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
                keys.extend(map.into_iter().map(|(k, _)| k));
            }
        }
        out.push(TenantKeys {
            tenant_id: tenant,
            topics,
            metadata_keys: keys,
        });
    }
    Ok(Json(out))
}

/// Deletes every event of the tenant with its deliveries and attempts; events with a
/// delivery in flight are kept (and counted) so no worker writes to a deleted row.
#[utoipa::path(
    delete,
    path = "/tenants/{tenant_id}/events/delete_all",
    tag = "event-stats",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "What was deleted", body = Deleted))
)]
async fn delete_all(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.tenant(&tenant_id).await?;
    let (deleted, kept) = state.store.delete_tenant_events(&tenant_id).await?;
    tracing::info!(tenant = %tenant_id, deleted, kept, "deleted the events of a tenant");
    Ok(Json(Deleted {
        deleted,
        kept_in_flight: kept,
    }))
}
