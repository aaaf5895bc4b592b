//! The destination's configuration: checking each field and the publish URL.

use outrider_sdk::prelude::*;

use crate::service_account::{KeyFile, ServiceAccount};
use crate::DEFAULT_ENDPOINT;

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) project_id: String,
    pub(crate) topic: String,
    /// Base URL without trailing `/`.
    pub(crate) endpoint: String,
    /// `None`: unauthenticated (emulator).
    pub(crate) account: Option<ServiceAccount>,
}

impl Settings {
    /// Parses and checks every field (the key is decoded by `validate` only), reporting
    /// every problem.
    pub(crate) fn parse(
        config: &Config,
        credentials: &Credentials,
    ) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let project_id = project_id(config).record(&mut errors);
        let topic = topic(config).record(&mut errors);
        let endpoint = endpoint(config).record(&mut errors);
        let key_file = credentials
            .opt_str("service_account_json")
            .and_then(|text| match text {
                None => Ok(KeyFile::Empty),
                Some(text) => KeyFile::parse(text)
                    .map_err(|why| credentials.error("service_account_json", why)),
            })
            .record(&mut errors);
        let account = match (key_file, &endpoint) {
            (Some(KeyFile::Key(account)), _) => Some(account),
            (Some(KeyFile::Empty), Some(Some(_))) => None,
            (Some(KeyFile::Empty), Some(None)) => {
                errors.push(credentials.error(
                    "service_account_json",
                    "is required (the service account key file), unless Endpoint points at \
                     the Pub/Sub emulator",
                ));
                None
            }
            _ => None,
        };
        match (project_id, topic, endpoint) {
            (Some(project_id), Some(topic), Some(endpoint)) if errors.is_empty() => Ok(Settings {
                project_id: project_id.to_string(),
                topic: topic.to_string(),
                endpoint: endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
                account,
            }),
            _ => Err(errors),
        }
    }

    /// The topic's `:publish` URL.
    pub(crate) fn publish_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/topics/{}:publish",
            self.endpoint,
            self.project_id,
            path_encode(&self.topic)
        )
    }
}

/// Project ids: lowercase letters, digits and `-` (legacy domain-scoped ids also `.` and
/// `:`), starting with a letter or digit, at most 100 characters.
fn project_id(config: &Config) -> Result<&str, FieldError> {
    let id = config.str("project_id")?;
    let valid = id.len() <= 100
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
        });
    if valid {
        Ok(id)
    } else {
        Err(config.error(
            "project_id",
            "must be a GCP project ID (lowercase letters, digits and hyphens)",
        ))
    }
}

/// Topic ids as Pub/Sub accepts them: 3 to 255 characters, starting with a letter,
/// letters, digits and `-_.~+%`, not starting with `goog`.
fn topic(config: &Config) -> Result<&str, FieldError> {
    let topic = config.str("topic")?;
    let valid = (3..=255).contains(&topic.len())
        && topic
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
        && !topic.to_ascii_lowercase().starts_with("goog");
    if valid {
        Ok(topic)
    } else {
        Err(config.error(
            "topic",
            "must be a Pub/Sub topic ID: 3 to 255 letters, digits or `-_.~+%`, starting with \
             a letter and not with `goog`",
        ))
    }
}

/// The endpoint as a base URL: `host:port` (the emulator's form) means plain HTTP.
fn endpoint(config: &Config) -> Result<Option<String>, FieldError> {
    let Some(text) = config.opt_str("endpoint")? else {
        return Ok(None);
    };
    let url = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    if is_http_url(&url) {
        Ok(Some(url.trim_end_matches('/').to_string()))
    } else {
        Err(config.error(
            "endpoint",
            "must be an http(s) URL or host:port (e.g. localhost:8085)",
        ))
    }
}

/// `http://` or `https://`, a non-empty host, no query, fragment, credentials,
/// whitespace or control characters.
pub(crate) fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', ':']).next().unwrap_or("");
    !host.is_empty()
        && !url.contains(['?', '#', '@'])
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Percent-encodes all but unreserved characters of a path segment.
fn path_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
