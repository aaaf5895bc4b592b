//! A configuration's history (every state under a ULID, with editor and time), restoring
//! a past state, its labels and its enabled/disabled status. Each of these changes is a
//! change like any other: checked, and recorded in the history.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::model::{body_of, editor, parse_type, render, ConfigurationView};
use super::{save, ConfigurationType};
use crate::api::wire::{rfc3339, Object, Results};
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

/// One recorded state of a configuration: the configuration's fields as they were
/// (sealed values shown as `********`) with the record's own.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConfigurationHistoryEntry)]
#[allow(dead_code)] // Describes the wire format of `history_view`.
pub(super) struct HistoryEntrySchema {
    r#type: String,
    identifier: String,
    /// Names this state (for `restore`).
    ulid: String,
    /// `create`, `update`, `delete`, `restore` or `import`.
    action: String,
    editor: String,
    #[schema(format = DateTime)]
    created_at: String,
    name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    object: Option<Value>,
    disabled: Option<bool>,
    label: Option<Vec<String>>,
}

/// Every recorded state of a configuration, oldest first (deleted ones too).
#[utoipa::path(
    get,
    path = "/configurations/{type}/{identifier}/history",
    tag = "configurations",
    operation_id = "history",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The history", body = Results<HistoryEntrySchema>))
)]
pub(super) async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Results<Value>>> {
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
    Ok(Json(Results::all(
        entries.iter().map(history_view).collect(),
    )))
}

/// Which state to bring back.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRestoreRequest)]
pub(super) struct RestoreBody {
    /// A `ulid` from the history; required.
    ulid: Option<String>,
}

/// Bring back the state recorded under `ulid`: checked again (the prototype may have
/// changed since) and recorded as a new `restore` state. A deleted configuration can be
/// restored too.
#[utoipa::path(
    post,
    path = "/configurations/{type}/{identifier}/restore",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration as restored", body = Object<ConfigurationView>))
)]
pub(super) async fn restore(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<RestoreBody>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
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
    Ok(Json(Object {
        object: render(&state, &row),
    }))
}

/// The labels a configuration should carry.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationLabelsRequest)]
pub(super) struct LabelsBody {
    /// Required; replaces the current labels.
    labels: Option<Vec<String>>,
}

/// A label.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationLabel)]
pub(super) struct Label {
    name: String,
}

/// Replace a configuration's labels.
#[utoipa::path(
    put,
    path = "/configurations/{type}/{identifier}/labels",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "Its labels", body = Results<Label>))
)]
pub(super) async fn labels(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<LabelsBody>,
) -> ApiResult<Json<Results<Label>>> {
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
    let results: Vec<Label> = row
        .labels
        .iter()
        .map(|l| Label { name: l.clone() })
        .collect();
    Ok(Json(Results::all(results)))
}

/// Enabled or disabled.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationStatusRequest)]
pub(super) struct StatusBody {
    /// Required.
    disabled: Option<bool>,
}

async fn set_disabled(
    principal: &Principal,
    state: &AppState,
    r#type: &str,
    identifier: &str,
    disabled: bool,
) -> ApiResult<Json<Object<ConfigurationView>>> {
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
    Ok(Json(Object {
        object: render(state, &row),
    }))
}

/// `PUT .../status {"disabled": bool}`.
#[utoipa::path(
    put,
    path = "/configurations/{type}/{identifier}/status",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration as changed", body = Object<ConfigurationView>))
)]
pub(super) async fn status(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
    Json(body): Json<StatusBody>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
    let disabled = body
        .disabled
        .ok_or_else(|| ApiError::bad_request("disabled: is required (true or false)"))?;
    set_disabled(&principal, &state, &r#type, &identifier, disabled).await
}

/// Enable a configuration.
#[utoipa::path(
    put,
    path = "/configurations/{type}/{identifier}/enable",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration, enabled", body = Object<ConfigurationView>))
)]
pub(super) async fn enable(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
    set_disabled(&principal, &state, &r#type, &identifier, false).await
}

/// Disable a configuration.
#[utoipa::path(
    put,
    path = "/configurations/{type}/{identifier}/disable",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    responses((status = 200, description = "The configuration, disabled", body = Object<ConfigurationView>))
)]
pub(super) async fn disable(
    principal: Principal,
    State(state): State<AppState>,
    Path((r#type, identifier)): Path<(String, String)>,
) -> ApiResult<Json<Object<ConfigurationView>>> {
    set_disabled(&principal, &state, &r#type, &identifier, true).await
}
