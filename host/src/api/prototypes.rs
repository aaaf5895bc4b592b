//! `/api/v1/prototypes` (every kind, our shape) and `/api/v1/destination-types`
//! (destination prototypes in Hookdeck Outpost's `DestinationTypeSchema` shape). Both are
//! rendered from the manifests of the loaded plugins; the host has no list of its own.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiResult, AppState, Json, Query};
use crate::auth::Principal;
use crate::runtime::manifest::{Field, FieldType, Prototype, PrototypeKind};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/prototypes", get(list_prototypes))
        .route("/prototypes/{kind}/{id}", get(get_prototype))
        .route(
            "/prototypes/destination/{id}/deliver",
            axum::routing::post(test_delivery),
        )
        .route("/destination-types", get(list_destination_types))
        .route("/destination-types/{type}", get(get_destination_type))
}

/// A prototype with the plugin that provides it.
#[derive(Serialize)]
struct PrototypeView {
    #[serde(flatten)]
    prototype: Prototype,
    plugin: PluginRef,
}

#[derive(Serialize)]
struct PluginRef {
    id: String,
    name: String,
    version: String,
}

#[derive(Deserialize)]
struct KindQuery {
    kind: Option<String>,
}

fn parse_kind(kind: &str) -> ApiResult<PrototypeKind> {
    match kind {
        "destination" => Ok(PrototypeKind::Destination),
        "transformer" => Ok(PrototypeKind::Transformer),
        other => Err(ApiError::bad_request(format!(
            "kind: unknown prototype kind `{other}` (expected destination or transformer)"
        ))),
    }
}

/// Every loaded prototype, optionally of one kind, sorted by kind and id.
fn prototypes(state: &AppState, kind: Option<PrototypeKind>) -> Vec<PrototypeView> {
    let mut out: Vec<PrototypeView> = state
        .registry
        .list()
        .iter()
        .flat_map(|plugin| {
            plugin
                .manifest
                .prototypes
                .iter()
                .filter(move |p| kind.is_none_or(|k| p.kind == k))
                .map(move |p| PrototypeView {
                    prototype: p.clone(),
                    plugin: PluginRef {
                        id: plugin.id.clone(),
                        name: plugin.manifest.name.clone(),
                        version: plugin.manifest.version.clone(),
                    },
                })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.prototype.kind as u8, &a.prototype.id).cmp(&(b.prototype.kind as u8, &b.prototype.id))
    });
    out
}

async fn list_prototypes(
    _principal: Principal,
    State(state): State<AppState>,
    Query(query): Query<KindQuery>,
) -> ApiResult<Json<Vec<PrototypeView>>> {
    let kind = query.kind.as_deref().map(parse_kind).transpose()?;
    Ok(Json(prototypes(&state, kind)))
}

async fn get_prototype(
    _principal: Principal,
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<PrototypeView>> {
    let kind = parse_kind(&kind)?;
    prototypes(&state, Some(kind))
        .into_iter()
        .find(|p| p.prototype.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{} prototype {id}", kind_name(kind))))
}

fn kind_name(kind: PrototypeKind) -> &'static str {
    match kind {
        PrototypeKind::Destination => "destination",
        PrototypeKind::Transformer => "transformer",
    }
}

/// Outpost's `DestinationTypeSchema`.
#[derive(Serialize)]
struct DestinationType {
    r#type: String,
    label: String,
    description: String,
    icon: String,
    instructions: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_link: Option<Value>,
    config_fields: Vec<SchemaField>,
    credential_fields: Vec<SchemaField>,
}

/// Outpost's `DestinationSchemaField`. Outpost knows four field types; `number` and `json`
/// fields render as `text` (values travel as strings there anyway) with our own type kept
/// in `x_outrider_type` for clients that understand it.
#[derive(Serialize)]
struct SchemaField {
    key: String,
    r#type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_outrider_type: Option<&'static str>,
    label: String,
    description: String,
    required: bool,
    sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minlength: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maxlength: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<Value>,
}

fn schema_field(field: &Field) -> SchemaField {
    let (outpost_type, own_type) = match field.r#type {
        FieldType::Text => ("text", None),
        FieldType::Checkbox => ("checkbox", None),
        FieldType::Select => ("select", None),
        FieldType::KeyValueMap => ("key_value_map", None),
        FieldType::Number => ("text", Some("number")),
        FieldType::Json => ("text", Some("json")),
    };
    // Outpost's defaults are strings: a JSON string default is unquoted, others as text.
    let default = field
        .default
        .as_ref()
        .map(|raw| match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(s)) => s,
            _ => raw.clone(),
        });
    SchemaField {
        key: field.key.clone(),
        r#type: outpost_type,
        x_outrider_type: own_type,
        label: field.label.clone(),
        description: field.description.clone(),
        required: field.required,
        sensitive: field.sensitive,
        default,
        minlength: field.min_length,
        maxlength: field.max_length,
        pattern: field.pattern.clone(),
        options: field
            .options
            .iter()
            .map(|o| serde_json::json!({ "label": o.label, "value": o.value }))
            .collect(),
    }
}

