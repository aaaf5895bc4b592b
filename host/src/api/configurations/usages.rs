//! Relations: which tenant destinations use a transformer configuration (their
//! `transformers` chain) and which environment variables a configuration references.
//! Deleting a configuration that is still used is refused with the list of its users.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::model::parse_type;
use super::ConfigurationType;
use crate::api::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::integration::chain::chain_of;
use crate::integration::variables::references;

/// Where `identifier` of `r#type` is used: `{propertyPath, type, specification}`.
pub(crate) async fn usages_of(
    state: &AppState,
    r#type: &str,
    identifier: &str,
) -> ApiResult<Vec<Value>> {
    if r#type != "transformer" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for destination in state.store.all_destinations().await? {
        for (i, used) in chain_of(&destination).iter().enumerate() {
            if used == identifier {
                out.push(json!({
                    "propertyPath": format!("transformers[{i}]"),
                    "type": "tenant-destination",
                    "specification": {"tenant_id": destination.tenant_id, "id": destination.id},
                }));
            }
        }
    }
    Ok(out)
}

/// 409 listing the users when any of `identifiers` is used.
pub(crate) async fn refuse_if_used(
    state: &AppState,
    r#type: &str,
    identifiers: &[String],
) -> ApiResult<()> {
    let mut users = Vec::new();
    for identifier in identifiers {
        for mut usage in usages_of(state, r#type, identifier).await? {
            usage["identifier"] = json!(identifier);
            users.push(usage);
        }
    }
    if users.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = users
        .iter()
        .map(|u| {
            format!(
                "{} {} of tenant {}",
                u["identifier"].as_str().unwrap_or_default(),
                u["specification"]["id"].as_str().unwrap_or_default(),
                u["specification"]["tenant_id"].as_str().unwrap_or_default()
            )
        })
        .collect();
    Err(ApiError::with_data(
        StatusCode::CONFLICT,
        format!(
            "still used (configuration, destination, tenant): {}; remove it from those \
             destinations' `transformers` first",
            names.join(", ")
        ),
        users,
    ))
}

/// Where a configuration is used.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConfigurationUsage)]
#[allow(dead_code)] // Describes the wire format of `usages_of`.
pub(super) struct UsageSchema {
    /// Where in the user, e.g. `transformers[0]`.
    property_path: String,
    /// `tenant-destination`.
    r#type: String,
    /// `{"tenant_id", "id"}` of the user.
    #[schema(value_type = Object)]
    specification: Value,
}

/// Something a configuration points at or is pointed at by.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationNodeRef)]
#[allow(dead_code)] // Describes the wire format of the nodes built below.
pub(super) struct NodeRefSchema {
    /// `environment-variable`, `tenant-destination`, ...
    r#type: String,
    identifier: String,
}

/// `GET .../usages`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationUsages)]
#[allow(dead_code)] // Describes the wire format of `list`.
pub(super) struct UsagesSchema {
    /// Who uses it.
    usages: Vec<UsageSchema>,
    /// What it uses (environment variables).
    uses: Vec<NodeRefSchema>,
}

/// A dependant and its usages.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationDependant)]
#[allow(dead_code)] // Describes the wire format of `dependants`.
pub(super) struct DependantSchema {
    r#type: String,
    identifier: String,
    usages: Vec<UsageSchema>,
}

/// `GET .../dependants`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationDependants)]
#[allow(dead_code)] // Describes the wire format of `dependants`.
pub(super) struct DependantsSchema {
    dependants: Vec<DependantSchema>,
}

/// One edge of the relations graph.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRelationship)]
#[allow(dead_code)] // Describes the wire format of `node`.
pub(super) struct RelationshipSchema {
    /// `uses` or `used-by`.
    relation: String,
    node: NodeRefSchema,
    paths: Vec<String>,
}

/// One node of the relations graph.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationNode)]
#[allow(dead_code)] // Describes the wire format of `node`.
pub(super) struct NodeSchema {
    r#type: String,
    identifier: String,
    name: String,
    relationships: Vec<RelationshipSchema>,
}

/// `{"nodes": [...]}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRelations)]
#[allow(dead_code)] // Describes the wire format of `relations`.
pub(super) struct RelationsSchema {
    nodes: Vec<NodeSchema>,
}

