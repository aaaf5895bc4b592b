//! Outrider's `webhook` destination: POSTs each event's data as JSON to a URL, signed
//! like Hookdeck Outpost's webhooks (`x-outpost-*` headers, `v0=` hex HMAC-SHA256) or,
//! with `signature_mode: standard`, like Standard Webhooks (`webhook-*` headers,
//! `v1,` base64 HMAC-SHA256 keyed by a `whsec_` secret).
//!
//! During secret rotation both the current and the previous secret sign every request
//! until `previous_secret_invalid_at`.

mod settings;
mod signing;

use outrider_sdk::http::{self, Request};
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use settings::{Secrets, Settings, SignatureMode};
use std::collections::BTreeMap;

struct Webhook;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="none" stroke="#7A786E" stroke-width="1.5" stroke-linecap="round"><circle cx="8" cy="4" r="2"/><circle cx="3.5" cy="12" r="2"/><circle cx="12.5" cy="12" r="2"/><path d="M7 5.8 4.6 10.2M9 5.8l2.4 4.4M5.5 12h5"/></svg>"##;

const INSTRUCTIONS: &str = "\
Events are sent as `POST` requests with the event data as the JSON body.

**Outpost mode** (default) adds `x-outpost-event-id`, `x-outpost-topic`, \
`x-outpost-timestamp` (Unix seconds) and `x-outpost-signature: v0=<hex>`, the \
HMAC-SHA256 of `<timestamp>.<body>` keyed by the secret. Event metadata arrives as \
`x-outpost-<key>` headers.

