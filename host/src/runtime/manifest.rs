//! Host-side plugin manifest types.
//!
//! These mirror the WIT `manifest` records but belong to the host: they are serde types
//! the API renders and stores, independent of the WIT version a plugin was built
//! against. Each bindings version converts its generated records into them (see the
//! `From` impls at the bottom for `outrider:plugin@0.1.x`).

use serde::{Deserialize, Serialize};

use super::bindings::v0_1_1::types as wit;

/// What a plugin is and what it provides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Plugin name, `^[a-z0-9][a-z0-9_-]*$`.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// One or two sentences about the plugin.
    pub description: String,
    /// The implementations the plugin provides.
    pub prototypes: Vec<Prototype>,
}

/// What a prototype implements.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PrototypeKind {
    /// Receives events and delivers them (`destination` interface).
    Destination,
    /// Maps one JSON input to zero or more outputs (`transformer` interface).
    Transformer,
}

impl PrototypeKind {
    /// The WIT interface name a plugin must export for this kind.
    pub fn interface(self) -> &'static str {
        match self {
            PrototypeKind::Destination => "destination",
            PrototypeKind::Transformer => "transformer",
        }
    }
}

impl std::fmt::Display for PrototypeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.interface())
    }
}

/// How a form renders a field and how the host checks its value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string.
    Text,
    /// A boolean.
    Checkbox,
    /// A string out of `options`.
    Select,
    /// An object of strings.
    KeyValueMap,
    /// A number.
    Number,
    /// Any JSON value.
    Json,
}

impl FieldType {
    /// The name used in messages and the API (`key_value_map`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Checkbox => "checkbox",
            FieldType::Select => "select",
            FieldType::KeyValueMap => "key_value_map",
            FieldType::Number => "number",
            FieldType::Json => "json",
        }
    }
}

/// One choice of a `select` field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SelectOption {
    /// Value stored in the configuration.
    pub value: String,
    /// Human readable label.
    pub label: String,
}

/// A configuration or credential field of a prototype.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Field {
    /// JSON key, `^[a-z][a-z0-9_]*$`.
    pub key: String,
    /// Value type (serialized as `type`).
    pub r#type: FieldType,
    /// Short label for forms.
    pub label: String,
    /// One or two sentences for forms and errors.
    pub description: String,
    /// Whether a configuration must have it.
    pub required: bool,
    /// Whether it is encrypted at rest and obfuscated on read.
    pub sensitive: bool,
    /// Default value as JSON text (e.g. `"\"POST\""`, `"true"`, `"30"`); checked at load
    /// to parse and to match `type`.
    pub default: Option<String>,
    /// Minimum length of a `text` value, in characters.
    pub min_length: Option<u32>,
    /// Maximum length of a `text` value, in characters.
    pub max_length: Option<u32>,
    /// Regular expression a `text` value must match in full.
    pub pattern: Option<String>,
    /// Choices of a `select` field.
    pub options: Vec<SelectOption>,
    /// Host-generated secret, if the host creates and rotates this credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<SecretGenerator>,
}

/// How the host generates a secret: `prefix` then `bytes` random bytes in base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretGenerator {
    /// Text before the random part, e.g. `whsec_`.
    pub prefix: String,
    /// Random bytes (16 to 256).
    pub bytes: u32,
}

/// Network access a prototype needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct NetworkAccess {
    /// Host patterns (`api.example.com`, `*.amazonaws.com`, `sqs.{region}.amazonaws.com`,
    /// optionally with `:port`).
    pub hosts: Vec<String>,
    /// Config keys whose values are URLs (or `host[:port]`) the plugin may reach.
    pub url_fields: Vec<String>,
    /// Whether the prototype uses raw TCP.
    pub tcp: bool,
}

/// A link to a managed-setup flow (Outpost's `setup_link`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SetupLink {
    /// URL to send the person to.
    pub href: String,
    /// Call-to-action text for the button.
    pub cta: String,
}

/// An implementation a plugin exports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Prototype {
    /// Identifier, unique within the plugin (the destination `type`).
    pub id: String,
    /// What it implements.
    pub kind: PrototypeKind,
    /// Display name.
    pub label: String,
    /// One or two sentences.
    pub description: String,
    /// SVG markup, or empty.
    pub icon: String,
    /// Markdown shown to the person configuring it.
    pub instructions: String,
    /// A managed-setup flow (e.g. OAuth) the person should follow, if any.
    pub setup_link: Option<SetupLink>,
    /// Configuration fields.
    pub config_fields: Vec<Field>,
    /// Credential fields.
    pub credential_fields: Vec<Field>,
    /// Network access it needs.
    pub network: NetworkAccess,
}

