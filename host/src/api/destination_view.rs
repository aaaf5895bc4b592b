//! How a destination reads on the wire (Outpost's `Destination`): credentials decrypted
//! and then obfuscated field by field where the prototype marks them sensitive.

use serde::Serialize;
use serde_json::Value;

use super::wire::{json_column, rfc3339};
use super::{ApiError, ApiResult, AppState};
use crate::crypto::obfuscate;
use crate::delivery::credentials_aad;
use crate::runtime::manifest::PrototypeKind;
use crate::store::DestinationRow;

/// A destination's `topics`: `"*"` for every topic, or a list of topic names.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = Topics)]
#[allow(dead_code)] // Describes the wire format; values are built as JSON.
pub enum TopicsSchema {
    /// `"*"`.
    All(String),
    /// Topic names.
    List(Vec<String>),
}

/// Outpost's `Destination`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
#[schema(as = Destination)]
pub struct DestinationView {
    id: String,
    /// A destination prototype id (`GET /api/v1/destination-types`).
    #[serde(rename = "type")]
    r#type: String,
    #[schema(value_type = TopicsSchema)]
    topics: Value,
    /// Conditions on the event (`data`, `metadata`, ...) it must meet.
    #[schema(value_type = Option<Object>)]
    filter: Value,
    /// The prototype's config fields.
    #[schema(value_type = Object)]
    config: Value,
    /// The prototype's credential fields, sensitive ones obfuscated.
    #[schema(value_type = Object)]
    credentials: Value,
    /// Added to every delivery (headers, message attributes).
    #[schema(value_type = Option<HashMap<String, String>>)]
    delivery_metadata: Value,
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Value,
    #[schema(format = DateTime)]
    disabled_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Short description of where events go (the URL of a webhook, say).
    target: String,
    /// A link to the target, when it is a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<String>,
    /// Outrider extension: this destination's retry schedule, when it has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_schedule: Option<String>,
    /// Outrider extension: this destination's attempt limit, when it has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_max_attempts: Option<i64>,
    /// Outrider extension: transformer configurations events pass through, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    transformers: Option<Value>,
}

/// Render a stored destination.
pub fn view(state: &AppState, row: &DestinationRow) -> ApiResult<DestinationView> {
    let credentials = state
        .keyring
        .decrypt_json(&row.credentials, credentials_aad(&row.id).as_bytes())
        .map_err(ApiError::internal)?;
    let prototype = state
        .registry
        .find_prototype(PrototypeKind::Destination, &row.r#type)
        .and_then(|p| {
            p.prototype(PrototypeKind::Destination, &row.r#type)
                .cloned()
        });
    let credentials = match (credentials, &prototype) {
        (Value::Object(map), Some(prototype)) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let sensitive = prototype
                        .credential_fields
                        .iter()
                        .find(|f| f.key == key)
                        .is_none_or(|f| f.sensitive);
                    let value = match value {
                        Value::String(s) if sensitive => Value::String(obfuscate(&s)),
                        Value::String(s) => Value::String(s),
                        other if sensitive => Value::String(obfuscate(&other.to_string())),
                        other => other,
                    };
                    (key, value)
                })
                .collect(),
        ),
        // Without the plugin loaded, show nothing of the secrets but their keys.
        (Value::Object(map), None) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, Value::String(obfuscate(&v.to_string()))))
                .collect(),
        ),
        (_, _) => Value::Object(Default::default()),
    };
    let config = json_column(Some(&row.config));
    let target_url = prototype
        .as_ref()
        .and_then(|p| p.network.url_fields.first())
        .and_then(|key| config.get(key))
        .and_then(Value::as_str)
        .map(String::from);
    let target = target_url.clone().unwrap_or_else(|| row.r#type.clone());
    Ok(DestinationView {
        id: row.id.clone(),
        r#type: row.r#type.clone(),
        topics: json_column(Some(&row.topics)),
        filter: json_column(row.filter.as_deref()),
        config,
        credentials,
        delivery_metadata: json_column(row.delivery_metadata.as_deref()),
        metadata: json_column(row.metadata.as_deref()),
        disabled_at: row.disabled_at.map(rfc3339),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        target,
        target_url,
        retry_schedule: row.retry_schedule.clone(),
        retry_max_attempts: row.retry_max_attempts,
        transformers: row.transformers.as_deref().map(|t| json_column(Some(t))),
    })
}
