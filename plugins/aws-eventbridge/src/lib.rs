//! Outrider's `aws_eventbridge` destination: puts each event on an Amazon EventBridge
//! event bus with `PutEvents` (AWS JSON 1.1 protocol), signed with SigV4 inside the
//! component.
//!
//! Each event is one entry: `Source` from the configuration (default `outrider`),
//! `DetailType` rendered from a template (default the topic), `Detail` the envelope
//! `{"metadata": {...}, "data": <event data>}` (EventBridge has no side channel for
//! metadata), `Time` the event time and `EventBusName` when configured. `PutEvents`
//! reports per-entry failures in a 200 answer; those are classified too.

use aws_common::template::{render_event, Template};
use aws_common::url::service_endpoint;
use aws_common::{credential_fields, fields, metadata, AwsCredentials, Scope, SignOptions};
use outrider_sdk::http::Request;
use outrider_sdk::prelude::*;
use outrider_sdk::serde_json::Map;
use outrider_sdk::{cap_body, time};

struct AwsEventBridge;

const PROTOTYPE: &str = "aws_eventbridge";

const DEFAULT_SOURCE: &str = "outrider";
const DEFAULT_DETAIL_TYPE: &str = "{{event.topic}}";

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><rect width="16" height="16" rx="4" fill="#B0407A"/><g fill="#fff"><circle cx="3.8" cy="8" r="1.3"/><circle cx="12.2" cy="4.6" r="1.3"/><circle cx="12.2" cy="11.4" r="1.3"/><circle cx="8" cy="8" r="1.6"/></g><path d="M5.1 8h1.3M9.4 7.3l1.6-1.9M9.4 8.7l1.6 1.9" stroke="#fff" stroke-width="1.1" stroke-linecap="round"/></svg>"##;

const INSTRUCTIONS: &str = "\
Each event is put on the event bus (`PutEvents`) as one entry:

- `Source`: *Source* (default `outrider`; names starting with `aws.` are reserved by AWS);
- `DetailType`: rendered from *Detail Type* (default `{{event.topic}}`; placeholders \
`event.id`, `event.topic`, `event.tenant_id`, `event.time`, `time.*`, `metadata.KEY`, \
`data.PATH`);
- `Detail`: `{\"metadata\": {...}, \"data\": ...}`, where `metadata` holds `event-id`, \
`topic`, `timestamp`, the destination's delivery metadata and the event's metadata, \
and `data` is the event data;
- `Time`: the event time; `EventBusName`: *Event Bus Name or ARN*, or the account's \
default bus when empty.

Match the events with a rule such as `{\"source\": [\"outrider\"], \"detail-type\": \
[\"order.paid\"]}`. The credentials need `events:PutEvents` on the bus. Throttling, \
internal failures, 5xx answers and timeouts are retried; bad credentials, missing \
permissions and unknown buses mark the destination misconfigured; other rejections fail \
the event.";

