//! Outrider's `aws_s3` destination: stores each event as an object in an Amazon S3 bucket
//! with `PutObject`, signed with SigV4 inside the component.
//!
//! The object is the event data (`application/json`), its key is rendered from a
//! template (`{{event.topic}}/{{event.id}}.json`), and metadata becomes user-defined
//! object metadata (`x-amz-meta-*`). The body's SHA-256 is sent as
//! `x-amz-checksum-sha256`, so S3 verifies what it stores.

use aws_common::template::{render_event, Template};
use aws_common::url::{dns_suffix, uri_encode};
use aws_common::{credential_fields, fields, metadata, AwsCredentials, Scope, SignOptions};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::http::Request;
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use sha2::{Digest, Sha256};

struct AwsS3;

const PROTOTYPE: &str = "aws_s3";

/// Outpost's default key, `join('', [time.rfc3339_nano, '_', metadata."event-id", '.json'])`,
/// in this template syntax.
const DEFAULT_KEY_TEMPLATE: &str = "{{time.rfc3339_nano}}_{{event.id}}.json";

const STORAGE_CLASSES: [&str; 12] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
];

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><rect width="16" height="16" rx="4" fill="#5A8A16"/><g fill="none" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"><ellipse cx="8" cy="4.6" rx="4.6" ry="1.6"/><path d="M3.4 4.6 4.6 11.6c.2 1 1.7 1.6 3.4 1.6s3.2-.6 3.4-1.6l1.2-7"/></g></svg>"##;

const INSTRUCTIONS: &str = "\
Each event is stored as one object (`PutObject`) whose content is the event data \
(`application/json`).

