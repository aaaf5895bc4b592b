//! Typed access to a target's `config` and `credentials` JSON objects, and validation
//! errors that name the field they are about (`config.url is required`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A problem with one field, e.g. `FieldError::new("config.url", "must be an http(s) URL")`.
///
/// Displays as `"{field} {message}"`, so messages read best starting with a verb:
/// `is required`, `must be ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field: `config.url`, `credentials.secret`, `config.custom_headers.x-id`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A problem with `field` (a path such as `config.url`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Every error on one line, `; `-separated, for a single error message.
pub(crate) fn join_errors(errors: &[FieldError]) -> String {
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.join("; ")
}

/// Collects a field check's error so that `validate` can report every problem at once.
///
/// ```
/// use outrider_sdk::{Config, FieldError, Record};
///
/// let config = Config::from_json(r#"{"url": 5}"#).unwrap();
/// let mut errors: Vec<FieldError> = Vec::new();
/// let url = config.str("url").record(&mut errors);
/// let name = config.str("name").record(&mut errors);
/// assert_eq!((url, name), (None, None));
/// assert_eq!(errors[0].to_string(), "config.url must be a string");
/// assert_eq!(errors[1].to_string(), "config.name is required");
/// ```
pub trait Record<T> {
    /// The value, or `None` after pushing the error onto `errors`.
    fn record(self, errors: &mut Vec<FieldError>) -> Option<T>;
}

