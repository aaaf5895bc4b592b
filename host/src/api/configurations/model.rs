//! The wire shape of a configuration (the integration-platform reference's
//! `{type, identifier, name, description, object: {prototype, parameters}, ...}`), and
//! the checks every write goes through, reported as violations
//! `{propertyPath, title, helpText}`.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::super::wire::rfc3339;
use super::super::{ApiError, ApiResult, AppState};
use crate::auth::Principal;
use crate::integration::parameters::{property_path, seal, sealing_aad, split, unseal};
use crate::integration::variables::{references, resolve_stored};
use crate::integration::CONFIGURATION_TYPES;
use crate::runtime::PrototypeKind;
use crate::store::ConfigurationRow;

/// One problem with a configuration.
#[derive(Serialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// Path of the offending value, e.g. `object.parameters.mapping`.
    pub property_path: String,
    /// What is wrong.
    pub title: String,
    /// How to fix it.
    pub help_text: String,
}

impl Violation {
    pub fn new(path: &str, title: impl Into<String>, help: impl Into<String>) -> Self {
        Violation {
            property_path: path.into(),
            title: title.into(),
            help_text: help.into(),
        }
    }
}

/// 422 listing `violations` in `data`.
pub fn rejected(violations: Vec<Violation>) -> ApiError {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.property_path, v.title))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::with_data(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("validation failed: {message}"),
        violations
            .into_iter()
            .map(|v| serde_json::to_value(v).expect("violation serialises"))
            .collect(),
    )
}

/// The configuration type in a path, as a prototype kind.
pub fn parse_type(r#type: &str) -> ApiResult<PrototypeKind> {
    match r#type {
        "destination" => Ok(PrototypeKind::Destination),
        "transformer" => Ok(PrototypeKind::Transformer),
        other => Err(ApiError::not_found(format!(
            "configuration type `{other}` (known: {})",
            CONFIGURATION_TYPES.join(", ")
        ))),
    }
}

/// Who is making a change, for history.
pub fn editor(principal: &Principal) -> String {
    match principal {
        Principal::Admin => "admin".into(),
        Principal::ApiToken { id } => format!("api-token:{id}"),
        Principal::Tenant(id) => format!("tenant:{id}"),
    }
}

/// `^[a-z0-9]+[a-z0-9-]*[a-z0-9]+$`, 2 to 255 characters.
pub fn valid_identifier(identifier: &str) -> bool {
    let bytes = identifier.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (2..=255).contains(&bytes.len())
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// A configuration as sent by a client (create, replace, patch, import).
#[derive(Deserialize, Serialize, Default, Clone, Debug, utoipa::ToSchema)]
#[schema(as = ConfigurationRequest)]
pub struct ConfigurationBody {
    /// The configuration type; must match the path when given.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// `^[a-z0-9]+[a-z0-9-]*[a-z0-9]+$`, 2 to 255 characters; cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// 1 to 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The prototype and its parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PrototypeInstance>)]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Labels (also accepted as `labels`).
    #[serde(default, alias = "labels", skip_serializing_if = "Option::is_none")]
    pub label: Option<Vec<String>>,
}

/// A prototype and its parameters (`${NAME}` references environment variables).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PrototypeInstance {
    /// A prototype id of the configuration's type.
    prototype: String,
    /// The prototype's fields.
    #[schema(value_type = Object)]
    parameters: Value,
}

/// A configuration on the wire.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Configuration)]
pub struct ConfigurationView {
    r#type: String,
    identifier: String,
    name: String,
    description: String,
    /// Secret parameters read back obfuscated.
    object: PrototypeInstance,
    /// Always `{}`.
    #[schema(value_type = Object)]
    context: Value,
    /// Always `null`.
    #[schema(value_type = Option<String>)]
    owner: Option<()>,
    removable: bool,
    resettable: bool,
    disabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Who made the last change.
    editor: String,
    label: Vec<String>,
    /// Always `[]`.
    tag: Vec<String>,
}

