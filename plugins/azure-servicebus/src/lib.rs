//! Outrider's `azure_servicebus` destination: sends each event as one message to an
//! Azure Service Bus queue or topic through the REST API
//! (`POST https://<namespace>.servicebus.windows.net/<queue or topic>/messages`),
//! authorized by a SAS token generated from the connection string's shared access key.
//!
//! The body is the event data (`application/json`); `BrokerProperties` sets the
//! `MessageId` to the event id (so Service Bus duplicate detection drops redeliveries);
//! `event-id`, `topic`, `timestamp` and the metadata become custom properties (one header
//! each, string values quoted as Service Bus expects).

mod connection;
mod sas;

use connection::{Auth, ConnectionString};
use outrider_sdk::http::{self, Request};
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use std::collections::BTreeMap;

struct AzureServiceBus;

/// How long generated SAS tokens stay valid.
const TOKEN_LIFETIME_S: u64 = 3600;

const ICON: &str = r##"<svg width="16" height="16" viewBox="0 0 96 96" xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="e399c19f-b68f-429d-b176-18c2117ff73c" x1="-1032.172" x2="-1059.213" y1="145.312" y2="65.426" gradientTransform="matrix(1 0 0 -1 1075 158)" gradientUnits="userSpaceOnUse"><stop offset="0" stop-color="#114a8b"/><stop offset="1" stop-color="#0669bc"/></linearGradient><linearGradient id="ac2a6fc2-ca48-4327-9a3c-d4dcc3256e15" x1="-1023.725" x2="-1029.98" y1="108.083" y2="105.968" gradientTransform="matrix(1 0 0 -1 1075 158)" gradientUnits="userSpaceOnUse"><stop offset="0" stop-opacity=".3"/><stop offset=".071" stop-opacity=".2"/><stop offset=".321" stop-opacity=".1"/><stop offset=".623" stop-opacity=".05"/><stop offset="1" stop-opacity="0"/></linearGradient><linearGradient id="a7fee970-a784-4bb1-af8d-63d18e5f7db9" x1="-1027.165" x2="-997.482" y1="147.642" y2="68.561" gradientTransform="matrix(1 0 0 -1 1075 158)" gradientUnits="userSpaceOnUse"><stop offset="0" stop-color="#3ccbf4"/><stop offset="1" stop-color="#2892df"/></linearGradient></defs><path fill="url(#e399c19f-b68f-429d-b176-18c2117ff73c)" d="M33.338 6.544h26.038l-27.03 80.087a4.152 4.152 0 0 1-3.933 2.824H8.149a4.145 4.145 0 0 1-3.928-5.47L29.404 9.368a4.152 4.152 0 0 1 3.934-2.825z"/><path fill="#0078d4" d="M71.175 60.261h-41.29a1.911 1.911 0 0 0-1.305 3.309l26.532 24.764a4.171 4.171 0 0 0 2.846 1.121h23.38z"/><path fill="url(#ac2a6fc2-ca48-4327-9a3c-d4dcc3256e15)" d="M33.338 6.544a4.118 4.118 0 0 0-3.943 2.879L4.252 83.917a4.14 4.14 0 0 0 3.908 5.538h20.787a4.443 4.443 0 0 0 3.41-2.9l5.014-14.777 17.91 16.705a4.237 4.237 0 0 0 2.666.972H81.24L71.024 60.261l-29.781.007L59.47 6.544z"/><path fill="url(#a7fee970-a784-4bb1-af8d-63d18e5f7db9)" d="M66.595 9.364a4.145 4.145 0 0 0-3.928-2.82H33.648a4.146 4.146 0 0 1 3.928 2.82l25.184 74.62a4.146 4.146 0 0 1-3.928 5.472h29.02a4.146 4.146 0 0 0 3.927-5.472z"/></svg>"##;

const INSTRUCTIONS: &str = "\
[Azure Service Bus](https://learn.microsoft.com/azure/service-bus-messaging/) queues and \
topics.

1. Create a queue or topic in your Service Bus namespace and enter its name.
2. Under the namespace's (or the entity's) **Shared access policies**, create a policy with \
the **Send** claim and copy its **Primary Connection String** \
(`Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=...`). \
A connection string with a `SharedAccessSignature` works too, until that signature expires.

