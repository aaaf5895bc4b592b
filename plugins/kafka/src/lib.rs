//! Outrider's `kafka` destination: produces each event as one record to a Kafka topic and
//! waits for the broker's acknowledgement (`acks` all by default), speaking the Kafka
//! protocol inside the component over the host's `tcp` capability. Fields follow
//! Outpost's Kafka destination (`brokers`, `topic`, `tls`, `partition_key_template`,
//! `sasl_mechanism`; `username`, `password`), plus `partition` and `acks`.
//!
//! - The record value is the event data; its key is rendered from
//!   `partition_key_template` (default the event id); its headers are `content-type:
//!   application/json`, `event-id`, `topic`, `timestamp` and the metadata.
//! - The partition is `partition` when set, else the murmur2 hash of the key (the Java
//!   client's default partitioner), among the topic's partitions as Metadata reports
//!   them ([`cluster`]; cached in host state, refreshed when a broker says it is stale).
//! - A fresh connection sends ApiVersions and logs in (SASL PLAIN or SCRAM); the host
//!   pools it with the session ([`session`]), so later deliveries only produce.
//!
//! Network access: the prototype declares `tcp` with `brokers` as its URL field. The
//! host allows every address of a comma list there, so a destination reaches the
//! brokers `brokers` names, and the partition leaders Metadata reports must be among
//! them (leaders advertised under other names are refused by the host's network policy
//! before any connection; the attempt says which address). The plugin itself tries the
//! bootstrap brokers in order.

mod cluster;
mod codec;
mod errors;
mod protocol;
mod scram;
mod session;

use broker_common::{fingerprint, message_metadata, render_event, Endpoint, Template};
use outrider_sdk::prelude::*;
use outrider_sdk::{log, Record};
use protocol::api;
use session::Auth;

struct Kafka;

const DEFAULT_PARTITION_KEY: &str = "{{event.id}}";

/// How long the broker may wait for the replicas before answering REQUEST_TIMED_OUT
/// (below the link's 10 s read timeout, so the broker's answer arrives first).
const PRODUCE_TIMEOUT_MS: i32 = 8_000;

/// Kafka topic names: at most 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
const MAX_TOPIC_LEN: usize = 249;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="none" stroke="currentColor" stroke-width="1.3"><circle cx="6" cy="2.8" r="1.8"/><circle cx="6" cy="8" r="2.4"/><circle cx="6" cy="13.2" r="1.8"/><circle cx="12.5" cy="4.8" r="1.6"/><circle cx="12.5" cy="11.2" r="1.6"/><path d="M6 4.6v1M6 10.4v1M8.2 7l2.9-1.4M8.2 9l2.9 1.4"/></svg>"##;

const INSTRUCTIONS: &str = "\
Each event becomes one record on `topic`: the value is the event data, the key comes \
from *Partition Key Template* (default `{{event.id}}`; placeholders `event.*`, `time.*`, \
`metadata.KEY`, `data.PATH`, alternatives with `|`; the event id when the template has \
no value), and the headers carry `content-type`, `event-id`, `topic`, `timestamp` and \
the event metadata.

The partition is *Partition* when set, else the key's murmur2 hash (as the Java client \
picks it), so one key's events stay in order on one partition. Each record waits for \
the broker's acknowledgement: *Acks* `all` (default) waits for the in-sync replicas, `1` \
for the leader only. Delivery is at least once; consumers can drop duplicates by the \
`event-id` header.

`brokers` is `host:port[,host:port...]`. Leader changes, timeouts, throttling and lost \
connections are retried; records the broker refuses as too large or invalid fail; a \
refused login, a missing topic (with automatic topic creation off) or a denied topic \
mark the destination misconfigured. SASL: `plain`, `scram-sha-256`, `scram-sha-512` with \
the username and password credentials.";

