//! `GET /metrics/events` and `GET /metrics/attempts`: counts over time buckets, by topic,
//! destination and status, in Outpost's `MetricsResponse` shape.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{parse_time, rfc3339};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::now_ms;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(attempts))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MetricsQuery {
    /// Start of the window (RFC 3339); default a day before its end.
    #[serde(rename = "time[start]")]
    #[param(format = DateTime)]
    start: Option<String>,
    /// End of the window (RFC 3339); default now.
    #[serde(rename = "time[end]")]
    #[param(format = DateTime)]
    end: Option<String>,
    /// Bucket size: a number and `s`, `m`, `h`, `d` or `w` (default `1h`); at most 10000
    /// buckets.
    granularity: Option<String>,
    /// Comma-separated: `topic` (events); `topic`, `destination_id`, `status` (attempts).
    dimensions: Option<String>,
    /// Attempts only, comma-separated: `count`, `successful_count`, `failed_count`,
    /// `error_rate` (default all).
    measures: Option<String>,
    /// Only this tenant (admin credentials; a tenant JWT sees its own only).
    tenant_id: Option<String>,
    #[serde(rename = "filters[destination_id]")]
    destination_id: Option<String>,
    #[serde(rename = "filters[topic]")]
    topic: Option<String>,
    #[serde(rename = "filters[status]")]
    status: Option<String>,
}

/// Outpost's `MetricsResponse`.
#[derive(Serialize, utoipa::ToSchema)]
struct MetricsResponse {
    data: Vec<MetricsRow>,
    metadata: MetricsMetadata,
}

/// One bucket of one combination of dimension values.
#[derive(Serialize, utoipa::ToSchema)]
struct MetricsRow {
    /// Start of the bucket.
    #[schema(format = DateTime)]
    time_bucket: String,
    /// The dimension values of this row.
    dimensions: BTreeMap<String, String>,
    /// The measures.
    metrics: BTreeMap<String, f64>,
}

/// How the answer was computed.
#[derive(Serialize, utoipa::ToSchema)]
struct MetricsMetadata {
    granularity: String,
    query_time_ms: u64,
    row_count: usize,
    row_limit: usize,
    truncated: bool,
}

/// `1m`, `5m`, `1h`, `1d`, ... → milliseconds.
fn granularity_ms(g: &str) -> ApiResult<i64> {
    let err = || {
        ApiError::bad_request(format!(
            "granularity: `{g}` is not a duration like 1m, 1h or 1d"
        ))
    };
    let split = g.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let n: i64 = g[..split].parse().map_err(|_| err())?;
    let unit = match &g[split..] {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(err()),
    };
    if n <= 0 {
        return Err(err());
    }
    Ok(n * unit)
}

struct Window {
    from: i64,
    to: i64,
    bucket: i64,
    granularity: String,
    dimensions: Vec<String>,
    tenant: Option<String>,
}