impl<T> Record<T> for Result<T, FieldError> {
    fn record(self, errors: &mut Vec<FieldError>) -> Option<T> {
        match self {
            Ok(value) => Some(value),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }
}

/// Defines a typed view over one JSON object section (`config` or `credentials`).
macro_rules! object_section {
    ($(#[$doc:meta])* $name:ident, $section:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            values: Map<String, Value>,
        }

        impl $name {
            /// Name of the section, the first part of every field path.
            pub const SECTION: &'static str = $section;

            /// Parses JSON text; empty text is an empty object.
            pub fn from_json(text: &str) -> Result<Self, FieldError> {
                if text.trim().is_empty() {
                    return Ok(Self::default());
                }
                let value = serde_json::from_str(text).map_err(|e| {
                    FieldError::new($section, format!("is not valid JSON: {e}"))
                })?;
                Self::from_value(value)
            }

            /// Wraps a JSON object (`null` is an empty object).
            pub fn from_value(value: Value) -> Result<Self, FieldError> {
                match value {
                    Value::Object(values) => Ok(Self { values }),
                    Value::Null => Ok(Self::default()),
                    _ => Err(FieldError::new($section, "must be a JSON object")),
                }
            }

            /// The path of `key` in errors, e.g. `config.url`.
            pub fn path(&self, key: &str) -> String {
                format!("{}.{key}", $section)
            }

            /// An error about `key`.
            pub fn error(&self, key: &str, message: impl Into<String>) -> FieldError {
                FieldError::new(self.path(key), message)
            }

            /// The raw value of `key`; `null` counts as absent.
            pub fn get(&self, key: &str) -> Option<&Value> {
                self.values.get(key).filter(|v| !v.is_null())
            }

            /// A required, non-empty string.
            pub fn str(&self, key: &str) -> Result<&str, FieldError> {
                self.opt_str(key)?
                    .ok_or_else(|| self.error(key, "is required"))
            }

            /// An optional string; absent, `null` and `""` are `None`.
            pub fn opt_str(&self, key: &str) -> Result<Option<&str>, FieldError> {
                match self.get(key) {
                    None => Ok(None),
                    Some(Value::String(s)) if s.is_empty() => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(_) => Err(self.error(key, "must be a string")),
                }
            }

            /// A checkbox: absent is `false`; `"true"`/`"false"` strings are accepted.
            pub fn bool(&self, key: &str) -> Result<bool, FieldError> {
                match self.get(key) {
                    None => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(Value::String(s)) if s == "true" => Ok(true),
                    Some(Value::String(s)) if s == "false" || s.is_empty() => Ok(false),
                    Some(_) => Err(self.error(key, "must be true or false")),
                }
            }

            /// A required number; numeric strings are accepted.
            pub fn number(&self, key: &str) -> Result<f64, FieldError> {
                self.opt_number(key)?
                    .ok_or_else(|| self.error(key, "is required"))
            }

            /// An optional number; absent, `null` and `""` are `None`.
            pub fn opt_number(&self, key: &str) -> Result<Option<f64>, FieldError> {
                match self.get(key) {
                    None => Ok(None),
                    Some(Value::Number(n)) => Ok(n.as_f64()),
                    Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                    Some(Value::String(s)) => s
                        .trim()
                        .parse()
                        .map(Some)
                        .map_err(|_| self.error(key, "must be a number")),
                    Some(_) => Err(self.error(key, "must be a number")),
                }
            }

            /// A key/value map (absent is empty). Also accepts the map as JSON text, and
            /// numbers or booleans as values.
            pub fn map(&self, key: &str) -> Result<BTreeMap<String, String>, FieldError> {
                let parsed;
                let object = match self.get(key) {
                    None => return Ok(BTreeMap::new()),
                    Some(Value::String(s)) if s.trim().is_empty() => return Ok(BTreeMap::new()),
                    Some(Value::String(s)) => {
                        parsed = serde_json::from_str::<Value>(s).map_err(|_| {
                            self.error(key, "must be an object of strings")
                        })?;
                        match &parsed {
                            Value::Object(o) => o,
                            _ => return Err(self.error(key, "must be an object of strings")),
                        }
                    }
                    Some(Value::Object(o)) => o,
                    Some(_) => return Err(self.error(key, "must be an object of strings")),
                };
                object
                    .iter()
                    .map(|(k, v)| {
                        let value = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => {
                                return Err(FieldError::new(
                                    format!("{}.{key}.{k}", $section),
                                    "must be a string",
                                ))
                            }
                        };
                        Ok((k.clone(), value))
                    })
                    .collect()
            }

            /// Deserializes the whole object into `T`; errors name the field
            /// (`config.url is required`).
            pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, FieldError> {
                deserialize_section($section, Value::Object(self.values.clone()))
            }

            /// The underlying JSON object.
            pub fn as_map(&self) -> &Map<String, Value> {
                &self.values
            }

            /// Whether the object has no fields.
            pub fn is_empty(&self) -> bool {
                self.values.is_empty()
            }
        }

        impl From<Map<String, Value>> for $name {
            fn from(values: Map<String, Value>) -> Self {
                Self { values }
            }
        }
    };
}

object_section!(
    /// A target's configuration: the prototype's `config-fields`, already type-checked by
    /// the host, defaults applied.
    ///
    /// ```
    /// use outrider_sdk::Config;
    ///
    /// let config = Config::from_json(r#"{"url": "https://example.com", "custom_headers": {"x-a": "1"}}"#).unwrap();
    /// assert_eq!(config.str("url").unwrap(), "https://example.com");
    /// assert_eq!(config.map("custom_headers").unwrap()["x-a"], "1");
    /// assert_eq!(config.str("missing").unwrap_err().to_string(), "config.missing is required");
    /// ```
    Config,
    "config"
);

object_section!(
    /// A target's decrypted credentials: the prototype's `credential-fields`.
    Credentials,
    "credentials"
);

