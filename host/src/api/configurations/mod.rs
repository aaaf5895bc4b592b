//! `/api/v1/configurations/{type}`: named, validated instances of prototypes, after the
//! integration-platform reference. `type` is the prototype kind (`destination`,
//! `transformer`).
//!
//! Configurations are admin-level, named and versioned. A `transformer` configuration is
//! what a tenant destination's `transformers` chain references (by identifier); a
//! `destination` configuration is an operator's named, validated destination setup
//! (with history, export and import); tenant destinations of the Outpost API are not
//! configurations and keep their own API unchanged.
//!
//! Layout: `model.rs` (wire shape, checks, violations), `history.rs` (history, restore,
//! labels, status), `usages.rs` (who uses what; deletes refused while used),
//! `transfer.rs` (export, import).

mod history;
mod model;
mod transfer;
mod usages;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::merge_patch::merge_patch;
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{ConfigurationRow, Write};
use model::{check, editor, parse_type, rejected, render, CheckOptions};
pub use model::{ConfigurationBody, Violation};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/configurations/export", post(transfer::export_objects))
        .route("/configurations/import", post(transfer::import))
        .route("/configurations/relations", post(usages::relations_of_many))
        .route(
            "/configurations/{type}",
            get(list).post(create).delete(delete_by_filter),
        )
        .route("/configurations/{type}/export", post(transfer::export_type))
        .route(
            "/configurations/{type}/{identifier}",
            get(get_one).put(replace).patch(patch).delete(remove),
        )
        .route(
            "/configurations/{type}/{identifier}/history",
            get(history::list),
        )
        .route(
            "/configurations/{type}/{identifier}/restore",
            post(history::restore),
        )
        .route(
            "/configurations/{type}/{identifier}/labels",
            put(history::labels),
        )
        .route(
            "/configurations/{type}/{identifier}/status",
            put(history::status),
        )
        .route(
            "/configurations/{type}/{identifier}/enable",
            put(history::enable),
        )
        .route(
            "/configurations/{type}/{identifier}/disable",
            put(history::disable),
        )
        .route(
            "/configurations/{type}/{identifier}/usages",
            get(usages::list),
        )
        .route(
            "/configurations/{type}/{identifier}/dependants",
            get(usages::dependants),
        )
        .route(
            "/configurations/{type}/{identifier}/relations",
            get(usages::relations),
        )
        .route(
            "/configurations/transformer/{identifier}/run",
            post(super::transformers::run_configuration),
        )
}

/// Filters of a list or a delete-by-filter.
#[derive(Deserialize, Default, Debug)]
pub(super) struct Filter {
    /// Substring of the name (case-insensitive).
    name: Option<String>,
    /// A label the configuration carries.
    label: Option<String>,
    /// Prototype id.
    prototype: Option<String>,
    /// Disabled or not.
    disabled: Option<bool>,
    /// Identifiers (delete-by-filter body only).
    #[serde(default)]
    identifiers: Vec<String>,
}

impl Filter {
    fn matches(&self, row: &ConfigurationRow) -> bool {
        self.name
            .as_ref()
            .is_none_or(|n| row.name.to_lowercase().contains(&n.to_lowercase()))
            && self.label.as_ref().is_none_or(|l| row.labels.contains(l))
            && self.prototype.as_ref().is_none_or(|p| &row.prototype == p)
            && self.disabled.is_none_or(|d| row.disabled == d)
            && (self.identifiers.is_empty() || self.identifiers.contains(&row.identifier))
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.label.is_none()
            && self.prototype.is_none()
            && self.disabled.is_none()
            && self.identifiers.is_empty()
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(flatten)]
    filter: ListFilter,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Query-string filters (`disabled` arrives as text).
#[derive(Deserialize, Default)]
struct ListFilter {
    name: Option<String>,
    label: Option<String>,
    prototype: Option<String>,
    disabled: Option<String>,
}

fn filter_from_query(q: ListFilter) -> ApiResult<Filter> {
    let disabled = match q.disabled.as_deref() {
        None => None,
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "disabled: must be true or false, not `{other}`"
            )))
        }
    };
    Ok(Filter {
        name: q.name,
        label: q.label,
        prototype: q.prototype,
        disabled,
        identifiers: Vec::new(),
    })
}

/// `{"metadata": {"totalCount": n}, "results": [...]}`.
pub(super) fn page(total: usize, results: Vec<Value>) -> Value {
    json!({"metadata": {"totalCount": total}, "results": results})
}