impl Plugin for AwsEventBridge {
    fn manifest() -> Manifest {
        let mut prototype = Prototype::destination(PROTOTYPE)
            .label("AWS EventBridge")
            .description("Send events to an Amazon EventBridge event bus.")
            .icon(ICON)
            .instructions(INSTRUCTIONS)
            .config_field(
                Field::text("event_bus_name")
                    .label("Event Bus Name or ARN")
                    .description(
                        "The name or ARN of your AWS EventBridge event bus. Leave empty to use \
                         the account's default event bus.",
                    ),
            )
            .config_field(
                fields::region_field("The AWS region where your EventBridge event bus is located")
                    .required(),
            )
            .config_field(fields::endpoint_field(
                "Custom endpoint URL for AWS EventBridge (optional, for testing or VPC endpoints)",
            ))
            .config_field(
                Field::text("source")
                    .label("Source")
                    .description("The Source of every event put on the bus")
                    .default_value(DEFAULT_SOURCE)
                    .max_length(256),
            )
            .config_field(
                Field::text("detail_type")
                    .label("Detail Type")
                    .description("Template of each event's DetailType. Default: {{event.topic}}")
                    .default_value(DEFAULT_DETAIL_TYPE),
            );
        for field in credential_fields() {
            prototype = prototype.credential_field(field);
        }
        Manifest::new("aws-eventbridge", env!("CARGO_PKG_VERSION"))
            .description("Amazon EventBridge event buses, SigV4-signed inside the component.")
            .prototype(
                prototype
                    .host("events.{region}.amazonaws.com")
                    .host("events.{region}.amazonaws.com.cn")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let credentials = json!({"key": "AKIDEXAMPLE", "secret": "secret"});
        vec![
            TestCase::new("accepts the default bus", PROTOTYPE)
                .config(json!({"region": "eu-west-1"}))
                .credentials(credentials.clone()),
            TestCase::new("accepts a bus ARN, source and detail type", PROTOTYPE)
                .config(json!({
                    "region": "eu-west-1",
                    "event_bus_name": "arn:aws:events:eu-west-1:123456789012:event-bus/orders",
                    "source": "com.example.orders",
                    "detail_type": "{{event.topic}}",
                }))
                .credentials(credentials.clone()),
            TestCase::new("rejects a reserved source", PROTOTYPE)
                .config(json!({"region": "eu-west-1", "source": "aws.s3"}))
                .credentials(credentials.clone())
                .expect_error(),
            TestCase::new("requires a region", PROTOTYPE)
                .credentials(credentials)
                .expect_error(),
        ]
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
struct Settings {
    event_bus_name: Option<String>,
    region: String,
    endpoint: String,
    source: String,
    detail_type: Template,
}

impl Settings {
    fn parse(config: &Config) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let event_bus_name = config
            .opt_str("event_bus_name")
            .and_then(|b| match b {
                Some(b) => check_bus(config, b).map(Some),
                None => Ok(None),
            })
            .record(&mut errors);
        let region = fields::region(config).record(&mut errors);
        let endpoint = fields::endpoint(config).record(&mut errors);
        let source = config
            .opt_str("source")
            .and_then(|s| check_source(config, s.unwrap_or(DEFAULT_SOURCE)))
            .record(&mut errors);
        let detail_type =
            fields::template(config, "detail_type", DEFAULT_DETAIL_TYPE).record(&mut errors);
        match (event_bus_name, region, endpoint, source, detail_type) {
            (
                Some(event_bus_name),
                Some(region),
                Some(endpoint),
                Some(source),
                Some(detail_type),
            ) => Ok(Settings {
                endpoint: endpoint.unwrap_or_else(|| service_endpoint("events", &region)),
                event_bus_name,
                region,
                source,
                detail_type,
            }),
            _ => Err(errors),
        }
    }
}

/// Bus names (`[/\.\-_A-Za-z0-9]{1,256}`) or ARNs (`arn:...:event-bus/NAME`).
fn check_bus(config: &Config, value: &str) -> Result<String, FieldError> {
    let bus = value.trim();
    let name_ok = (1..=256).contains(&bus.len())
        && bus
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'));
    let arn_ok = bus.starts_with("arn:") && bus.contains(":event-bus/") && bus.len() <= 1600;
    if name_ok || arn_ok {
        Ok(bus.to_string())
    } else {
        Err(config.error(
            "event_bus_name",
            "must be an event bus name (letters, digits, `/._-`) or an event bus ARN",
        ))
    }
}

/// Sources: 1-256 printable ASCII characters, not starting with the reserved `aws.`.
fn check_source(config: &Config, value: &str) -> Result<String, FieldError> {
    let source = value.trim();
    if source.is_empty() || source.len() > 256 || !source.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(config.error(
            "source",
            "must be 1-256 printable characters without spaces",
        ));
    }
    if source.to_ascii_lowercase().starts_with("aws.") {
        return Err(config.error("source", "must not start with `aws.` (reserved by AWS)"));
    }
    Ok(source.to_string())
}

impl Destination for AwsEventBridge {
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
        )?;
        let scope = Scope {
            region: &settings.region,
            service: "events",
        };
        let response = aws_common::send(
            request,
            &credentials,
            scope,
            SignOptions::default(),
            "EventBridge",
        )?;
        entry_result(response.status, &response.text())
    }
}

export_destination!(AwsEventBridge);

