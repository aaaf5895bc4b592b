//! `/api/v1/audit-trail`: list, get and export (NDJSON) the calls the audit middleware
//! ([`super::audit_recorder`]) recorded. Admin only.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageQuery, SeekPagination};
use super::wire::{json_column, rfc3339, split_list, TimeRange};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{AuditEntry, AuditQuery, Store};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(get_one))
}

/// An entry on the wire (field names after the integration-platform reference, in this
/// API's snake case).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
struct EntryView {
    id: String,
    /// `admin`, `api-token:<name>` or `tenant:<id>`.
    user: String,
    /// `admin`, `api_token` or `tenant`.
    user_type: String,
    tenant_id: Option<String>,
    /// `METHOD path`.
    action: String,
    method: String,
    path: String,
    /// First path segment under `/api/v1`.
    category: String,
    /// The answer's HTTP status.
    status: i64,
    ip_address: Option<String>,
    message: String,
    /// The JSON body (any JSON value) with secret-named fields redacted, a summary of a
    /// body that is not JSON, or `null`.
    request: Value,
    duration_ms: i64,
    #[schema(format = DateTime)]
    created_at: String,
}

fn entry_view(e: AuditEntry) -> EntryView {
    EntryView {
        action: format!("{} {}", e.method, e.path),
        message: format!("{} {} {} by {}", e.method, e.path, e.status, e.actor),
        request: json_column(e.request.as_deref()),
        created_at: rfc3339(e.time),
        id: e.id,
        user: e.actor,
        user_type: e.actor_type,
        tenant_id: e.tenant_id,
        method: e.method,
        path: e.path,
        category: e.category,
        status: e.status,
        ip_address: e.ip_address,
        duration_ms: e.duration_ms,
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Filters {
    /// `admin`, `api-token:<name>` or `tenant:<id>`.
    user: Option<String>,
    /// `admin`, `api_token` or `tenant`.
    user_type: Option<String>,
    tenant_id: Option<String>,
    /// HTTP methods (comma-separated).
    method: Option<String>,
    /// First path segments under `/api/v1` (comma-separated).
    category: Option<String>,
    /// An HTTP status code.
    #[param(value_type = Option<i64>)]
    status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    time: TimeRange,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

impl Filters {
    fn query(&self, after: Option<(i64, String)>, desc: bool, limit: i64) -> ApiResult<AuditQuery> {
        if let Some(t) = &self.user_type {
            if !["admin", "api_token", "tenant"].contains(&t.as_str()) {
                return Err(ApiError::bad_request(
                    "user_type: must be admin, api_token or tenant",
                ));
            }
        }
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<i64>()
                    .map_err(|_| ApiError::bad_request("status: must be an HTTP status code"))
            })
            .transpose()?;
        let (time_gte, time_lte) = self.time.bounds()?;
        Ok(AuditQuery {
            actor: self.user.clone(),
            actor_type: self.user_type.clone(),
            tenant_id: self.tenant_id.clone(),
            methods: split_list(self.method.as_deref())
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            categories: split_list(self.category.as_deref()),
            status,
            time_gte,
            time_lte,
            after,
            desc,
            limit,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EntryPage {
    models: Vec<EntryView>,
    pagination: SeekPagination,
}

/// Recorded calls, newest first.
#[utoipa::path(
    get,
    path = "/audit-trail",
    tag = "audit-trail",
    params(Filters, TimeRange, PageQuery),
    responses((status = 200, description = "A page of entries", body = EntryPage))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Query(f): Query<Filters>,
) -> ApiResult<Json<EntryPage>> {
    principal.require_admin()?;
    let page = f.page.validate()?;
    let query = f.query(page.position(), page.desc(), page.limit())?;
    let rows = state.store.list_audit_entries(&query).await?;
    let (rows, pagination) = page.paginate(rows, |e| (e.time, e.id.clone()));
    Ok(Json(EntryPage {
        models: rows.into_iter().map(entry_view).collect(),
        pagination,
    }))
}

/// One entry.
#[utoipa::path(
    get,
    path = "/audit-trail/{entry_id}",
    tag = "audit-trail",
    responses((status = 200, description = "The entry", body = EntryView))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(entry_id): Path<String>,
) -> ApiResult<Json<EntryView>> {
    principal.require_admin()?;
    let entry = state
        .store
        .audit_entry(&entry_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("audit entry {entry_id}")))?;
    Ok(Json(entry_view(entry)))
}

/// Rows per database read while exporting.
const EXPORT_CHUNK: i64 = 1000;

/// Every matching entry, oldest first, one JSON object per line, streamed.
#[utoipa::path(
    get,
    path = "/audit-trail/export",
    tag = "audit-trail",
    params(Filters, TimeRange),
    responses((status = 200, description = "One `AuditEntry` per line", content_type = "application/x-ndjson", body = String))
)]
async fn export(
    principal: Principal,
    State(state): State<AppState>,
    Query(f): Query<Filters>,
) -> ApiResult<Response> {
    principal.require_admin()?;
    let first = f.query(None, false, EXPORT_CHUNK)?;
    let store: Store = state.store.clone();
    let chunks = futures::stream::unfold(Some(first), move |query| {
        let store = store.clone();
        async move {
            let mut query = query?;
            let mut rows = match store.list_audit_entries(&query).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed");
                    return Some((Err(std::io::Error::other("audit export failed")), None));
                }
            };
            let more = rows.len() as i64 > query.limit;
            rows.truncate(query.limit as usize);
            let next = match (more, rows.last()) {
                (true, Some(last)) => {
                    query.after = Some((last.time, last.id.clone()));
                    Some(query)
                }
                _ => None,
            };
            let mut text = String::new();
            for row in rows {
                let line = serde_json::to_string(&entry_view(row)).unwrap_or_default();
                text.push_str(&line);
                text.push('\n');
            }
            Some((Ok::<_, std::io::Error>(text), next))
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-trail.ndjson\"",
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
