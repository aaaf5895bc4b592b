//! `/api/v1/environment-variables`: values configurations reference as `${NAME}`,
//! resolved when the configuration is used. `encrypted: true` values are sealed with the
//! server's keyring at rest and only ever read back obfuscated.
//! `GET /api/v1/environment-variable-references` lists every referenced name, whether it
//! is defined, and who references it (finds references to undefined variables).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, AppState, FieldProblem, Json};
use crate::auth::Principal;
use crate::crypto::obfuscate;
use crate::integration::variables::{is_valid_name, plaintext, references, variable_aad};
use crate::integration::CONFIGURATION_TYPES;
use crate::store::EnvironmentVariableRow;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/environment-variables", get(list).post(create))
        .route(
            "/environment-variables/{name}",
            get(get_one).put(update).patch(update).delete(remove),
        )
        .route("/environment-variables/{name}/usages", get(usages))
        .route("/environment-variable-references", get(references_list))
}

fn view(state: &AppState, row: &EnvironmentVariableRow) -> Value {
    let value = if row.encrypted {
        obfuscate(&plaintext(&state.keyring, row).unwrap_or_default())
    } else {
        row.value.clone()
    };
    json!({
        "name": row.name,
        "description": row.description,
        "value": value,
        "encrypted": row.encrypted,
        "default": false,
    })
}

async fn list(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let rows = state.store.list_environment_variables().await?;
    let results: Vec<Value> = rows.iter().map(|r| view(&state, r)).collect();
    Ok(Json(
        json!({"metadata": {"totalCount": results.len()}, "results": results}),
    ))
}

async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let row = state.store.environment_variable(&name).await?;
    Ok(Json(json!({"object": view(&state, &row)})))
}

#[derive(Deserialize)]
struct VariableBody {
    name: Option<String>,
    description: Option<String>,
    value: Option<String>,
    encrypted: Option<bool>,
}

fn check_description(description: &str) -> ApiResult<()> {
    if description.chars().count() > 150 {
        return Err(ApiError::validation(vec![FieldProblem {
            field: "description".into(),
            message: "must be at most 150 characters".into(),
        }]));
    }
    Ok(())
}

fn seal(state: &AppState, name: &str, value: &str, encrypted: bool) -> String {
    if encrypted {
        state
            .keyring
            .encrypt(value.as_bytes(), variable_aad(name).as_bytes())
    } else {
        value.to_owned()
    }
}

async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(body): Json<VariableBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require_admin()?;
    let name = body
        .name
        .ok_or_else(|| ApiError::bad_request("name: is required"))?;
    if !is_valid_name(&name) || name.len() > 255 {
        return Err(ApiError::validation(vec![FieldProblem {
            field: "name".into(),
            message: "must match ^[a-zA-Z0-9_-]+$ (at most 255 characters)".into(),
        }]));
    }
    let value = body
        .value
        .ok_or_else(|| ApiError::bad_request("value: is required"))?;
    let description = body.description.unwrap_or_default();
    check_description(&description)?;
    let encrypted = body.encrypted.unwrap_or(false);
    let row = EnvironmentVariableRow {
        value: seal(&state, &name, &value, encrypted),
        name,
        description,
        encrypted,
        created_at: 0,
        updated_at: 0,
    };
    let row = state.store.insert_environment_variable(&row).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": view(&state, &row)})),
    ))
}

/// Changes description, value or the encrypted flag. For an encrypted variable a blank
/// or absent value keeps the current one (clients only ever saw it obfuscated).
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<VariableBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    if body.name.as_ref().is_some_and(|n| n != &name) {
        return Err(ApiError::bad_request(format!(
            "name: cannot rename {name}; create a new variable instead"
        )));
    }
    let mut row = state.store.environment_variable(&name).await?;
    let current = plaintext(&state.keyring, &row).map_err(ApiError::internal)?;
    let value = match body.value {
        Some(v) if !(v.is_empty() && row.encrypted) => v,
        _ => current,
    };
    if let Some(description) = body.description {
        check_description(&description)?;
        row.description = description;
    }
    row.encrypted = body.encrypted.unwrap_or(row.encrypted);
    row.value = seal(&state, &name, &value, row.encrypted);
    let row = state.store.update_environment_variable(&row).await?;
    Ok(Json(json!({"object": view(&state, &row)})))
}

/// Every configuration referencing a name: `name -> [{type, identifier, name}]`.
async fn referencing(state: &AppState) -> ApiResult<BTreeMap<String, Vec<Value>>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r#type in CONFIGURATION_TYPES {
        for row in state.store.list_configurations(r#type).await? {
            let params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
            for name in references(&params) {
                out.entry(name).or_default().push(json!({
                    "type": row.r#type, "identifier": row.identifier, "name": row.name,
                }));
            }
        }
    }
    Ok(out)
}

async fn usages(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let results = referencing(&state).await?.remove(&name).unwrap_or_default();
    Ok(Json(
        json!({"metadata": {"totalCount": results.len()}, "results": results}),
    ))
}

async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    state.store.environment_variable(&name).await?;
    let users = referencing(&state).await?.remove(&name).unwrap_or_default();
    if !users.is_empty() {
        let names: Vec<String> = users
            .iter()
            .map(|u| {
                format!(
                    "{} {}",
                    u["type"].as_str().unwrap_or(""),
                    u["identifier"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(ApiError::with_data(
            StatusCode::CONFLICT,
            format!(
                "environment variable {name} is still used by: {}",
                names.join(", ")
            ),
            users,
        ));
    }
    state.store.delete_environment_variable(&name).await?;
    Ok(Json(
        json!({"message": format!("environment variable {name} deleted")}),
    ))
}

/// Every referenced name, whether it is defined, and where it is referenced.
async fn references_list(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let defined: Vec<String> = state
        .store
        .list_environment_variables()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let results: Vec<Value> = referencing(&state)
        .await?
        .into_iter()
        .map(|(name, usages)| {
            json!({"name": name, "defined": defined.contains(&name), "usages": usages})
        })
        .collect();
    Ok(Json(
        json!({"metadata": {"totalCount": results.len()}, "results": results}),
    ))
}
