//! Running transformers: `POST /api/v1/transformers/run` with a prototype, parameters
//! and an input, and `POST /api/v1/configurations/transformer/{identifier}/run` for a
//! stored configuration. Both answer the outputs (zero or more) or the error, with the
//! time taken; nothing is stored. Also the destinations API's `transformers` extension
//! field ([`apply_chain`]).

use std::time::Instant;

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, FieldProblem, Json};
use crate::auth::Principal;
use crate::integration::chain::{ChainError, Transformers};
use crate::integration::variables::resolve_stored;
use crate::runtime::{PrototypeKind, TransformFailure};
use crate::store::DestinationRow;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run))
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

/// What a transformer run gave: its outputs, or why it failed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TransformerRun)]
pub(super) struct RunOutcome {
    /// Whether the transformer ran to the end.
    ok: bool,
    /// Zero or more outputs (when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<Vec<Value>>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// `invalid_input`, `misconfigured`, `bad_output`, `trap`, `timeout`, `memory`,
    /// `denied` or `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<&'static str>,
    duration_ms: f64,
}

/// The answer of a run: outputs, or the error, and the time taken.
fn outcome(
    result: Result<Vec<Value>, ChainError>,
    started: Instant,
) -> ApiResult<Json<RunOutcome>> {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(outputs) => Ok(Json(RunOutcome {
            ok: true,
            outputs: Some(outputs),
            error: None,
            error_kind: None,
            duration_ms,
        })),
        Err(ChainError::Transform { failure, .. }) => Ok(Json(RunOutcome {
            ok: false,
            outputs: None,
            error: Some(failure.to_string()),
            error_kind: Some(failure_kind(&failure)),
            duration_ms,
        })),
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

/// A transformer prototype, its parameters and an input.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TransformerRunRequest)]
struct RunBody {
    /// A transformer prototype id; required.
    prototype: Option<String>,
    /// The prototype's fields; `${NAME}` references environment variables.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    parameters: Value,
    /// Any JSON value; required.
    input: Option<Value>,
}

/// `POST /transformers/run`: check the parameters as a configuration would be, then run.
#[utoipa::path(
    post,
    path = "/transformers/run",
    tag = "transformers",
    responses(
        (status = 200, description = "The outputs, or the transformer's failure", body = RunOutcome),
        (status = 409, description = "The transformer cannot be run", body = super::error::ErrorBody),
    )
)]
async fn run(
    principal: Principal,
    State(state): State<AppState>,
    Json(body): Json<RunBody>,
) -> ApiResult<Json<RunOutcome>> {
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

/// The input of a stored transformer configuration's run.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ConfigurationRunRequest)]
pub(super) struct RunConfigurationBody {
    /// Any JSON value; required.
    input: Option<Value>,
}

/// `POST /configurations/transformer/{identifier}/run` with `{"input": ...}`.
#[utoipa::path(
    post,
    path = "/configurations/transformer/{identifier}/run",
    tag = "transformers",
    responses(
        (status = 200, description = "The outputs, or the transformer's failure", body = RunOutcome),
        (status = 409, description = "The transformer cannot be run", body = super::error::ErrorBody),
    )
)]
pub(super) async fn run_configuration(
    principal: Principal,
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    Json(body): Json<RunConfigurationBody>,
) -> ApiResult<Json<RunOutcome>> {
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
