//! Export and import of configurations. An export is a JSON array of configurations in
//! the shape import takes (sealed values stay sealed: they import into servers with the
//! same encryption key). An import takes a JSON array, one object, or NDJSON; checks
//! every object; decides per object whether it creates, updates or skips; and writes
//! everything in one transaction, or nothing when any object has a violation.
//! `?dry-run=true` only reports; `?validate-variables=true` also reports `${NAME}`
//! references to undefined environment variables.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{
    body_of, check, editor, exported, parse_type, CheckOptions, ExportedSchema, Violation,
};
use super::{ConfigurationBody, ConfigurationType};
use crate::api::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::integration::variables::references;
use crate::integration::CONFIGURATION_TYPES;
use crate::store::{ConfigurationRow, Write};

/// Which configurations of the type to export (all when absent).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = ConfigurationExportRequest)]
pub(super) struct ExportTypeBody {
    identifiers: Option<Vec<String>>,
}

async fn export_rows(
    state: &AppState,
    r#type: &str,
    identifiers: Option<&[String]>,
) -> ApiResult<Vec<ConfigurationRow>> {
    let rows = state.store.list_configurations(r#type).await?;
    let Some(wanted) = identifiers else {
        return Ok(rows);
    };
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|w| !rows.iter().any(|r| &r.identifier == *w))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "{type} configurations {}",
            names.join(", ")
        )));
    }
    Ok(rows
        .into_iter()
        .filter(|r| wanted.contains(&r.identifier))
        .collect())
}

/// `POST /configurations/{type}/export` with `{"identifiers": [...]}` or no body.
#[utoipa::path(
    post,
    path = "/configurations/{type}/export",
    tag = "configurations",
    params(("type" = ConfigurationType, Path)),
    request_body(content = Option<ExportTypeBody>, content_type = "application/json"),
    responses((status = 200, description = "The configurations, in the shape import takes", body = Vec<ExportedSchema>))
)]
pub(super) async fn export_type(
    principal: Principal,
    State(state): State<AppState>,
    Path(r#type): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Vec<Value>>> {
    principal.require_admin()?;
    parse_type(&r#type)?;
    let body: ExportTypeBody = if body.iter().all(u8::is_ascii_whitespace) {
        ExportTypeBody::default()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Null) => ExportTypeBody::default(),
            Ok(value) => serde_json::from_value(value)
                .map_err(|e| ApiError::bad_request(format!("body: {e}")))?,
            Err(e) => return Err(ApiError::bad_request(format!("body: {e}"))),
        }
    };
    let rows = export_rows(&state, &r#type, body.identifiers.as_deref()).await?;
    Ok(Json(rows.iter().map(exported).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationExportRef)]
pub(super) struct ObjectRef {
    #[serde(rename = "type")]
    #[schema(value_type = ConfigurationType)]
    r#type: String,
    identifier: String,
}

/// The configurations to export.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationExportObjectsRequest)]
pub(super) struct ExportObjectsBody {
    objects: Vec<ObjectRef>,
}

/// `POST /configurations/export` with `{"objects": [{type, identifier}]}`.
#[utoipa::path(
    post,
    path = "/configurations/export",
    tag = "configurations",
    operation_id = "export_objects",
    responses(
        (status = 404, description = "A named configuration does not exist", body = crate::api::error::ErrorBody),
        (status = 200, description = "The configurations, in the shape import takes", body = Vec<ExportedSchema>))
)]
pub(super) async fn export_objects(
    principal: Principal,
    State(state): State<AppState>,
    Json(body): Json<ExportObjectsBody>,
) -> ApiResult<Json<Vec<Value>>> {
    principal.require_admin()?;
    let mut by_type: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, o) in body.objects.iter().enumerate() {
        if !CONFIGURATION_TYPES.contains(&o.r#type.as_str()) {
            return Err(ApiError::bad_request(format!(
                "objects[{i}].type: unknown configuration type `{}`",
                o.r#type
            )));
        }
        by_type
            .entry(&o.r#type)
            .or_default()
            .push(o.identifier.clone());
    }
    let mut out = Vec::new();
    for (r#type, identifiers) in by_type {
        out.extend(
            export_rows(&state, r#type, Some(&identifiers))
                .await?
                .iter()
                .map(exported),
        );
    }
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// Check and report only; write nothing.
    #[serde(rename = "dry-run", default)]
    #[param(value_type = Option<bool>)]
    dry_run: Option<String>,
    /// Also report `${NAME}` references to undefined environment variables.
    #[serde(rename = "validate-variables", default)]
    #[param(value_type = Option<bool>)]
    validate_variables: Option<String>,
}

/// What an import decided, per object.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConfigurationImportReport)]
#[allow(dead_code)] // Describes the wire format of `import`.
pub(super) struct ImportReportSchema {
    /// 200 or 422, as the answer's status.
    status: u16,
    /// Every object passed its checks.
    valid: bool,
    dry_run: bool,
    title: String,
    detail: String,
    message: String,
    results: Vec<ImportResultSchema>,
}

/// What an import decided for one object.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigurationImportResult)]
#[allow(dead_code)] // Describes the wire format of `import_one`.
pub(super) struct ImportResultSchema {
    r#type: String,
    identifier: String,
    /// `create`, `update` or `skip`.
    decision: String,
    /// `created`, `updated`, `skipped` or `none` (dry run, or refused).
    action: String,
    #[schema(value_type = Vec<Object>)]
    relationships: Vec<Value>,
    violations: Vec<Violation>,
}

fn flag(name: &str, value: Option<&str>) -> ApiResult<bool> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: must be true or false, not `{other}`"
        ))),
    }
}

