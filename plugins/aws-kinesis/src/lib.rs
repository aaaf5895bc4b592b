//! Outrider's `aws_kinesis` destination: puts each event on an Amazon Kinesis data stream
//! with `PutRecord` (AWS JSON 1.1 protocol), signed with SigV4 inside the component.
//!
//! The record is `{"metadata": {...}, "data": <event data>}` (Outpost's default shape) or,
//! with *Metadata in Payload* off, the event data alone. The partition key is rendered
//! from a template, default the event id.

use aws_common::template::{render_event, Template};
use aws_common::url::service_endpoint;
use aws_common::{credential_fields, fields, metadata, AwsCredentials, Scope, SignOptions};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::http::Request;
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};

struct AwsKinesis;

const PROTOTYPE: &str = "aws_kinesis";

const DEFAULT_PARTITION_KEY: &str = "{{event.id}}";

/// Kinesis partition keys are at most 256 Unicode characters.
const MAX_PARTITION_KEY_CHARS: usize = 256;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><rect width="16" height="16" rx="4" fill="#6B3FA0"/><g fill="none" stroke="#fff" stroke-width="1.2" stroke-linecap="round"><path d="M3 5.5c1.7-1.3 3.3 1.3 5 0s3.3 1.3 5 0"/><path d="M3 8.5c1.7-1.3 3.3 1.3 5 0s3.3 1.3 5 0"/><path d="M3 11.5c1.7-1.3 3.3 1.3 5 0s3.3 1.3 5 0"/></g></svg>"##;

const INSTRUCTIONS: &str = "\
Each event becomes one record (`PutRecord`) on the stream.

**Record data** is `{\"metadata\": {...}, \"data\": ...}`: `metadata` holds `event-id`, \
`topic`, `timestamp`, the destination's delivery metadata and the event's metadata; \
`data` is the event data. Turn off *Metadata in Payload* to send the event data alone.