**Object key** is rendered from *Object Key Template*, default \
`{{time.rfc3339_nano}}_{{event.id}}.json` (Outpost's default key). Text outside `{{ }}` \
is copied; placeholders are `event.id`, `event.topic`, `event.tenant_id`, `event.time`, \
`time.year|month|day|hour|minute|second|date|datetime|unix|unix_ms|rfc3339|rfc3339_nano` \
(event time, UTC), `metadata.KEY` and `data.PATH` (e.g. `data.order.id`). Alternatives: \
`{{data.customer | \"unknown\"}}`. Example: \
`{{event.topic}}/{{time.year}}/{{time.month}}/{{time.day}}/{{event.id}}.json`. A \
template must contain a placeholder (a fixed key would overwrite one object); JMESPath \
expressions are not supported.

**Object metadata**: `event-id`, `topic`, `timestamp`, the destination's delivery \
metadata and the event's metadata become `x-amz-meta-*` headers (names lower-cased; \
values that are not plain ASCII are RFC 2047 encoded).

With *Endpoint* (LocalStack, moto, MinIO, VPC endpoints) requests are path-style \
(`ENDPOINT/BUCKET/KEY`); otherwise they go to `BUCKET.s3.REGION.amazonaws.com`.

The credentials need `s3:PutObject` on the bucket. Throttling (`SlowDown`), 5xx answers \
and timeouts are retried; bad credentials, missing permissions, a missing bucket or the \
wrong region mark the destination misconfigured; other rejections fail the event.";

impl Plugin for AwsS3 {
    fn manifest() -> Manifest {
        let mut prototype = Prototype::destination(PROTOTYPE)
            .label("AWS S3")
            .description("Store events in an Amazon S3 bucket.")
            .icon(ICON)
            .instructions(INSTRUCTIONS)
            .config_field(
                Field::text("bucket")
                    .label("Bucket Name")
                    .description("The name of your AWS S3 bucket")
                    .required(),
            )
            .config_field(
                fields::region_field("The AWS region where your bucket is located").required(),
            )
            .config_field(
                Field::text("key_template")
                    .label("Object Key Template")
                    .description(
                        "Template of the S3 object keys, e.g. \
                         {{event.topic}}/{{time.date}}/{{event.id}}.json. Default: \
                         {{time.rfc3339_nano}}_{{event.id}}.json",
                    ),
            )
            .config_field(
                Field::text("storage_class")
                    .label("S3 Storage Class")
                    .description(
                        "The storage class for the S3 objects (e.g., STANDARD, \
                         INTELLIGENT_TIERING, GLACIER, etc.)",
                    )
                    .default_value("STANDARD"),
            )
            .config_field(fields::endpoint_field(
                "Custom S3 endpoint URL (optional, e.g. for LocalStack, moto, MinIO or VPC \
                 endpoints); requests are then path-style",
            ));
        for field in credential_fields() {
            prototype = prototype.credential_field(field);
        }
        Manifest::new("aws-s3", env!("CARGO_PKG_VERSION"))
            .description("Amazon S3 buckets, SigV4-signed inside the component.")
            .prototype(
                prototype
                    .host("{bucket}.s3.{region}.amazonaws.com")
                    .host("s3.{region}.amazonaws.com")
                    .host("{bucket}.s3.{region}.amazonaws.com.cn")
                    .host("s3.{region}.amazonaws.com.cn")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let credentials = json!({"key": "AKIDEXAMPLE", "secret": "secret"});
        vec![
            TestCase::new("accepts a bucket and region", PROTOTYPE)
                .config(json!({"bucket": "my-events", "region": "eu-west-1"}))
                .credentials(credentials.clone()),
            TestCase::new("accepts a key template", PROTOTYPE)
                .config(json!({
                    "bucket": "my-events",
                    "region": "eu-west-1",
                    "key_template": "{{event.topic}}/{{time.date}}/{{event.id}}.json",
                    "storage_class": "intelligent_tiering",
                }))
                .credentials(credentials.clone()),
            TestCase::new("requires a region", PROTOTYPE)
                .config(json!({"bucket": "my-events"}))
                .credentials(credentials.clone())
                .expect_error(),
            TestCase::new("rejects a key template without placeholders", PROTOTYPE)
                .config(json!({
                    "bucket": "my-events",
                    "region": "eu-west-1",
                    "key_template": "join('', [metadata.\"event-id\", '.json'])",
                }))
                .credentials(credentials.clone())
                .expect_error(),
            TestCase::new("rejects an unknown storage class", PROTOTYPE)
                .config(
                    json!({"bucket": "my-events", "region": "eu-west-1", "storage_class": "COLD"}),
                )
                .credentials(credentials)
                .expect_error(),
        ]
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
struct Settings {
    bucket: String,
    region: String,
    key_template: Template,
    storage_class: String,
    endpoint: Option<String>,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let bucket = config
            .str("bucket")
            .and_then(|b| check_bucket(config, b))
            .record(&mut errors);
        let region = fields::region(config).record(&mut errors);
        let key_template = fields::template(config, "key_template", DEFAULT_KEY_TEMPLATE)
            .and_then(|t| check_key_template(config, t))
            .record(&mut errors);
        let storage_class = storage_class(config).record(&mut errors);
        let endpoint = fields::endpoint(config).record(&mut errors);
        match (bucket, region, key_template, storage_class, endpoint) {
            (
                Some(bucket),
                Some(region),
                Some(key_template),
                Some(storage_class),
                Some(endpoint),
            ) if errors.is_empty() => Ok(Settings {
                bucket,
                region,
                key_template,
                storage_class,
                endpoint,
            }),
            _ => Err(errors),
        }
    }

    /// The object's URL: path-style under a custom endpoint or for bucket names with
    /// dots (virtual-hosted TLS names cannot contain them), virtual-hosted otherwise.
    fn object_url(&self, key: &str) -> String {
        let key = uri_encode(key, false);
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", self.bucket),
            None if self.bucket.contains('.') => format!(
                "https://s3.{}.{}/{}/{key}",
                self.region,
                dns_suffix(&self.region),
                self.bucket
            ),
            None => format!(
                "https://{}.s3.{}.{}/{key}",
                self.bucket,
                self.region,
                dns_suffix(&self.region)
            ),
        }
    }
}

/// Bucket names: 3-63 characters of `a-z 0-9 . -`, starting and ending with a letter or
/// digit.
fn check_bucket(config: &Config, value: &str) -> Result<String, FieldError> {
    let b = value.trim();
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
    {
        Ok(b.to_string())
    } else {
        Err(config.error(
            "bucket",
            "must be an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens",
        ))
    }
}

fn check_key_template(config: &Config, template: Template) -> Result<Template, FieldError> {
    if template.source().contains("{{") {
        return Ok(template);
    }
    let hint = if template.source().contains("join(") || template.source().contains("metadata.\"") {
        " (JMESPath expressions are not supported; write {{time.rfc3339_nano}}_{{event.id}}.json)"
    } else {
        ""
    };
    Err(config.error(
        "key_template",
        format!(
            "must contain a placeholder such as {{{{event.id}}}}, or every event would \
             overwrite the same object{hint}"
        ),
    ))
}

fn storage_class(config: &Config) -> Result<String, FieldError> {
    let value = config.opt_str("storage_class")?.unwrap_or("STANDARD");
    let upper = value.trim().to_ascii_uppercase();
    if STORAGE_CLASSES.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(config.error(
            "storage_class",
            format!("must be one of {}", STORAGE_CLASSES.join(", ")),
        ))
    }
}

impl Destination for AwsS3 {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = Settings::parse(config).err().unwrap_or_default();
        AwsCredentials::parse(credentials, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let settings = Settings::parse(&target.config)?;
        let credentials = AwsCredentials::from_target(&target.credentials)?;
        let (request, key) = build_request(
            &settings,
            event,
            &target.delivery_metadata,
            time::unix_seconds(),
        )?;
        let scope = Scope {
            region: &settings.region,
            service: "s3",
        };
        let response = aws_common::send(request, &credentials, scope, SignOptions::S3, "S3")?;
        let mut receipt = json!({"bucket": settings.bucket, "key": key});
        if let Some(etag) = response.header("etag") {
            receipt["etag"] = json!(etag.trim_matches('"'));
        }
        Ok(Delivered::http(response.status, &receipt.to_string()))
    }
}

export_destination!(AwsS3);

/// The unsigned `PutObject` request for `event`, and the object key.
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_unix_seconds: u64,
) -> Result<(Request, String), DeliveryError> {
    let metadata = metadata::merged(event, delivery_metadata, now_unix_seconds);
    let key = render_event(&settings.key_template, event, &metadata)
        .map_err(|e| DeliveryError::fail(format!("config.key_template: {e}")))?;
    check_key(&key)?;
    let body = event.data.as_bytes();
    let mut request = Request::put(settings.object_url(&key))
        .header("content-type", "application/json")
        .header("x-amz-checksum-sha256", BASE64.encode(Sha256::digest(body)))
        .header("x-amz-storage-class", settings.storage_class.as_str());
    for (name, value) in &metadata {
        let name = name.to_ascii_lowercase();
        if !is_token(&name) {
            log::warn!("metadata `{name}` skipped: not usable as header `x-amz-meta-{name}`");
            continue;
        }
        request = request.header(format!("x-amz-meta-{name}"), header_value(value));
    }
    Ok((request.body(body), key))
}

