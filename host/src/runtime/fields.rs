//! Host-side checks of a configuration against a prototype's declared fields, run
//! before the plugin's own `validate`.
//!
//! Clients may send every value as a string (Outpost's convention: `"true"`, `"30"`, JSON
//! text for maps); [`FieldRules::check`] normalises values in place to the types the
//! plugin receives (`text`/`select` -> string, `checkbox` -> boolean, `number` ->
//! number, `key_value_map` -> object of strings, `json` -> any JSON value), fills in
//! declared defaults, and reports every problem with a path like `config.url`.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::manifest::{Field, FieldError, FieldType, Prototype, Section};

/// Compiled checks for one prototype (patterns compiled once, at load).
#[derive(Debug, Clone, Default)]
pub struct FieldRules {
    patterns: HashMap<(Section, String), Regex>,
}

/// Compile a field pattern so that it must match the whole value.
pub fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

impl FieldRules {
    /// Compile the patterns of `prototype`. Patterns that do not compile are skipped
    /// (the manifest checks reject such plugins before this is used).
    pub fn new(prototype: &Prototype) -> Self {
        let mut patterns = HashMap::new();
        for section in [Section::Config, Section::Credentials] {
            for field in prototype.fields(section) {
                if let Some(Ok(re)) = field.pattern.as_deref().map(compile_pattern) {
                    patterns.insert((section, field.key.clone()), re);
                }
            }
        }
        FieldRules { patterns }
    }

    /// Check and normalise `config` and `credentials` for `prototype`, applying
    /// defaults. Returns every problem found (empty when both are acceptable).
    pub fn check(
        &self,
        prototype: &Prototype,
        config: &mut Value,
        credentials: &mut Value,
    ) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.check_section(prototype, Section::Config, config, &mut errors);
        self.check_section(prototype, Section::Credentials, credentials, &mut errors);
        errors
    }

    fn check_section(
        &self,
        prototype: &Prototype,
        section: Section,
        value: &mut Value,
        errors: &mut Vec<FieldError>,
    ) {
        if value.is_null() {
            *value = Value::Object(Map::new());
        }
        let Some(object) = value.as_object_mut() else {
            errors.push(FieldError::new(section.as_str(), "must be a JSON object"));
            return;
        };
        for field in prototype.fields(section) {
            let path = format!("{}.{}", section.as_str(), field.key);
            let present = match object.get(&field.key) {
                None | Some(Value::Null) => false,
                // An empty string means "not set" for every type but text.
                Some(Value::String(s)) if s.is_empty() && field.r#type != FieldType::Text => false,
                Some(_) => true,
            };
            if !present {
                let default = field
                    .default
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok());
                match default {
                    Some(d) => {
                        object.insert(field.key.clone(), d);
                    }
                    None => {
                        object.remove(&field.key);
                        if field.required {
                            errors.push(FieldError::new(
                                path,
                                format!("{} is required", field.label_or_key()),
                            ));
                        }
                        continue;
                    }
                }
            }
            let Some(slot) = object.get_mut(&field.key) else {
                continue;
            };
            // Defaults are already in the plugin's types (checked at load).
            let normalized = if present {
                normalize(field, slot)
            } else {
                Ok(())
            };
            match normalized {
                Ok(()) => {
                    if let Err(message) = self.check_value(section, field, slot) {
                        errors.push(FieldError::new(path, message));
                    }
                }
                Err(message) => errors.push(FieldError::new(path, message)),
            }
        }
    }

    fn check_value(&self, section: Section, field: &Field, value: &Value) -> Result<(), String> {
        match field.r#type {
            FieldType::Text => {
                let text = value.as_str().unwrap_or_default();
                if field.required && text.is_empty() {
                    return Err(format!("{} is required", field.label_or_key()));
                }
                let chars = text.chars().count();
                if let Some(min) = field.min_length {
                    if chars < min as usize {
                        return Err(format!("must be at least {min} characters long"));
                    }
                }
                if let Some(max) = field.max_length {
                    if chars > max as usize {
                        return Err(format!("must be at most {max} characters long"));
                    }
                }
                if let Some(re) = self.patterns.get(&(section, field.key.clone())) {
                    if !re.is_match(text) {
                        let pattern = field.pattern.as_deref().unwrap_or_default();
                        return Err(format!("does not match the pattern `{pattern}`"));
                    }
                }
                Ok(())
            }
            FieldType::Select => {
                let text = value.as_str().unwrap_or_default();
                if field.options.iter().any(|o| o.value == text) {
                    Ok(())
                } else {
                    let allowed: Vec<&str> =
                        field.options.iter().map(|o| o.value.as_str()).collect();
                    Err(format!("must be one of: {}", allowed.join(", ")))
                }
            }
            _ => Ok(()),
        }
    }
}

