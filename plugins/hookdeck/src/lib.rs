//! Outrider's `hookdeck` destination: delivers each event to a Hookdeck Event Gateway
//! managed source, as Hookdeck Outpost does.
//!
//! The destination's `token` (from Hookdeck's "connect" flow) is the base64 encoding of
//! `<source id>:<random>`. Events are `POST`ed to `https://hkdk.events/<source id>` with
//! the event data as the JSON body, `x-hookdeck-signature: v0=<base64 HMAC-SHA256 of the
//! body keyed by the whole token>` so that Hookdeck accepts them for that source, and the
//! metadata as `x-outpost-<key>` headers.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use outrider_sdk::http::{self, Request};
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use sha2::Sha256;
use std::collections::BTreeMap;

struct Hookdeck;

/// Where Hookdeck receives events for managed sources.
const DEFAULT_ENDPOINT: &str = "https://hkdk.events";

const ICON: &str = r##"<svg width="16" height="16" viewBox="0 0 16 16" fill="none" xmlns="http://www.w3.org/2000/svg"><path d="M12 0H4C1.79086 0 0 1.79086 0 4V12C0 14.2091 1.79086 16 4 16H12C14.2091 16 16 14.2091 16 12V4C16 1.79086 14.2091 0 12 0Z" fill="#0044CC"/><path d="M11.2126 6.78385C11.2136 6.78385 11.2146 6.78386 11.2156 6.78387C11.3534 6.7859 11.4381 6.99039 11.3406 7.08785L7.18062 11.2478C6.02862 12.3998 4.15662 12.3998 3.00462 11.2478C1.85263 10.0958 1.85263 8.22385 3.00462 7.07185L5.38862 4.68785C6.07662 3.99985 7.00462 3.72785 7.88462 3.85585C7.94862 3.87185 8.01263 3.91985 8.02863 3.98385C8.04463 4.04785 8.02862 4.12785 7.98062 4.17585L7.45263 4.70385C7.37263 4.78385 7.27662 4.83185 7.16462 4.84785C6.76462 4.91185 6.38062 5.08785 6.07662 5.39185L3.69263 7.77585C2.92463 8.54385 2.92463 9.79185 3.69263 10.5598C4.46063 11.3278 5.70862 11.3278 6.47662 10.5598L8.95662 8.07985C9.23056 7.80592 9.23056 7.36178 8.95662 7.08785C8.90862 7.03985 8.89262 6.95985 8.92462 6.89585C8.95662 6.83185 9.02062 6.78385 9.08462 6.78385H11.2126ZM6.90862 9.21585C6.9096 9.21585 6.91058 9.21584 6.91156 9.21583C7.04936 9.2138 7.13408 9.0093 7.03662 8.91185C6.76269 8.63792 6.76269 8.19378 7.03662 7.91985L9.51662 5.43985C10.2846 4.67185 11.5326 4.67185 12.3006 5.43985C13.0686 6.20785 13.0686 7.45585 12.3006 8.22385L9.91662 10.6078C9.61262 10.9118 9.22863 11.1039 8.82863 11.1519C8.71663 11.1679 8.62062 11.2158 8.54062 11.2959L8.01263 11.8238C7.96462 11.8718 7.94862 11.9518 7.96462 12.0159C7.98062 12.0799 8.04463 12.1278 8.10863 12.1438C8.98863 12.2718 9.93262 11.9999 10.6046 11.3119L12.9886 8.92785C14.1406 7.77585 14.1406 5.90385 12.9886 4.75185C11.8366 3.59985 9.96462 3.59985 8.81262 4.75185L4.65263 8.91185C4.60463 8.95985 4.58862 9.03985 4.62062 9.10385C4.65262 9.16785 4.71662 9.21585 4.78062 9.21585H6.90862Z" fill="white"/></svg>"##;

const INSTRUCTIONS: &str = "\
Send events to a [Hookdeck Event Gateway](https://hookdeck.com) source, where Hookdeck's \
connections route, filter, transform and retry them to your services.

Use **Generate Hookdeck Token** to create (or pick) a Hookdeck source and paste the token \
it gives you. The token identifies the source and signs every request.

Each event is sent as a `POST` to `https://hkdk.events/<source id>` with the event data as \
the JSON body, `x-hookdeck-signature: v0=<base64 HMAC-SHA256 of the body>` keyed by the \
token, and `x-outpost-event-id`, `x-outpost-topic`, `x-outpost-timestamp` and \
`x-outpost-<key>` headers for the event's metadata.

