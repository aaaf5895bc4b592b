//! Outrider's `aws_sqs` destination: sends each event to an Amazon SQS queue with
//! `SendMessage` (AWS JSON 1.0 protocol), signed with SigV4 inside the component.
//!
//! The message body is the event data. Metadata travels as message attributes: one
//! `metadata` attribute holding all of it as JSON (as Outpost sends it), plus one String
//! attribute per metadata key while SQS's limit of 10 attributes allows. FIFO queues
//! (`.fifo`) get a `MessageGroupId` from a template and the event id as
//! `MessageDeduplicationId`, so retries within SQS's 5-minute window are not duplicated.

use aws_common::template::{render_event, Template};
use aws_common::{credential_fields, fields, metadata, AwsCredentials, Scope, SignOptions};
use outrider_sdk::http::Request;
use outrider_sdk::prelude::*;
use outrider_sdk::serde_json::Map;
use outrider_sdk::{log, time};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

struct AwsSqs;

const PROTOTYPE: &str = "aws_sqs";

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><rect width="16" height="16" rx="4" fill="#C7346B"/><g fill="none" stroke="#fff" stroke-width="1.2" stroke-linecap="round"><rect x="3.5" y="4" width="9" height="2.2" rx=".6"/><rect x="3.5" y="7" width="9" height="2.2" rx=".6"/><rect x="3.5" y="10" width="9" height="2.2" rx=".6"/></g></svg>"##;

const INSTRUCTIONS: &str = "\
Each event is sent to the queue with `SendMessage`; the message body is the event data \
(JSON).

**Message attributes.** `metadata` holds all metadata as a JSON object (`event-id`, \
`topic`, `timestamp`, the destination's delivery metadata and the event's metadata), as \
Outpost sends it. Each metadata entry is also sent as its own `String` attribute while \
SQS's limit of 10 attributes per message allows (`event-id`, `topic` and `timestamp` \
first, then the others by name); names SQS does not accept are skipped.

**FIFO queues** (URL ending in `.fifo`): `MessageGroupId` is rendered from *Message \
Group ID* (default `{{event.topic}}`, placeholders as in the S3 key template: \
`{{event.id}}`, `{{metadata.KEY}}`, `{{data.PATH}}`, ...), and the event id is the \
`MessageDeduplicationId`.

