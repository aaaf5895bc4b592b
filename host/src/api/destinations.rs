//! `/api/v1/tenants/{tenant_id}/destinations`: Outpost's destination resource. Types come
//! from the loaded destination prototypes; config and credentials are checked by the
//! prototype's fields and its plugin's `validate`; credentials are encrypted at rest and
//! obfuscated on read where the field is sensitive.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::destination_view::{view, DestinationView, TopicsSchema};
use super::merge_patch::merge_patch;
use super::secrets::{apply_rotation, fill_generated};
use super::wire::{map_column, split_list, string_map, Success};
use super::{ApiError, ApiResult, AppState, FieldProblem, Json, Query};
use crate::auth::Principal;
use crate::delivery::credentials_aad;
use crate::delivery::filter::{Filter, Topics};
use crate::runtime::manifest::{Prototype, PrototypeKind};
use crate::runtime::LoadedPlugin;
use crate::store::{now_ms, DestinationRow};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(enable))
        .routes(routes!(disable))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only these types (comma-separated).
    #[serde(default, rename = "type")]
    types: Option<String>,
    /// Only destinations receiving all of these topics (comma-separated).
    #[serde(default)]
    topics: Option<String>,
}

/// The tenant's destinations.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    params(ListQuery),
    responses((status = 200, description = "Its destinations", body = Vec<DestinationView>))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<DestinationView>>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.tenant(&tenant_id).await?;
    let types = split_list(query.types.as_deref());
    let topics = split_list(query.topics.as_deref());
    let mut out = Vec::new();
    for row in state.store.list_destinations(&tenant_id).await? {
        if !types.is_empty() && !types.contains(&row.r#type) {
            continue;
        }
        let row_topics: Topics = serde_json::from_str(&row.topics).unwrap_or(Topics::All);
        if !topics.is_empty()
            && !topics
                .iter()
                .all(|t| crate::delivery::filter::topic_matches(&row_topics, t))
        {
            continue;
        }
        out.push(view(&state, &row)?);
    }
    Ok(Json(out))
}

/// One destination.
#[utoipa::path(
    get,
    path = "/tenants/{tenant_id}/destinations/{destination_id}",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The destination", body = DestinationView))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<Json<DestinationView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state.store.destination(&tenant_id, &id).await?;
    Ok(Json(view(&state, &row)?))
}

/// Fields a create or update may carry (on update, `config`, `credentials` and the
/// metadata maps are JSON merge patches).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = DestinationRequest)]
struct DestinationBody {
    /// Chosen id (create only; generated when absent).
    id: Option<String>,
    /// A destination prototype id; required on create, cannot change.
    #[serde(rename = "type")]
    r#type: Option<String>,
    /// Required on create.
    #[schema(value_type = Option<TopicsSchema>)]
    topics: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, String>>)]
    delivery_metadata: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Option<Value>,
    /// Update only: a date-time disables, `null` enables.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    disabled_at: Option<Value>,
    /// Outrider extension: retry schedule for this destination (`30s,5m,1h`), `null` to
    /// follow the server's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    retry_schedule: Option<Value>,
    /// Outrider extension: attempts for this destination, `null` for the server's.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    retry_max_attempts: Option<Value>,
    /// Outrider extension: ordered transformer configuration identifiers, `null` or `[]`
    /// for none.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    transformers: Option<Value>,
}

/// Check and apply the retry overrides of a body to a row.
fn apply_retry(body: &DestinationBody, row: &mut DestinationRow) -> ApiResult<()> {
    match &body.retry_schedule {
        None => {}
        Some(Value::Null) => row.retry_schedule = None,
        Some(Value::String(s)) => {
            crate::delivery::retry::RetrySchedule::parse(s)
                .map_err(|e| ApiError::bad_request(format!("retry_schedule: {e}")))?;
            row.retry_schedule = Some(s.clone());
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "retry_schedule: must be a string like \"30s,5m,1h\" or null",
            ))
        }
    }
    match &body.retry_max_attempts {
        None => {}
        Some(Value::Null) => row.retry_max_attempts = None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| (1..=100).contains(&n)) => {
            row.retry_max_attempts = n.as_i64()
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "retry_max_attempts: must be an integer from 1 to 100, or null",
            ))
        }
    }
    Ok(())
}

fn prototype_for(
    state: &AppState,
    ty: &str,
) -> ApiResult<(std::sync::Arc<LoadedPlugin>, Prototype)> {
    let plugin = state
        .registry
        .find_prototype(PrototypeKind::Destination, ty)
        .ok_or_else(|| {
            let mut known: Vec<String> = state
                .registry
                .list()
                .iter()
                .flat_map(|p| {
                    p.manifest
                        .prototypes
                        .iter()
                        .filter(|p| p.kind == PrototypeKind::Destination)
                        .map(|p| p.id.clone())
                })
                .collect();
            known.sort();
            ApiError::validation(vec![FieldProblem {
                field: "type".into(),
                message: format!(
                    "unknown destination type `{ty}` (available: {})",
                    known.join(", ")
                ),
            }])
        })?;
    let prototype = plugin
        .prototype(PrototypeKind::Destination, ty)
        .cloned()
        .ok_or_else(|| ApiError::internal("registry index out of step with manifest"))?;
    Ok((plugin, prototype))
}

