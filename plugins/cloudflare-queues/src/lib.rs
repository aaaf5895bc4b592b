//! Outrider's `cloudflare_queues` destination: sends each event as one message to a
//! Cloudflare Queue through the Queues REST API
//! (`POST {api_base}/accounts/{account_id}/queues/{queue_id}/messages`, `Authorization:
//! Bearer <api token>`), like Hookdeck Outpost's Cloudflare Queues destination.
//!
//! The message is JSON (`content_type: json`) whose body is
//! `{"data": <event data>, "metadata": {...}}`; metadata holds `event-id`, `topic` and
//! `timestamp` plus the destination's delivery metadata and the event's metadata.

use outrider_sdk::http::{self, Request, Response};
use outrider_sdk::prelude::*;
use outrider_sdk::time;
use std::collections::BTreeMap;

struct CloudflareQueues;

/// The Cloudflare API used when `api_base` is not set.
const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";

const ICON: &str = r##"<svg width="16" height="16" viewBox="0 0 16 16" fill="none" xmlns="http://www.w3.org/2000/svg"><path d="M4 0H12C14.2091 0 16 1.79086 16 4V12C16 14.2091 14.2091 16 12 16H4C1.79086 16 0 14.2091 0 12V4C0 1.79086 1.79086 0 4 0Z" fill="#F6821F"/><path d="M11.1847 10.6667H5.33337C5.05723 10.6667 4.83337 10.4428 4.83337 10.1667C4.83337 9.89052 5.05723 9.66667 5.33337 9.66667H11.1847L11.698 8.33333H5.33337C4.50494 8.33333 3.83337 9.00491 3.83337 9.83333V10.5C3.83337 11.3284 4.50494 12 5.33337 12H11.698L11.1847 10.6667Z" fill="white"/><path d="M12.3334 5.33333H6.302L5.78867 6.66667H12.3334C12.6095 6.66667 12.8334 6.89052 12.8334 7.16667C12.8334 7.44281 12.6095 7.66667 12.3334 7.66667H5.27534L4.762 9H12.3334C13.1618 9 13.8334 8.32843 13.8334 7.5V6.83333C13.8334 6.00491 13.1618 5.33333 12.3334 5.33333Z" fill="white"/><path d="M10.6667 2.66667C10.6667 2.29848 10.3682 2 10 2C9.63185 2 9.33337 2.29848 9.33337 2.66667V4H7.33337V2.66667C7.33337 2.29848 7.03489 2 6.6667 2C6.29851 2 6.00003 2.29848 6.00003 2.66667V4H4.6667V5.33333H12V4H10.6667V2.66667Z" fill="white" fill-opacity="0.7"/></svg>"##;

const INSTRUCTIONS: &str = "\
[Cloudflare Queues](https://developers.cloudflare.com/queues/) is a message queue that \
integrates natively with Cloudflare Workers (Workers Paid plan).