**Region** is read from the queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`); \
set *AWS Region* for other URLs (default `us-east-1`). *Endpoint* overrides where \
requests go (LocalStack, moto, VPC endpoints).

The credentials need `sqs:SendMessage` on the queue. Throttling, 5xx answers and \
timeouts are retried; bad credentials, missing permissions and unknown queues mark the \
destination misconfigured; other rejections fail the event.";

/// Maximum message attributes per message.
const MAX_ATTRIBUTES: usize = 10;

impl Plugin for AwsSqs {
    fn manifest() -> Manifest {
        let mut prototype = Prototype::destination(PROTOTYPE)
            .label("AWS SQS")
            .description("Send events to an Amazon SQS queue.")
            .icon(ICON)
            .instructions(INSTRUCTIONS)
            .config_field(
                Field::text("queue_url")
                    .label("Queue URL")
                    .description("The URL of your AWS SQS queue")
                    .required()
                    .pattern(fields::ENDPOINT_PATTERN),
            )
            .config_field(fields::endpoint_field(
                "Custom AWS endpoint URL (optional, e.g. for LocalStack, moto or VPC endpoints)",
            ))
            .config_field(fields::region_field(
                "The AWS region of the queue. Read from an AWS queue URL; otherwise us-east-1 \
                 unless set",
            ))
            .config_field(
                Field::text("message_group_id")
                    .label("Message Group ID")
                    .description(
                        "FIFO queues only: template of the MessageGroupId, e.g. \
                         {{event.topic}} (the default) or {{metadata.customer}}",
                    ),
            );
        for field in credential_fields() {
            prototype = prototype.credential_field(field);
        }
        Manifest::new("aws-sqs", env!("CARGO_PKG_VERSION"))
            .description("Amazon SQS queues, SigV4-signed inside the component.")
            .prototype(prototype.url_field("queue_url").url_field("endpoint"))
    }

    fn self_tests() -> Vec<TestCase> {
        let credentials = json!({"key": "AKIDEXAMPLE", "secret": "secret"});
        vec![
            TestCase::new("accepts an AWS queue URL", PROTOTYPE)
                .config(
                    json!({"queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}),
                )
                .credentials(credentials.clone()),
            TestCase::new("accepts a local endpoint", PROTOTYPE)
                .config(json!({
                    "queue_url": "http://localhost:4566/000000000000/orders",
                    "endpoint": "http://localhost:4566",
                    "region": "us-east-1",
                }))
                .credentials(credentials.clone()),
            TestCase::new("requires credentials", PROTOTYPE)
                .config(
                    json!({"queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}),
                )
                .expect_error(),
            TestCase::new("rejects a queue URL without a queue", PROTOTYPE)
                .config(json!({"queue_url": "https://sqs.eu-west-1.amazonaws.com/"}))
                .credentials(credentials.clone())
                .expect_error(),
            TestCase::new("rejects a bad group id template", PROTOTYPE)
                .config(json!({
                    "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo",
                    "message_group_id": "{{event.nope}}",
                }))
                .credentials(credentials)
                .expect_error(),
        ]
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
struct Settings {
    queue_url: String,
    /// Where requests go: the endpoint, or the queue URL's origin.
    endpoint: String,
    region: String,
    fifo: bool,
    group_id: Template,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let queue = config
            .str("queue_url")
            .and_then(|url| queue_url(config, url))
            .record(&mut errors);
        let endpoint = fields::endpoint(config).record(&mut errors);
        let region = fields::optional_region(config).record(&mut errors);
        let group_id =
            fields::template(config, "message_group_id", "{{event.topic}}").record(&mut errors);
        let (Some(queue), Some(endpoint), Some(region), Some(group_id)) =
            (queue, endpoint, region, group_id)
        else {
            return Err(errors);
        };
        Ok(Settings {
            endpoint: endpoint.unwrap_or_else(|| queue.origin.clone()),
            region: region
                .or(queue.region)
                .unwrap_or_else(|| "us-east-1".to_string()),
            fifo: queue.name.ends_with(".fifo"),
            queue_url: queue.url,
            group_id,
        })
    }
}

struct QueueUrl {
    url: String,
    origin: String,
    name: String,
    region: Option<String>,
}

/// Checks a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`, or any http(s)
/// URL whose last path segment names the queue) and reads the region from AWS hosts.
fn queue_url(config: &Config, value: &str) -> Result<QueueUrl, FieldError> {
    let example = "must be an SQS queue URL such as \
                   https://sqs.us-east-1.amazonaws.com/123456789012/my-queue";
    let parsed = aws_common::url::ParsedUrl::parse(value)
        .map_err(|e| config.error("queue_url", format!("{example}; it {e}")))?;
    let name = parsed
        .path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if name.is_empty() || !parsed.query.is_empty() {
        return Err(config.error("queue_url", example));
    }
    Ok(QueueUrl {
        url: value.trim().to_string(),
        origin: parsed.origin(),
        name,
        region: region_of_host(&parsed.host),
    })
}

/// `sqs.eu-west-1.amazonaws.com` and the legacy `eu-west-1.queue.amazonaws.com` name
/// their region; the legacy `queue.amazonaws.com` is us-east-1.
fn region_of_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    if !aws {
        return None;
    }
    let candidate = match labels.as_slice() {
        ["queue", "amazonaws", ..] => return Some("us-east-1".into()),
        ["sqs", region, ..] => *region,
        [region, "queue", ..] => *region,
        _ => return None,
    };
    fields::is_region(candidate).then(|| candidate.to_string())
}

impl Destination for AwsSqs {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        let settings = Settings::parse(config);
        let mut errors = settings.err().unwrap_or_default();
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
        let request = build_request(
            &settings,
            event,
            &target.delivery_metadata,
            time::unix_seconds(),
        )?;
        let scope = Scope {
            region: &settings.region,
            service: "sqs",
        };
        let response =
            aws_common::send(request, &credentials, scope, SignOptions::default(), "SQS")?;
        Ok(Delivered::from_response(&response))
    }
}

export_destination!(AwsSqs);

