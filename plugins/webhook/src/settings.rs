//! The webhook's configuration and credentials, parsed and checked field by field.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::time::parse_rfc3339;
use outrider_sdk::{Config, Credentials, FieldError, Record};
use std::collections::BTreeMap;

/// How requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMode {
    /// Outpost's headers: `x-outpost-signature: v0=<hex>`.
    Outpost,
    /// Standard Webhooks: `webhook-signature: v1,<base64>`.
    Standard,
}

impl SignatureMode {
    /// Prefix of every header the plugin sets besides `content-type`.
    pub fn header_prefix(self) -> &'static str {
        match self {
            SignatureMode::Outpost => "x-outpost-",
            SignatureMode::Standard => "webhook-",
        }
    }
}

/// Checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    pub custom_headers: BTreeMap<String, String>,
    pub mode: SignatureMode,
}

/// Checked credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub secret: Option<String>,
    pub previous_secret: Option<String>,
    /// Unix milliseconds after which `previous_secret` no longer signs.
    pub previous_secret_invalid_at_ms: Option<u64>,
}

impl Secrets {
    /// The secrets that sign a request made at `now_ms`: the current one, and the
    /// previous one until it becomes invalid (indefinitely if no time is set).
    pub fn signing(&self, now_ms: u64) -> Vec<&str> {
        let previous = self.previous_secret.as_deref().filter(|_| {
            self.previous_secret_invalid_at_ms
                .is_none_or(|at| now_ms < at)
        });
        self.secret.as_deref().into_iter().chain(previous).collect()
    }
}

/// Headers the webhook sets itself; custom headers may not override them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "expect",
];