impl Prototype {
    /// The declared fields of one section (`config` or `credentials`).
    pub fn fields(&self, section: Section) -> &[Field] {
        match section {
            Section::Config => &self.config_fields,
            Section::Credentials => &self.credential_fields,
        }
    }
}

/// The two field sections of a prototype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// `config_fields`, values under `config.`.
    Config,
    /// `credential_fields`, values under `credentials.`.
    Credentials,
}

impl Section {
    /// Path prefix in field errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Config => "config",
            Section::Credentials => "credentials",
        }
    }
}

/// A self-test a plugin ships for one of its prototypes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TestCase {
    /// Name of the test.
    pub name: String,
    /// Prototype id it exercises.
    pub prototype: String,
    /// Configuration object (JSON text as sent by the plugin).
    pub config: String,
    /// Credentials object (JSON text).
    pub credentials: String,
    /// Transformer input (JSON text).
    pub input: Option<String>,
    /// Expected transformer outputs as a JSON array text.
    pub expected: Option<String>,
    /// Whether the call is expected to fail.
    pub expect_error: bool,
}

/// A validation problem with one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `config.url`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A field error at `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

// ---- conversions from outrider:plugin@0.1.x ----

impl From<wit::PrototypeKind> for PrototypeKind {
    fn from(kind: wit::PrototypeKind) -> Self {
        match kind {
            wit::PrototypeKind::Destination => PrototypeKind::Destination,
            wit::PrototypeKind::Transformer => PrototypeKind::Transformer,
        }
    }
}

impl From<wit::FieldType> for FieldType {
    fn from(ty: wit::FieldType) -> Self {
        match ty {
            wit::FieldType::Text => FieldType::Text,
            wit::FieldType::Checkbox => FieldType::Checkbox,
            wit::FieldType::Select => FieldType::Select,
            wit::FieldType::KeyValueMap => FieldType::KeyValueMap,
            wit::FieldType::Number => FieldType::Number,
            wit::FieldType::Json => FieldType::Json,
        }
    }
}

impl From<wit::TestCase> for TestCase {
    fn from(t: wit::TestCase) -> Self {
        TestCase {
            name: t.name,
            prototype: t.prototype,
            config: t.config,
            credentials: t.credentials,
            input: t.input,
            expected: t.expected,
            expect_error: t.expect_error,
        }
    }
}

impl From<wit::FieldError> for FieldError {
    fn from(e: wit::FieldError) -> Self {
        FieldError {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<wit::Field> for Field {
    fn from(f: wit::Field) -> Self {
        Field {
            key: f.key,
            r#type: f.type_.into(),
            label: f.label,
            description: f.description,
            required: f.required,
            sensitive: f.sensitive,
            default: f.default,
            min_length: f.min_length,
            max_length: f.max_length,
            pattern: f.pattern,
            options: f
                .options
                .into_iter()
                .map(|o| SelectOption {
                    value: o.value,
                    label: o.label,
                })
                .collect(),
            generate: f.generate.map(|g| SecretGenerator {
                prefix: g.prefix,
                bytes: g.bytes,
            }),
        }
    }
}

impl From<wit::Prototype> for Prototype {
    fn from(p: wit::Prototype) -> Self {
        Prototype {
            id: p.id,
            kind: p.kind.into(),
            label: p.label,
            description: p.description,
            icon: p.icon,
            instructions: p.instructions,
            setup_link: p.setup_link.map(|l| SetupLink {
                href: l.href,
                cta: l.cta,
            }),
            config_fields: p.config_fields.into_iter().map(Field::from).collect(),
            credential_fields: p.credential_fields.into_iter().map(Field::from).collect(),
            network: NetworkAccess {
                hosts: p.network.hosts,
                url_fields: p.network.url_fields,
                tcp: p.network.tcp,
            },
        }
    }
}

impl From<wit::Manifest> for Manifest {
    fn from(m: wit::Manifest) -> Self {
        Manifest {
            name: m.name,
            version: m.version,
            description: m.description,
            prototypes: m.prototypes.into_iter().map(Prototype::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_uses_snake_case() {
        let f = Field {
            key: "url".into(),
            r#type: FieldType::KeyValueMap,
            label: "URL".into(),
            description: String::new(),
            required: true,
            sensitive: false,
            default: None,
            min_length: Some(1),
            max_length: None,
            pattern: None,
            options: vec![],
            generate: None,
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["type"], "key_value_map");
        assert_eq!(v["min_length"], 1);
        assert_eq!(
            serde_json::to_value(PrototypeKind::Destination).unwrap(),
            "destination"
        );
    }
}