/// A configuration on the wire. Sealed values are obfuscated.
pub fn render(state: &AppState, row: &ConfigurationRow) -> ConfigurationView {
    let params: Value = serde_json::from_str(&row.parameters).unwrap_or(json!({}));
    let aad = sealing_aad(&row.r#type, &row.identifier);
    ConfigurationView {
        r#type: row.r#type.clone(),
        identifier: row.identifier.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        object: PrototypeInstance {
            prototype: row.prototype.clone(),
            parameters: crate::integration::parameters::obfuscated(&state.keyring, &aad, &params),
        },
        context: json!({}),
        owner: None,
        removable: true,
        resettable: false,
        disabled: row.disabled,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        editor: row.editor.clone(),
        label: row.labels.clone(),
        tag: Vec::new(),
    }
}

/// A configuration as exported (and imported).
#[derive(utoipa::ToSchema)]
#[schema(as = ExportedConfiguration)]
#[allow(dead_code)] // Describes the wire format of `exported`.
pub struct ExportedSchema {
    r#type: String,
    identifier: String,
    name: String,
    description: String,
    /// Sealed values stay sealed (`{"$sealed": ...}`).
    object: PrototypeInstance,
    disabled: bool,
    label: Vec<String>,
}

/// A configuration as exported: sealed values stay sealed (they import into a server
/// with the same encryption key).
pub fn exported(row: &ConfigurationRow) -> Value {
    let params: Value = serde_json::from_str(&row.parameters).unwrap_or(json!({}));
    json!({
        "type": row.r#type,
        "identifier": row.identifier,
        "name": row.name,
        "description": row.description,
        "object": {"prototype": row.prototype, "parameters": params},
        "disabled": row.disabled,
        "label": row.labels,
    })
}

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Report `${NAME}` references to undefined variables.
    pub validate_variables: bool,
}

