//! Outrider's `gcp_pubsub` destination: publishes each event as one message to a Google
//! Cloud Pub/Sub topic with the REST API
//! (`POST {endpoint}/v1/projects/{project}/topics/{topic}:publish`).
//!
//! Authentication follows Google's service account flow: an RS256 JWT assertion signed
//! with the key file's private key is exchanged at its `token_uri` for an access token
//! ([`service_account`], [`token`]), cached in the host's per-destination state until
//! shortly before it expires. With a custom `endpoint` and no key (the Pub/Sub emulator)
//! requests go unauthenticated, as in Outpost.
//!
//! The message data is the event data; `event-id`, `topic`, `timestamp` and the metadata
//! become message attributes.

mod service_account;
mod token;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::http::{self, Request, Response};
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use service_account::{KeyFile, ServiceAccount, PUBSUB_SCOPE};
use std::collections::BTreeMap;

struct GcpPubSub;

/// The Pub/Sub API used when `endpoint` is not set.
const DEFAULT_ENDPOINT: &str = "https://pubsub.googleapis.com";

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="24px" height="24px" viewBox="0 0 24 24"><defs><style>.cls-1{filter:url(#luminosity-noclip);}.cls-2{fill:#669df6;}.cls-3{mask:url(#mask);}.cls-4{fill:#4285f4;}.cls-5{fill:#aecbfa;}</style><filter id="luminosity-noclip" x="4.64" y="4.19" width="14.73" height="12.76" filterUnits="userSpaceOnUse" color-interpolation-filters="sRGB"><feFlood flood-color="#fff" result="bg"/><feBlend in="SourceGraphic" in2="bg"/></filter><mask id="mask" x="4.64" y="4.19" width="14.73" height="12.76" maskUnits="userSpaceOnUse"><circle class="cls-1" cx="12" cy="12.23" r="3.58"/></mask></defs><title>Icon_24px_Pub-Sub_Color</title><g data-name="Product Icons"><circle class="cls-2" cx="18.97" cy="8.21" r="1.72"/><circle class="cls-2" cx="5.03" cy="8.21" r="1.72"/><circle class="cls-2" cx="12" cy="20.28" r="1.72"/><g class="cls-3"><rect class="cls-4" x="14.69" y="10.22" width="1.59" height="8.04" transform="matrix(0.5, -0.87, 0.87, 0.5, -4.59, 20.53)"/><rect class="cls-4" x="4.49" y="13.45" width="8.04" height="1.59" transform="translate(-5.98 6.17) rotate(-30)"/><rect class="cls-4" x="11.2" y="4.19" width="1.59" height="8.04"/></g><circle class="cls-5" cx="12" cy="12.23" r="2.78"/><circle class="cls-5" cx="5.03" cy="16.25" r="2.19"/><circle class="cls-5" cx="18.97" cy="16.25" r="2.19"/><circle class="cls-5" cx="12" cy="4.19" r="2.19"/></g></svg>"##;

const INSTRUCTIONS: &str = "\
[Google Cloud Pub/Sub](https://cloud.google.com/pubsub) is a fully managed messaging \
service for sending events between independent applications.

With the [gcloud CLI](https://cloud.google.com/sdk/docs/install):

1. Enable the API: `gcloud services enable pubsub.googleapis.com --project=PROJECT_ID`
2. Create the topic if needed: `gcloud pubsub topics create TOPIC --project=PROJECT_ID`
3. Create a service account: `gcloud iam service-accounts create SERVICE_ACCOUNT \
--project=PROJECT_ID`
4. Let it publish to the topic: `gcloud pubsub topics add-iam-policy-binding TOPIC \
--project=PROJECT_ID --member=\"serviceAccount:SERVICE_ACCOUNT@PROJECT_ID.iam.gserviceaccount.com\" \
--role=\"roles/pubsub.publisher\"`
5. Create a key: `gcloud iam service-accounts keys create key.json \
--iam-account=\"SERVICE_ACCOUNT@PROJECT_ID.iam.gserviceaccount.com\"`
6. Enter the Project ID and Topic, and paste the contents of `key.json` into Service \
Account JSON.

Each event becomes one message: the event data is the message data, and `event-id`, \
`topic`, `timestamp` and the event's metadata are attributes. Outrider signs a JWT with the \
key, exchanges it for an access token at the key's `token_uri` and reuses the token until \
shortly before it expires; the key never leaves Outrider.

For the [Pub/Sub emulator](https://cloud.google.com/pubsub/docs/emulator), set Endpoint to \
the emulator's address (e.g. `localhost:8085`) and leave Service Account JSON empty (or \
`{}`): requests then go unauthenticated. With a key, requests to a custom endpoint are \
authenticated (regional or private endpoints).

Throttling (429) and server errors (5xx) are retried; a rejected key, missing permission \
(403) or unknown topic (404) fail the attempt.";

impl Plugin for GcpPubSub {
    fn manifest() -> Manifest {
        Manifest::new("gcp-pubsub", env!("CARGO_PKG_VERSION"))
            .description("Google Cloud Pub/Sub through the REST API, with service account keys.")
            .prototype(
                Prototype::destination("gcp_pubsub")
                    .label("GCP Pub/Sub")
                    .description(
                        "Send events to Google Cloud Pub/Sub topics using service account \
                         authentication.",
                    )
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("project_id")
                            .label("Project ID")
                            .description("The GCP project ID")
                            .required(),
                    )
                    .config_field(
                        Field::text("topic")
                            .label("Topic")
                            .description("The Pub/Sub topic")
                            .required(),
                    )
                    .config_field(
                        Field::text("endpoint")
                            .label("Endpoint")
                            .description("Custom endpoint URL (e.g., localhost:8085 for emulator)"),
                    )
                    .credential_field(
                        Field::text("service_account_json")
                            .label("Service Account JSON")
                            .description(
                                "Service account key JSON (the whole key file). Required \
                                 unless Endpoint points at the Pub/Sub emulator.",
                            )
                            .sensitive(),
                    )
                    .host("pubsub.googleapis.com")
                    .host("oauth2.googleapis.com")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts the emulator without a key", "gcp_pubsub").config(json!({
                "project_id": "demo-project",
                "topic": "events",
                "endpoint": "localhost:8085",
            })),
            TestCase::new("requires a key for Google's endpoint", "gcp_pubsub")
                .config(json!({"project_id": "demo-project", "topic": "events"}))
                .expect_error(),
            TestCase::new("rejects a key that is not JSON", "gcp_pubsub")
                .config(json!({"project_id": "demo-project", "topic": "events"}))
                .credentials(json!({"service_account_json": "not json"}))
                .expect_error(),
            TestCase::new("rejects an invalid topic name", "gcp_pubsub")
                .config(json!({
                    "project_id": "demo-project",
                    "topic": "goog-reserved",
                    "endpoint": "localhost:8085",
                }))
                .expect_error(),
        ]
    }
}