impl Field {
    fn label_or_key(&self) -> &str {
        if self.label.is_empty() {
            &self.key
        } else {
            &self.label
        }
    }
}

/// Convert a client value to the field's type in place.
fn normalize(field: &Field, value: &mut Value) -> Result<(), String> {
    match field.r#type {
        FieldType::Text | FieldType::Select => match value {
            Value::String(_) => Ok(()),
            Value::Number(n) => {
                *value = Value::String(n.to_string());
                Ok(())
            }
            Value::Bool(b) => {
                *value = Value::String(b.to_string());
                Ok(())
            }
            _ => Err("must be a string".into()),
        },
        FieldType::Checkbox => {
            let parsed = match &*value {
                Value::Bool(b) => Some(*b),
                Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "on" | "1" | "yes" => Some(true),
                    "false" | "off" | "0" | "no" => Some(false),
                    _ => None,
                },
                Value::Number(n) => match n.as_i64() {
                    Some(1) => Some(true),
                    Some(0) => Some(false),
                    _ => None,
                },
                _ => None,
            };
            let b = parsed.ok_or("must be true or false")?;
            *value = Value::Bool(b);
            Ok(())
        }
        FieldType::Number => {
            let number = match &*value {
                Value::Number(n) => n.clone(),
                Value::String(s) => parse_number(s.trim()).ok_or("must be a number")?,
                _ => return Err("must be a number".into()),
            };
            *value = Value::Number(number);
            Ok(())
        }
        FieldType::KeyValueMap => {
            if let Value::String(s) = &*value {
                *value = serde_json::from_str(s)
                    .map_err(|_| "must be an object of strings (or its JSON text)".to_string())?;
            }
            let Value::Object(map) = value else {
                return Err("must be an object of strings".into());
            };
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(_) => {}
                    Value::Number(n) => *v = Value::String(n.to_string()),
                    Value::Bool(b) => *v = Value::String(b.to_string()),
                    _ => return Err(format!("value of `{k}` must be a string")),
                }
            }
            Ok(())
        }
        FieldType::Json => {
            if let Value::String(s) = &*value {
                *value = serde_json::from_str(s).map_err(|e| format!("must be JSON: {e}"))?;
            }
            Ok(())
        }
    }
}

fn parse_number(s: &str) -> Option<serde_json::Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(u.into());
    }
    s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// Whether a JSON default value fits a field type (used by the manifest checks).
