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
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::wire::{split_list, TimeRange};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{now_ms, EventScope};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/events/stats", get(histogram))
        .route("/events/stats/topics", get(by_topic))
        .route("/events/stats/keys", get(keys))
        .route("/tenants/{tenant_id}/events/delete_all", delete(delete_all))
}

/// Most points one histogram returns.
const MAX_POINTS: i64 = 10_000;

#[derive(Deserialize, Default)]
struct StatsQuery {
    tenant_id: Option<String>,
    /// Also `event_name`, as in the reference.
    topic: Option<String>,
    event_name: Option<String>,
    days: Option<String>,
    interval: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    #[serde(flatten)]
    time: TimeRange,
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
async fn histogram(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
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
    let points: Vec<Value> = (0..)
        .map(|i| from + i * bucket)
        .take_while(|t| *t <= now)
        .map(|t| json!([t, counts.get(&t).copied().unwrap_or(0)]))
        .collect();
    Ok(Json(Value::Array(points)))
}

/// `[{"topic", "count"}, ...]`, most frequent first.
async fn by_topic(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = int_param("limit", q.limit.as_deref(), 100, 1000)?.max(1);
    let offset = int_param("offset", q.offset.as_deref(), 0, i64::MAX)?;
    let scope = q.scope(&principal)?;
    let rows = state.store.events_by_topic(&scope, limit, offset).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(topic, count)| json!({ "topic": topic, "count": count }))
            .collect(),
    )))
}

/// `[{"tenant_id", "topics": [...], "metadata_keys": [...]}, ...]`.
async fn keys(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
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
        out.push(json!({ "tenant_id": tenant, "topics": topics, "metadata_keys": keys }));
    }
    Ok(Json(Value::Array(out)))
}

/// Deletes every event of the tenant with its deliveries and attempts; events with a
/// delivery in flight are kept (and counted) so no worker writes to a deleted row.
async fn delete_all(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.tenant(&tenant_id).await?;
    let (deleted, kept) = state.store.delete_tenant_events(&tenant_id).await?;
    tracing::info!(tenant = %tenant_id, deleted, kept, "deleted the events of a tenant");
    Ok(Json(json!({ "deleted": deleted, "kept_in_flight": kept })))
}
