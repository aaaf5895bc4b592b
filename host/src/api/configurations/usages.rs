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
