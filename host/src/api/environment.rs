//! `/api/v1/environment-variables`: values configurations reference as `${NAME}`,
//! resolved when the configuration is used. `encrypted: true` values are sealed with the
//! server's keyring at rest and only ever read back obfuscated.
//! `GET /api/v1/environment-variable-references` lists every referenced name, whether it
//! is defined, and who references it (finds references to undefined variables).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{Message, Object, Results};
use super::{ApiError, ApiResult, AppState, FieldProblem, Json};
use crate::auth::Principal;
use crate::crypto::obfuscate;
use crate::integration::variables::{is_valid_name, plaintext, references, variable_aad};
use crate::integration::CONFIGURATION_TYPES;
use crate::store::EnvironmentVariableRow;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, update, remove))
        .routes(routes!(usages))
        .routes(routes!(references_list))
}

/// An environment variable; encrypted values read back obfuscated.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EnvironmentVariable)]
struct VariableView {
    name: String,
    description: String,
    value: String,
    encrypted: bool,
    /// Always `false` (the reference's built-in defaults do not exist here).
    default: bool,
}

fn view(state: &AppState, row: &EnvironmentVariableRow) -> VariableView {
    let value = if row.encrypted {
        obfuscate(&plaintext(&state.keyring, row).unwrap_or_default())
    } else {
        row.value.clone()
    };
    VariableView {
        name: row.name.clone(),
        description: row.description.clone(),
        value,
        encrypted: row.encrypted,
        default: false,
    }
}

/// Every environment variable.
#[utoipa::path(
    get,
    path = "/environment-variables",
    tag = "environment-variables",
    responses((status = 200, description = "The variables", body = Results<VariableView>))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Results<VariableView>>> {
    principal.require_admin()?;
    let rows = state.store.list_environment_variables().await?;
    Ok(Json(Results::all(
        rows.iter().map(|r| view(&state, r)).collect(),
    )))
}

/// One environment variable.
#[utoipa::path(
    get,
    path = "/environment-variables/{name}",
    tag = "environment-variables",
    responses((status = 200, description = "The variable", body = Object<VariableView>))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Object<VariableView>>> {
    principal.require_admin()?;
    let row = state.store.environment_variable(&name).await?;
    Ok(Json(Object {
        object: view(&state, &row),
    }))
}

/// Create or change a variable.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EnvironmentVariableRequest)]
struct VariableBody {
    /// `^[a-zA-Z0-9_-]+$`, at most 255 characters; required on create, cannot change.
    #[schema(pattern = "^[a-zA-Z0-9_-]+$", max_length = 255)]
    name: Option<String>,
    /// At most 150 characters.
    #[schema(max_length = 150)]
    description: Option<String>,
    /// Required on create; on update of an encrypted variable, blank keeps the value.
    value: Option<String>,
    /// Sealed at rest and read back obfuscated.
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

/// Create a variable.
#[utoipa::path(
    post,
    path = "/environment-variables",
    tag = "environment-variables",
    responses(
        (status = 201, description = "Created", body = Object<VariableView>),
        (status = 409, description = "A variable of this name exists", body = super::error::ErrorBody),
    )
)]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(body): Json<VariableBody>,
) -> ApiResult<(StatusCode, Json<Object<VariableView>>)> {
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
        Json(Object {
            object: view(&state, &row),
        }),
    ))
}

/// Change a variable (as `PATCH`).
#[utoipa::path(
    put,
    path = "/environment-variables/{name}",
    tag = "environment-variables",
    responses((status = 200, description = "The variable as changed", body = Object<VariableView>))
)]
async fn replace(
    principal: Principal,
    state: State<AppState>,
    path: Path<String>,
    Json(body): Json<VariableBody>,
) -> ApiResult<Json<Object<VariableView>>> {
    update(principal, state, path, Json(body)).await
}

/// Changes description, value or the encrypted flag. For an encrypted variable a blank
/// or absent value keeps the current one (clients only ever saw it obfuscated).
#[utoipa::path(
    patch,
    path = "/environment-variables/{name}",
    tag = "environment-variables",
    responses((status = 200, description = "The variable as changed", body = Object<VariableView>))
)]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<VariableBody>,
) -> ApiResult<Json<Object<VariableView>>> {
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
    Ok(Json(Object {
        object: view(&state, &row),
    }))
}

/// A configuration that references a variable.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VariableUsage)]
struct Usage {
    /// Configuration type.
    r#type: String,
    identifier: String,
    name: String,
}

/// Every configuration referencing a name: `name -> [{type, identifier, name}]`.
async fn referencing(state: &AppState) -> ApiResult<BTreeMap<String, Vec<Usage>>> {
    let mut out: BTreeMap<String, Vec<Usage>> = BTreeMap::new();
    for r#type in CONFIGURATION_TYPES {
        for row in state.store.list_configurations(r#type).await? {
            let params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
            for name in references(&params) {
                out.entry(name).or_default().push(Usage {
                    r#type: row.r#type.clone(),
                    identifier: row.identifier.clone(),
                    name: row.name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The configurations that reference a variable.
#[utoipa::path(
    get,
    path = "/environment-variables/{name}/usages",
    tag = "environment-variables",
    responses((status = 200, description = "Its users (none when the name is unused)", body = Results<Usage>))
)]
async fn usages(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Results<Usage>>> {
    principal.require_admin()?;
    let results = referencing(&state).await?.remove(&name).unwrap_or_default();
    Ok(Json(Results::all(results)))
}

/// Delete a variable no configuration references.
#[utoipa::path(
    delete,
    path = "/environment-variables/{name}",
    tag = "environment-variables",
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 409, description = "Still referenced; `data` lists the users", body = super::error::ErrorBody),
    )
)]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Message>> {
    principal.require_admin()?;
    state.store.environment_variable(&name).await?;
    let users = referencing(&state).await?.remove(&name).unwrap_or_default();
    if !users.is_empty() {
        let names: Vec<String> = users
            .iter()
            .map(|u| format!("{} {}", u.r#type, u.identifier))
            .collect();
        return Err(ApiError::with_data(
            StatusCode::CONFLICT,
            format!(
                "environment variable {name} is still used by: {}",
                names.join(", ")
            ),
            users
                .iter()
                .map(|u| serde_json::to_value(u).expect("usage serialises"))
                .collect(),
        ));
    }
    state.store.delete_environment_variable(&name).await?;
    Ok(Json(Message {
        message: format!("environment variable {name} deleted"),
    }))
}

/// A referenced name.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VariableReference)]
struct Reference {
    name: String,
    /// Whether a variable of this name exists.
    defined: bool,
    usages: Vec<Usage>,
}

/// Every referenced name, whether it is defined, and where it is referenced.
#[utoipa::path(
    get,
    path = "/environment-variable-references",
    tag = "environment-variables",
    responses((status = 200, description = "The references", body = Results<Reference>))
)]
async fn references_list(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Results<Reference>>> {
    principal.require_admin()?;
    let defined: Vec<String> = state
        .store
        .list_environment_variables()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let results: Vec<Reference> = referencing(&state)
        .await?
        .into_iter()
        .map(|(name, usages)| Reference {
            defined: defined.contains(&name),
            name,
            usages,
        })
        .collect();
    Ok(Json(Results::all(results)))
}