impl Plugin for Kafka {
    fn manifest() -> Manifest {
        Manifest::new("kafka", env!("CARGO_PKG_VERSION"))
            .description("Apache Kafka producer (acks, SASL PLAIN/SCRAM, TLS).")
            .prototype(
                Prototype::destination("kafka")
                    .label("Apache Kafka")
                    .description("Send events to Apache Kafka topics for real-time event streaming")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("brokers")
                            .label("Brokers")
                            .description(
                                "Comma-separated list of Kafka broker addresses \
                                 (e.g., broker1:9092,broker2:9092)",
                            )
                            .required(),
                    )
                    .config_field(
                        Field::text("topic")
                            .label("Topic")
                            .description("The Kafka topic to publish messages to")
                            .required()
                            .max_length(MAX_TOPIC_LEN as u32)
                            .pattern("^[a-zA-Z0-9._-]+$"),
                    )
                    .config_field(
                        Field::checkbox("tls")
                            .label("TLS")
                            .description("Enable TLS for the connection")
                            .default_value(true),
                    )
                    .config_field(
                        Field::text("partition_key_template")
                            .label("Partition Key Template")
                            .description(
                                "Template of the record key, e.g. {{data.customer_id}}. \
                                 Default is the event ID, which is also used when the \
                                 template has no value.",
                            ),
                    )
                    .config_field(
                        Field::select("sasl_mechanism")
                            .label("SASL Mechanism")
                            .description("SASL authentication mechanism (empty: none)")
                            .option("plain", "PLAIN")
                            .option("scram-sha-256", "SCRAM-SHA-256")
                            .option("scram-sha-512", "SCRAM-SHA-512"),
                    )
                    .config_field(
                        Field::number("partition")
                            .label("Partition")
                            .description("Always write to this partition (default: by key hash)"),
                    )
                    .config_field(
                        Field::select("acks")
                            .label("Acks")
                            .description(
                                "Acknowledgement to wait for: all in-sync replicas, or the leader",
                            )
                            .option("all", "All in-sync replicas")
                            .option("1", "Leader only")
                            .default_value("all"),
                    )
                    .credential_field(
                        Field::text("username")
                            .label("Username")
                            .description("SASL username for authentication"),
                    )
                    .credential_field(
                        Field::text("password")
                            .label("Password")
                            .description("SASL password for authentication")
                            .sensitive(),
                    )
                    .url_field("brokers")
                    .tcp(),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts Outpost's fields", "kafka").config(json!({
                "brokers": "localhost:9092", "topic": "events", "tls": "false",
                "partition_key_template": "{{data.customer_id}}"
            })),
            TestCase::new("accepts SASL with credentials", "kafka")
                .config(json!({"brokers": "kafka.example.com:9093", "topic": "events", "sasl_mechanism": "scram-sha-512"}))
                .credentials(json!({"username": "outrider", "password": "secret"})),
            TestCase::new("requires brokers", "kafka")
                .config(json!({"topic": "events"}))
                .expect_error(),
            TestCase::new("requires credentials with SASL", "kafka")
                .config(json!({"brokers": "localhost:9092", "topic": "events", "sasl_mechanism": "plain"}))
                .expect_error(),
        ]
    }
}

/// The parsed configuration.
#[derive(Debug, Clone)]
struct Settings {
    brokers: Vec<Endpoint>,
    tls: bool,
    topic: String,
    partition_key: Template,
    partition: Option<i32>,
    acks: i16,
    auth: Auth,
}

