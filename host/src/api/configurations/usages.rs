//! Relations: which tenant destinations use a transformer configuration (their
//! `transformers` chain) and which environment variables a configuration references.
//! Deleting a configuration that is still used is refused with the list of its users.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::model::parse_type;
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

/// `GET .../{identifier}/usages`: who uses it, and the environment variables it uses.
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

#[derive(serde::Deserialize)]
pub(super) struct DirectionQuery {
    direction: Option<String>,
}

#[derive(serde::Deserialize)]
pub(super) struct ObjectRef {
    #[serde(rename = "type")]
    r#type: String,
    identifier: String,
}

#[derive(serde::Deserialize)]
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