impl Destination for GcpPubSub {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        let settings = Settings::parse(config, credentials)?;
        // Decode the key once here, so that a broken key is reported at configuration
        // time (deliveries decode it only when they need a new token).
        if let Some(account) = &settings.account {
            account
                .signing_key()
                .map_err(|why| vec![credentials.error("service_account_json", why)])?;
        }
        Ok(())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let settings = Settings::parse(&target.config, &target.credentials)?;
        let now_s = time::unix_seconds();
        let request = build_request(&settings, event, &target.delivery_metadata, now_s);
        let Some(account) = &settings.account else {
            return interpret(&http::send(request)?);
        };
        let (access_token, was_cached) = match token::cached(account, PUBSUB_SCOPE, now_s) {
            Some(t) => (t, true),
            None => (token::fetch(account, PUBSUB_SCOPE, now_s)?, false),
        };
        let response = http::send(authorized(request.clone(), &access_token.token))?;
        if response.status == 401 && was_cached {
            // Revoked or expired early: get a new token and try once more.
            log::info!("cached access token rejected (401); fetching a new one");
            token::forget(account, PUBSUB_SCOPE);
            let fresh = token::fetch(account, PUBSUB_SCOPE, now_s)?;
            return interpret(&http::send(authorized(request, &fresh.token))?);
        }
        interpret(&response)
    }
}

export_destination!(GcpPubSub);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    project_id: String,
    topic: String,
    /// Base URL without trailing `/`.
    endpoint: String,
    /// `None`: unauthenticated (emulator).
    account: Option<ServiceAccount>,
}