**Partition key** is rendered from *Partition Key Template*, default `{{event.id}}`. \
Placeholders: `event.id`, `event.topic`, `event.tenant_id`, `event.time`, `time.*`, \
`metadata.KEY`, `data.PATH` (e.g. `{{data.customer_id}}` keeps a customer's events in \
order on one shard), with alternatives `{{data.customer_id | event.id}}`. When the \
template has no value for an event, the event id is used, as in Outpost. Keys are cut \
to 256 characters.

The credentials need `kinesis:PutRecord` on the stream. Throttling \
(`ProvisionedThroughputExceededException`, `LimitExceededException`), 5xx answers and \
timeouts are retried; bad credentials, missing permissions and unknown streams mark the \
destination misconfigured; other rejections fail the event.";

impl Plugin for AwsKinesis {
    fn manifest() -> Manifest {
        let mut prototype = Prototype::destination(PROTOTYPE)
            .label("AWS Kinesis")
            .description("Send events to Amazon Kinesis Data Streams for real-time processing.")
            .icon(ICON)
            .instructions(INSTRUCTIONS)
            .config_field(
                Field::text("stream_name")
                    .label("Stream Name")
                    .description("The name of your AWS Kinesis stream")
                    .required()
                    .pattern("^[a-zA-Z0-9_.-]+$"),
            )
            .config_field(
                fields::region_field("The AWS region where your Kinesis stream is located")
                    .required(),
            )
            .config_field(fields::endpoint_field(
                "Custom endpoint URL for AWS Kinesis (optional, for testing or VPC endpoints)",
            ))
            .config_field(
                Field::text("partition_key_template")
                    .label("Partition Key Template")
                    .description(
                        "Template of the partition key, e.g. {{data.customer_id}}. Default \
                         is {{event.id}}, which is also used when the template has no value \
                         for an event.",
                    )
                    .default_value(DEFAULT_PARTITION_KEY),
            )
            .config_field(
                Field::checkbox("metadata_in_payload")
                    .label("Metadata in Payload")
                    .description(
                        "Send {\"metadata\": ..., \"data\": ...} as the record; off sends the \
                         event data alone",
                    )
                    .default_value(true),
            );
        for field in credential_fields() {
            prototype = prototype.credential_field(field);
        }
        Manifest::new("aws-kinesis", env!("CARGO_PKG_VERSION"))
            .description("Amazon Kinesis Data Streams, SigV4-signed inside the component.")
            .prototype(
                prototype
                    .host("kinesis.{region}.amazonaws.com")
                    .host("kinesis.{region}.amazonaws.com.cn")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let credentials = json!({"key": "AKIDEXAMPLE", "secret": "secret"});
        vec![
            TestCase::new("accepts a stream and region", PROTOTYPE)
                .config(json!({"stream_name": "events", "region": "eu-west-1"}))
                .credentials(credentials.clone()),
            TestCase::new("accepts a partition key template", PROTOTYPE)
                .config(json!({
                    "stream_name": "events",
                    "region": "eu-west-1",
                    "partition_key_template": "{{data.customer_id | event.id}}",
                }))
                .credentials(credentials.clone()),
            TestCase::new("rejects a bad stream name", PROTOTYPE)
                .config(json!({"stream_name": "my stream", "region": "eu-west-1"}))
                .credentials(credentials.clone())
                .expect_error(),
            TestCase::new("rejects a bad template", PROTOTYPE)
                .config(json!({
                    "stream_name": "events",
                    "region": "eu-west-1",
                    "partition_key_template": "{{customer}}",
                }))
                .credentials(credentials)
                .expect_error(),
        ]
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
struct Settings {
    stream_name: String,
    region: String,
    endpoint: String,
    partition_key: Template,
    metadata_in_payload: bool,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let stream_name = config
            .str("stream_name")
            .and_then(|s| check_stream_name(config, s))
            .record(&mut errors);
        let region = fields::region(config).record(&mut errors);
        let endpoint = fields::endpoint(config).record(&mut errors);
        let partition_key =
            fields::template(config, "partition_key_template", DEFAULT_PARTITION_KEY)
                .record(&mut errors);
        let metadata_in_payload = match config.get("metadata_in_payload") {
            None => Some(true),
            Some(_) => config.bool("metadata_in_payload").record(&mut errors),
        };
        match (
            stream_name,
            region,
            endpoint,
            partition_key,
            metadata_in_payload,
        ) {
            (
                Some(stream_name),
                Some(region),
                Some(endpoint),
                Some(partition_key),
                Some(metadata_in_payload),
            ) => Ok(Settings {
                endpoint: endpoint.unwrap_or_else(|| service_endpoint("kinesis", &region)),
                stream_name,
                region,
                partition_key,
                metadata_in_payload,
            }),
            _ => Err(errors),
        }
    }
}

/// Stream names: 1-128 of `a-zA-Z0-9_.-`.
fn check_stream_name(config: &Config, value: &str) -> Result<String, FieldError> {
    let name = value.trim();
    if (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(name.to_string())
    } else {
        Err(config.error(
            "stream_name",
            "must be a Kinesis stream name: 1-128 letters, digits, `_`, `.` and `-`",
        ))
    }
}

impl Destination for AwsKinesis {
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
        let request = build_request(
            &settings,
            event,
            &target.delivery_metadata,
            time::unix_seconds(),
        );
        let scope = Scope {
            region: &settings.region,
            service: "kinesis",
        };
        let response = aws_common::send(
            request,
            &credentials,
            scope,
            SignOptions::default(),
            "Kinesis",
        )?;
        Ok(Delivered::from_response(&response))
    }
}

export_destination!(AwsKinesis);

/// The unsigned `PutRecord` request for `event`.
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_unix_seconds: u64,
) -> Request {
    let metadata = metadata::merged(event, delivery_metadata, now_unix_seconds);
    let data = if settings.metadata_in_payload {
        let data = event
            .data_json()
            .unwrap_or_else(|_| Value::String(event.data.clone()));
        json!({"metadata": metadata, "data": data}).to_string()
    } else {
        event.data.clone()
    };
    let body = json!({
        "StreamName": settings.stream_name,
        "Data": BASE64.encode(data.as_bytes()),
        "PartitionKey": partition_key(&settings.partition_key, event, &metadata),
    });
    Request::post(format!("{}/", settings.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.PutRecord")
        .body(body.to_string())
}

/// The rendered partition key, the event id when the template has no value, cut to 256
/// characters.
fn partition_key(
    template: &Template,
    event: &Event,
    metadata: &std::collections::BTreeMap<String, String>,
) -> String {
    let key = match render_event(template, event, metadata) {
        Ok(key) if !key.is_empty() => key,
        Ok(_) => event.id.clone(),
        Err(e) => {
            log::warn!("partition_key_template: {e}; using the event id");
            event.id.clone()
        }
    };
    if key.chars().count() > MAX_PARTITION_KEY_CHARS {
        key.chars().take(MAX_PARTITION_KEY_CHARS).collect()
    } else {
        key
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
            metadata: vec![("source".into(), "api".into())],
            data: r#"{"customer_id":"c9","total":12.5}"#.into(),
            attempt: 1,
        }
    }

    fn body(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    fn record(request: &Request) -> Vec<u8> {
        BASE64
            .decode(body(request)["Data"].as_str().unwrap())
            .unwrap()
    }

    #[test]
    fn put_record_request() {
        let settings = Settings::parse(&config(json!({
            "stream_name": "events",
            "region": "eu-west-1",
            "partition_key_template": "{{data.customer_id}}",
        })))
        .unwrap();
        let r = build_request(&settings, &event(), &[], 1_700_000_000);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://kinesis.eu-west-1.amazonaws.com/");
        assert!(r
            .headers
            .contains(&("x-amz-target".into(), "Kinesis_20131202.PutRecord".into())));
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/x-amz-json-1.1".into())));
        let b = body(&r);
        assert_eq!(b["StreamName"], "events");
        assert_eq!(b["PartitionKey"], "c9");
        let payload: Value = serde_json::from_slice(&record(&r)).unwrap();
        assert_eq!(
            payload,
            json!({
                "metadata": {"event-id": "evt_123", "topic": "order.paid", "timestamp": "1700000000", "source": "api"},
                "data": {"customer_id": "c9", "total": 12.5},
            })
        );
    }

    #[test]
    fn data_alone_and_endpoint() {
        let settings = Settings::parse(&config(json!({
            "stream_name": "events",
            "region": "us-east-1",
            "endpoint": "http://127.0.0.1:5000",
            "metadata_in_payload": false,
        })))
        .unwrap();
        let r = build_request(&settings, &event(), &[], 1);
        assert_eq!(r.url, "http://127.0.0.1:5000/");
        assert_eq!(record(&r), event().data.as_bytes());
        assert_eq!(body(&r)["PartitionKey"], "evt_123", "default template");
    }

    #[test]
    fn partition_key_falls_back_and_is_capped() {
        let e = event();
        let m = metadata::merged(&e, &[], 1);
        let missing = Template::parse("{{data.nope}}").unwrap();
        assert_eq!(partition_key(&missing, &e, &m), "evt_123");
        let empty = Template::parse("{{data.nope | ''}}").unwrap();
        assert_eq!(partition_key(&empty, &e, &m), "evt_123");
        let long = Template::parse(&format!("{}{{{{event.id}}}}", "é".repeat(300))).unwrap();
        let key = partition_key(&long, &e, &m);
        assert_eq!(key.chars().count(), 256);
        assert!(key.chars().all(|c| c == 'é'));
    }

    #[test]
    fn validate_names_every_field() {
        let errors = <AwsKinesis as Destination>::validate(
            PROTOTYPE,
            &config(json!({
                "stream_name": "a b",
                "endpoint": "tcp://x",
                "partition_key_template": "{{event}}",
                "metadata_in_payload": "maybe",
            })),
            &Credentials::from_value(json!({"key": "k", "secret": "s", "session": "a b"})).unwrap(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "config.stream_name",
                "config.region",
                "config.endpoint",
                "config.partition_key_template",
                "config.metadata_in_payload",
                "credentials.session"
            ]
        );
    }

    #[test]
    fn manifest_and_self_tests_agree_with_validate() {
        let manifest = AwsKinesis::manifest();
        let p = &manifest.prototypes[0];
        assert_eq!(p.id, "aws_kinesis");
        let keys: Vec<_> = p.config_fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "stream_name",
                "region",
                "endpoint",
                "partition_key_template",
                "metadata_in_payload"
            ]
        );
        assert_eq!(p.network.hosts[0], "kinesis.{region}.amazonaws.com");
        assert_eq!(p.network.url_fields, ["endpoint"]);
        for test in AwsKinesis::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result = <AwsKinesis as Destination>::validate(PROTOTYPE, &config, &credentials);
            assert_eq!(result.is_err(), test.expect_error, "{}", test.name);
        }
    }
}