/// `GET .../{identifier}/usages`: who uses it, and the environment variables it uses.
#[utoipa::path(
    get,
    path = "/configurations/{type}/{identifier}/usages",
    tag = "configurations",
    operation_id = "usages",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "Its users and what it uses", body = UsagesSchema))
)]
pub(super) async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let row = state.store.configuration(&r#type, &identifier).await?;
    let params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
    let variables: Vec<Value> = references(&params)
        .into_iter()
        .map(|name| json!({"type": "environment-variable", "identifier": name}))
        .collect();
    Ok(Json(json!({
        "usages": usages_of(&state, &r#type, &identifier).await?,
        "uses": variables,
    })))
}

/// `GET .../{identifier}/dependants`: who depends on it, grouped by dependant.
#[utoipa::path(
    get,
    path = "/configurations/{type}/{identifier}/dependants",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "Its dependants", body = DependantsSchema))
)]
pub(super) async fn dependants(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    state.store.configuration(&r#type, &identifier).await?;
    let mut grouped: Vec<Value> = Vec::new();
    for usage in usages_of(&state, &r#type, &identifier).await? {
        let id = usage["specification"]["id"].clone();
        match grouped.iter_mut().find(|d| d["identifier"] == id) {
            Some(dependant) => dependant["usages"]
                .as_array_mut()
                .expect("usages is a list")
                .push(usage),
            None => grouped.push(json!({
                "type": usage["type"], "identifier": id, "usages": [usage],
            })),
        }
    }
    Ok(Json(json!({ "dependants": grouped })))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DirectionQuery {
    /// `down` (what it uses), `up` (what uses it), `both` (default) or `recursive`.
    #[param(value_type = Option<Direction>)]
    direction: Option<String>,
}

/// Which relations to follow.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the query parameter; it is read as text.
enum Direction {
    Down,
    Up,
    Both,
    Recursive,
}

/// A configuration named by type and identifier.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRef)]
pub(super) struct ObjectRef {
    #[serde(rename = "type")]
    #[schema(value_type = ConfigurationType)]
    r#type: String,
    identifier: String,
}

/// The configurations whose relations to list.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRelationsRequest)]
pub(super) struct RelationsBody {
    objects: Vec<ObjectRef>,
}

/// One node of the relations graph: what it uses (`down`: environment variables) and
/// what uses it (`up`: tenant destinations' chains). The graph is one level deep, so
/// `recursive` answers like `both`.
async fn node(
    state: &AppState,
    r#type: &str,
    identifier: &str,
    direction: &str,
) -> ApiResult<Value> {
    let row = state.store.configuration(r#type, identifier).await?;
    let mut relationships = Vec::new();
    if matches!(direction, "down" | "both" | "recursive") {
        let params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
        if let Value::Object(map) = &params {
            let mut paths: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (key, value) in map {
                for name in references(value) {
                    paths
                        .entry(name)
                        .or_default()
                        .push(format!("object.parameters.{key}"));
                }
            }
            for (name, paths) in paths {
                relationships.push(json!({
                    "relation": "uses",
                    "node": {"type": "environment-variable", "identifier": name},
                    "paths": paths,
                }));
            }
        }
    }
    if matches!(direction, "up" | "both" | "recursive") {
        for usage in usages_of(state, r#type, identifier).await? {
            relationships.push(json!({
                "relation": "used-by",
                "node": {"type": usage["type"], "identifier": usage["specification"]["id"]},
                "paths": [usage["propertyPath"]],
            }));
        }
    }
    Ok(json!({
        "type": row.r#type, "identifier": row.identifier, "name": row.name,
        "relationships": relationships,
    }))
}

fn direction(query: &DirectionQuery) -> ApiResult<String> {
    let direction = query.direction.clone().unwrap_or_else(|| "both".into());
    if !["down", "up", "both", "recursive"].contains(&direction.as_str()) {
        return Err(ApiError::bad_request(format!(
            "direction: must be down, up, both or recursive, not `{direction}`"
        )));
    }
    Ok(direction)
}

/// `GET .../{identifier}/relations?direction=`.
#[utoipa::path(
    get,
    path = "/configurations/{type}/{identifier}/relations",
    tag = "configurations",
    params(DirectionQuery, ("type" = ConfigurationType, Path)),
    responses((status = 200, description = "Its relations", body = RelationsSchema))
)]
pub(super) async fn relations(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    crate::api::Query(query): crate::api::Query<DirectionQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let direction = direction(&query)?;
    let node = node(&state, &r#type, &identifier, &direction).await?;
    Ok(Json(json!({ "nodes": [node] })))
}

/// `POST /configurations/relations?direction=` with `{"objects": [{type, identifier}]}`.
#[utoipa::path(
    post,
    path = "/configurations/relations",
    tag = "configurations",
    operation_id = "relations_of_many",
    params(DirectionQuery),
    responses(
        (status = 404, description = "A named configuration does not exist", body = crate::api::error::ErrorBody),
        (status = 200, description = "Their relations", body = RelationsSchema))
)]
pub(super) async fn relations_of_many(
    principal: Principal,
    State(state): State<AppState>,
    crate::api::Query(query): crate::api::Query<DirectionQuery>,
    Json(body): Json<RelationsBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let direction = direction(&query)?;
    let mut nodes = Vec::new();
    for (i, object) in body.objects.iter().enumerate() {
        parse_type(&object.r#type)
            .map_err(|e| ApiError::bad_request(format!("objects[{i}].type: {}", e.message())))?;
        nodes.push(node(&state, &object.r#type, &object.identifier, &direction).await?);
    }
    Ok(Json(json!({ "nodes": nodes })))
}
