//! Conversions between stored values and the API's wire formats (RFC 3339 times, JSON
//! text columns, string maps).

use std::collections::BTreeMap;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ApiError;

/// ms since the epoch → RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: i64) -> String {
    let time = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let time = time
        .replace_millisecond((ms.rem_euclid(1000)) as u16)
        .unwrap_or(time);
    time.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 → ms since the epoch; the error names `field`.
pub fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::bad_request(format!("{field}: `{value}` is not an RFC 3339 date-time"))
        })
}

/// A stored JSON text column back to JSON (`null` when absent or unreadable).
pub fn json_column(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Check that `value` is an object of strings (metadata); the error names `field`.
pub fn string_map(
    field: &str,
    value: &Value,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::bad_request(format!(
                    "{field}.{k}: must be a string"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(ApiError::bad_request(format!(
            "{field}: must be an object of strings"
        ))),
    }
}

/// `time[gte]` / `time[lte]` query parameters of a listing.
#[derive(serde::Deserialize, Default, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeRange {
    /// Only rows at or after this RFC 3339 date-time.
    #[serde(rename = "time[gte]")]
    #[param(format = DateTime)]
    gte: Option<String>,
    /// Only rows at or before this RFC 3339 date-time.
    #[serde(rename = "time[lte]")]
    #[param(format = DateTime)]
    lte: Option<String>,
}

impl TimeRange {
    /// (from, to) in ms since the epoch; errors name the parameter.
    pub fn bounds(&self) -> Result<(Option<i64>, Option<i64>), ApiError> {
        let parse =
            |name: &str, v: &Option<String>| v.as_deref().map(|t| parse_time(name, t)).transpose();
        Ok((
            parse("time[gte]", &self.gte)?,
            parse("time[lte]", &self.lte)?,
        ))
    }
}

/// `{"success": true}`, the answer of Outpost's deletes and retries.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Success {
    /// Always `true`.
    pub success: bool,
}

impl Success {
    /// `{"success": true}`.
    pub fn json() -> super::Json<Success> {
        super::Json(Success { success: true })
    }
}

/// `{"message": "..."}`, the answer of the integration-platform API's deletes.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    /// What was done.
    pub message: String,
}

/// `{"metadata": {"totalCount": n}, "results": [...]}`, the integration-platform API's
/// list shape.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Results<T> {
    /// Counts.
    pub metadata: ResultsMetadata,
    /// The items.
    pub results: Vec<T>,
}

/// The `metadata` of [`Results`].
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ResultsMetadata {
    /// Items matching, all pages together.
    #[serde(rename = "totalCount")]
    pub total_count: usize,
}

impl<T> Results<T> {
    /// All of `results`, on one page.
    pub fn all(results: Vec<T>) -> Results<T> {
        Results::page(results.len(), results)
    }

    /// One page of `total` items.
    pub fn page(total: usize, results: Vec<T>) -> Results<T> {
        Results {
            metadata: ResultsMetadata { total_count: total },
            results,
        }
    }
}

/// `{"object": ...}`, the integration-platform API's answer with one item.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Object<T> {
    /// The item.
    pub object: T,
}

/// A comma-separated query parameter as a list (empty when absent).
pub fn split_list(raw: Option<&str>) -> Vec<String> {
    raw.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// Serialise an optional map for a text column.
pub fn map_column(map: &Option<BTreeMap<String, String>>) -> Option<String> {
    map.as_ref()
        .map(|m| serde_json::to_string(m).expect("map serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_roundtrip() {
        let ms = 1_700_000_000_123;
        let text = rfc3339(ms);
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time("time", &text).unwrap(), ms);
        assert!(parse_time("time[gte]", "yesterday")
            .unwrap_err()
            .message()
            .contains("time[gte]"));
    }

    #[test]
    fn string_maps_name_the_bad_key() {
        let err = string_map("metadata", &serde_json::json!({"a": 1})).unwrap_err();
        assert!(err.message().contains("metadata.a"), "{}", err.message());
    }
}
