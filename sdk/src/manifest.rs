//! What a plugin declares about itself: its manifest, prototypes, their fields and
//! network access, and self-tests. Built with small builders:
//!
//! ```
//! use outrider_sdk::{Field, Manifest, Prototype};
//!
//! let manifest = Manifest::new("webhook", "0.1.0").prototype(
//!     Prototype::destination("webhook")
//!         .label("Webhook")
//!         .config_field(Field::text("url").label("URL").required())
//!         .credential_field(Field::text("secret").label("Secret").sensitive())
//!         .url_field("url"),
//! );
//! assert_eq!(manifest.prototypes[0].config_fields[0].key, "url");
//! ```

use serde_json::Value;

/// A plugin's manifest: returned once at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Plugin name, `^[a-z0-9][a-z0-9_-]*$`.
    pub name: String,
    /// Semantic version, e.g. `1.2.0`.
    pub version: String,
    /// One or two sentences.
    pub description: String,
    /// What the plugin provides.
    pub prototypes: Vec<Prototype>,
}

impl Manifest {
    /// A manifest with no prototypes yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            prototypes: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds a prototype.
    pub fn prototype(mut self, prototype: Prototype) -> Self {
        self.prototypes.push(prototype);
        self
    }
}

/// What a prototype implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrototypeKind {
    /// Delivers events ([`Destination`](crate::Destination)).
    Destination,
    /// Maps JSON to JSON ([`Transformer`](crate::Transformer)).
    Transformer,
}

/// A managed-setup flow (Outpost's `setup_link`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupLink {
    /// URL to send the person to.
    pub href: String,
    /// Call-to-action text for the button.
    pub cta: String,
}

/// Network access a prototype needs; the host denies everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAccess {
    /// Host patterns always allowed (`api.example.com`, `*.amazonaws.com`,
    /// `sqs.{region}.amazonaws.com`).
    pub hosts: Vec<String>,
    /// Keys of config fields whose values are URLs (or `host[:port]`) the plugin may reach.
    pub url_fields: Vec<String>,
    /// Whether the prototype uses raw TCP.
    pub tcp: bool,
}

/// One destination type or transformer the plugin provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prototype {
    /// Identifier, `^[a-z0-9][a-z0-9_-]*$`; the destination `type` (e.g. `webhook`).
    pub id: String,
    /// Destination or transformer.
    pub kind: PrototypeKind,
    /// Short name for forms.
    pub label: String,
    /// One or two sentences.
    pub description: String,
    /// SVG markup, or empty.
    pub icon: String,
    /// Markdown shown to the person configuring it.
    pub instructions: String,
    /// Managed-setup flow, if any.
    pub setup_link: Option<SetupLink>,
    /// Configuration fields.
    pub config_fields: Vec<Field>,
    /// Credential fields.
    pub credential_fields: Vec<Field>,
    /// Network access it needs.
    pub network: NetworkAccess,
}

impl Prototype {
    /// A destination prototype; the label defaults to the id.
    pub fn destination(id: impl Into<String>) -> Self {
        Self::new(id.into(), PrototypeKind::Destination)
    }

    /// A transformer prototype; the label defaults to the id.
    pub fn transformer(id: impl Into<String>) -> Self {
        Self::new(id.into(), PrototypeKind::Transformer)
    }

    fn new(id: String, kind: PrototypeKind) -> Self {
        Prototype {
            label: id.clone(),
            id,
            kind,
            description: String::new(),
            icon: String::new(),
            instructions: String::new(),
            setup_link: None,
            config_fields: Vec::new(),
            credential_fields: Vec::new(),
            network: NetworkAccess::default(),
        }
    }

    /// Sets the label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the icon (SVG markup).
    pub fn icon(mut self, svg: impl Into<String>) -> Self {
        self.icon = svg.into();
        self
    }

    /// Sets the instructions (markdown).
    pub fn instructions(mut self, markdown: impl Into<String>) -> Self {
        self.instructions = markdown.into();
        self
    }

    /// Sets a managed-setup link.
    pub fn setup_link(mut self, href: impl Into<String>, cta: impl Into<String>) -> Self {
        self.setup_link = Some(SetupLink {
            href: href.into(),
            cta: cta.into(),
        });
        self
    }

    /// Adds a configuration field.
    pub fn config_field(mut self, field: Field) -> Self {
        self.config_fields.push(field);
        self
    }

    /// Adds a credential field.
    pub fn credential_field(mut self, field: Field) -> Self {
        self.credential_fields.push(field);
        self
    }

    /// Allows a host pattern (`api.example.com`, `*.amazonaws.com:443`,
    /// `sqs.{region}.amazonaws.com`).
    pub fn host(mut self, pattern: impl Into<String>) -> Self {
        self.network.hosts.push(pattern.into());
        self
    }

    /// Allows the URL (or `host[:port]`) in config field `key`.
    pub fn url_field(mut self, key: impl Into<String>) -> Self {
        self.network.url_fields.push(key.into());
        self
    }