fn destination_type(p: &Prototype) -> DestinationType {
    DestinationType {
        r#type: p.id.clone(),
        label: p.label.clone(),
        description: p.description.clone(),
        icon: p.icon.clone(),
        instructions: p.instructions.clone(),
        setup_link: p
            .setup_link
            .as_ref()
            .map(|l| serde_json::json!({ "href": l.href, "cta": l.cta })),
        config_fields: p.config_fields.iter().map(schema_field).collect(),
        credential_fields: p.credential_fields.iter().map(schema_field).collect(),
    }
}

async fn list_destination_types(
    _principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DestinationType>>> {
    let types = prototypes(&state, Some(PrototypeKind::Destination))
        .iter()
        .map(|v| destination_type(&v.prototype))
        .collect();
    Ok(Json(types))
}

async fn get_destination_type(
    _principal: Principal,
    State(state): State<AppState>,
    Path(ty): Path<String>,
) -> ApiResult<Json<DestinationType>> {
    prototypes(&state, Some(PrototypeKind::Destination))
        .iter()
        .find(|v| v.prototype.id == ty)
        .map(|v| Json(destination_type(&v.prototype)))
        .ok_or_else(|| ApiError::not_found(format!("destination type {ty}")))
}

/// Body of a test delivery: a configuration and an event, not stored anywhere.
#[derive(Deserialize)]
struct TestDelivery {
    #[serde(default)]
    config: Value,
    #[serde(default)]
    credentials: Value,
    event: TestEvent,
}

#[derive(Deserialize)]
struct TestEvent {
    id: Option<String>,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    data: Value,
}

/// `POST /prototypes/destination/{id}/deliver`: validate a configuration and deliver one
/// event through the plugin right away, reporting what happened (admin only). Nothing is
/// stored; this is the "send a test event" button.
async fn test_delivery(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<TestDelivery>,
) -> ApiResult<Json<Value>> {
    use crate::runtime::{Event, Target};
    principal.require_admin()?;
    let plugin = state
        .registry
        .find_prototype(PrototypeKind::Destination, &id)
        .ok_or_else(|| ApiError::not_found(format!("destination prototype {id}")))?;
    let mut config = if body.config.is_null() {
        serde_json::json!({})
    } else {
        body.config
    };
    let mut credentials = if body.credentials.is_null() {
        serde_json::json!({})
    } else {
        body.credentials
    };
    let problems = plugin
        .validate(PrototypeKind::Destination, &id, &config, &credentials)
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    if !problems.is_empty() {
        return Err(ApiError::validation(
            problems
                .into_iter()
                .map(|p| super::FieldProblem {
                    field: p.field,
                    message: p.message,
                })
                .collect(),
        ));
    }
    plugin
        .normalize(
            PrototypeKind::Destination,
            &id,
            &mut config,
            &mut credentials,
        )
        .map_err(ApiError::internal)?;
    let target = Target {
        prototype: id.clone(),
        id: "test".into(),
        tenant_id: "test".into(),
        config,
        credentials,
        ..Target::default()
    };
    let event = Event {
        id: body.event.id.unwrap_or_else(|| {
            format!("evt_test_{}", ulid::Ulid::new().to_string().to_lowercase())
        }),
        tenant_id: "test".into(),
        topic: body.event.topic,
        time_ms: crate::store::now_ms() as u64,
        metadata: body.event.metadata,
        data: body.event.data.to_string(),
        attempt: 1,
    };
    let started = std::time::Instant::now();
    let result = plugin.deliver(&target, &event).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    Ok(Json(match result {
        Ok(ok) => serde_json::json!({
            "ok": true, "status_code": ok.status_code, "response_body": ok.response_body, "duration_ms": duration_ms,
        }),
        Err(failure) => serde_json::json!({
            "ok": false, "error": failure.to_string(), "error_kind": failure_kind(&failure), "duration_ms": duration_ms,
        }),
    }))
}

fn failure_kind(failure: &crate::runtime::DeliveryFailure) -> &'static str {
    use crate::runtime::DeliveryFailure as F;
    match failure {
        F::Retry { .. } => "retry",
        F::Fail { .. } => "fail",
        F::Misconfigured { .. } => "misconfigured",
        F::Denied(_) => "denied",
        F::Timeout => "timeout",
        F::MemoryLimit => "memory",
        F::Trap(_) => "trap",
    }
}