/// The unsigned `SendMessage` request for `event`.
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_unix_seconds: u64,
) -> Result<Request, DeliveryError> {
    let metadata = metadata::merged(event, delivery_metadata, now_unix_seconds);
    let mut body = Map::new();
    body.insert("QueueUrl".into(), json!(settings.queue_url));
    body.insert("MessageBody".into(), json!(event.data));
    body.insert(
        "MessageAttributes".into(),
        Value::Object(message_attributes(&metadata)),
    );
    if settings.fifo {
        let group = render_event(&settings.group_id, event, &metadata)
            .map_err(|e| DeliveryError::fail(format!("config.message_group_id: {e}")))?;
        if group.chars().count() > 128 || !group.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DeliveryError::fail(format!(
                "config.message_group_id rendered `{group}`, which is not a valid \
                 MessageGroupId (1-128 printable ASCII characters)"
            )));
        }
        body.insert("MessageGroupId".into(), json!(group));
        body.insert(
            "MessageDeduplicationId".into(),
            json!(deduplication_id(&event.id)),
        );
    }
    Ok(Request::post(format!("{}/", settings.endpoint))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AmazonSQS.SendMessage")
        .body(outrider_sdk::serde_json::to_vec(&Value::Object(body)).unwrap_or_default()))
}

/// `metadata` (all of it, as JSON) and then one String attribute per valid key while the
/// limit allows: system keys first, then the rest by name.
fn message_attributes(metadata: &BTreeMap<String, String>) -> Map<String, Value> {
    let string = |value: &str| json!({"DataType": "String", "StringValue": value});
    let mut attributes = Map::new();
    let all: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    attributes.insert("metadata".into(), string(&Value::Object(all).to_string()));
    let system = metadata::SYSTEM_KEYS
        .iter()
        .filter_map(|k| metadata.get_key_value(*k));
    let others = metadata
        .iter()
        .filter(|(k, _)| !metadata::SYSTEM_KEYS.contains(&k.as_str()));
    for (key, value) in system.chain(others) {
        if key == "metadata" {
            continue;
        }
        if !valid_attribute_name(key) || value.is_empty() {
            log::warn!("metadata `{key}` is not sent as its own SQS message attribute: invalid name or empty value");
            continue;
        }
        if attributes.len() == MAX_ATTRIBUTES {
            log::warn!("metadata `{key}` is not sent as its own SQS message attribute: the limit is {MAX_ATTRIBUTES}");
            continue;
        }
        attributes.insert(key.clone(), string(value));
    }
    attributes
}

/// SQS attribute names: 1-256 of `A-Za-z0-9_-.`, not starting with `AWS.` or `Amazon.`,
/// no leading, trailing or doubled `.`.
fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
}