fn deserialize_section<T: DeserializeOwned>(section: &str, value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        match (path.as_str(), missing) {
            (".", Some(field)) => FieldError::new(format!("{section}.{field}"), "is required"),
            (".", None) => FieldError::new(section, format!("is invalid: {message}")),
            (_, Some(field)) => FieldError::new(format!("{section}.{path}.{field}"), "is required"),
            (_, None) => FieldError::new(
                format!("{section}.{path}"),
                format!("is invalid: {message}"),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn config(value: Value) -> Config {
        Config::from_value(value).unwrap()
    }

    #[test]
    fn strings() {
        let c = config(json!({"url": "https://x", "empty": "", "num": 3, "null": null}));
        assert_eq!(c.str("url").unwrap(), "https://x");
        assert_eq!(
            c.str("empty").unwrap_err().to_string(),
            "config.empty is required"
        );
        assert_eq!(
            c.str("null").unwrap_err().to_string(),
            "config.null is required"
        );
        assert_eq!(
            c.str("num").unwrap_err().to_string(),
            "config.num must be a string"
        );
        assert_eq!(c.opt_str("empty").unwrap(), None);
        assert_eq!(c.opt_str("absent").unwrap(), None);
        assert_eq!(c.opt_str("url").unwrap(), Some("https://x"));
    }

    #[test]
    fn booleans_and_numbers() {
        let c =
            config(json!({"t": true, "s": "true", "f": "false", "bad": 1, "n": 2.5, "ns": "7"}));
        assert!(c.bool("t").unwrap());
        assert!(c.bool("s").unwrap());
        assert!(!c.bool("f").unwrap());
        assert!(!c.bool("absent").unwrap());
        assert_eq!(
            c.bool("bad").unwrap_err().to_string(),
            "config.bad must be true or false"
        );
        assert_eq!(c.number("n").unwrap(), 2.5);
        assert_eq!(c.number("ns").unwrap(), 7.0);
        assert_eq!(
            c.number("absent").unwrap_err().to_string(),
            "config.absent is required"
        );
        assert_eq!(
            c.opt_number("t").unwrap_err().to_string(),
            "config.t must be a number"
        );
    }

    #[test]
    fn maps() {
        let c = config(json!({
            "h": {"a": "1", "b": 2, "c": true},
            "text": "{\"x\": \"y\"}",
            "bad": {"a": {"nested": 1}},
            "list": [1],
        }));
        let h = c.map("h").unwrap();
        assert_eq!(h["a"], "1");
        assert_eq!(h["b"], "2");
        assert_eq!(h["c"], "true");
        assert_eq!(c.map("text").unwrap()["x"], "y");
        assert!(c.map("absent").unwrap().is_empty());
        assert_eq!(
            c.map("bad").unwrap_err().to_string(),
            "config.bad.a must be a string"
        );
        assert_eq!(
            c.map("list").unwrap_err().to_string(),
            "config.list must be an object of strings"
        );
    }

    #[test]
    fn deserialize_names_the_field() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Settings {
            url: String,
            #[serde(default)]
            retries: u32,
        }
        let ok: Settings = config(json!({"url": "u", "retries": 2}))
            .deserialize()
            .unwrap();
        assert_eq!(ok.retries, 2);
        let missing = config(json!({})).deserialize::<Settings>().unwrap_err();
        assert_eq!(missing.to_string(), "config.url is required");
        let wrong = config(json!({"url": 1}))
            .deserialize::<Settings>()
            .unwrap_err();
        assert_eq!(wrong.field, "config.url");
        assert!(
            wrong.message.starts_with("is invalid: invalid type"),
            "{wrong}"
        );
        let creds = Credentials::from_value(json!({"url": "u", "retries": "x"})).unwrap();
        assert_eq!(
            creds.deserialize::<Settings>().unwrap_err().field,
            "credentials.retries"
        );
    }

    #[test]
    fn sections_must_be_objects() {
        assert!(Config::from_json("").unwrap().is_empty());
        assert!(Config::from_json("null").unwrap().is_empty());
        assert_eq!(
            Config::from_json("[1]").unwrap_err().to_string(),
            "config must be a JSON object"
        );
        assert!(Credentials::from_json("{")
            .unwrap_err()
            .to_string()
            .starts_with("credentials is not valid JSON"));
    }
}