1. **Account ID**: shown in the dashboard URL (`https://dash.cloudflare.com/<ACCOUNT_ID>/...`) \
or by `npx wrangler whoami`.
2. **Queue ID**: create a queue under **Workers & Pages > Queues** (or `npx wrangler queues \
create my-queue`) and copy its ID from the queue's page or `npx wrangler queues list`. It is \
the 32-character ID, not the queue name.
3. **API Token**: create a [custom API token](https://dash.cloudflare.com/profile/api-tokens) \
with the permission **Account > Queues > Edit**, scoped to the account.

Each event becomes one message (`content_type: json`) whose body is \
`{\"data\": <event data>, \"metadata\": {\"event-id\": ..., \"topic\": ..., \"timestamp\": ..., ...}}`, \
sent with the [Queues REST API](https://developers.cloudflare.com/api/resources/queues/subresources/messages/methods/push/).

Throttling (429) and Cloudflare errors (5xx) are retried; authentication errors (401, 403) \
and a wrong account or queue (404) fail the attempt.";

impl Plugin for CloudflareQueues {
    fn manifest() -> Manifest {
        Manifest::new("cloudflare-queues", env!("CARGO_PKG_VERSION"))
            .description("Cloudflare Queues through the Queues REST API.")
            .prototype(
                Prototype::destination("cloudflare_queues")
                    .label("Cloudflare Queues")
                    .description(
                        "Send events to Cloudflare Queues, a message queue that integrates \
                         natively with Cloudflare Workers.",
                    )
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("account_id")
                            .label("Account ID")
                            .description(
                                "Your Cloudflare Account ID (32-character hex string, found in \
                                 the Cloudflare dashboard).",
                            )
                            .required()
                            .pattern("^[0-9a-f]{32}$"),
                    )
                    .config_field(
                        Field::text("queue_id")
                            .label("Queue ID")
                            .description(
                                "The ID of your Cloudflare Queue (32-character hex string, not \
                                 the queue name).",
                            )
                            .required()
                            .pattern("^[0-9a-f]{32}$"),
                    )
                    .config_field(Field::text("api_base").label("API Base URL").description(
                        "For testing only: the Cloudflare API base URL to call instead \
                                 of https://api.cloudflare.com/client/v4 (e.g. a local \
                                 stand-in). Leave empty in production.",
                    ))
                    .credential_field(
                        Field::text("api_token")
                            .label("API Token")
                            .description(
                                "Cloudflare API Token with the Account > Queues > Edit (Queues \
                                 Write) permission",
                            )
                            .required()
                            .sensitive(),
                    )
                    .host("api.cloudflare.com")
                    .url_field("api_base"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let ids = json!({
            "account_id": "023e105f4ecef8ad9ca31a8372d0c353",
            "queue_id": "5d8d3a3c8a3e4a7c9c6f5e1b2a3c4d5e",
        });
        vec![
            TestCase::new("accepts ids and a token", "cloudflare_queues")
                .config(ids.clone())
                .credentials(json!({"api_token": "cf-token"})),
            TestCase::new("requires the api token", "cloudflare_queues")
                .config(ids)
                .expect_error(),
            TestCase::new("rejects a queue name as queue id", "cloudflare_queues")
                .config(json!({
                    "account_id": "023e105f4ecef8ad9ca31a8372d0c353",
                    "queue_id": "my-queue",
                }))
                .credentials(json!({"api_token": "cf-token"}))
                .expect_error(),
        ]
    }
}

impl Destination for CloudflareQueues {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        Settings::parse(config, credentials).map(|_| ())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let settings = Settings::parse(&target.config, &target.credentials)?;
        let request = build_request(
            &settings,
            event,
            &target.delivery_metadata,
            time::unix_seconds(),
        );
        interpret(&http::send(request)?)
    }
}

export_destination!(CloudflareQueues);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    account_id: String,
    queue_id: String,
    api_base: String,
    api_token: String,
}

impl Settings {
    /// Parses and checks every field, reporting every problem.
    fn parse(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let account_id = hex_id(config, "account_id").record(&mut errors);
        let queue_id = hex_id(config, "queue_id").record(&mut errors);
        let api_base = api_base(config).record(&mut errors);
        let api_token = api_token(credentials).record(&mut errors);
        match (account_id, queue_id, api_base, api_token) {
            (Some(account_id), Some(queue_id), Some(api_base), Some(api_token))
                if errors.is_empty() =>
            {
                Ok(Settings {
                    account_id: account_id.to_string(),
                    queue_id: queue_id.to_string(),
                    api_base,
                    api_token: api_token.to_string(),
                })
            }
            _ => Err(errors),
        }
    }

    /// `POST` URL of the queue's messages.
    fn messages_url(&self) -> String {
        format!(
            "{}/accounts/{}/queues/{}/messages",
            self.api_base, self.account_id, self.queue_id
        )
    }
}

/// A 32-character lowercase hex id (Cloudflare account and queue ids).
fn hex_id<'a>(config: &'a Config, key: &str) -> Result<&'a str, FieldError> {
    let value = config.str(key)?;
    if value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(value)
    } else {
        Err(config.error(
            key,
            "must be a 32-character lowercase hex ID (the queue ID, not its name)",
        ))
    }
}

