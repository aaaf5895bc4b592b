//! A configuration's history (every state under a ULID, with editor and time), restoring
//! a past state, its labels and its enabled/disabled status. Each of these changes is a
//! change like any other: checked, and recorded in the history.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{body_of, editor, parse_type, render};
use super::{page, save};
use crate::api::wire::rfc3339;
use crate::api::{ApiError, ApiResult, AppState, Json};
use crate::auth::Principal;
use crate::store::{ConfigurationRow, HistoryRow, Write};

fn history_view(entry: &HistoryRow) -> Value {
    let mut view = json!({
        "type": entry.r#type,
        "identifier": entry.identifier,
        "ulid": entry.ulid,
        "action": entry.action,
        "editor": entry.editor,
        "createdAt": rfc3339(entry.created_at),
    });
    if let (Value::Object(view), Value::Object(state)) = (&mut view, &entry.state) {
        for (key, value) in state {
            view.insert(key.clone(), value.clone());
        }
        // Sealed values stay sealed in history; show that they are there, not what.
        if let Some(Value::Object(params)) =
            view.get_mut("object").and_then(|o| o.get_mut("parameters"))
        {
            for value in params.values_mut() {
                if value.get("$sealed").is_some() {
                    *value = Value::String("********".into());
                }
            }
        }
    }
    view
}

pub(super) async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let entries = state
        .store
        .configuration_history(&r#type, &identifier)
        .await?;
    if entries.is_empty() {
        return Err(ApiError::not_found(format!(
            "{type} configuration {identifier}"
        )));
    }
    let results: Vec<Value> = entries.iter().map(history_view).collect();
    Ok(Json(page(results.len(), results)))
}

#[derive(Deserialize)]
pub(super) struct RestoreBody {
    ulid: Option<String>,
}

/// Bring back the state recorded under `ulid`: checked again (the prototype may have
/// changed since) and recorded as a new `restore` state. A deleted configuration can be
/// restored too.
pub(super) async fn restore(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<RestoreBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let ulid = body
        .ulid
        .ok_or_else(|| ApiError::bad_request("ulid: is required"))?;
    let entries = state
        .store
        .configuration_history(&r#type, &identifier)
        .await?;
    let entry = entries
        .iter()
        .find(|e| e.ulid == ulid)
        .ok_or_else(|| ApiError::not_found(format!("history state {ulid} of {identifier}")))?;
    if entry.action == "delete" {
        return Err(ApiError::bad_request(
            "ulid: names the deletion; restore a state recorded before it",
        ));
    }
    let existing = state.store.configuration(&r#type, &identifier).await.ok();
    let mut row = existing.clone().unwrap_or_else(|| ConfigurationRow {
        r#type: r#type.clone(),
        identifier: identifier.clone(),
        name: String::new(),
        description: String::new(),
        prototype: String::new(),
        parameters: "{}".into(),
        labels: Vec::new(),
        disabled: false,
        editor: String::new(),
        created_at: 0,
        updated_at: 0,
    });
    row.apply_state(&entry.state)?;
    let body = body_of(&state, &row)?;
    let write = if existing.is_some() {
        Write::Update
    } else {
        Write::Create
    };
    let row = save(
        &state,
        &r#type,
        &body,
        &editor(&principal),
        write,
        "restore",
    )
    .await?;
    Ok(Json(json!({"object": render(&state, &row)})))
}

#[derive(Deserialize)]
pub(super) struct LabelsBody {
    labels: Option<Vec<String>>,
}

pub(super) async fn labels(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<LabelsBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let labels = body
        .labels
        .ok_or_else(|| ApiError::bad_request("labels: is required (a list of strings)"))?;
    let row = state.store.configuration(&r#type, &identifier).await?;
    let mut body = body_of(&state, &row)?;
    body.label = Some(labels);
    let row = save(
        &state,
        &r#type,
        &body,
        &editor(&principal),
        Write::Update,
        "update",
    )
    .await?;
    let results: Vec<Value> = row.labels.iter().map(|l| json!({"name": l})).collect();
    Ok(Json(page(results.len(), results)))
}

#[derive(Deserialize)]
pub(super) struct StatusBody {
    disabled: Option<bool>,
}

async fn set_disabled(
    principal: &Principal,
    state: &AppState,
    r#type: &str,
    identifier: &str,
    disabled: bool,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    parse_type(r#type)?;
    let row = state.store.configuration(r#type, identifier).await?;
    let mut body = body_of(state, &row)?;
    body.disabled = Some(disabled);
    let row = save(
        state,
        r#type,
        &body,
        &editor(principal),
        Write::Update,
        "update",
    )
    .await?;
    Ok(Json(json!({"object": render(state, &row)})))
}

/// `PUT .../status {"disabled": bool}`.
pub(super) async fn status(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<StatusBody>,
) -> ApiResult<Json<Value>> {
    let disabled = body
        .disabled
        .ok_or_else(|| ApiError::bad_request("disabled: is required (true or false)"))?;
    set_disabled(&principal, &state, &r#type, &identifier, disabled).await
}

pub(super) async fn enable(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_disabled(&principal, &state, &r#type, &identifier, false).await
}

pub(super) async fn disable(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_disabled(&principal, &state, &r#type, &identifier, true).await
}
