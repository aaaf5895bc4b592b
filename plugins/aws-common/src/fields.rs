//! Configuration fields several AWS destinations share (`region`, `endpoint`, template
//! fields) and their checks, each error naming its field.

use crate::template::Template;
use crate::url::check_endpoint;
use outrider_sdk::{Config, Field, FieldError};

/// Pattern of an AWS region name (`us-east-1`, `us-gov-west-1`, `ap-southeast-2`).
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";

/// Pattern of an endpoint URL.
pub const ENDPOINT_PATTERN: &str = r"^https?://[^\s]+$";

/// The `region` field with `description`.
pub fn region_field(description: &str) -> Field {
    Field::text("region")
        .label("AWS Region")
        .description(description)
        .pattern(REGION_PATTERN)
}

/// The optional `endpoint` field with `description`.
pub fn endpoint_field(description: &str) -> Field {
    Field::text("endpoint")
        .label("Endpoint")
        .description(description)
        .pattern(ENDPOINT_PATTERN)
}

/// Whether `value` is a region name like `eu-west-1`.
pub fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// `config.region`: required, a region name.
pub fn region(config: &Config) -> Result<String, FieldError> {
    let value = config.str("region")?.trim();
    check_region(config, value)
}

/// `config.region` when set.
pub fn optional_region(config: &Config) -> Result<Option<String>, FieldError> {
    match config.opt_str("region")? {
        Some(value) => check_region(config, value.trim()).map(Some),
        None => Ok(None),
    }
}

fn check_region(config: &Config, value: &str) -> Result<String, FieldError> {
    if is_region(value) {
        Ok(value.to_string())
    } else {
        Err(config.error("region", "must be an AWS region such as us-east-1"))
    }
}

/// `config.endpoint` when set: an http(s) base URL, returned without a trailing `/`.
pub fn endpoint(config: &Config) -> Result<Option<String>, FieldError> {
    match config.opt_str("endpoint")? {
        Some(value) => check_endpoint(value)
            .map(Some)
            .map_err(|e| config.error("endpoint", e)),
        None => Ok(None),
    }
}

/// The template in config field `key`, or `default` when it is not set.
pub fn template(config: &Config, key: &str, default: &str) -> Result<Template, FieldError> {
    let text = config.opt_str(key)?.unwrap_or(default);
    Template::parse(text).map_err(|e| config.error(key, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json::json;

    fn config(value: outrider_sdk::serde_json::Value) -> Config {
        Config::from_value(value).unwrap()
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "u-east-1",
            "us--1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert_eq!(
            region(&config(json!({"region": " eu-west-1 "}))).unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            region(&config(json!({}))).unwrap_err().to_string(),
            "config.region is required"
        );
        assert_eq!(
            region(&config(json!({"region": "Frankfurt"})))
                .unwrap_err()
                .to_string(),
            "config.region must be an AWS region such as us-east-1"
        );
        assert_eq!(
            optional_region(&config(json!({"region": ""}))).unwrap(),
            None
        );
    }

    #[test]
    fn endpoints_and_templates() {
        assert_eq!(
            endpoint(&config(json!({"endpoint": "http://127.0.0.1:5000/"}))).unwrap(),
            Some("http://127.0.0.1:5000".into())
        );
        assert_eq!(endpoint(&config(json!({}))).unwrap(), None);
        assert_eq!(
            endpoint(&config(json!({"endpoint": "127.0.0.1:5000"})))
                .unwrap_err()
                .to_string(),
            "config.endpoint must be an absolute http(s) URL"
        );
        let t = template(&config(json!({})), "key_template", "{{event.id}}").unwrap();
        assert_eq!(t.source(), "{{event.id}}");
        assert_eq!(
            template(
                &config(json!({"key_template": "{{nope}}"})),
                "key_template",
                ""
            )
            .unwrap_err()
            .field,
            "config.key_template"
        );
    }
}
