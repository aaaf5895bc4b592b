//! `POST /api/v1/prototypes/test?type=&identifier=&max-tests=&show-succeeded=`: run the
//! self-tests plugins ship for their prototypes, as the integration-platform reference
//! does: succeeded and failed tests with totals, status 500 when any test fails.
//!
//! A transformer test validates its config and runs `transform` on its input, comparing
//! the outputs with the expected ones; a destination test only validates its config.
//! Tests marked `expect-error` pass when validation or the call fails.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, Query};
use crate::auth::Principal;
use crate::runtime::{LoadedPlugin, PrototypeKind, Target, TestCase};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_tests))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TestQuery {
    /// Prototype kinds to test, `*` as a wildcard (default `*`).
    #[serde(rename = "type")]
    r#type: Option<String>,
    /// Prototype ids to test, `*` as a wildcard (default `*`).
    identifier: Option<String>,
    /// Tests per prototype (default 3), `-1` for all.
    #[serde(rename = "max-tests")]
    #[param(minimum = -1)]
    max_tests: Option<i64>,
    /// Also list the tests that passed.
    #[serde(rename = "show-succeeded")]
    show_succeeded: Option<bool>,
}

/// What a self-test run found.
#[derive(Serialize, utoipa::ToSchema)]
struct TestReport {
    /// Tests that passed (with `show-succeeded`): `{type, identifier, object, parameters}`.
    #[schema(value_type = Vec<Object>)]
    succeeded: Vec<Value>,
    /// Tests that failed: `{type, identifier, object, exception, parameters}`.
    #[schema(value_type = Vec<Object>)]
    failed: Vec<Value>,
    #[serde(rename = "totalSucceeded")]
    total_succeeded: u64,
    #[serde(rename = "totalFailed")]
    total_failed: u64,
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn kind_name(kind: PrototypeKind) -> &'static str {
    match kind {
        PrototypeKind::Destination => "destination",
        PrototypeKind::Transformer => "transformer",
    }
}

/// Run one test; `Err` says why it failed.
async fn run_one(
    plugin: &LoadedPlugin,
    kind: PrototypeKind,
    test: &TestCase,
) -> Result<(), String> {
    let config: Value = serde_json::from_str(&test.config).unwrap_or(json!({}));
    let credentials: Value = serde_json::from_str(&test.credentials).unwrap_or(json!({}));
    let problems = plugin
        .validate(kind, &test.prototype, &config, &credentials)
        .await
        .map_err(|e| format!("validate call failed: {e}"))?;
    let outcome: Result<Option<Vec<Value>>, String> = if !problems.is_empty() {
        Err(problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; "))
    } else if kind == PrototypeKind::Transformer {
        let (mut config, mut credentials) = (config, credentials);
        let _ = plugin.normalize(kind, &test.prototype, &mut config, &mut credentials);
        let input: Value = test
            .input
            .as_deref()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or(Value::Null);
        let target = Target {
            prototype: test.prototype.clone(),
            id: "self-test".into(),
            config,
            credentials,
            ..Target::default()
        };
        plugin
            .transform(&target, &input)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    } else {
        Ok(None)
    };
    match (outcome, test.expect_error) {
        (Err(_), true) => Ok(()),
        (Ok(_), true) => Err("expected an error, but it succeeded".into()),
        (Err(e), false) => Err(e),
        (Ok(outputs), false) => {
            let expected: Option<Value> = test
                .expected
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok());
            match (expected, outputs) {
                (Some(expected), Some(outputs)) if expected != Value::Array(outputs.clone()) => {
                    Err(format!(
                        "expected {expected}, got {}",
                        Value::Array(outputs)
                    ))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Run the self-tests plugins ship; the status is 500 when any test fails, as the
/// integration-platform reference answers.
#[utoipa::path(
    post,
    path = "/prototypes/test",
    tag = "prototypes",
    params(TestQuery),
    responses(
        (status = 200, description = "Every test passed", body = TestReport),
        (status = 500, description = "A test failed (`failed` says which and why)", body = TestReport),
    )
)]
async fn run_tests(
    principal: Principal,
    State(state): State<AppState>,
    Query(query): Query<TestQuery>,
) -> ApiResult<Response> {
    principal.require_admin()?;
    let type_pattern = query.r#type.unwrap_or_else(|| "*".into());
    let id_pattern = query.identifier.unwrap_or_else(|| "*".into());
    let max_tests = query.max_tests.unwrap_or(3);
    if max_tests == 0 || max_tests < -1 {
        return Err(ApiError::bad_request(
            "max-tests: must be a positive number, or -1 for all tests",
        ));
    }
    let show_succeeded = query.show_succeeded.unwrap_or(false);
    let (mut succeeded, mut failed) = (Vec::new(), Vec::new());
    let (mut total_ok, mut total_failed) = (0u64, 0u64);
    for plugin in state.registry.list() {
        let matching: Vec<_> = plugin
            .manifest
            .prototypes
            .iter()
            .filter(|p| glob(&type_pattern, kind_name(p.kind)) && glob(&id_pattern, &p.id))
            .map(|p| (p.kind, p.id.clone()))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let tests = match plugin.self_tests().await {
            Ok(tests) => tests,
            Err(e) => {
                total_failed += 1;
                failed.push(json!({
                    "type": "plugin", "identifier": plugin.manifest.name,
                    "exception": format!("self-tests could not be listed: {e}"), "parameters": {},
                }));
                continue;
            }
        };
        for (kind, id) in matching {
            let of_prototype = tests.iter().filter(|t| t.prototype == id);
            let limit = if max_tests < 0 {
                usize::MAX
            } else {
                max_tests as usize
            };
            for test in of_prototype.take(limit) {
                let parameters: Value = serde_json::from_str(&test.config).unwrap_or(json!({}));
                match run_one(&plugin, kind, test).await {
                    Ok(()) => {
                        total_ok += 1;
                        if show_succeeded {
                            succeeded.push(json!({
                                "type": kind_name(kind), "identifier": id,
                                "object": test.name, "parameters": parameters,
                            }));
                        }
                    }
                    Err(exception) => {
                        total_failed += 1;
                        failed.push(json!({
                            "type": kind_name(kind), "identifier": id, "object": test.name,
                            "exception": exception, "parameters": parameters,
                        }));
                    }
                }
            }
        }
    }
    let status = if total_failed > 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let body = TestReport {
        succeeded,
        failed,
        total_succeeded: total_ok,
        total_failed,
    };
    Ok((status, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars() {
        assert!(glob("*", "json_map"));
        assert!(glob("json_*", "json_map"));
        assert!(glob("*map", "json_map"));
        assert!(glob("j*_*p", "json_map"));
        assert!(!glob("js_*", "json_map"));
        assert!(glob("transformer", "transformer"));
        assert!(!glob("destination", "transformer"));
    }
}