/// The objects of an import body: a JSON array, one object, or NDJSON.
fn parse_objects(body: &[u8]) -> ApiResult<Vec<Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(object @ Value::Object(_)) => Ok(vec![object]),
        Ok(_) => Err(ApiError::bad_request(
            "body: must be a JSON array of configurations, one configuration, or NDJSON",
        )),
        Err(_) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("body: is not UTF-8"))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, line)| {
                    serde_json::from_str(line)
                        .map_err(|e| ApiError::bad_request(format!("body: line {}: {e}", n + 1)))
                })
                .collect()
        }
    }
}

/// Whether two configurations say the same (sealed values compared opened).
fn same(state: &AppState, a: &ConfigurationRow, b: &ConfigurationRow) -> ApiResult<bool> {
    let (a, b) = (body_of(state, a)?, body_of(state, b)?);
    Ok(serde_json::to_value(&a).ok() == serde_json::to_value(&b).ok())
}

fn relationships(row: &ConfigurationRow) -> Vec<Value> {
    let params: Value = serde_json::from_str(&row.parameters).unwrap_or(Value::Null);
    let mut paths: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Value::Object(map) = &params {
        for (key, value) in map {
            for name in references(value) {
                paths
                    .entry(name)
                    .or_default()
                    .insert(format!("object.parameters.{key}"));
            }
        }
    }
    paths
        .into_iter()
        .map(|(name, paths)| {
            json!({
                "relation": "uses",
                "node": {"type": "environment-variable", "identifier": name},
                "paths": paths,
            })
        })
        .collect()
}