fn brokers(config: &Config, tls: bool, errors: &mut Vec<FieldError>) -> Vec<Endpoint> {
    let Some(text) = config.str("brokers").record(errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains("://") || entry.contains('/') {
            errors.push(config.error(
                "brokers",
                format!("entry `{entry}` must be host:port (e.g. broker1:9092,broker2:9092)"),
            ));
            continue;
        }
        if let Some(e) =
            Endpoint::parse(entry, "brokers", ["tcp", "ssl"], 9092, 9092, tls).record(errors)
        {
            out.push(e);
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(config.error("brokers", "is required"));
    }
    out
}

fn topic(config: &Config, errors: &mut Vec<FieldError>) -> String {
    let topic = config.str("topic").record(errors).unwrap_or_default();
    let legal = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !topic.is_empty() && (!legal || topic == "." || topic == ".." || topic.len() > MAX_TOPIC_LEN)
    {
        errors.push(config.error(
            "topic",
            "must be 1 to 249 letters, digits, `.`, `_` or `-` (and not `.` or `..`)",
        ));
    }
    topic.to_owned()
}

fn tls_flag(config: &Config) -> Result<bool, FieldError> {
    match config.get("tls") {
        // Outpost also accepts "on" (an HTML checkbox's value).
        Some(Value::String(s)) if s == "on" => Ok(true),
        _ => config.bool("tls"),
    }
}

fn partition(config: &Config, errors: &mut Vec<FieldError>) -> Option<i32> {
    let n = config.opt_number("partition").record(errors).flatten()?;
    if n.fract() != 0.0 || !(0.0..=f64::from(i32::MAX)).contains(&n) {
        errors.push(config.error("partition", "must be a whole number from 0"));
        return None;
    }
    Some(n as i32)
}

fn acks(config: &Config, errors: &mut Vec<FieldError>) -> i16 {
    match config.opt_str("acks").record(errors).flatten() {
        None | Some("all") | Some("-1") => -1,
        Some("1") => 1,
        Some(_) => {
            errors.push(config.error("acks", "must be `all` or `1`"));
            -1
        }
    }
}

fn auth(config: &Config, credentials: &Credentials, errors: &mut Vec<FieldError>) -> Auth {
    let mechanism = config.opt_str("sasl_mechanism").record(errors).flatten();
    let Some(mechanism) = mechanism.map(str::to_ascii_lowercase) else {
        return Auth::None;
    };
    let hash = match mechanism.as_str() {
        "plain" => None,
        "scram-sha-256" => Some(scram::Hash::Sha256),
        "scram-sha-512" => Some(scram::Hash::Sha512),
        _ => {
            errors.push(config.error(
                "sasl_mechanism",
                "must be plain, scram-sha-256 or scram-sha-512",
            ));
            return Auth::None;
        }
    };
    let mut required = |key: &str| match credentials.opt_str(key).record(errors).flatten() {
        Some(v) => v.to_owned(),
        None => {
            errors.push(credentials.error(key, "is required when config.sasl_mechanism is set"));
            String::new()
        }
    };
    let (username, password) = (required("username"), required("password"));
    match hash {
        None => Auth::Plain { username, password },
        Some(hash) => Auth::Scram {
            hash,
            username,
            password,
        },
    }
}

fn settings(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let tls = tls_flag(config).record(&mut errors).unwrap_or(false);
    let brokers = brokers(config, tls, &mut errors);
    let topic = topic(config, &mut errors);
    let template = config
        .opt_str("partition_key_template")
        .record(&mut errors)
        .flatten()
        .unwrap_or(DEFAULT_PARTITION_KEY);
    let partition_key = Template::parse(template)
        .map_err(|e| config.error("partition_key_template", e))
        .record(&mut errors);
    let partition = partition(config, &mut errors);
    let acks = acks(config, &mut errors);
    let auth = auth(config, credentials, &mut errors);
    match partition_key {
        Some(partition_key) if errors.is_empty() => Ok(Settings {
            brokers,
            tls,
            topic,
            partition_key,
            partition,
            acks,
            auth,
        }),
        _ => Err(errors),
    }
}

impl Settings {
    /// What a pooled connection's login depends on (the host pools per address and TLS).
    fn login_print(&self) -> Vec<u8> {
        let (mechanism, user, password) = match &self.auth {
            Auth::None => ("none", "", ""),
            Auth::Plain { username, password } => ("plain", username.as_str(), password.as_str()),
            Auth::Scram {
                hash,
                username,
                password,
            } => (hash.mechanism(), username.as_str(), password.as_str()),
        };
        fingerprint(&[mechanism, user, password])
    }

    /// What the cached metadata depends on.
    fn metadata_print(&self, login: &[u8]) -> Vec<u8> {
        let brokers: Vec<String> = self.brokers.iter().map(Endpoint::address).collect();
        let login = String::from_utf8_lossy(login);
        let tls = if self.tls { "tls" } else { "plain" };
        fingerprint(&[&brokers.join(","), &self.topic, tls, &login])
    }
}

impl Destination for Kafka {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        settings(config, credentials).map(|_| ())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let s = settings(&target.config, &target.credentials).map_err(DeliveryError::from)?;
        let metadata = message_metadata(target, event);
        let key = match render_event(&s.partition_key, event, &metadata) {
            Ok(key) if !key.is_empty() => key,
            Ok(_) => event.id.clone(),
            Err(e) => {
                log::warn!("partition_key_template: {e}; using the event id");
                event.id.clone()
            }
        };
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
        headers.extend(metadata.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
        let batch = codec::record_batch(&codec::Record {
            timestamp_ms: i64::try_from(event.time_ms).unwrap_or(i64::MAX),
            key: Some(key.as_bytes()),
            value: event.data.as_bytes(),
            headers,
        });
        let (route, offset) = produce_with_refresh(&s, key.as_bytes(), &batch)?;
        Ok(Delivered {
            status_code: None,
            response_body: Some(format!(
                "acknowledged by {}: {}/{} offset {offset}",
                route.leader.address(),
                s.topic,
                route.partition
            )),
        })
    }
}

/// Route and produce with the cached metadata; when a broker says it is stale (leader
/// moved) or the cached leader cannot be reached, fetch fresh metadata and try once more.
fn produce_with_refresh(
    s: &Settings,
    key: &[u8],
    batch: &[u8],
) -> Result<(cluster::Route, i64), DeliveryError> {
    let login = s.login_print();
    let print = s.metadata_print(&login);
    let mut outcome = Err(DeliveryError::retry("no attempt made"));
    for pass in 0..2 {
        let cached = if pass == 0 {
            cluster::cached(&print)
        } else {
            None
        };
        let from_cache = cached.is_some();
        let metadata = match cached {
            Some(m) => m,
            None => {
                let m = cluster::fetch(&s.brokers, &login, &s.auth, &s.topic)?;
                cluster::remember(&print, &m);
                m
            }
        };
        let route = match cluster::route(&metadata, &s.topic, s.partition, key, s.tls) {
            Ok(route) => route,
            // Cached metadata may predate the topic's creation or new partitions.
            Err(e) => {
                cluster::forget();
                outcome = Err(e);
                if from_cache {
                    continue;
                }
                break;
            }
        };
        let mut stale = false;
        outcome = produce(s, &route, &login, batch, &mut stale).map(|offset| (route, offset));
        match &outcome {
            Err(DeliveryError::Retry { .. }) => cluster::forget(),
            _ => return outcome,
        }
        if !(stale || from_cache) {
            break;
        }
    }
    outcome
}

/// One Produce request on the leader's pooled connection; `stale` is set when the
/// broker says the metadata it was routed by is out of date.
fn produce(
    s: &Settings,
    route: &cluster::Route,
    login: &[u8],
    batch: &[u8],
    stale: &mut bool,
) -> Result<i64, DeliveryError> {
    let partition = route.partition;
    session::run(&route.leader, login, &s.auth, |link, session| {
        let body =
            protocol::produce_request(s.acks, PRODUCE_TIMEOUT_MS, &s.topic, partition, batch);
        let version = session.produce_version;
        let answer = session.call(link, api::PRODUCE, version, &body)?;
        let ack = protocol::parse_produce(&answer, version, &s.topic, partition)?;
        if ack.error == 0 {
            return Ok(ack.base_offset);
        }
        let message = format!(
            "the broker refused the record for {}/{partition}: {}{}",
            s.topic,
            errors::name(ack.error),
            ack.message.map(|m| format!(" ({m})")).unwrap_or_default()
        );
        let error = match errors::class(ack.error) {
            errors::Class::StaleMetadata => {
                *stale = true;
                DeliveryError::retry(message)
            }
            errors::Class::Retry if ack.throttle_ms > 0 => {
                DeliveryError::retry(message).retry_after(ack.throttle_ms as u64)
            }
            errors::Class::Retry => DeliveryError::retry(message),
            errors::Class::Fail => DeliveryError::fail(message),
            errors::Class::Misconfigured => DeliveryError::misconfigured(message),
        };
        Err(session::refused(error, session))
    })
}

export_destination!(Kafka);

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json;

    fn config(v: serde_json::Value) -> Config {
        Config::from_value(v).unwrap()
    }

    fn creds(v: serde_json::Value) -> Credentials {
        Credentials::from_value(v).unwrap()
    }

    #[test]
    fn settings_follow_outpost_fields() {
        let s = settings(
            &config(json!({"brokers": " b1:9092, b2 ,", "topic": "events", "tls": "on"})),
            &creds(json!({"username": "ignored without sasl"})),
        )
        .unwrap();
        let addresses: Vec<_> = s.brokers.iter().map(Endpoint::address).collect();
        assert_eq!(addresses, ["b1:9092", "b2:9092"]);
        assert!(s.tls && s.brokers.iter().all(|b| b.tls));
        assert_eq!((s.acks, s.partition, &s.auth), (-1, None, &Auth::None));
        let s = settings(
            &config(
                json!({"brokers": "k:9093", "topic": "t", "tls": false, "acks": "1",
                           "partition": "2", "sasl_mechanism": "SCRAM-SHA-256"}),
            ),
            &creds(json!({"username": "u", "password": "p"})),
        )
        .unwrap();
        assert_eq!((s.acks, s.partition), (1, Some(2)));
        assert!(matches!(
            s.auth,
            Auth::Scram {
                hash: scram::Hash::Sha256,
                ..
            }
        ));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = settings(
            &config(
                json!({"brokers": "kafka://h:1,h:x", "topic": "a b", "tls": 3,
                           "partition": -1, "acks": "0", "sasl_mechanism": "gssapi",
                           "partition_key_template": "{{nope}}"}),
            ),
            &creds(json!({})),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "config.brokers",
            "config.topic",
            "config.tls",
            "config.partition",
            "config.acks",
            "config.sasl_mechanism",
            "config.partition_key_template",
        ] {
            assert!(fields.contains(&f), "{fields:?} lacks {f}");
        }
        let errors = settings(
            &config(json!({"brokers": "h:1", "topic": "t", "sasl_mechanism": "plain"})),
            &creds(json!({"username": "u"})),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "credentials.password");
        let errors = settings(
            &config(json!({"brokers": " , ", "topic": ".."})),
            &creds(json!({})),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["config.brokers", "config.topic"]);
    }

    #[test]
    fn login_changes_invalidate_pooled_sessions_and_cached_metadata() {
        let base = json!({"brokers": "h:1", "topic": "t", "sasl_mechanism": "plain"});
        let a = settings(
            &config(base.clone()),
            &creds(json!({"username": "u", "password": "a"})),
        )
        .unwrap();
        let b = settings(
            &config(base),
            &creds(json!({"username": "u", "password": "b"})),
        )
        .unwrap();
        assert_ne!(a.login_print(), b.login_print());
        let la = a.login_print();
        assert_ne!(a.metadata_print(&la), b.metadata_print(&b.login_print()));
    }
}