Hookdeck acknowledging the request (2xx) completes the delivery; 429 and 5xx answers are \
retried, other 4xx answers (for example a revoked token) fail the attempt.";

impl Plugin for Hookdeck {
    fn manifest() -> Manifest {
        Manifest::new("hookdeck", env!("CARGO_PKG_VERSION"))
            .description("Hookdeck Event Gateway managed sources, as Outpost delivers to them.")
            .prototype(
                Prototype::destination("hookdeck")
                    .label("Hookdeck")
                    .description("Send events to Hookdeck Event Gateway.")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .setup_link(
                        "https://dashboard.hookdeck.com/connect",
                        "Generate Hookdeck Token",
                    )
                    .config_field(Field::text("endpoint").label("Endpoint").description(
                        "For testing only: base URL to send to instead of \
                                 https://hkdk.events (the source ID is appended as the path). \
                                 Leave empty in production.",
                    ))
                    .credential_field(
                        Field::text("token")
                            .label("Hookdeck Token")
                            .description("The Hookdeck authentication token")
                            .required()
                            .sensitive(),
                    )
                    .host("hkdk.events")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts a source token", "hookdeck")
                .credentials(json!({"token": BASE64.encode("src_abc123:s3cr3t")})),
            TestCase::new("requires a token", "hookdeck").expect_error(),
            TestCase::new("rejects a token that is not base64", "hookdeck")
                .credentials(json!({"token": "not a token"}))
                .expect_error(),
            TestCase::new("rejects a token without a source id", "hookdeck")
                .credentials(json!({"token": BASE64.encode("no-separator")}))
                .expect_error(),
        ]
    }
}

impl Destination for Hookdeck {
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
        let response = http::send(request)?;
        Delivered::check(&response)
    }
}

export_destination!(Hookdeck);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// Base URL, without trailing `/`.
    endpoint: String,
    /// The whole token: the HMAC key.
    token: String,
    /// The source id encoded in the token.
    source_id: String,
}

impl Settings {
    /// Parses and checks every field, reporting every problem.
    fn parse(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let endpoint = endpoint(config).record(&mut errors);
        let token = credentials
            .str("token")
            .and_then(|token| {
                source_id(token)
                    .map(|id| (token, id))
                    .map_err(|why| credentials.error("token", why))
            })
            .record(&mut errors);
        match (endpoint, token) {
            (Some(endpoint), Some((token, source_id))) => Ok(Settings {
                endpoint,
                token: token.to_string(),
                source_id,
            }),
            _ => Err(errors),
        }
    }

    /// Where events for the source go.
    fn url(&self) -> String {
        format!("{}/{}", self.endpoint, self.source_id)
    }
}

/// The source id of a Hookdeck token: base64 (standard alphabet, padded) of
/// `<source id>:<random>`.
fn source_id(token: &str) -> Result<String, &'static str> {
    let decoded = BASE64
        .decode(token)
        .map_err(|_| "is not a Hookdeck token: not base64 encoded")?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| "is not a Hookdeck token: expected base64 of `<source id>:<key>`")?;
    let Some((id, _)) = decoded.split_once(':') else {
        return Err("is not a Hookdeck token: expected base64 of `<source id>:<key>`");
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("is not a Hookdeck token: the source id must be letters, digits, `_` or `-`");
    }
    Ok(id.to_string())
}

fn endpoint(config: &Config) -> Result<String, FieldError> {
    match config.opt_str("endpoint")? {
        None => Ok(DEFAULT_ENDPOINT.to_string()),
        Some(url) if is_http_url(url) => Ok(url.trim_end_matches('/').to_string()),
        Some(_) => Err(config.error(
            "endpoint",
            "must be an http(s) URL without query or fragment",
        )),
    }
}

/// `http://` or `https://`, a non-empty host, no query, fragment, credentials,
/// whitespace or control characters.
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