**Standard mode** follows [Standard Webhooks](https://www.standardwebhooks.com): \
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>` over \
`<id>.<timestamp>.<body>`, keyed by the base64 part of a `whsec_` secret; use any \
Standard Webhooks library to verify.

While a secret is being rotated, requests carry one signature per valid secret.

Respond with a 2xx status to acknowledge. 408, 429 and 5xx responses are retried \
(honouring `Retry-After`); other 4xx responses are not.";

impl Plugin for Webhook {
    fn manifest() -> Manifest {
        Manifest::new("webhook", env!("CARGO_PKG_VERSION"))
            .description("Signed HTTP webhooks, compatible with Outpost and Standard Webhooks.")
            .prototype(
                Prototype::destination("webhook")
                    .label("Webhook")
                    .description("Send events as webhooks (HTTP POST).")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("url")
                            .label("Webhook URL")
                            .description("The URL to send webhook events to via HTTP POST")
                            .required(),
                    )
                    .config_field(
                        Field::key_value_map("custom_headers")
                            .label("Custom Headers")
                            .description(
                                "Additional HTTP headers to include with every webhook request",
                            ),
                    )
                    .config_field(
                        Field::select("signature_mode")
                            .label("Signature Mode")
                            .description(
                                "How requests are signed: Outpost's x-outpost-signature, or \
                                 Standard Webhooks' webhook-signature",
                            )
                            .option("outpost", "Outpost")
                            .option("standard", "Standard Webhooks")
                            .default_value("outpost"),
                    )
                    .credential_field(
                        Field::text("secret")
                            .label("Secret")
                            .description(
                                "The secret used for signing webhook requests (a whsec_ base64 \
                                 secret in standard mode); generated when left empty",
                            )
                            .generated("whsec_", 32),
                    )
                    .credential_field(
                        Field::text("previous_secret")
                            .label("Previous Secret")
                            .description("The previous secret, still signing during rotation")
                            .sensitive(),
                    )
                    .credential_field(
                        Field::text("previous_secret_invalid_at")
                            .label("Previous Secret Invalid At")
                            .description(
                                "RFC 3339 time after which the previous secret stops signing",
                            ),
                    )
                    .url_field("url"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts an https url", "webhook")
                .config(json!({"url": "https://example.com/hooks"}))
                .credentials(json!({"secret": "s3cret"})),
            TestCase::new("requires a url", "webhook").expect_error(),
            TestCase::new("rejects other schemes", "webhook")
                .config(json!({"url": "ftp://example.com"}))
                .expect_error(),
            TestCase::new("standard mode needs a whsec_ secret", "webhook")
                .config(json!({"url": "https://example.com", "signature_mode": "standard"}))
                .credentials(json!({"secret": "not base64!"}))
                .expect_error(),
        ]
    }
}

impl Destination for Webhook {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        settings::parse(config, credentials).map(|_| ())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let (settings, secrets) = settings::parse(&target.config, &target.credentials)?;
        let request = build_request(
            &settings,
            &secrets,
            event,
            &target.delivery_metadata,
            time::unix_millis(),
        );
        let response = http::send(request)?;
        Delivered::check(&response)
    }
}

export_destination!(Webhook);

/// The request for `event` at `now_ms`: custom headers, then the mode's id, timestamp,
/// topic and signature headers, then metadata headers (delivery metadata, overridden by
/// event metadata), with the event data as body.
fn build_request(
    settings: &Settings,
    secrets: &Secrets,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_ms: u64,
) -> Request {
    let prefix = settings.mode.header_prefix();
    let timestamp = now_ms / 1000;
    let body = event.data.as_bytes();
    let signing = secrets.signing(now_ms);
    let (id_header, signature) = match settings.mode {
        SignatureMode::Outpost => (
            "event-id",
            signing::outpost_signature(&signing, timestamp, body),
        ),
        SignatureMode::Standard => (
            "id",
            signing::standard_signature(&signing, &event.id, timestamp, body),
        ),
    };
    let own = [id_header, "timestamp", "topic", "signature"];

    let mut request = Request::post(&settings.url).header("content-type", "application/json");
    for (name, value) in &settings.custom_headers {
        request = request.header(name, value);
    }
    request = request
        .header(format!("{prefix}{id_header}"), &event.id)
        .header(format!("{prefix}timestamp"), timestamp.to_string())
        .header(format!("{prefix}topic"), &event.topic);
    if let Some(signature) = signature {
        request = request.header(format!("{prefix}signature"), signature);
    }

    let mut metadata = BTreeMap::new();
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        metadata.insert(key.to_ascii_lowercase(), value);
    }
    for (key, value) in metadata {
        if !settings::is_token(&key) || own.contains(&key.as_str()) || value.contains(['\r', '\n'])
        {
            log::warn!("metadata `{key}` skipped: not usable as header `{prefix}{key}`");
            continue;
        }
        request = request.header(format!("{prefix}{key}"), value.as_str());
    }
    request.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: "evt_123".into(),
            tenant_id: "t1".into(),
            topic: "user.created".into(),
            time_ms: 0,
            metadata: vec![
                ("Source".into(), "api".into()),
                ("topic".into(), "spoofed".into()),
                ("bad key".into(), "x".into()),
            ],
            data: r#"{"user":{"id":1}}"#.into(),
            attempt: 1,
        }
    }

    fn settings(mode: SignatureMode) -> Settings {
        Settings {
            url: "https://example.com/hook".into(),
            custom_headers: BTreeMap::from([("X-Team".to_string(), "core".to_string())]),
            mode,
        }
    }

    fn secrets(secret: &str) -> Secrets {
        Secrets {
            secret: Some(secret.into()),
            previous_secret: None,
            previous_secret_invalid_at_ms: None,
        }
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn outpost_request() {
        let delivery = [
            ("env".to_string(), "prod".to_string()),
            ("source".to_string(), "static".to_string()),
        ];
        let r = build_request(
            &settings(SignatureMode::Outpost),
            &secrets("secret"),
            &event(),
            &delivery,
            1_700_000_000_999,
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://example.com/hook");
        assert_eq!(r.body, br#"{"user":{"id":1}}"#);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(header(&r, "X-Team"), Some("core"));
        assert_eq!(header(&r, "x-outpost-event-id"), Some("evt_123"));
        assert_eq!(header(&r, "x-outpost-topic"), Some("user.created"));
        assert_eq!(header(&r, "x-outpost-timestamp"), Some("1700000000"));
        assert_eq!(
            header(&r, "x-outpost-source"),
            Some("api"),
            "event metadata wins"
        );
        assert_eq!(header(&r, "x-outpost-env"), Some("prod"));
        let topics: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "x-outpost-topic")
            .collect();
        assert_eq!(topics.len(), 1, "metadata cannot override the topic header");
        assert!(r.headers.iter().all(|(k, _)| k != "x-outpost-bad key"));
        let expected = signing::outpost_signature(&["secret"], 1_700_000_000, &r.body).unwrap();
        assert_eq!(header(&r, "x-outpost-signature"), Some(expected.as_str()));
    }

    #[test]
    fn standard_request() {
        let r = build_request(
            &settings(SignatureMode::Standard),
            &secrets("whsec_c2VjcmV0"),
            &event(),
            &[],
            5_000,
        );
        assert_eq!(header(&r, "webhook-id"), Some("evt_123"));
        assert_eq!(header(&r, "webhook-timestamp"), Some("5"));
        assert_eq!(header(&r, "webhook-topic"), Some("user.created"));
        assert_eq!(header(&r, "webhook-source"), Some("api"));
        assert!(header(&r, "webhook-signature").unwrap().starts_with("v1,"));
        assert!(r.headers.iter().all(|(k, _)| !k.starts_with("x-outpost-")));
    }

    #[test]
    fn unsigned_without_secret() {
        let none = Secrets {
            secret: None,
            previous_secret: None,
            previous_secret_invalid_at_ms: None,
        };
        let r = build_request(&settings(SignatureMode::Outpost), &none, &event(), &[], 0);
        assert_eq!(header(&r, "x-outpost-signature"), None);
    }

    #[test]
    fn rotation_signs_with_both_until_invalid() {
        let rotating = Secrets {
            secret: Some("new".into()),
            previous_secret: Some("old".into()),
            previous_secret_invalid_at_ms: Some(10_000),
        };
        let s = settings(SignatureMode::Outpost);
        let before = build_request(&s, &rotating, &event(), &[], 9_999);
        assert_eq!(
            header(&before, "x-outpost-signature")
                .unwrap()
                .split(',')
                .count(),
            2
        );
        let after = build_request(&s, &rotating, &event(), &[], 10_000);
        assert_eq!(
            header(&after, "x-outpost-signature")
                .unwrap()
                .split(',')
                .count(),
            1
        );
    }

    #[test]
    fn manifest_and_self_tests_agree_with_validate() {
        let manifest = Webhook::manifest();
        assert_eq!(manifest.prototypes[0].id, "webhook");
        assert_eq!(manifest.prototypes[0].network.url_fields, ["url"]);
        for test in Webhook::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result = <Webhook as Destination>::validate("webhook", &config, &credentials);
            assert_eq!(result.is_err(), test.expect_error, "{}", test.name);
        }
    }

    /// Prints a Standard Webhooks request signed now with a rotating pair of secrets, for
    /// the cross-check with the reference library (`plugins/webhook/verify_standard.py`).
    #[test]
    fn print_standard_request() {
        let mut e = event();
        e.metadata.clear();
        let rotating = Secrets {
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            previous_secret: Some("whsec_c2VjcmV0LW9sZA==".into()),
            previous_secret_invalid_at_ms: None,
        };
        let r = build_request(
            &settings(SignatureMode::Standard),
            &rotating,
            &e,
            &[],
            time::unix_millis(),
        );
        let headers: BTreeMap<&str, &str> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        println!("{}", json!({"headers": headers, "body": e.data}));
    }
}