impl Settings {
    /// Parses and checks every field (the key is decoded by `validate` only), reporting
    /// every problem.
    fn parse(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
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
    fn publish_url(&self) -> String {
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

/// Pub/Sub attribute limits: keys up to 256 bytes, values up to 1024 bytes, keys not
/// starting with `goog`.
fn is_valid_attribute(key: &str, value: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && value.len() <= 1024
        && !key.to_ascii_lowercase().starts_with("goog")
}

/// Message attributes: delivery metadata, overridden by event metadata, with
/// `event-id`, `topic` and `timestamp` (Unix seconds) set by the gateway.
fn attributes(
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        if is_valid_attribute(key, value) {
            attributes.insert(key.clone(), value.clone());
        } else {
            log::warn!("metadata `{key}` skipped: not a valid Pub/Sub attribute");
        }
    }
    attributes.insert("event-id".into(), event.id.clone());
    attributes.insert("topic".into(), event.topic.clone());
    attributes.insert("timestamp".into(), now_s.to_string());
    attributes
}

/// The publish request for `event` (without authorization).
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> Request {
    let body = json!({
        "messages": [{
            "data": BASE64.encode(event.data.as_bytes()),
            "attributes": attributes(event, delivery_metadata, now_s),
        }]
    });
    Request::post(settings.publish_url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string())
}

fn authorized(request: Request, access_token: &str) -> Request {
    request.header("authorization", format!("Bearer {access_token}"))
}

/// Maps the publish answer: 2xx delivered (`{"messageIds": [...]}`), otherwise by
/// status with Google's error message (429 and 5xx retried, other 4xx failed).
fn interpret(response: &Response) -> Result<Delivered, DeliveryError> {
    if response.is_success() {
        return Ok(Delivered::from_response(response));
    }
    let error = DeliveryError::from_response(response);
    let detail = response.json::<Value>().ok().and_then(|body| {
        let e = body.get("error")?;
        let status = e.get("status").and_then(Value::as_str).unwrap_or("");
        let message = e.get("message").and_then(Value::as_str)?;
        Some(if status.is_empty() {
            message.to_string()
        } else {
            format!("{status}: {message}")
        })
    });
    Err(match detail {
        Some(detail) => replace_message(
            error,
            format!("Pub/Sub answered HTTP {}: {detail}", response.status),
        ),
        None => error,
    })
}

/// `error` with `message` instead of its own, keeping kind, status, body and delay.
pub(crate) fn replace_message(error: DeliveryError, message: String) -> DeliveryError {
    let failure = error.failure().clone();
    let retry_after = error.retry_after_ms();
    let mut rebuilt = match error {
        DeliveryError::Retry { .. } => DeliveryError::retry(message),
        DeliveryError::Fail(_) => DeliveryError::fail(message),
        DeliveryError::Misconfigured(_) => DeliveryError::misconfigured(message),
    };
    if let Some(ms) = retry_after {
        rebuilt = rebuilt.retry_after(ms);
    }
    if let Some(status) = failure.status_code {
        rebuilt = rebuilt.status(status);
    }
    if let Some(body) = failure.response_body {
        rebuilt = rebuilt.response_body(body);
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_tests_hold() {
        let cases = <GcpPubSub as Plugin>::self_tests();
        assert!(!cases.is_empty());
        for case in cases {
            let result = GcpPubSub::validate(
                &case.prototype,
                &Config::from_value(case.config.clone()).unwrap(),
                &Credentials::from_value(case.credentials.clone()).unwrap(),
            );
            assert_eq!(
                result.is_err(),
                case.expect_error,
                "{}: {result:?}",
                case.name
            );
        }
    }

    const KEY: &str = include_str!("../testdata/test-only-rsa-key.pem");

    fn key_file() -> String {
        json!({
            "type": "service_account",
            "private_key_id": "kid-1",
            "private_key": KEY,
            "client_email": "publisher@demo.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }

    fn parse(config: Value, credentials: Value) -> Result<Settings, Vec<String>> {
        Settings::parse(
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(credentials).unwrap(),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn validate(config: Value, credentials: Value) -> Result<(), Vec<String>> {
        GcpPubSub::validate(
            "gcp_pubsub",
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(credentials).unwrap(),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn urls() {
        let s = parse(
            json!({"project_id": "demo-project", "topic": "orders+eu%1"}),
            json!({"service_account_json": key_file()}),
        )
        .unwrap();
        assert_eq!(
            s.publish_url(),
            "https://pubsub.googleapis.com/v1/projects/demo-project/topics/orders%2Beu%251:publish"
        );
        assert!(s.account.is_some());
        let s = parse(
            json!({"project_id": "demo", "topic": "events", "endpoint": "localhost:8085"}),
            json!({"service_account_json": "{}"}),
        )
        .unwrap();
        assert_eq!(
            s.publish_url(),
            "http://localhost:8085/v1/projects/demo/topics/events:publish"
        );
        assert_eq!(s.account, None, "emulator: no authentication");
        let s = parse(
            json!({"project_id": "demo", "topic": "events", "endpoint": "https://europe-west1-pubsub.googleapis.com/"}),
            json!({"service_account_json": key_file()}),
        )
        .unwrap();
        assert_eq!(
            s.publish_url(),
            "https://europe-west1-pubsub.googleapis.com/v1/projects/demo/topics/events:publish"
        );
        assert!(s.account.is_some(), "a key authenticates custom endpoints");
    }

    #[test]
    fn reports_every_problem_by_field() {
        assert_eq!(
            validate(json!({}), json!({})).unwrap_err(),
            [
                "config.project_id is required",
                "config.topic is required",
                "credentials.service_account_json is required (the service account key file), unless Endpoint points at the Pub/Sub emulator",
            ]
        );
        let errors = validate(
            json!({"project_id": "Demo Project", "topic": "goog-x", "endpoint": "ftp://x"}),
            json!({"service_account_json": "{not json"}),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(
            errors[0],
            "config.project_id must be a GCP project ID (lowercase letters, digits and hyphens)"
        );
        assert!(errors[1].starts_with("config.topic must be a Pub/Sub topic ID"));
        assert_eq!(
            errors[2],
            "config.endpoint must be an http(s) URL or host:port (e.g. localhost:8085)"
        );
        assert!(errors[3].starts_with("credentials.service_account_json is not valid JSON: "));
        let broken_key = json!({
            "type": "service_account",
            "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "client_email": "a@b",
        });
        assert_eq!(
            validate(
                json!({"project_id": "demo", "topic": "events"}),
                json!({"service_account_json": broken_key.to_string()}),
            )
            .unwrap_err(),
            ["credentials.service_account_json has a `private_key` that is not an RSA private key in PEM"]
        );
        assert!(validate(
            json!({"project_id": "demo", "topic": "events"}),
            json!({"service_account_json": key_file()}),
        )
        .is_ok());
    }

    #[test]
    fn publish_body_has_base64_data_and_attributes() {
        let s = parse(
            json!({"project_id": "demo", "topic": "events"}),
            json!({"service_account_json": key_file()}),
        )
        .unwrap();
        let event = Event {
            id: "evt_1".into(),
            tenant_id: "t".into(),
            topic: "order.paid".into(),
            time_ms: 0,
            metadata: vec![
                ("source".into(), "api".into()),
                ("topic".into(), "spoofed".into()),
                ("googReserved".into(), "x".into()),
            ],
            data: r#"{"order":42}"#.into(),
            attempt: 1,
        };
        let delivery = [
            ("env".to_string(), "prod".to_string()),
            ("source".to_string(), "static".to_string()),
        ];
        let r = authorized(
            build_request(&s, &event, &delivery, 1_700_000_000),
            "ya29.t",
        );
        assert_eq!(r.method, "POST");
        assert!(r
            .headers
            .contains(&("authorization".to_string(), "Bearer ya29.t".to_string())));
        let body: Value = outrider_sdk::serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"messages": [{
                "data": BASE64.encode(r#"{"order":42}"#),
                "attributes": {
                    "env": "prod",
                    "source": "api",
                    "event-id": "evt_1",
                    "topic": "order.paid",
                    "timestamp": "1700000000",
                },
            }]})
        );
    }

    #[test]
    fn publish_answers_map_to_outcomes() {
        let response = |status: u16, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            truncated: false,
        };
        assert!(interpret(&response(200, r#"{"messageIds":["1"]}"#)).is_ok());
        let e = interpret(&response(
            404,
            r#"{"error":{"code":404,"message":"Resource not found (resource=events).","status":"NOT_FOUND"}}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, DeliveryError::Fail(_)));
        assert_eq!(
            e.failure().message,
            "Pub/Sub answered HTTP 404: NOT_FOUND: Resource not found (resource=events)."
        );
        assert!(matches!(
            interpret(&response(503, "unavailable")).unwrap_err(),
            DeliveryError::Retry { .. }
        ));
        assert!(matches!(
            interpret(&response(429, "{}")).unwrap_err(),
            DeliveryError::Retry { .. }
        ));
    }

    #[test]
    fn tokens_are_cached_per_key() {
        let account = match KeyFile::parse(&key_file()).unwrap() {
            KeyFile::Key(a) => a,
            KeyFile::Empty => unreachable!(),
        };
        assert_eq!(token::cached(&account, PUBSUB_SCOPE, 0), None);
        // Native builds have no host http: fetching fails as a retry, caching nothing.
        assert!(matches!(
            token::fetch(&account, PUBSUB_SCOPE, 0),
            Err(DeliveryError::Retry { .. })
        ));
        assert_eq!(token::cached(&account, PUBSUB_SCOPE, 0), None);
    }
}