/// S3 keys are 1-1024 bytes; `.` and `..` segments would be rewritten by URL
/// normalisation, so they are refused.
fn check_key(key: &str) -> Result<(), DeliveryError> {
    let problem = if key.is_empty() {
        Some("is empty")
    } else if key.len() > 1024 {
        Some("is longer than 1024 bytes")
    } else if key.split('/').any(|s| s == "." || s == "..") {
        Some("has a `.` or `..` path segment")
    } else {
        None
    };
    match problem {
        Some(p) => Err(DeliveryError::fail(format!(
            "config.key_template rendered the object key `{key}`, which {p}"
        ))),
        None => Ok(()),
    }
}

/// HTTP token characters (RFC 9110), the only ones a header name may use.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Printable ASCII as is; anything else RFC 2047-encoded (`=?UTF-8?B?...?=`), as S3
/// expects for user metadata.
fn header_value(value: &str) -> String {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", BASE64.encode(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        Config::from_value(value).unwrap()
    }

    fn event() -> Event {
        Event {
            id: "evt_123".into(),
            tenant_id: "acme".into(),
            topic: "order.paid".into(),
            time_ms: 1_714_564_984_560,
            metadata: vec![
                ("Source".into(), "api".into()),
                ("city".into(), "Zürich".into()),
                ("bad key".into(), "x".into()),
            ],
            data: r#"{"order":{"id":42}}"#.into(),
            attempt: 1,
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
    fn put_object_request() {
        let settings = Settings::parse(&config(json!({
            "bucket": "my-events",
            "region": "eu-west-1",
            "key_template": "{{event.topic}}/{{time.date}}/{{data.order.id}} {{event.id}}.json",
        })))
        .unwrap();
        let delivery = [("env".to_string(), "prod".to_string())];
        let (r, key) = build_request(&settings, &event(), &delivery, 1_700_000_000).unwrap();
        assert_eq!(key, "order.paid/2024-05-01/42 evt_123.json");
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.url,
            "https://my-events.s3.eu-west-1.amazonaws.com/order.paid/2024-05-01/42%20evt_123.json"
        );
        assert_eq!(r.body, br#"{"order":{"id":42}}"#);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(header(&r, "x-amz-storage-class"), Some("STANDARD"));
        assert_eq!(
            header(&r, "x-amz-checksum-sha256"),
            Some(
                BASE64
                    .encode(Sha256::digest(br#"{"order":{"id":42}}"#))
                    .as_str()
            )
        );
        assert_eq!(header(&r, "x-amz-meta-event-id"), Some("evt_123"));
        assert_eq!(header(&r, "x-amz-meta-topic"), Some("order.paid"));
        assert_eq!(header(&r, "x-amz-meta-timestamp"), Some("1700000000"));
        assert_eq!(header(&r, "x-amz-meta-env"), Some("prod"));
        assert_eq!(header(&r, "x-amz-meta-source"), Some("api"));
        assert_eq!(
            header(&r, "x-amz-meta-city"),
            Some("=?UTF-8?B?WsO8cmljaA==?=")
        );
        assert!(r.headers.iter().all(|(k, _)| k != "x-amz-meta-bad key"));
    }

    #[test]
    fn default_key_and_urls() {
        let settings = Settings::parse(&config(json!({
            "bucket": "my.dotted.bucket",
            "region": "cn-north-1",
            "storage_class": "glacier_ir",
        })))
        .unwrap();
        assert_eq!(settings.storage_class, "GLACIER_IR");
        let (r, key) = build_request(&settings, &event(), &[], 1).unwrap();
        assert_eq!(key, "2024-05-01T12:03:04.56Z_evt_123.json");
        assert_eq!(
            r.url,
            "https://s3.cn-north-1.amazonaws.com.cn/my.dotted.bucket/2024-05-01T12%3A03%3A04.56Z_evt_123.json"
        );
        let local = Settings::parse(&config(json!({
            "bucket": "events",
            "region": "us-east-1",
            "endpoint": "http://127.0.0.1:5000/",
            "key_template": "{{event.id}}",
        })))
        .unwrap();
        assert_eq!(local.object_url("a/b"), "http://127.0.0.1:5000/events/a/b");
    }

    #[test]
    fn bad_keys_fail_the_event() {
        for (template, message) in [
            (
                "{{data.customer}}.json",
                "config.key_template: `{{data.customer}}` has no value for this event",
            ),
            (
                "a/{{'..'}}/{{event.id}}",
                "config.key_template rendered the object key `a/../evt_123`, which has a `.` or `..` path segment",
            ),
        ] {
            let settings = Settings::parse(&config(json!({
                "bucket": "b-1", "region": "us-east-1", "key_template": template,
            })))
            .unwrap();
            let e = build_request(&settings, &event(), &[], 1).unwrap_err();
            assert!(matches!(e, DeliveryError::Fail(_)), "{template}");
            assert_eq!(e.failure().message, message);
        }
    }

    #[test]
    fn validate_names_every_field() {
        let errors = <AwsS3 as Destination>::validate(
            PROTOTYPE,
            &config(json!({
                "bucket": "Bad_Bucket",
                "region": "Europe",
                "key_template": "join('', [metadata.\"event-id\"])",
                "storage_class": "cold",
                "endpoint": "nope",
            })),
            &Credentials::from_value(json!({"key": "k"})).unwrap(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "config.bucket",
                "config.region",
                "config.key_template",
                "config.storage_class",
                "config.endpoint",
                "credentials.secret"
            ]
        );
        assert!(errors[2].message.contains("JMESPath"), "{}", errors[2]);
    }

    #[test]
    fn manifest_and_self_tests_agree_with_validate() {
        let manifest = AwsS3::manifest();
        let p = &manifest.prototypes[0];
        assert_eq!(p.id, "aws_s3");
        let keys: Vec<_> = p.config_fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bucket",
                "region",
                "key_template",
                "storage_class",
                "endpoint"
            ]
        );
        assert_eq!(p.network.url_fields, ["endpoint"]);
        assert!(p
            .network
            .hosts
            .contains(&"{bucket}.s3.{region}.amazonaws.com".to_string()));
        for test in AwsS3::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result = <AwsS3 as Destination>::validate(PROTOTYPE, &config, &credentials);
            assert_eq!(result.is_err(), test.expect_error, "{}", test.name);
        }
    }
}