Each event becomes one message sent with the Service Bus REST API: the event data is the \
body (`application/json`), the event id is the `MessageId` (enable duplicate detection to \
drop redeliveries), and `event-id`, `topic`, `timestamp` and the event's metadata are \
application properties. Requests are authorized with short-lived SAS tokens signed by the \
shared access key; the key itself never leaves Outrider.

Throttling (429) and service errors (5xx) are retried; authorization errors (401), \
quota or size errors (403) and a missing entity (404, 410) fail the attempt.";

impl Plugin for AzureServiceBus {
    fn manifest() -> Manifest {
        Manifest::new("azure-servicebus", env!("CARGO_PKG_VERSION"))
            .description("Azure Service Bus queues and topics through the REST API.")
            .prototype(
                Prototype::destination("azure_servicebus")
                    .label("Azure Service Bus")
                    .description(
                        "Send events to Azure Service Bus topics for reliable cloud messaging \
                         between applications and services.",
                    )
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("name")
                            .label("Queue or Topic Name")
                            .description(
                                "The name of the Azure Service Bus queue or topic to publish to",
                            )
                            .required()
                            .max_length(260)
                            .pattern("^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$"),
                    )
                    .config_field(Field::text("endpoint").label("Endpoint").description(
                        "For testing only: base URL to send to instead of the \
                                 connection string's https://<namespace>.servicebus.windows.net \
                                 (tokens are still signed for the namespace). Leave empty in \
                                 production.",
                    ))
                    .credential_field(
                        Field::text("connection_string")
                            .label("Connection String")
                            .description(
                                "Azure Service Bus connection string with Send permissions",
                            )
                            .required()
                            .sensitive(),
                    )
                    .host("*.servicebus.windows.net")
                    .host("*.servicebus.chinacloudapi.cn")
                    .host("*.servicebus.usgovcloudapi.net")
                    .host("*.servicebus.cloudapi.de")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let connection = "Endpoint=sb://contoso.servicebus.windows.net/;\
                          SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0";
        vec![
            TestCase::new(
                "accepts a queue and a connection string",
                "azure_servicebus",
            )
            .config(json!({"name": "orders"}))
            .credentials(json!({ "connection_string": connection })),
            TestCase::new("requires the connection string", "azure_servicebus")
                .config(json!({"name": "orders"}))
                .expect_error(),
            TestCase::new(
                "rejects a connection string without a key",
                "azure_servicebus",
            )
            .config(json!({"name": "orders"}))
            .credentials(json!({
                "connection_string": "Endpoint=sb://contoso.servicebus.windows.net/"
            }))
            .expect_error(),
        ]
    }
}

impl Destination for AzureServiceBus {
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

export_destination!(AzureServiceBus);

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// Queue or topic.
    entity: String,
    /// Base URL requests go to, without trailing `/`.
    base_url: String,
    connection: ConnectionString,
}

impl Settings {
    /// Parses and checks every field, reporting every problem.
    fn parse(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let entity = entity_name(config).record(&mut errors);
        let endpoint = endpoint(config).record(&mut errors);
        let connection = credentials
            .str("connection_string")
            .and_then(|text| {
                ConnectionString::parse(text)
                    .map_err(|why| credentials.error("connection_string", why))
            })
            .record(&mut errors);
        if let (Some(connection), Some(endpoint)) = (&connection, &endpoint) {
            if endpoint.is_none() && !connection.is_azure_namespace() {
                errors.push(credentials.error(
                    "connection_string",
                    "must have an Endpoint in a Service Bus domain \
                     (`sb://<namespace>.servicebus.windows.net/`)",
                ));
            }
            if let (Some(path), Some(entity)) = (&connection.entity_path, &entity) {
                if !path.eq_ignore_ascii_case(entity) {
                    errors.push(config.error(
                        "name",
                        format!(
                            "must be `{path}`: the connection string is for that entity \
                             (EntityPath)"
                        ),
                    ));
                }
            }
        }
        match (entity, endpoint, connection) {
            (Some(entity), Some(endpoint), Some(connection)) if errors.is_empty() => Ok(Settings {
                base_url: endpoint.unwrap_or_else(|| format!("https://{}", connection.host)),
                entity,
                connection,
            }),
            _ => Err(errors),
        }
    }