async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be from 1 to 1000"));
    }
    let offset = query.offset.unwrap_or(0);
    let filter = filter_from_query(query.filter)?;
    let rows: Vec<ConfigurationRow> = state
        .store
        .list_configurations(&r#type)
        .await?
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    let total = rows.len();
    let results = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| render(&state, r))
        .collect();
    Ok(Json(page(total, results)))
}

async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let row = state.store.configuration(&r#type, &identifier).await?;
    Ok(Json(json!({"object": render(&state, &row)})))
}

/// Check `body` and write it; answers the stored configuration.
pub(super) async fn save(
    state: &AppState,
    r#type: &str,
    body: &ConfigurationBody,
    editor: &str,
    write: Write,
    action: &str,
) -> ApiResult<ConfigurationRow> {
    let options = CheckOptions {
        validate_variables: true,
    };
    let row = check(state, r#type, body, editor, options)
        .await
        .map_err(rejected)?;
    Ok(state.store.write_configuration(&row, write, action).await?)
}

async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Json(body): Json<ConfigurationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    type_matches(&r#type, &body)?;
    let row = save(
        &state,
        &r#type,
        &body,
        &editor(&principal),
        Write::Create,
        "create",
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": render(&state, &row)})),
    ))
}

fn type_matches(r#type: &str, body: &ConfigurationBody) -> ApiResult<()> {
    match &body.r#type {
        Some(t) if t != r#type => Err(rejected(vec![Violation::new(
            "type",
            format!("is `{t}` but the path says `{type}`"),
            "Leave `type` out or make it match the path.",
        )])),
        _ => Ok(()),
    }
}

fn identifier_matches(identifier: &str, body: &ConfigurationBody) -> ApiResult<()> {
    match &body.identifier {
        Some(i) if i != identifier => Err(rejected(vec![Violation::new(
            "identifier",
            format!("is `{i}` but the path says `{identifier}`; identifiers cannot change"),
            "Create a new configuration under the new identifier instead.",
        )])),
        _ => Ok(()),
    }
}

async fn replace(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(mut body): Json<ConfigurationBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    type_matches(&r#type, &body)?;
    identifier_matches(&identifier, &body)?;
    state.store.configuration(&r#type, &identifier).await?;
    body.identifier = Some(identifier);
    let row = save(
        &state,
        &r#type,
        &body,
        &editor(&principal),
        Write::Update,
        "update",
    )
    .await?;
    Ok(Json(json!({"object": render(&state, &row)})))
}

async fn patch(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(changes): Json<Value>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    if !changes.is_object() {
        return Err(ApiError::bad_request("body: must be a JSON object"));
    }
    let current = state.store.configuration(&r#type, &identifier).await?;
    let mut merged =
        serde_json::to_value(model::body_of(&state, &current)?).map_err(ApiError::internal)?;
    merge_patch(&mut merged, &changes);
    let body: ConfigurationBody =
        serde_json::from_value(merged).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    type_matches(&r#type, &body)?;
    identifier_matches(&identifier, &body)?;
    let row = save(
        &state,
        &r#type,
        &body,
        &editor(&principal),
        Write::Update,
        "update",
    )
    .await?;
    Ok(Json(json!({"object": render(&state, &row)})))
}

async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    state.store.configuration(&r#type, &identifier).await?;
    usages::refuse_if_used(&state, &r#type, std::slice::from_ref(&identifier)).await?;
    state
        .store
        .delete_configurations(
            &r#type,
            std::slice::from_ref(&identifier),
            &editor(&principal),
        )
        .await?;
    Ok(Json(
        json!({"message": format!("{type} configuration {identifier} deleted")}),
    ))
}

async fn delete_by_filter(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Json(filter): Json<Filter>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    if filter.is_empty() {
        return Err(ApiError::bad_request(
            "filter: give at least one of name, label, prototype, disabled or identifiers \
             (deleting every configuration of a type by accident is not offered)",
        ));
    }
    let chosen: Vec<String> = state
        .store
        .list_configurations(&r#type)
        .await?
        .into_iter()
        .filter(|r| filter.matches(r))
        .map(|r| r.identifier)
        .collect();
    usages::refuse_if_used(&state, &r#type, &chosen).await?;
    let deleted = state
        .store
        .delete_configurations(&r#type, &chosen, &editor(&principal))
        .await?;
    Ok(Json(json!({"deleted": deleted})))
}