/// Parses and checks everything, reporting every problem.
pub fn parse(
    config: &Config,
    credentials: &Credentials,
) -> Result<(Settings, Secrets), Vec<FieldError>> {
    let mut errors = Vec::new();
    let url = check_url(config).record(&mut errors);
    let mode = signature_mode(config).record(&mut errors);
    let custom_headers = config.map("custom_headers").record(&mut errors);
    if let Some(headers) = &custom_headers {
        for (name, value) in headers {
            if let Err(e) = check_custom_header(name, value) {
                errors.push(FieldError::new(format!("config.custom_headers.{name}"), e));
            }
        }
    }
    let secret = credentials.opt_str("secret").record(&mut errors).flatten();
    let previous_secret = credentials
        .opt_str("previous_secret")
        .record(&mut errors)
        .flatten();
    let invalid_at = previous_secret_invalid_at(credentials).record(&mut errors);
    if mode == Some(SignatureMode::Standard) {
        for (key, value) in [("secret", secret), ("previous_secret", previous_secret)] {
            if value.is_some_and(|v| standard_key(v).is_none()) {
                errors.push(credentials.error(
                    key,
                    "must be base64, optionally prefixed with `whsec_`, in standard mode",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(url), Some(mode), Some(custom_headers), Some(invalid_at)) =
        (url, mode, custom_headers, invalid_at)
    else {
        unreachable!("every missing value recorded an error");
    };
    Ok((
        Settings {
            url: url.to_string(),
            custom_headers,
            mode,
        },
        Secrets {
            secret: secret.map(str::to_string),
            previous_secret: previous_secret.map(str::to_string),
            previous_secret_invalid_at_ms: invalid_at,
        },
    ))
}

fn check_url(config: &Config) -> Result<&str, FieldError> {
    let url = config.str("url")?;
    if is_http_url(url) {
        Ok(url)
    } else {
        Err(config.error("url", "must be an http(s) URL"))
    }
}

/// `http://` or `https://`, a non-empty host, and no whitespace or control characters.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn signature_mode(config: &Config) -> Result<SignatureMode, FieldError> {
    match config.opt_str("signature_mode")? {
        None | Some("outpost") => Ok(SignatureMode::Outpost),
        Some("standard") => Ok(SignatureMode::Standard),
        Some(_) => Err(config.error("signature_mode", "must be `outpost` or `standard`")),
    }
}

fn check_custom_header(name: &str, value: &str) -> Result<(), &'static str> {
    let lower = name.to_ascii_lowercase();
    if !is_token(name) {
        return Err("is not a valid header name (letters, digits, `-` and `_`)");
    }
    if RESERVED_HEADERS.contains(&lower.as_str())
        || lower.starts_with(SignatureMode::Outpost.header_prefix())
        || lower.starts_with(SignatureMode::Standard.header_prefix())
    {
        return Err("is reserved and set by the webhook itself");
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err("must not contain line breaks");
    }
    Ok(())
}

/// Header names this plugin sends: letters, digits, `-` and `_`.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn previous_secret_invalid_at(credentials: &Credentials) -> Result<Option<u64>, FieldError> {
    match credentials.opt_str("previous_secret_invalid_at")? {
        None => Ok(None),
        Some(text) => parse_rfc3339(text).map(Some).ok_or_else(|| {
            credentials.error(
                "previous_secret_invalid_at",
                "must be an RFC 3339 timestamp (e.g. 2024-01-01T00:00:00Z)",
            )
        }),
    }
}

/// The HMAC key of a Standard Webhooks secret: base64 after an optional `whsec_`.
pub fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    BASE64.decode(encoded).ok().filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json::{json, Value};

    fn run(config: Value, credentials: Value) -> Result<(Settings, Secrets), Vec<String>> {
        parse(
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(credentials).unwrap(),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn accepts_a_full_configuration() {
        let (settings, secrets) = run(
            json!({
                "url": "https://example.com/hook?x=1",
                "custom_headers": {"X-Team": "core"},
                "signature_mode": "standard",
            }),
            json!({
                "secret": "whsec_c2VjcmV0",
                "previous_secret": "b2xk",
                "previous_secret_invalid_at": "2030-01-01T00:00:00Z",
            }),
        )
        .unwrap();
        assert_eq!(settings.mode, SignatureMode::Standard);
        assert_eq!(settings.custom_headers["X-Team"], "core");
        assert_eq!(
            secrets.previous_secret_invalid_at_ms,
            Some(1_893_456_000_000)
        );
    }

    #[test]
    fn defaults() {
        let (settings, secrets) = run(json!({"url": "http://127.0.0.1:8080"}), json!({})).unwrap();
        assert_eq!(settings.mode, SignatureMode::Outpost);
        assert!(settings.custom_headers.is_empty());
        assert_eq!(secrets.secret, None);
    }

    #[test]
    fn reports_every_problem_by_field() {
        let errors = run(
            json!({
                "url": "ftp://example.com",
                "custom_headers": {"bad name": "x", "Content-Type": "text/plain", "x-outpost-topic": "t", "ok": "a\nb"},
                "signature_mode": "fancy",
            }),
            json!({"previous_secret_invalid_at": "tomorrow"}),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "config.url must be an http(s) URL",
                "config.signature_mode must be `outpost` or `standard`",
                "config.custom_headers.Content-Type is reserved and set by the webhook itself",
                "config.custom_headers.bad name is not a valid header name (letters, digits, `-` and `_`)",
                "config.custom_headers.ok must not contain line breaks",
                "config.custom_headers.x-outpost-topic is reserved and set by the webhook itself",
                "credentials.previous_secret_invalid_at must be an RFC 3339 timestamp (e.g. 2024-01-01T00:00:00Z)",
            ]
        );
    }

    #[test]
    fn standard_mode_needs_base64_secrets() {
        let errors = run(
            json!({"url": "https://x", "signature_mode": "standard"}),
            json!({"secret": "not base64!", "previous_secret": "whsec_"}),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "credentials.secret must be base64, optionally prefixed with `whsec_`, in standard mode",
                "credentials.previous_secret must be base64, optionally prefixed with `whsec_`, in standard mode",
            ]
        );
        // Any string is a valid Outpost-mode secret.
        assert!(run(
            json!({"url": "https://x"}),
            json!({"secret": "not base64!"})
        )
        .is_ok());
    }

    #[test]
    fn missing_url() {
        assert_eq!(
            run(json!({}), json!({})).unwrap_err(),
            ["config.url is required"]
        );
    }

    #[test]
    fn urls() {
        for ok in [
            "http://a",
            "https://a.b:8443/p?q#f",
            "HTTPS://user@host/x",
            "http://[::1]:80/",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "",
            "a.b",
            "https://",
            "https:///path",
            "http://a b",
            "mailto:x@y",
            "http://:80",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn previous_secret_signs_until_invalid() {
        let secrets = Secrets {
            secret: Some("new".into()),
            previous_secret: Some("old".into()),
            previous_secret_invalid_at_ms: Some(1_000),
        };
        assert_eq!(secrets.signing(999), ["new", "old"]);
        assert_eq!(secrets.signing(1_000), ["new"]);
        let no_expiry = Secrets {
            previous_secret_invalid_at_ms: None,
            ..secrets.clone()
        };
        assert_eq!(no_expiry.signing(u64::MAX), ["new", "old"]);
        let none = Secrets {
            secret: None,
            previous_secret: None,
            previous_secret_invalid_at_ms: None,
        };
        assert!(none.signing(0).is_empty());
    }
}