/// `POST /configurations/import[?dry-run=true][&validate-variables=true]`.
#[utoipa::path(
    post,
    path = "/configurations/import",
    tag = "configurations",
    request_body(
        description = "A JSON array of configurations, one configuration, or NDJSON",
        content(
            (Vec<ExportedSchema> = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    params(ImportQuery),
    responses(
        (status = 200, description = "Valid (and written, unless a dry run)", body = ImportReportSchema),
        (status = 422, description = "A violation; nothing was written", body = ImportReportSchema),
    )
)]
pub(super) async fn import(
    principal: Principal,
    State(state): State<AppState>,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require_admin()?;
    let dry_run = flag("dry-run", query.dry_run.as_deref())?;
    let options = CheckOptions {
        validate_variables: flag("validate-variables", query.validate_variables.as_deref())?,
    };
    let objects = parse_objects(&body)?;
    for (i, object) in objects.iter().enumerate() {
        crate::api::input::check_value(object, &format!("body[{i}]"))?;
    }
    if objects.is_empty() {
        return Err(ApiError::bad_request("body: holds no configurations"));
    }
    let editor = editor(&principal);
    let mut results = Vec::new();
    let mut writes = Vec::new();
    let mut seen = BTreeSet::new();
    for object in &objects {
        let (result, write) = import_one(&state, object, &editor, options, &mut seen).await?;
        results.push(result);
        writes.extend(write);
    }
    let valid = results
        .iter()
        .all(|r| r["violations"].as_array().is_some_and(Vec::is_empty));
    if valid && !dry_run {
        let rows: Vec<(ConfigurationRow, Write)> = writes.into_iter().flatten().collect();
        state.store.write_configurations(&rows, "import").await?;
    }
    for r in &mut results {
        let decision = r["decision"].as_str().unwrap_or("skip").to_owned();
        r["action"] = json!(match (valid, dry_run, decision.as_str()) {
            (false, _, _) | (_, true, _) => "none",
            (_, _, "create") => "created",
            (_, _, "update") => "updated",
            _ => "skipped",
        });
    }
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = json!({
        "status": status.as_u16(),
        "valid": valid,
        "dryRun": dry_run,
        "title": if valid { "import is valid" } else { "import refused: nothing was written" },
        "detail": format!("{} configurations checked", results.len()),
        "message": if valid { "ok".to_string() } else { "validation failed: see results[].violations".to_string() },
        "results": results,
    });
    Ok((status, axum::Json(body)).into_response())
}

/// Check one imported object: its result entry and what to write.
async fn import_one(
    state: &AppState,
    object: &Value,
    editor: &str,
    options: CheckOptions,
    seen: &mut BTreeSet<(String, String)>,
) -> ApiResult<(Value, Option<Option<(ConfigurationRow, Write)>>)> {
    let r#type = object["type"].as_str().unwrap_or("").to_owned();
    let identifier = object["identifier"].as_str().unwrap_or("").to_owned();
    let mut result = json!({
        "type": r#type, "identifier": identifier, "decision": "skip",
        "relationships": [], "violations": [],
    });
    let mut violations: Vec<Violation> = Vec::new();
    let body: ConfigurationBody = match serde_json::from_value(object.clone()) {
        Ok(body) => body,
        Err(e) => {
            violations.push(Violation::new("", format!("not a configuration: {e}"), ""));
            result["violations"] = json!(violations);
            return Ok((result, None));
        }
    };
    if !seen.insert((r#type.clone(), identifier.clone())) {
        violations.push(Violation::new(
            "identifier",
            "appears twice in this import",
            "Keep one object per type and identifier.",
        ));
    }
    let row = match check(state, &r#type, &body, editor, options).await {
        Ok(row) => Some(row),
        Err(found) => {
            violations.extend(found);
            None
        }
    };
    result["violations"] = json!(violations);
    let Some(row) = row else {
        return Ok((result, None));
    };
    result["relationships"] = json!(relationships(&row));
    let existing = state.store.configuration(&r#type, &identifier).await.ok();
    let (decision, write) = match &existing {
        None => ("create", Some((row, Write::Create))),
        Some(current) if same(state, current, &row)? => ("skip", None),
        Some(_) => ("update", Some((row, Write::Update))),
    };
    result["decision"] = json!(decision);
    if !violations.is_empty() {
        return Ok((result, None));
    }
    Ok((result, Some(write)))
}