fn window(principal: &Principal, q: &MetricsQuery, allowed: &[&str]) -> ApiResult<Window> {
    let to = q
        .end
        .as_deref()
        .map(|t| parse_time("time[end]", t))
        .transpose()?
        .unwrap_or_else(now_ms);
    let from = q
        .start
        .as_deref()
        .map(|t| parse_time("time[start]", t))
        .transpose()?
        .unwrap_or(to - 86_400_000);
    if from >= to {
        return Err(ApiError::bad_request(
            "time[start]: must be before time[end]",
        ));
    }
    let granularity = q.granularity.clone().unwrap_or_else(|| "1h".into());
    let bucket = granularity_ms(&granularity)?;
    if (to - from) / bucket > 10_000 {
        return Err(ApiError::bad_request(
            "granularity: too fine for the time range (over 10000 buckets)",
        ));
    }
    let dimensions: Vec<String> = q
        .dimensions
        .as_deref()
        .map(|d| {
            d.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for d in &dimensions {
        if !allowed.contains(&d.as_str()) {
            return Err(ApiError::bad_request(format!(
                "dimensions: unknown dimension `{d}` (known: {})",
                allowed.join(", ")
            )));
        }
    }
    let tenant = match principal.tenant_id() {
        Some(own) => Some(own.to_string()),
        None => q.tenant_id.clone(),
    };
    Ok(Window {
        from,
        to,
        bucket,
        granularity,
        dimensions,
        tenant,
    })
}

fn respond(
    w: &Window,
    started: Instant,
    rows: BTreeMap<(i64, BTreeMap<String, String>), BTreeMap<String, f64>>,
) -> Json<MetricsResponse> {
    let data: Vec<MetricsRow> = rows
        .into_iter()
        .map(|((bucket, dimensions), metrics)| MetricsRow {
            time_bucket: rfc3339(bucket),
            dimensions,
            metrics,
        })
        .collect();
    let count = data.len();
    Json(MetricsResponse {
        data,
        metadata: MetricsMetadata {
            granularity: w.granularity.clone(),
            query_time_ms: started.elapsed().as_millis() as u64,
            row_count: count,
            row_limit: 10_000,
            truncated: false,
        },
    })
}

/// Published events per time bucket (measure `count`), optionally by `topic`.
#[utoipa::path(
    get,
    path = "/metrics/events",
    tag = "metrics",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(MetricsQuery),
    responses((status = 200, description = "Counts", body = MetricsResponse))
)]
async fn events(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<MetricsQuery>,
) -> ApiResult<Json<MetricsResponse>> {
    let started = Instant::now();
    let w = window(&principal, &q, &["topic"])?;
    let mut out: BTreeMap<(i64, BTreeMap<String, String>), BTreeMap<String, f64>> = BTreeMap::new();
    for (bucket, topic, n) in state
        .store
        .event_counts(w.tenant.as_deref(), w.from, w.to, w.bucket)
        .await?
    {
        if q.topic.as_ref().is_some_and(|t| t != &topic) {
            continue;
        }
        let mut dims = BTreeMap::new();
        if w.dimensions.iter().any(|d| d == "topic") {
            dims.insert("topic".to_string(), topic);
        }
        *out.entry((bucket, dims))
            .or_default()
            .entry("count".into())
            .or_default() += n as f64;
    }
    Ok(respond(&w, started, out))
}

/// Delivery attempts per time bucket, optionally by topic, destination and status.
#[utoipa::path(
    get,
    path = "/metrics/attempts",
    tag = "metrics",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(MetricsQuery),
    responses((status = 200, description = "Counts", body = MetricsResponse))
)]
async fn attempts(
    principal: Principal,
    State(state): State<AppState>,
    Query(q): Query<MetricsQuery>,
) -> ApiResult<Json<MetricsResponse>> {
    let started = Instant::now();
    let w = window(&principal, &q, &["topic", "destination_id", "status"])?;
    let measures: Vec<String> = q
        .measures
        .as_deref()
        .unwrap_or("count,successful_count,failed_count,error_rate")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    for m in &measures {
        if !["count", "successful_count", "failed_count", "error_rate"].contains(&m.as_str()) {
            return Err(ApiError::bad_request(format!(
                "measures: `{m}` is not supported (use count, successful_count, failed_count, error_rate)"
            )));
        }
    }
    let mut out: BTreeMap<(i64, BTreeMap<String, String>), BTreeMap<String, f64>> = BTreeMap::new();
    for (bucket, status, destination, topic, n) in state
        .store
        .attempt_counts(w.tenant.as_deref(), w.from, w.to, w.bucket)
        .await?
    {
        if q.destination_id.as_ref().is_some_and(|d| d != &destination)
            || q.topic.as_ref().is_some_and(|t| t != &topic)
            || q.status.as_ref().is_some_and(|s| s != &status)
        {
            continue;
        }
        let mut dims = BTreeMap::new();
        for d in &w.dimensions {
            let value = match d.as_str() {
                "topic" => topic.clone(),
                "destination_id" => destination.clone(),
                _ => status.clone(),
            };
            dims.insert(d.clone(), value);
        }
        let entry = out.entry((bucket, dims)).or_default();
        *entry.entry("count".into()).or_default() += n as f64;
        let key = if status == "success" {
            "successful_count"
        } else {
            "failed_count"
        };
        *entry.entry(key.into()).or_default() += n as f64;
    }
    for metrics in out.values_mut() {
        let count = metrics.get("count").copied().unwrap_or(0.0);
        let failed = metrics.get("failed_count").copied().unwrap_or(0.0);
        metrics.entry("successful_count".into()).or_insert(0.0);
        metrics.entry("failed_count".into()).or_insert(0.0);
        metrics.insert(
            "error_rate".into(),
            if count > 0.0 { failed / count } else { 0.0 },
        );
        metrics.retain(|k, _| measures.contains(k));
    }
    Ok(respond(&w, started, out))
}