/// `x-hookdeck-signature` value: `v0=` and the base64 HMAC-SHA256 of `body` keyed by the
/// token's UTF-8 bytes.
fn signature(token: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("v0={}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Header names this plugin sends: letters, digits, `-` and `_`.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The request for `event` at `now_s` (Unix seconds): event data as body, signature,
/// then `x-outpost-` metadata headers (delivery metadata, overridden by event metadata;
/// `event-id`, `topic` and `timestamp` are the gateway's own).
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> Request {
    let body = event.data.as_bytes();
    let mut metadata: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        metadata.insert(key.to_ascii_lowercase(), value);
    }
    let timestamp = now_s.to_string();
    metadata.insert("event-id".into(), &event.id);
    metadata.insert("topic".into(), &event.topic);
    metadata.insert("timestamp".into(), &timestamp);

    let mut request = Request::post(settings.url())
        .header("content-type", "application/json")
        .header("x-hookdeck-signature", signature(&settings.token, body));
    for (key, value) in metadata {
        if !is_token(&key) || value.contains(['\r', '\n', '\0']) {
            log::warn!("metadata `{key}` skipped: not usable as header `x-outpost-{key}`");
            continue;
        }
        request = request.header(format!("x-outpost-{key}"), value);
    }
    request.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_tests_hold() {
        let cases = <Hookdeck as Plugin>::self_tests();
        assert!(!cases.is_empty());
        for case in cases {
            let result = Hookdeck::validate(
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

    fn parse(config: Value, credentials: Value) -> Result<Settings, Vec<String>> {
        Settings::parse(
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(credentials).unwrap(),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn token_decodes_to_the_source_url() {
        let token = BASE64.encode("src_abc123:s3cr3t:with:colons");
        let settings = parse(json!({}), json!({ "token": token })).unwrap();
        assert_eq!(settings.source_id, "src_abc123");
        assert_eq!(settings.token, token);
        assert_eq!(settings.url(), "https://hkdk.events/src_abc123");
        let settings = parse(
            json!({"endpoint": "http://127.0.0.1:8080/e/"}),
            json!({ "token": token }),
        )
        .unwrap();
        assert_eq!(settings.url(), "http://127.0.0.1:8080/e/src_abc123");
    }

    #[test]
    fn reports_every_problem_by_field() {
        assert_eq!(
            parse(json!({"endpoint": "hkdk.events"}), json!({})).unwrap_err(),
            [
                "config.endpoint must be an http(s) URL without query or fragment",
                "credentials.token is required",
            ]
        );
        for (token, why) in [
            ("not base64!", "not base64 encoded"),
            (
                &BASE64.encode("no-separator"),
                "expected base64 of `<source id>:<key>`",
            ),
            (&BASE64.encode(":key"), "the source id must be"),
            (&BASE64.encode("../x:key"), "the source id must be"),
        ] {
            let errors = parse(json!({}), json!({ "token": token })).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].starts_with("credentials.token is not a Hookdeck token: ")
                    && errors[0].contains(why),
                "{token}: {errors:?}"
            );
        }
    }

    #[test]
    fn signature_known_answer() {
        // Python: "v0=" + base64.b64encode(hmac.new(b"c3JjXzE6c2VjcmV0", b'{"a":1}', hashlib.sha256).digest()).decode()
        assert_eq!(
            signature("c3JjXzE6c2VjcmV0", br#"{"a":1}"#),
            "v0=VBhoJjcBhXNzIIX1BtErZn9Iq6oD7RatNxfvK1ypc2k="
        );
    }

    #[test]
    fn request_is_signed_with_metadata_headers() {
        let token = BASE64.encode("src_1:secret");
        let settings = parse(json!({}), json!({ "token": token })).unwrap();
        let event = Event {
            id: "evt_1".into(),
            tenant_id: "t".into(),
            topic: "user.created".into(),
            time_ms: 0,
            metadata: vec![
                ("Source".into(), "api".into()),
                ("topic".into(), "spoofed".into()),
                ("bad key".into(), "x".into()),
            ],
            data: r#"{"user":1}"#.into(),
            attempt: 1,
        };
        let delivery = [
            ("env".to_string(), "prod".to_string()),
            ("source".to_string(), "static".to_string()),
        ];
        let r = build_request(&settings, &event, &delivery, 1_700_000_000);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://hkdk.events/src_1");
        assert_eq!(r.body, br#"{"user":1}"#);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(
            header(&r, "x-hookdeck-signature"),
            Some(signature(&token, &r.body).as_str())
        );
        assert_eq!(header(&r, "x-outpost-event-id"), Some("evt_1"));
        assert_eq!(header(&r, "x-outpost-topic"), Some("user.created"));
        assert_eq!(header(&r, "x-outpost-timestamp"), Some("1700000000"));
        assert_eq!(
            header(&r, "x-outpost-source"),
            Some("api"),
            "event metadata wins"
        );
        assert_eq!(header(&r, "x-outpost-env"), Some("prod"));
        assert!(r.headers.iter().all(|(k, _)| k != "x-outpost-bad key"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k == "x-outpost-topic")
                .count(),
            1
        );
    }
}