fn parse_topics(value: &Value) -> ApiResult<Topics> {
    let topics: Topics = serde_json::from_value(value.clone())
        .map_err(|_| ApiError::bad_request("topics: must be \"*\" or a list of topic names"))?;
    if let Topics::List(list) = &topics {
        if list.is_empty() {
            return Err(ApiError::bad_request(
                "topics: must not be empty (use \"*\" for all topics)",
            ));
        }
        if list.iter().any(|t| t.trim().is_empty()) {
            return Err(ApiError::bad_request(
                "topics: topic names must not be empty",
            ));
        }
    }
    Ok(topics)
}

fn parse_filter(value: &Option<Value>) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) if map.is_empty() => Ok(None),
        Some(raw @ Value::Object(_)) => {
            Filter::parse(raw).map_err(|e| {
                ApiError::validation(vec![FieldProblem {
                    field: "filter".into(),
                    message: e.to_string(),
                }])
            })?;
            Ok(Some(raw.to_string()))
        }
        Some(_) => Err(ApiError::bad_request("filter: must be an object")),
    }
}

fn object(field: &str, value: Option<Value>) -> ApiResult<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ApiError::bad_request(format!("{field}: must be an object"))),
    }
}

/// Ask the prototype's fields and the plugin whether config and credentials are valid.
async fn validate(
    plugin: &LoadedPlugin,
    prototype: &Prototype,
    config: &Value,
    credentials: &Value,
) -> ApiResult<()> {
    let problems = plugin
        .validate(
            PrototypeKind::Destination,
            &prototype.id,
            config,
            credentials,
        )
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the {} plugin failed to validate: {e}", prototype.id),
            )
        })?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(
            problems
                .into_iter()
                .map(|p| FieldProblem {
                    field: p.field,
                    message: p.message,
                })
                .collect(),
        ))
    }
}

fn encrypt_credentials(state: &AppState, id: &str, credentials: &Value) -> String {
    state
        .keyring
        .encrypt_json(credentials, credentials_aad(id).as_bytes())
}

/// Create a destination: checked by its prototype's fields and plugin, credentials
/// encrypted at rest (generated ones, such as a webhook secret, filled in).
#[utoipa::path(
    post,
    path = "/tenants/{tenant_id}/destinations",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses(
        (status = 201, description = "Created", body = DestinationView),
        (status = 409, description = "The id is taken, or the tenant has its maximum of destinations", body = super::error::ErrorBody),
    )
)]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Json(body): Json<DestinationBody>,
) -> ApiResult<(StatusCode, Json<DestinationView>)> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.tenant(&tenant_id).await?;
    let ty = body
        .r#type
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("type: is required"))?;
    let (plugin, prototype) = prototype_for(&state, ty)?;
    let topics = parse_topics(
        body.topics
            .as_ref()
            .ok_or_else(|| ApiError::bad_request("topics: is required"))?,
    )?;
    let filter = parse_filter(&body.filter)?;
    let config = Value::Object(object("config", body.config.clone())?);
    let mut credentials = object("credentials", body.credentials.clone())?;
    fill_generated(&prototype, &mut credentials);
    let credentials = Value::Object(credentials);
    let delivery_metadata = string_map(
        "delivery_metadata",
        body.delivery_metadata.as_ref().unwrap_or(&Value::Null),
    )?;
    let metadata = string_map("metadata", body.metadata.as_ref().unwrap_or(&Value::Null))?;
    let id = match body.id.clone() {
        Some(id) => {
            super::tenants::check_tenant_id(&id).map_err(|_| {
                ApiError::bad_request(
                    "id: must be 1 to 255 characters of letters, digits, `_`, `-`, `.` or `:`",
                )
            })?;
            id
        }
        None => format!("des_{}", ulid::Ulid::new().to_string().to_lowercase()),
    };
    validate(&plugin, &prototype, &config, &credentials).await?;
    let mut row = DestinationRow {
        id: id.clone(),
        tenant_id: tenant_id.clone(),
        r#type: prototype.id.clone(),
        topics: serde_json::to_string(&topics).expect("topics serialise"),
        filter,
        config: config.to_string(),
        credentials: encrypt_credentials(&state, &id, &credentials),
        delivery_metadata: map_column(&delivery_metadata),
        metadata: map_column(&metadata),
        disabled_at: None,
        consecutive_failures: 0,
        retry_schedule: None,
        retry_max_attempts: None,
        transformers: None,
        created_at: 0,
        updated_at: 0,
    };
    apply_retry(&body, &mut row)?;
    super::transformers::apply_chain(&state, body.transformers.as_ref(), &mut row).await?;
    let max = state.config.max_destinations_per_tenant as i64;
    let row = state.store.insert_destination(&row, max).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &row)?)))
}

