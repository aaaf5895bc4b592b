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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::merge_patch::merge_patch;
use super::wire::{Message, Object, Results};
use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::store::{ConfigurationRow, Write};
use model::{check, editor, parse_type, rejected, render, CheckOptions, ConfigurationView};
pub use model::{ConfigurationBody, Violation};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(transfer::export_objects))
        .routes(routes!(transfer::import))
        .routes(routes!(usages::relations_of_many))
        .routes(routes!(list, create, delete_by_filter))
        .routes(routes!(transfer::export_type))
        .routes(routes!(get_one, replace, patch, remove))
        .routes(routes!(history::list))
        .routes(routes!(history::restore))
        .routes(routes!(history::labels))
        .routes(routes!(history::status))
        .routes(routes!(history::enable))
        .routes(routes!(history::disable))
        .routes(routes!(usages::list))
        .routes(routes!(usages::dependants))
        .routes(routes!(usages::relations))
        .routes(routes!(super::transformers::run_configuration))
}

/// Filters of a list or a delete-by-filter.
#[derive(Deserialize, Default, Debug, utoipa::ToSchema)]
#[schema(as = ConfigurationFilter)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(flatten)]
    #[param(ignore)]
    filter: ListFilter,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Skip this many.
    offset: Option<usize>,
}

/// Query-string filters (`disabled` arrives as text).
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Substring of the name (case-insensitive).
    name: Option<String>,
    /// A label the configuration carries.
    label: Option<String>,
    /// Prototype id.
    prototype: Option<String>,
    /// `true` or `false`.
    #[param(value_type = Option<bool>)]
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

/// Configurations of a type.
#[utoipa::path(
    get,
    path = "/configurations/{type}",
    tag = "configurations",
    params(ListQuery, ("type" = ConfigurationType, Path), ListFilter),
    responses((status = 200, description = "A page of configurations", body = Results<ConfigurationView>))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Results<ConfigurationView>>> {
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
    Ok(Json(Results::page(total, results)))
}

/// The configuration types.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the path parameter; it is read as text.
enum ConfigurationType {
    Destination,
    Transformer,
}

/// One configuration.
#[utoipa::path(
    get,
    path = "/configurations/{type}/{identifier}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration", body = Object<ConfigurationView>))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let row = state.store.configuration(&r#type, &identifier).await?;
    Ok(Json(Object {
        object: render(&state, &row),
    }))
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

/// Create a configuration: checked against its prototype's fields and plugin.
#[utoipa::path(
    post,
    path = "/configurations/{type}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses(
        (status = 201, description = "Created", body = Object<ConfigurationView>),
        (status = 409, description = "The identifier is taken", body = super::error::ErrorBody),
    )
)]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Json(body): Json<ConfigurationBody>,
) -> ApiResult<(StatusCode, Json<Object<ConfigurationView>>)> {
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
        Json(Object {
            object: render(&state, &row),
        }),
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

/// Replace a configuration.
#[utoipa::path(
    put,
    path = "/configurations/{type}/{identifier}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration as changed", body = Object<ConfigurationView>))
)]
async fn replace(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(mut body): Json<ConfigurationBody>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
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
    Ok(Json(Object {
        object: render(&state, &row),
    }))
}

/// Change a configuration with a JSON merge patch; checked again as a whole.
#[utoipa::path(
    patch,
    path = "/configurations/{type}/{identifier}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    request_body(content = ConfigurationBody, description = "A JSON merge patch of the configuration"),
    responses((status = 200, description = "The configuration as changed", body = Object<ConfigurationView>))
)]
async fn patch(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(changes): Json<Value>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
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
    Ok(Json(Object {
        object: render(&state, &row),
    }))
}

/// Delete a configuration no destination uses (its history stays).
#[utoipa::path(
    delete,
    path = "/configurations/{type}/{identifier}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 409, description = "Still used; `data` lists the users", body = super::error::ErrorBody),
    )
)]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
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
    Ok(Json(Message {
        message: format!("{type} configuration {identifier} deleted"),
    }))
}

/// How many configurations a delete removed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationsDeleted)]
struct Deleted {
    deleted: u64,
}

/// Delete the configurations matching a filter (at least one filter field is required).
#[utoipa::path(
    delete,
    path = "/configurations/{type}",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 409, description = "One is still used; nothing was deleted", body = super::error::ErrorBody),
    )
)]
async fn delete_by_filter(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    Json(filter): Json<Filter>,
) -> ApiResult<Json<Deleted>> {
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
    Ok(Json(Deleted { deleted }))
}