pub fn default_matches(field: &Field, default: &Value) -> Result<(), String> {
    if field.r#type == FieldType::Json {
        return Ok(());
    }
    let mut copy = default.clone();
    normalize(field, &mut copy)?;
    if copy != *default {
        return Err(format!(
            "is not a {} value (expected {})",
            field.r#type.as_str(),
            match field.r#type {
                FieldType::Text | FieldType::Select => "a JSON string",
                FieldType::Checkbox => "true or false",
                FieldType::Number => "a JSON number",
                FieldType::KeyValueMap => "an object of strings",
                FieldType::Json => "JSON",
            }
        ));
    }
    if field.r#type == FieldType::Select {
        let v = default.as_str().unwrap_or_default();
        if !field.options.iter().any(|o| o.value == v) {
            return Err(format!("`{v}` is not one of the options"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::manifest::{NetworkAccess, PrototypeKind, SelectOption};
    use serde_json::json;

    fn field(key: &str, ty: FieldType) -> Field {
        Field {
            key: key.into(),
            r#type: ty,
            label: String::new(),
            description: String::new(),
            required: false,
            sensitive: false,
            default: None,
            min_length: None,
            max_length: None,
            pattern: None,
            options: vec![],
            generate: None,
        }
    }

    fn prototype(config: Vec<Field>, credentials: Vec<Field>) -> Prototype {
        Prototype {
            id: "p".into(),
            kind: PrototypeKind::Destination,
            label: "P".into(),
            description: String::new(),
            icon: String::new(),
            instructions: String::new(),
            setup_link: None,
            config_fields: config,
            credential_fields: credentials,
            network: NetworkAccess::default(),
        }
    }

    fn check(
        p: &Prototype,
        mut config: Value,
        mut creds: Value,
    ) -> (Value, Value, Vec<FieldError>) {
        let errors = FieldRules::new(p).check(p, &mut config, &mut creds);
        (config, creds, errors)
    }

    #[test]
    fn normalises_outpost_string_values() {
        let p = prototype(
            vec![
                field("enabled", FieldType::Checkbox),
                field("count", FieldType::Number),
                field("ratio", FieldType::Number),
                field("headers", FieldType::KeyValueMap),
                field("extra", FieldType::Json),
            ],
            vec![],
        );
        let (config, _, errors) = check(
            &p,
            json!({"enabled": "true", "count": "30", "ratio": "0.5", "headers": "{\"a\":\"b\",\"n\":1}", "extra": "[1,2]"}),
            json!({}),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            config,
            json!({"enabled": true, "count": 30, "ratio": 0.5, "headers": {"a": "b", "n": "1"}, "extra": [1, 2]})
        );
    }

    #[test]
    fn reports_every_problem_with_paths() {
        let mut url = field("url", FieldType::Text);
        url.required = true;
        url.pattern = Some("https?://.+".into());
        let mut name = field("name", FieldType::Text);
        name.min_length = Some(3);
        name.max_length = Some(5);
        let mut method = field("method", FieldType::Select);
        method.options = vec![SelectOption {
            value: "POST".into(),
            label: "POST".into(),
        }];
        let mut secret = field("secret", FieldType::Text);
        secret.required = true;
        let p = prototype(
            vec![url, name, method, field("n", FieldType::Number)],
            vec![secret],
        );

        let (_, _, errors) = check(
            &p,
            json!({"name": "ab", "method": "GET", "n": "x"}),
            json!({}),
        );
        let paths: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            paths,
            [
                "config.url",
                "config.name",
                "config.method",
                "config.n",
                "credentials.secret"
            ]
        );

        let (_, _, errors) = check(
            &p,
            json!({"url": "ftp://x", "name": "abcdef"}),
            json!({"secret": "s"}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("pattern"));
        assert!(errors[1].message.contains("at most 5"));

        // The pattern must match the whole value.
        let (_, _, errors) = check(&p, json!({"url": "xhttp://a"}), json!({"secret": "s"}));
        assert_eq!(errors.len(), 1);

        let (_, _, errors) = check(&p, json!({"url": "https://a"}), json!({"secret": "s"}));
        assert!(errors.is_empty(), "{errors:?}");

        let (_, _, errors) = check(&p, json!([1]), json!(null));
        assert_eq!(errors[0].field, "config");
        assert_eq!(errors[1].field, "credentials.secret");
    }

    #[test]
    fn applies_defaults() {
        let mut method = field("method", FieldType::Select);
        method.default = Some("\"POST\"".into());
        method.options = vec![SelectOption {
            value: "POST".into(),
            label: "POST".into(),
        }];
        let mut n = field("n", FieldType::Number);
        n.default = Some("3".into());
        n.required = true;
        let p = prototype(vec![method, n], vec![]);
        let (config, _, errors) = check(&p, json!({"n": ""}), json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config, json!({"method": "POST", "n": 3}));
    }

    #[test]
    fn default_type_checks() {
        let mut f = field("n", FieldType::Number);
        assert!(default_matches(&f, &json!(3)).is_ok());
        assert!(default_matches(&f, &json!("3")).is_err());
        f.r#type = FieldType::Checkbox;
        assert!(default_matches(&f, &json!(true)).is_ok());
        assert!(default_matches(&f, &json!("yes")).is_err());
        f.r#type = FieldType::Select;
        f.options = vec![SelectOption {
            value: "a".into(),
            label: "A".into(),
        }];
        assert!(default_matches(&f, &json!("a")).is_ok());
        assert!(default_matches(&f, &json!("b")).is_err());
        f.r#type = FieldType::Json;
        assert!(default_matches(&f, &json!({"x": [1]})).is_ok());
    }
}