/// Check a complete configuration of `r#type` and turn it into a row (parameters
/// sealed). `row.created_at`/`updated_at` are left at 0.
pub async fn check(
    state: &AppState,
    r#type: &str,
    body: &ConfigurationBody,
    editor: &str,
    options: CheckOptions,
) -> Result<ConfigurationRow, Vec<Violation>> {
    let mut violations = Vec::new();
    let kind = parse_type(r#type).map_err(|e| {
        vec![Violation::new(
            "type",
            e.message().to_owned(),
            "Use destination or transformer.",
        )]
    })?;
    let identifier = body.identifier.clone().unwrap_or_default();
    if !valid_identifier(&identifier) {
        violations.push(Violation::new(
            "identifier",
            "must match ^[a-z0-9]+[a-z0-9-]*[a-z0-9]+$ and be 2 to 255 characters",
            "Use lowercase letters, digits and dashes, e.g. `orders-to-crm`.",
        ));
    }
    let name = body.name.clone().unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > 255 {
        violations.push(Violation::new(
            "name",
            "is required and at most 255 characters",
            "Give the configuration a human readable name.",
        ));
    }
    let description = body.description.clone().unwrap_or_default();
    if description.chars().count() > 64000 {
        violations.push(Violation::new(
            "description",
            "is longer than 64000 characters",
            "",
        ));
    }
    let labels = body.label.clone().unwrap_or_default();
    if labels
        .iter()
        .any(|l| l.trim().is_empty() || l.chars().count() > 255)
    {
        violations.push(Violation::new(
            "label",
            "labels must be 1 to 255 characters",
            "Remove empty labels.",
        ));
    }
    let object = body.object.clone().unwrap_or(Value::Null);
    let prototype = object
        .get("prototype")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut params = match object.get("parameters") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(_) => {
            violations.push(Violation::new(
                "object.parameters",
                "must be an object",
                "Send the prototype's fields as a JSON object.",
            ));
            Value::Object(Map::new())
        }
    };
    let plugin = state.registry.find_prototype(kind, prototype);
    let Some((plugin, proto)) = plugin.and_then(|p| {
        let proto = p.prototype(kind, prototype).cloned()?;
        Some((p, proto))
    }) else {
        violations.push(Violation::new(
            "object.prototype",
            format!("unknown {type} prototype `{prototype}`"),
            format!("See GET /api/v1/prototypes?kind={type} for the loaded ones."),
        ));
        return Err(violations);
    };
    let aad = sealing_aad(r#type, &identifier);
    if unseal(&state.keyring, &aad, &mut params).is_err() {
        violations.push(Violation::new(
            "object.parameters",
            "a sealed value cannot be opened with this server's keys",
            "Sealed values only move between servers with the same encryption key; send the plain value.",
        ));
        return Err(violations);
    }
    let stored_params = params.clone();
    let mut resolved = params;
    let missing = resolve_stored(&state.store, &state.keyring, &mut resolved)
        .await
        .map_err(|e| vec![Violation::new("object.parameters", e.to_string(), "")])?;
    if options.validate_variables {
        for name in &missing {
            violations.push(Violation::new(
                "object.parameters",
                format!("environment variable `{name}` is not defined"),
                "Create it under /api/v1/environment-variables or remove the reference.",
            ));
        }
    }
    let (config, credentials) = split(&proto, &resolved);
    match plugin
        .validate(kind, prototype, &config, &credentials)
        .await
    {
        Ok(problems) => {
            for p in problems {
                // An unresolved reference is reported once, as a variable problem.
                let path = property_path(&p.field);
                let key = path.trim_start_matches("object.parameters.");
                let unresolved = stored_params
                    .get(key)
                    .is_some_and(|v| !references(v).is_empty() && !missing.is_empty());
                if !(unresolved && options.validate_variables) {
                    let field = key.split(['.', '[']).next().unwrap_or(key);
                    violations.push(Violation::new(&path, p.message, field_help(&proto, field)));
                }
            }
        }
        Err(err) => violations.push(Violation::new(
            "object",
            format!("the plugin failed to validate: {err}"),
            "",
        )),
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let mut sealed = stored_params;
    seal(&state.keyring, &aad, &proto, &mut sealed);
    Ok(ConfigurationRow {
        r#type: r#type.to_owned(),
        identifier,
        name,
        description,
        prototype: prototype.to_owned(),
        parameters: sealed.to_string(),
        labels,
        disabled: body.disabled.unwrap_or(false),
        editor: editor.to_owned(),
        created_at: 0,
        updated_at: 0,
    })
}

fn field_help(proto: &crate::runtime::Prototype, key: &str) -> String {
    proto
        .config_fields
        .iter()
        .chain(&proto.credential_fields)
        .find(|f| f.key == key)
        .map(|f| f.description.clone())
        .unwrap_or_default()
}

/// The body of a stored configuration, with sealed values opened, so that a patch or
/// restore can be checked like a new one.
pub fn body_of(state: &AppState, row: &ConfigurationRow) -> ApiResult<ConfigurationBody> {
    let mut params: Value = serde_json::from_str(&row.parameters).unwrap_or(json!({}));
    unseal(
        &state.keyring,
        &sealing_aad(&row.r#type, &row.identifier),
        &mut params,
    )
    .map_err(ApiError::internal)?;
    Ok(ConfigurationBody {
        r#type: Some(row.r#type.clone()),
        identifier: Some(row.identifier.clone()),
        name: Some(row.name.clone()),
        description: Some(row.description.clone()),
        object: Some(json!({"prototype": row.prototype, "parameters": params})),
        disabled: Some(row.disabled),
        label: Some(row.labels.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_reference_pattern() {
        for ok in ["ab", "orders-to-crm", "a1", "9-9"] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in ["a", "-ab", "ab-", "Ab", "a_b", "a b", &"a".repeat(256)] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }
}
