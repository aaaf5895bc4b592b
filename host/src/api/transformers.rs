//! Running transformers: `POST /api/v1/transformers/run` with a prototype, parameters
//! and an input, and `POST /api/v1/configurations/transformer/{identifier}/run` for a
//! stored configuration. Both answer the outputs (zero or more) or the error, with the
//! time taken; nothing is stored. Also the destinations API's `transformers` extension
//! field ([`apply_chain`]).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, AppState, FieldProblem, Json};
use crate::auth::Principal;
use crate::integration::chain::{ChainError, Transformers};
use crate::integration::variables::resolve_stored;
use crate::runtime::{PrototypeKind, TransformFailure};
use crate::store::DestinationRow;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/transformers/run", post(run))
}

fn transformers(state: &AppState) -> Transformers<'_> {
    Transformers {
        store: &state.store,
        registry: &state.registry,
        keyring: &state.keyring,
    }
}

fn failure_kind(failure: &TransformFailure) -> &'static str {
    match failure {
        TransformFailure::InvalidInput(_) => "invalid_input",
        TransformFailure::Misconfigured(_) => "misconfigured",
        TransformFailure::BadOutput(_) => "bad_output",
        TransformFailure::Trap(_) => "trap",
        TransformFailure::Timeout => "timeout",
        TransformFailure::MemoryLimit => "memory",
        TransformFailure::Denied(_) => "denied",
        TransformFailure::Unavailable(_) => "unavailable",
    }
}

/// The answer of a run: outputs, or the error, and the time taken.
fn outcome(result: Result<Vec<Value>, ChainError>, started: Instant) -> ApiResult<Json<Value>> {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(outputs) => Ok(Json(json!({
            "ok": true, "outputs": outputs, "duration_ms": duration_ms,
        }))),
        Err(ChainError::Transform { failure, .. }) => Ok(Json(json!({
            "ok": false,
            "error": failure.to_string(),
            "error_kind": failure_kind(&failure),
            "duration_ms": duration_ms,
        }))),
        Err(ChainError::Misconfigured { message, .. }) => {
            Err(ApiError::validation(vec![FieldProblem {
                field: "parameters".into(),
                message,
            }]))
        }
        Err(ChainError::NoPlugin(p)) => Err(ApiError::validation(vec![FieldProblem {
            field: "prototype".into(),
            message: format!("no loaded plugin provides transformer prototype `{p}`"),
        }])),
        Err(ChainError::Store(e)) => Err(e.into()),
        Err(other) => Err(ApiError::conflict(other.to_string())),
    }
}

#[derive(Deserialize)]
struct RunBody {
    prototype: Option<String>,
    #[serde(default)]
    parameters: Value,
    input: Option<Value>,
}

/// `POST /transformers/run`: check the parameters as a configuration would be, then run.
async fn run(
    principal: Principal,
    State(state): State<AppState>,
    Json(body): Json<RunBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let prototype = body
        .prototype
        .ok_or_else(|| ApiError::bad_request("prototype: is required"))?;
    let input = body
        .input
        .ok_or_else(|| ApiError::bad_request("input: is required (any JSON value)"))?;
    let mut params = match body.parameters {
        Value::Null => json!({}),
        object @ Value::Object(_) => object,
        _ => return Err(ApiError::bad_request("parameters: must be an object")),
    };
    let missing = resolve_stored(&state.store, &state.keyring, &mut params).await?;
    if let Some(name) = missing.first() {
        return Err(ApiError::validation(vec![FieldProblem {
            field: "parameters".into(),
            message: format!("environment variable `{name}` is not defined"),
        }]));
    }
    let run = transformers(&state);
    let (plugin, target) = match run.target_for("run", &prototype, &params) {
        Ok(prepared) => prepared,
        Err(e) => return outcome(Err(e), Instant::now()),
    };
    let problems = plugin
        .validate(
            PrototypeKind::Transformer,
            &prototype,
            &target.config,
            &target.credentials,
        )
        .await
        .map_err(|e| {
            ApiError::validation(vec![FieldProblem {
                field: "parameters".into(),
                message: format!("the plugin failed to validate: {e}"),
            }])
        })?;
    if !problems.is_empty() {
        return Err(ApiError::validation(
            problems
                .into_iter()
                .map(|p| FieldProblem {
                    field: crate::integration::parameters::property_path(&p.field)
                        .replacen("object.", "", 1),
                    message: p.message,
                })
                .collect(),
        ));
    }
    let started = Instant::now();
    let result = run.call(&plugin, &target, &input).await;
    outcome(result, started)
}

#[derive(Deserialize)]
pub(super) struct RunConfigurationBody {
    input: Option<Value>,
}

/// `POST /configurations/transformer/{identifier}/run` with `{"input": ...}`.
pub(super) async fn run_configuration(
    principal: Principal,
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    Json(body): Json<RunConfigurationBody>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let input = body
        .input
        .ok_or_else(|| ApiError::bad_request("input: is required (any JSON value)"))?;
    let row = state
        .store
        .configuration("transformer", &identifier)
        .await?;
    let started = Instant::now();
    let result = transformers(&state).run(&row, &input).await;
    outcome(result, started)
}

/// The destinations API's `transformers` field: a list of transformer configuration
/// identifiers that must exist; `null` or `[]` removes the chain; absent leaves it.
pub(super) async fn apply_chain(
    state: &AppState,
    value: Option<&Value>,
    row: &mut DestinationRow,
) -> ApiResult<()> {
    let list = match value {
        None => return Ok(()),
        Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(String::from).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "transformers[{i}]: must be a transformer configuration identifier"
                    ))
                })
            })
            .collect::<ApiResult<Vec<String>>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "transformers: must be a list of transformer configuration identifiers",
            ))
        }
    };
    if list.is_empty() {
        row.transformers = None;
        return Ok(());
    }
    let found = state
        .store
        .configurations_by_ids("transformer", &list)
        .await?;
    let problems: Vec<FieldProblem> = list
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.iter().any(|r| &r.identifier == *id))
        .map(|(i, id)| FieldProblem {
            field: format!("transformers[{i}]"),
            message: format!("transformer configuration `{id}` does not exist"),
        })
        .collect();
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    row.transformers = Some(serde_json::to_string(&list).expect("list serialises"));
    Ok(())
}