    /// `POST` URL of the entity's messages.
    fn messages_url(&self) -> String {
        format!("{}/{}/messages", self.base_url, self.entity)
    }

    /// The resource SAS tokens are signed for: the entity in its namespace.
    fn resource_uri(&self) -> String {
        format!("https://{}/{}", self.connection.host, self.entity)
    }

    /// The `Authorization` value at `now_s`.
    fn authorization(&self, now_s: u64) -> String {
        match &self.connection.auth {
            Auth::Key { name, key } => {
                sas::token(&self.resource_uri(), name, key, now_s + TOKEN_LIFETIME_S)
            }
            Auth::Signature(token) => token.clone(),
        }
    }
}

/// Queue or topic name: letters, digits, `.`, `_`, `-`, starting and ending with a
/// letter or digit, at most 260 characters.
fn entity_name(config: &Config) -> Result<String, FieldError> {
    let name = config.str("name")?;
    let bytes = name.as_bytes();
    let valid = name.len() <= 260
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(config.error(
            "name",
            "must be a queue or topic name: letters, digits, `.`, `_` and `-`, starting and \
             ending with a letter or digit, at most 260 characters",
        ))
    }
}

fn endpoint(config: &Config) -> Result<Option<String>, FieldError> {
    match config.opt_str("endpoint")? {
        None => Ok(None),
        Some(url) if is_http_url(url) => Ok(Some(url.trim_end_matches('/').to_string())),
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

/// Headers the request sets itself; metadata may not use them as property names.
const RESERVED_HEADERS: [&str; 9] = [
    "authorization",
    "brokerproperties",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "expect",
    "x-ms-retrypolicy",
];

/// A property name usable as a header: letters, digits, `-`, `_` and `.`.
fn is_property_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !RESERVED_HEADERS.contains(&name)
}

/// A string property value as Service Bus reads it from a header: in double quotes
/// (otherwise numbers and dates are parsed as such), `"` and `\` escaped. `None` for
/// values a header cannot carry (control or non-ASCII characters).
fn quoted(value: &str) -> Option<String> {
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// The send request for `event` at `now_s` (Unix seconds).
fn build_request(
    settings: &Settings,
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_s: u64,
) -> Request {
    let mut properties: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        properties.insert(key.to_ascii_lowercase(), value);
    }
    let timestamp = now_s.to_string();
    properties.insert("event-id".into(), &event.id);
    properties.insert("topic".into(), &event.topic);
    properties.insert("timestamp".into(), &timestamp);

    let broker_properties = json!({ "MessageId": event.id }).to_string();
    let mut request = Request::post(settings.messages_url())
        .header("authorization", settings.authorization(now_s))
        .header("content-type", "application/json")
        .header("brokerproperties", broker_properties);
    for (name, value) in properties {
        match quoted(value) {
            Some(value) if is_property_name(&name) => request = request.header(name, value),
            _ => log::warn!("metadata `{name}` skipped: not usable as a message property header"),
        }
    }
    request.body(event.data.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_tests_hold() {
        let cases = <AzureServiceBus as Plugin>::self_tests();
        assert!(!cases.is_empty());
        for case in cases {
            let result = AzureServiceBus::validate(
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

    const CONNECTION: &str = "Endpoint=sb://contoso.servicebus.windows.net/;\
                              SharedAccessKeyName=RootManageSharedAccessKey;\
                              SharedAccessKey=sK3y+/abc=";

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
    fn urls_and_resource() {
        let s = parse(
            json!({"name": "orders"}),
            json!({ "connection_string": CONNECTION }),
        )
        .unwrap();
        assert_eq!(
            s.messages_url(),
            "https://contoso.servicebus.windows.net/orders/messages"
        );
        assert_eq!(
            s.resource_uri(),
            "https://contoso.servicebus.windows.net/orders"
        );
        // The test endpoint moves requests, not the signed resource.
        let s = parse(
            json!({"name": "orders", "endpoint": "http://127.0.0.1:9000/"}),
            json!({ "connection_string": CONNECTION }),
        )
        .unwrap();
        assert_eq!(s.messages_url(), "http://127.0.0.1:9000/orders/messages");
        assert_eq!(
            s.resource_uri(),
            "https://contoso.servicebus.windows.net/orders"
        );
        assert_eq!(
            s.authorization(1_700_000_000),
            "SharedAccessSignature \
             sr=https%3A%2F%2Fcontoso.servicebus.windows.net%2Forders\
             &sig=JIqtsIxBiyHtSJlEmbqv963cpMnWcNckSMLRVMvyn0k%3D\
             &se=1700003600&skn=RootManageSharedAccessKey"
        );
    }

    #[test]
    fn reports_every_problem_by_field() {
        assert_eq!(
            parse(json!({}), json!({})).unwrap_err(),
            [
                "config.name is required",
                "credentials.connection_string is required"
            ]
        );
        let errors = parse(
            json!({"name": "-bad name", "endpoint": "sb://x"}),
            json!({"connection_string": "Endpoint=sb://x.servicebus.windows.net/"}),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("config.name must be a queue or topic name"));
        assert_eq!(
            errors[1],
            "config.endpoint must be an http(s) URL without query or fragment"
        );
        assert!(errors[2].starts_with(
            "credentials.connection_string must contain SharedAccessKeyName and SharedAccessKey"
        ));
        let errors = parse(
            json!({"name": "orders"}),
            json!({"connection_string": "Endpoint=sb://evil.example.com/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=invoices"}),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "credentials.connection_string must have an Endpoint in a Service Bus domain (`sb://<namespace>.servicebus.windows.net/`)",
                "config.name must be `invoices`: the connection string is for that entity (EntityPath)",
            ]
        );
    }

    #[test]
    fn request_has_sas_broker_and_custom_properties() {
        let s = parse(
            json!({"name": "orders"}),
            json!({ "connection_string": CONNECTION }),
        )
        .unwrap();
        let event = Event {
            id: "evt_1".into(),
            tenant_id: "t".into(),
            topic: "order.paid".into(),
            time_ms: 0,
            metadata: vec![
                ("Region".into(), "eu \"west\"".into()),
                ("topic".into(), "spoofed".into()),
                ("Authorization".into(), "x".into()),
                ("café".into(), "x".into()),
                ("note".into(), "naïve".into()),
            ],
            data: r#"{"order":42}"#.into(),
            attempt: 1,
        };
        let delivery = [("env".to_string(), "prod".to_string())];
        let r = build_request(&s, &event, &delivery, 1_700_000_000);
        assert_eq!(
            r.url,
            "https://contoso.servicebus.windows.net/orders/messages"
        );
        assert_eq!(r.body, br#"{"order":42}"#);
        assert_eq!(
            header(&r, "authorization"),
            Some(s.authorization(1_700_000_000).as_str())
        );
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(
            header(&r, "brokerproperties"),
            Some(r#"{"MessageId":"evt_1"}"#)
        );
        assert_eq!(header(&r, "event-id"), Some(r#""evt_1""#));
        assert_eq!(header(&r, "topic"), Some(r#""order.paid""#));
        assert_eq!(header(&r, "timestamp"), Some(r#""1700000000""#));
        assert_eq!(header(&r, "env"), Some(r#""prod""#));
        assert_eq!(header(&r, "region"), Some(r#""eu \"west\"""#));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k == "authorization")
                .count(),
            1
        );
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "topic").count(), 1);
        assert_eq!(header(&r, "café"), None);
        assert_eq!(header(&r, "note"), None);
    }

    #[test]
    fn ready_made_signatures_are_sent_as_given() {
        let s = parse(
            json!({"name": "orders"}),
            json!({"connection_string": "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=z"}),
        )
        .unwrap();
        assert_eq!(
            s.authorization(5),
            "SharedAccessSignature sr=x&sig=y&se=1&skn=z"
        );
    }
}
