//! What every input must satisfy, whatever the handler: no U+0000 (NUL) in a path
//! parameter, a query parameter or a string of a JSON body. PostgreSQL cannot store NUL
//! in text and SQLite would store what PostgreSQL refuses, so both backends refuse it the
//! same way, up front: a 400 naming the parameter or field.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiError;

fn refused(field: &str) -> ApiError {
    ApiError::bad_request(format!("{field}: must not contain U+0000 (NUL)"))
}

/// Route layer: refuses path and query parameters holding NUL, naming the parameter
/// (path parameters by their name in the route).
pub async fn reject_nul_parameters(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if let Some(query) = uri.query().filter(|q| q.contains("%00")) {
        if let Some((key, _)) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return refused(&key.replace('\0', "\u{FFFD}")).into_response();
        }
    }
    if uri.path().contains("%00") {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        return refused(&nul_path_parameter(&template, uri.path())).into_response();
    }
    next.run(req).await
}

/// The name of the path parameter holding `%00` (`path` when it cannot be told). The
/// path may lack the template's leading segments (a nested router strips its prefix),
/// so the two are compared from their ends.
fn nul_path_parameter(template: &str, path: &str) -> String {
    template
        .rsplit('/')
        .zip(path.rsplit('/'))
        .find(|(t, s)| t.starts_with('{') && s.contains("%00"))
        .map(|(t, _)| t.trim_matches(['{', '}']).to_string())
        .unwrap_or_else(|| "path".to_string())
}

/// In a JSON body, the path (`filter.tenant_id`, `ids[2]`) of a string or key holding
/// NUL, if any. Cheap when there is none: NUL can only be written `\u0000` in JSON text.
pub fn nul_in_json(body: &[u8]) -> Option<String> {
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    find_nul(&value, "body")
}

/// The path (under `root`) of a string or key of `value` holding NUL, if any.
pub fn find_nul(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let path = if path == "body" {
                key.replace('\0', "\u{FFFD}")
            } else {
                format!("{path}.{}", key.replace('\0', "\u{FFFD}"))
            };
            if key.contains('\0') {
                Some(path)
            } else {
                find_nul(item, &path)
            }
        }),
        _ => None,
    }
}

/// [`nul_in_json`] as an error.
pub fn check_json(body: &[u8]) -> Result<(), ApiError> {
    match nul_in_json(body) {
        Some(field) => Err(refused(&field)),
        None => Ok(()),
    }
}

/// [`find_nul`] as an error.
pub fn check_value(value: &Value, root: &str) -> Result<(), ApiError> {
    match find_nul(value, root) {
        Some(field) => Err(refused(&field)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_json_names_the_field() {
        assert_eq!(nul_in_json(br#"{"a": "ok"}"#), None);
        assert_eq!(nul_in_json(br#"{"a": "\\u0000 is text"}"#), None);
        assert_eq!(
            nul_in_json(br#"{"filter": {"topic": ["a", "b\u0000"]}}"#).as_deref(),
            Some("filter.topic[1]")
        );
        assert_eq!(nul_in_json(br#"["\u0000"]"#).as_deref(), Some("body[0]"));
    }

    #[test]
    fn path_parameters_are_named() {
        assert_eq!(
            nul_path_parameter(
                "/api/v1/tenants/{tenant_id}/destinations/{destination_id}",
                "/api/v1/tenants/t1/destinations/d%001"
            ),
            "destination_id"
        );
        assert_eq!(
            nul_path_parameter("/api/v1/tenants/{tenant_id}/token", "/tenants/%00/token"),
            "tenant_id"
        );
        assert_eq!(nul_path_parameter("", "/x%00"), "path");
    }
}