    /// Declares that the prototype uses raw TCP (brokers).
    pub fn tcp(mut self) -> Self {
        self.network.tcp = true;
        self
    }
}

/// How a form renders a field and how the host checks its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    Text,
    /// A boolean.
    Checkbox,
    /// One of [`Field::options`], a string.
    Select,
    /// An object of strings.
    KeyValueMap,
    /// A number.
    Number,
    /// Any JSON value.
    Json,
}

/// One choice of a select field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectOption {
    /// Value stored in the configuration.
    pub value: String,
    /// Human readable label.
    pub label: String,
}

/// A configuration or credential field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// JSON key, `^[a-z][a-z0-9_]*$`.
    pub key: String,
    /// How it renders and is checked.
    pub field_type: FieldType,
    /// Short label; defaults to the key.
    pub label: String,
    /// One or two sentences.
    pub description: String,
    /// The host refuses a configuration without it.
    pub required: bool,
    /// Encrypted at rest, obfuscated on read.
    pub sensitive: bool,
    /// Default value as JSON text.
    pub default: Option<String>,
    /// Minimum length of a text value.
    pub min_length: Option<u32>,
    /// Maximum length of a text value.
    pub max_length: Option<u32>,
    /// Regular expression a text value must match in full.
    pub pattern: Option<String>,
    /// Choices of a select field.
    pub options: Vec<SelectOption>,
    /// Host-generated secret: `(prefix, random bytes)`; see [`Field::generated`].
    pub generate: Option<(String, u32)>,
}

impl Field {
    fn new(key: impl Into<String>, field_type: FieldType) -> Self {
        let key = key.into();
        Field {
            label: key.clone(),
            key,
            field_type,
            description: String::new(),
            required: false,
            sensitive: false,
            default: None,
            min_length: None,
            max_length: None,
            pattern: None,
            options: Vec::new(),
            generate: None,
        }
    }

    /// Let the host generate this credential when it is left empty (`prefix` followed by
    /// `bytes` random bytes in base64) and rotate it on `rotate_<key>: true`.
    pub fn generated(mut self, prefix: impl Into<String>, bytes: u32) -> Self {
        self.generate = Some((prefix.into(), bytes));
        self
    }

    /// A text field.
    pub fn text(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::Text)
    }

    /// A checkbox (boolean).
    pub fn checkbox(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::Checkbox)
    }

    /// A select field; add choices with [`Field::option`].
    pub fn select(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::Select)
    }

    /// A key/value map (object of strings).
    pub fn key_value_map(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::KeyValueMap)
    }

    /// A number.
    pub fn number(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::Number)
    }

    /// Any JSON value.
    pub fn json(key: impl Into<String>) -> Self {
        Self::new(key, FieldType::Json)
    }

    /// Sets the label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks the field sensitive (encrypted at rest, obfuscated on read).
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Sets the default value (`"POST"`, `true`, `30`, `json!({...})`).
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into().to_string());
        self
    }

    /// Sets the minimum length of a text value.
    pub fn min_length(mut self, chars: u32) -> Self {
        self.min_length = Some(chars);
        self
    }

    /// Sets the maximum length of a text value.
    pub fn max_length(mut self, chars: u32) -> Self {
        self.max_length = Some(chars);
        self
    }

    /// Sets the regular expression a text value must match in full.
    pub fn pattern(mut self, regex: impl Into<String>) -> Self {
        self.pattern = Some(regex.into());
        self
    }

    /// Adds a choice to a select field.
    pub fn option(mut self, value: impl Into<String>, label: impl Into<String>) -> Self {
        self.options.push(SelectOption {
            value: value.into(),
            label: label.into(),
        });
        self
    }
}

/// A self-test for one prototype: transformers give an input and the expected outputs;
/// destinations give a configuration that `validate` must accept or reject.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// Test name.
    pub name: String,
    /// Prototype id.
    pub prototype: String,
    /// Configuration object.
    pub config: Value,
    /// Credentials object.
    pub credentials: Value,
    /// Transformer input.
    pub input: Option<Value>,
    /// Expected transformer outputs, or `None` to only expect success.
    pub expected: Option<Vec<Value>>,
    /// Whether the call is expected to fail.
    pub expect_error: bool,
}

impl TestCase {
    /// A test of `prototype` with empty config and credentials.
    pub fn new(name: impl Into<String>, prototype: impl Into<String>) -> Self {
        TestCase {
            name: name.into(),
            prototype: prototype.into(),
            config: Value::Object(Default::default()),
            credentials: Value::Object(Default::default()),
            input: None,
            expected: None,
            expect_error: false,
        }
    }

    /// Sets the configuration object.
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// Sets the credentials object.
    pub fn credentials(mut self, credentials: Value) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets the transformer input.
    pub fn input(mut self, input: Value) -> Self {
        self.input = Some(input);
        self
    }

    /// Expects these transformer outputs.
    pub fn expect(mut self, outputs: Vec<Value>) -> Self {
        self.expected = Some(outputs);
        self
    }

    /// Expects the call to fail.
    pub fn expect_error(mut self) -> Self {
        self.expect_error = true;
        self
    }
}