/// The event id when SQS accepts it as a deduplication id (1-128 printable ASCII),
/// otherwise its SHA-256 in hex.
fn deduplication_id(event_id: &str) -> String {
    if !event_id.is_empty()
        && event_id.len() <= 128
        && event_id.bytes().all(|b| b.is_ascii_graphic())
    {
        event_id.to_string()
    } else {
        hex::encode(Sha256::digest(event_id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json;

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
                ("source".into(), "api".into()),
                ("bad name!".into(), "x".into()),
                ("AWS.reserved".into(), "x".into()),
            ],
            data: r#"{"order":42}"#.into(),
            attempt: 1,
        }
    }

    fn body(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn send_message_request() {
        let settings = Settings::parse(&config(json!({
            "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
        })))
        .unwrap();
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(settings.endpoint, "https://sqs.eu-west-1.amazonaws.com");
        let delivery = [("env".to_string(), "prod".to_string())];
        let r = build_request(&settings, &event(), &delivery, 1_700_000_000).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://sqs.eu-west-1.amazonaws.com/");
        assert_eq!(
            header(&r, "content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(header(&r, "x-amz-target"), Some("AmazonSQS.SendMessage"));
        let b = body(&r);
        assert_eq!(
            b["QueueUrl"],
            "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
        );
        assert_eq!(b["MessageBody"], r#"{"order":42}"#);
        assert!(b.get("MessageGroupId").is_none());
        let attributes = b["MessageAttributes"].as_object().unwrap();
        let names: Vec<_> = attributes.keys().cloned().collect();
        assert_eq!(
            names,
            [
                "env",
                "event-id",
                "metadata",
                "source",
                "timestamp",
                "topic"
            ],
            "invalid names skipped"
        );
        assert_eq!(
            attributes["event-id"],
            json!({"DataType": "String", "StringValue": "evt_123"})
        );
        let all: Value =
            serde_json::from_str(attributes["metadata"]["StringValue"].as_str().unwrap()).unwrap();
        assert_eq!(
            all,
            json!({
                "event-id": "evt_123", "topic": "order.paid", "timestamp": "1700000000",
                "env": "prod", "source": "api", "bad name!": "x", "AWS.reserved": "x",
            })
        );
    }

    #[test]
    fn attribute_limit_keeps_system_keys_first() {
        let mut e = event();
        e.metadata = (0..12)
            .map(|i| (format!("k{i:02}"), "v".to_string()))
            .collect();
        let m = metadata::merged(&e, &[], 1);
        let attributes = message_attributes(&m);
        assert_eq!(attributes.len(), MAX_ATTRIBUTES);
        for key in ["metadata", "event-id", "topic", "timestamp", "k00", "k05"] {
            assert!(attributes.contains_key(key), "{key}");
        }
        assert!(!attributes.contains_key("k06"));
    }

    #[test]
    fn fifo_queues_get_group_and_deduplication_ids() {
        let settings = Settings::parse(&config(json!({
            "queue_url": "http://127.0.0.1:5000/123456789012/orders.fifo",
            "endpoint": "http://127.0.0.1:5000/",
            "message_group_id": "{{metadata.source}}-{{event.tenant_id}}",
        })))
        .unwrap();
        assert!(settings.fifo);
        assert_eq!(settings.region, "us-east-1");
        let r = build_request(&settings, &event(), &[], 1).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:5000/");
        let b = body(&r);
        assert_eq!(b["MessageGroupId"], "api-acme");
        assert_eq!(b["MessageDeduplicationId"], "evt_123");
        assert_eq!(deduplication_id(&"x".repeat(200)).len(), 64);
        assert_eq!(deduplication_id("évt").len(), 64);

        let missing = Settings::parse(&config(json!({
            "queue_url": "http://127.0.0.1:5000/1/q.fifo",
            "message_group_id": "{{data.customer}}",
        })))
        .unwrap();
        let e = build_request(&missing, &event(), &[], 1).unwrap_err();
        assert!(matches!(e, DeliveryError::Fail(_)));
        assert_eq!(
            e.failure().message,
            "config.message_group_id: `{{data.customer}}` has no value for this event"
        );
    }

    #[test]
    fn regions_from_queue_urls() {
        for (host, region) in [
            ("sqs.ap-southeast-2.amazonaws.com", Some("ap-southeast-2")),
            ("sqs.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            ("us-west-2.queue.amazonaws.com", Some("us-west-2")),
            ("queue.amazonaws.com", Some("us-east-1")),
            ("localhost", None),
            ("sqs.evil.example.com", None),
        ] {
            assert_eq!(region_of_host(host).as_deref(), region, "{host}");
        }
        let s = Settings::parse(&config(json!({
            "queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q",
            "region": "eu-central-1",
        })))
        .unwrap();
        assert_eq!(s.region, "eu-central-1", "an explicit region wins");
    }

    #[test]
    fn validate_names_every_field() {
        let errors = <AwsSqs as Destination>::validate(
            PROTOTYPE,
            &config(json!({
                "queue_url": "sqs.eu-west-1.amazonaws.com/1/q",
                "endpoint": "ftp://x",
                "region": "Ireland",
                "message_group_id": "{{",
            })),
            &Credentials::from_value(json!({"secret": "s"})).unwrap(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "config.queue_url",
                "config.endpoint",
                "config.region",
                "config.message_group_id",
                "credentials.key"
            ]
        );
        assert_eq!(
            errors[0].to_string(),
            "config.queue_url must be an SQS queue URL such as \
             https://sqs.us-east-1.amazonaws.com/123456789012/my-queue; it must be an absolute \
             http(s) URL"
        );
    }

    #[test]
    fn manifest_and_self_tests_agree_with_validate() {
        let manifest = AwsSqs::manifest();
        let p = &manifest.prototypes[0];
        assert_eq!(p.id, "aws_sqs");
        assert_eq!(p.network.url_fields, ["queue_url", "endpoint"]);
        let keys: Vec<_> = p.config_fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["queue_url", "endpoint", "region", "message_group_id"]
        );
        let keys: Vec<_> = p.credential_fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["key", "secret", "session"]);
        for test in AwsSqs::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result = <AwsSqs as Destination>::validate(PROTOTYPE, &config, &credentials);
            assert_eq!(result.is_err(), test.expect_error, "{}", test.name);
        }
    }
}