/// The unsigned `PutEvents` request for `event`.
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_unix_seconds: u64,
) -> Result<Request, DeliveryError> {
    let metadata = metadata::merged(event, delivery_metadata, now_unix_seconds);
    let detail_type = render_event(&settings.detail_type, event, &metadata)
        .map_err(|e| DeliveryError::fail(format!("config.detail_type: {e}")))?;
    if detail_type.is_empty() || detail_type.chars().count() > 128 {
        return Err(DeliveryError::fail(format!(
            "config.detail_type rendered `{detail_type}`, which is not 1-128 characters"
        )));
    }
    let data = event
        .data_json()
        .unwrap_or_else(|_| Value::String(event.data.clone()));
    let detail = json!({"metadata": metadata, "data": data});
    let mut entry = Map::new();
    entry.insert("Source".into(), json!(settings.source));
    entry.insert("DetailType".into(), json!(detail_type));
    entry.insert("Detail".into(), json!(detail.to_string()));
    // AWS JSON timestamps are epoch seconds.
    entry.insert("Time".into(), json!(event.time_ms as f64 / 1000.0));
    if let Some(bus) = &settings.event_bus_name {
        entry.insert("EventBusName".into(), json!(bus));
    }
    let body = json!({"Entries": [Value::Object(entry)]});
    Ok(Request::post(format!("{}/", settings.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSEvents.PutEvents")
        .body(body.to_string()))
}

/// A 2xx `PutEvents` answer: delivered unless its one entry failed, in which case the
/// entry's `ErrorCode` is classified like any AWS error code.
fn entry_result(status: u16, body: &str) -> Result<Delivered, DeliveryError> {
    let answer: Value = outrider_sdk::serde_json::from_str(body).unwrap_or(Value::Null);
    let failed = answer["FailedEntryCount"].as_u64().unwrap_or(0);
    if failed == 0 {
        return Ok(Delivered::http(status, body));
    }
    let entry = &answer["Entries"][0];
    let code = entry["ErrorCode"].as_str().unwrap_or_default();
    let message = entry["ErrorMessage"].as_str().unwrap_or_default();
    // Entry failures come with HTTP 200; classify the code as a 400 would be.
    let class = aws_common::errors::classify(400, code);
    let text = format!("EventBridge rejected the entry: {code}: {message}");
    let error = match class {
        aws_common::ErrorClass::Retry => DeliveryError::retry(text),
        aws_common::ErrorClass::Misconfigured => DeliveryError::misconfigured(text),
        aws_common::ErrorClass::Fail => DeliveryError::fail(text),
    };
    Err(error.status(status).response_body(cap_body(body)))
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
            data: r#"{"order":42}"#.into(),
            attempt: 1,
        }
    }

    #[test]
    fn put_events_request() {
        let settings = Settings::parse(&config(json!({
            "region": "eu-west-1",
            "event_bus_name": "orders",
            "source": "com.example",
            "detail_type": "{{event.topic}}.v1",
        })))
        .unwrap();
        let delivery = [("env".to_string(), "prod".to_string())];
        let r = build_request(&settings, &event(), &delivery, 1_700_000_000).unwrap();
        assert_eq!(r.url, "https://events.eu-west-1.amazonaws.com/");
        assert!(r
            .headers
            .contains(&("x-amz-target".into(), "AWSEvents.PutEvents".into())));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let entry = &body["Entries"][0];
        assert_eq!(entry["Source"], "com.example");
        assert_eq!(entry["DetailType"], "order.paid.v1");
        assert_eq!(entry["EventBusName"], "orders");
        assert_eq!(entry["Time"], 1_714_564_984.56);
        let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
        assert_eq!(
            detail,
            json!({
                "metadata": {
                    "event-id": "evt_123", "topic": "order.paid", "timestamp": "1700000000",
                    "env": "prod", "source": "api",
                },
                "data": {"order": 42},
            })
        );
    }

    #[test]
    fn defaults() {
        let settings = Settings::parse(&config(json!({
            "region": "us-east-1",
            "endpoint": "http://127.0.0.1:5000",
        })))
        .unwrap();
        let r = build_request(&settings, &event(), &[], 1).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:5000/");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let entry = &body["Entries"][0];
        assert_eq!(entry["Source"], "outrider");
        assert_eq!(entry["DetailType"], "order.paid");
        assert!(entry.get("EventBusName").is_none());
    }

    #[test]
    fn entry_failures_are_classified() {
        assert!(entry_result(200, r#"{"FailedEntryCount":0,"Entries":[{"EventId":"1"}]}"#).is_ok());
        for (code, kind) in [
            ("ThrottlingException", "retry"),
            ("InternalFailure", "retry"),
            ("NotAuthorizedForSourceException", "misconfigured"),
            ("AccessDeniedException", "misconfigured"),
            ("MalformedDetail", "fail"),
            ("InvalidArgument", "fail"),
        ] {
            let body = format!(
                r#"{{"FailedEntryCount":1,"Entries":[{{"ErrorCode":"{code}","ErrorMessage":"m"}}]}}"#
            );
            let e = entry_result(200, &body).unwrap_err();
            let actual = match e {
                DeliveryError::Retry { .. } => "retry",
                DeliveryError::Fail(_) => "fail",
                DeliveryError::Misconfigured(_) => "misconfigured",
            };
            assert_eq!(actual, kind, "{code}");
            assert_eq!(
                e.failure().message,
                format!("EventBridge rejected the entry: {code}: m")
            );
        }
    }

    #[test]
    fn validate_names_every_field() {
        let errors = <AwsEventBridge as Destination>::validate(
            PROTOTYPE,
            &config(json!({
                "event_bus_name": "bad bus",
                "region": "moon-1",
                "endpoint": "http://",
                "source": "AWS.events",
                "detail_type": "{{data.}}",
            })),
            &Credentials::default(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "config.event_bus_name",
                "config.region",
                "config.endpoint",
                "config.source",
                "config.detail_type",
                "credentials.key",
                "credentials.secret"
            ]
        );
    }

    #[test]
    fn manifest_and_self_tests_agree_with_validate() {
        let manifest = AwsEventBridge::manifest();
        let p = &manifest.prototypes[0];
        assert_eq!(p.id, "aws_eventbridge");
        let keys: Vec<_> = p.config_fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "event_bus_name",
                "region",
                "endpoint",
                "source",
                "detail_type"
            ]
        );
        assert_eq!(p.network.hosts[0], "events.{region}.amazonaws.com");
        for test in AwsEventBridge::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result =
                <AwsEventBridge as Destination>::validate(PROTOTYPE, &config, &credentials);
            assert_eq!(result.is_err(), test.expect_error, "{}", test.name);
        }
    }
}