/// Change a destination; checked again as a whole.
#[utoipa::path(
    patch,
    path = "/tenants/{tenant_id}/destinations/{destination_id}",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The destination as changed", body = DestinationView))
)]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
    Json(body): Json<DestinationBody>,
) -> ApiResult<Json<DestinationView>> {
    principal.require_tenant_access(&tenant_id)?;
    let mut row = state.store.destination(&tenant_id, &id).await?;
    if let Some(ty) = &body.r#type {
        if ty != &row.r#type {
            return Err(ApiError::bad_request(format!(
                "type: cannot change a {} destination into {ty}",
                row.r#type
            )));
        }
    }
    let (plugin, prototype) = prototype_for(&state, &row.r#type)?;
    if let Some(topics) = &body.topics {
        row.topics = serde_json::to_string(&parse_topics(topics)?).expect("topics serialise");
    }
    if body.filter.is_some() {
        row.filter = parse_filter(&body.filter)?;
    }
    apply_retry(&body, &mut row)?;
    super::transformers::apply_chain(&state, body.transformers.as_ref(), &mut row).await?;
    let mut config: Value = serde_json::from_str(&row.config).unwrap_or(Value::Object(Map::new()));
    if let Some(patch) = &body.config {
        object("config", Some(patch.clone()))?;
        merge_patch(&mut config, patch);
    }
    let mut credentials = state
        .keyring
        .decrypt_json(&row.credentials, credentials_aad(&row.id).as_bytes())
        .map_err(ApiError::internal)?;
    if let Some(patch) = &body.credentials {
        let mut patch = object("credentials", Some(patch.clone()))?;
        let Value::Object(current) = &mut credentials else {
            return Err(ApiError::internal("stored credentials are not an object"));
        };
        apply_rotation(&prototype, current, &mut patch)?;
        merge_patch(&mut credentials, &Value::Object(patch));
    }
    for (field, value, column) in [
        (
            "delivery_metadata",
            &body.delivery_metadata,
            &mut row.delivery_metadata,
        ),
        ("metadata", &body.metadata, &mut row.metadata),
    ] {
        if let Some(patch) = value {
            let mut current = super::wire::json_column(column.as_deref());
            if current.is_null() {
                current = Value::Object(Map::new());
            }
            merge_patch(&mut current, patch);
            *column = map_column(&string_map(field, &current)?);
        }
    }
    if let Some(disabled) = &body.disabled_at {
        row.disabled_at = match disabled {
            Value::Null => None,
            Value::String(s) => Some(super::wire::parse_time("disabled_at", s)?),
            _ => {
                return Err(ApiError::bad_request(
                    "disabled_at: must be a date-time or null",
                ))
            }
        };
    }
    validate(&plugin, &prototype, &config, &credentials).await?;
    row.config = config.to_string();
    row.credentials = encrypt_credentials(&state, &row.id, &credentials);
    let row = state.store.update_destination(&row).await?;
    Ok(Json(view(&state, &row)?))
}

/// Delete a destination.
#[utoipa::path(
    delete,
    path = "/tenants/{tenant_id}/destinations/{destination_id}",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "Deleted", body = Success))
)]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Success>> {
    principal.require_tenant_access(&tenant_id)?;
    state.store.delete_destination(&tenant_id, &id).await?;
    Ok(Success::json())
}

/// Enable a destination.
#[utoipa::path(
    put,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/enable",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The destination, enabled", body = DestinationView))
)]
async fn enable(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<Json<DestinationView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state
        .store
        .set_destination_disabled(&tenant_id, &id, None)
        .await?;
    Ok(Json(view(&state, &row)?))
}

/// Disable a destination: no deliveries until it is enabled again.
#[utoipa::path(
    put,
    path = "/tenants/{tenant_id}/destinations/{destination_id}/disable",
    tag = "destinations",
    security(("admin_key" = []), ("tenant_jwt" = []), ("api_token" = [])),
    responses((status = 200, description = "The destination, disabled", body = DestinationView))
)]
async fn disable(
    principal: Principal,
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<Json<DestinationView>> {
    principal.require_tenant_access(&tenant_id)?;
    let row = state.store.destination(&tenant_id, &id).await?;
    let at = row.disabled_at.unwrap_or_else(now_ms);
    let row = state
        .store
        .set_destination_disabled(&tenant_id, &id, Some(at))
        .await?;
    Ok(Json(view(&state, &row)?))
}