/// The API base without trailing `/`; the default when unset.
fn api_base(config: &Config) -> Result<String, FieldError> {
    match config.opt_str("api_base")? {
        None => Ok(DEFAULT_API_BASE.to_string()),
        Some(url) if is_http_url(url) => Ok(url.trim_end_matches('/').to_string()),
        Some(_) => Err(config.error(
            "api_base",
            "must be an http(s) URL without query or fragment",
        )),
    }
}

fn api_token(credentials: &Credentials) -> Result<&str, FieldError> {
    let token = credentials.str("api_token")?;
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(credentials.error("api_token", "must not contain whitespace"));
    }
    Ok(token)
}

/// `http://` or `https://`, a non-empty host, no query, fragment, whitespace or control
/// characters.
fn is_http_url(url: &str) -> bool {
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

/// Message metadata: delivery metadata, overridden by event metadata, with `event-id`,
/// `topic` and `timestamp` (Unix seconds) set by the gateway.
fn message_metadata(
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> BTreeMap<String, String> {
    let mut metadata: BTreeMap<String, String> = delivery_metadata
        .iter()
        .chain(&event.metadata)
        .cloned()
        .collect();
    metadata.insert("event-id".into(), event.id.clone());
    metadata.insert("topic".into(), event.topic.clone());
    metadata.insert("timestamp".into(), now_s.to_string());
    metadata
}

/// The send request for `event` at `now_s` (Unix seconds).
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> Request {
    // Event data is JSON as published; anything else travels as a JSON string.
    let data = event
        .data_json()
        .unwrap_or_else(|_| Value::String(event.data.clone()));
    let message = json!({
        "body": {
            "data": data,
            "metadata": message_metadata(event, delivery_metadata, now_s),
        },
        "content_type": "json",
    });
    Request::post(settings.messages_url())
        .header("authorization", format!("Bearer {}", settings.api_token))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(message.to_string())
}

/// Maps Cloudflare's answer: HTTP errors by status (429 and 5xx retried, other 4xx
/// failed); a 2xx envelope with `"success": false` fails with Cloudflare's message.
fn interpret(response: &Response) -> Result<Delivered, DeliveryError> {
    let envelope: Option<Value> = response.json().ok();
    let errors = envelope
        .as_ref()
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(
                    |e| match (e.get("code"), e.get("message").and_then(Value::as_str)) {
                        (Some(code), Some(message)) => format!("{code}: {message}"),
                        (None, Some(message)) => message.to_string(),
                        _ => e.to_string(),
                    },
                )
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|text| !text.is_empty());
    if !response.is_success() {
        let error = DeliveryError::from_response(response);
        return Err(match errors {
            Some(text) => replace_message(
                error,
                format!("Cloudflare answered HTTP {}: {text}", response.status),
            ),
            None => error,
        });
    }
    let success = envelope
        .as_ref()
        .and_then(|e| e.get("success"))
        .and_then(Value::as_bool);
    if success == Some(false) {
        let text = errors.unwrap_or_else(|| "unknown error".into());
        return Err(DeliveryError::fail(format!("Cloudflare API error: {text}"))
            .status(response.status)
            .response_body(outrider_sdk::cap_body(&response.text())));
    }
    Ok(Delivered::from_response(response))
}

/// `error` with `message` instead of its own, keeping kind, status, body and delay.
fn replace_message(error: DeliveryError, message: String) -> DeliveryError {
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
        let cases = <CloudflareQueues as Plugin>::self_tests();
        assert!(!cases.is_empty());
        for case in cases {
            let result = CloudflareQueues::validate(
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

    const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
    const QUEUE: &str = "5d8d3a3c8a3e4a7c9c6f5e1b2a3c4d5e";

    fn parse(config: Value, credentials: Value) -> Result<Settings, Vec<String>> {
        Settings::parse(
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(credentials).unwrap(),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn settings() -> Settings {
        parse(
            json!({"account_id": ACCOUNT, "queue_id": QUEUE}),
            json!({"api_token": "tok"}),
        )
        .unwrap()
    }

    fn event() -> Event {
        Event {
            id: "evt_1".into(),
            tenant_id: "t1".into(),
            topic: "order.paid".into(),
            time_ms: 0,
            metadata: vec![
                ("source".into(), "api".into()),
                ("topic".into(), "spoofed".into()),
            ],
            data: r#"{"order":42}"#.into(),
            attempt: 1,
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn default_api_base_and_url() {
        let s = settings();
        assert_eq!(
            s.messages_url(),
            format!(
                "https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/queues/{QUEUE}/messages"
            )
        );
        let s = parse(
            json!({"account_id": ACCOUNT, "queue_id": QUEUE, "api_base": "http://127.0.0.1:9000/client/v4/"}),
            json!({"api_token": "tok"}),
        )
        .unwrap();
        assert_eq!(
            s.messages_url(),
            format!("http://127.0.0.1:9000/client/v4/accounts/{ACCOUNT}/queues/{QUEUE}/messages")
        );
    }

    #[test]
    fn reports_every_problem_by_field() {
        let errors = parse(
            json!({"account_id": "ABC", "queue_id": "my-queue", "api_base": "ftp://x"}),
            json!({"api_token": "has space"}),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "config.account_id must be a 32-character lowercase hex ID (the queue ID, not its name)",
                "config.queue_id must be a 32-character lowercase hex ID (the queue ID, not its name)",
                "config.api_base must be an http(s) URL without query or fragment",
                "credentials.api_token must not contain whitespace",
            ]
        );
        assert_eq!(
            parse(json!({}), json!({})).unwrap_err(),
            [
                "config.account_id is required",
                "config.queue_id is required",
                "credentials.api_token is required",
            ]
        );
    }

    #[test]
    fn request_carries_bearer_token_and_message() {
        let delivery = [("env".to_string(), "prod".to_string())];
        let r = build_request(&settings(), &event(), &delivery, 1_700_000_000);
        assert_eq!(r.method, "POST");
        assert!(r
            .headers
            .contains(&("authorization".to_string(), "Bearer tok".to_string())));
        let body: Value = serde_json_from(&r.body);
        assert_eq!(
            body,
            json!({
                "body": {
                    "data": {"order": 42},
                    "metadata": {
                        "env": "prod",
                        "source": "api",
                        "event-id": "evt_1",
                        "topic": "order.paid",
                        "timestamp": "1700000000",
                    },
                },
                "content_type": "json",
            })
        );
    }

    fn serde_json_from(bytes: &[u8]) -> Value {
        outrider_sdk::serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert!(interpret(&response(
            200,
            r#"{"success":true,"errors":[],"messages":[],"result":null}"#
        ))
        .is_ok());
        let e = interpret(&response(
            401,
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, DeliveryError::Fail(_)), "{e}");
        assert_eq!(
            e.failure().message,
            "Cloudflare answered HTTP 401: 10000: Authentication error"
        );
        assert_eq!(e.failure().status_code, Some(401));
        let e = interpret(&Response {
            headers: vec![("retry-after".into(), "3".into())],
            ..response(429, "{}")
        })
        .unwrap_err();
        assert_eq!(e.retry_after_ms(), Some(3_000));
        assert!(matches!(
            interpret(&response(503, "oops")).unwrap_err(),
            DeliveryError::Retry { .. }
        ));
        let e = interpret(&response(
            200,
            r#"{"success":false,"errors":[{"code":11000,"message":"queue paused"}]}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, DeliveryError::Fail(_)));
        assert_eq!(
            e.failure().message,
            "Cloudflare API error: 11000: queue paused"
        );
    }
}
