//! Outrider's `mqtt` destination: MQTT 3.1.1 PUBLISH of each event's data to a topic (a
//! template, `{{event.topic}}` by default) at QoS 1 (waits for PUBACK) or QoS 0 (confirmed
//! by a PINGREQ/PINGRESP round trip), with username/password and optional TLS.
//!
//! CONNECT happens once per pooled connection (a clean session with a random client id,
//! so parallel connections of one destination never take each other over); the session
//! blob keeps the next packet id.

mod packet;

use broker_common::{
    deliver, fingerprint, message_metadata, render_event, Endpoint, Link, StepError, Template,
};
use outrider_sdk::prelude::*;
use outrider_sdk::{random, serde_json, Record};

struct Mqtt;

/// Keep-alive asked for in CONNECT. Idle pooled connections are closed by the host
/// sooner (`OUTRIDER_TCP_IDLE_TIMEOUT_MS`, 60 s by default).
const KEEP_ALIVE_S: u16 = 300;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="none" stroke="#660066" stroke-width="1.6" stroke-linecap="round"><path d="M2 9a5 5 0 0 1 5 5M2 5a9 9 0 0 1 9 9M2 1.5A12.5 12.5 0 0 1 14.5 14"/></svg>"##;

const INSTRUCTIONS: &str = "\
Each event's data is published to `topic` (a template, `{{event.topic}}` by default). At \
QoS 1 (default) the delivery waits for the broker's PUBACK; at QoS 0 a ping round trip \
confirms the broker read it. `server_url` is `host:port`, `mqtt://host:port` or \
`mqtts://host:port` (TLS).";

impl Plugin for Mqtt {
    fn manifest() -> Manifest {
        Manifest::new("mqtt", env!("CARGO_PKG_VERSION"))
            .description("MQTT 3.1.1 publish, QoS 0 and 1.")
            .prototype(
                Prototype::destination("mqtt")
                    .label("MQTT")
                    .description("Publish events to an MQTT broker.")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("server_url")
                            .label("Server URL")
                            .description("MQTT broker address (host:port)")
                            .required(),
                    )
                    .config_field(
                        Field::text("topic").label("Topic").description(
                            "Topic to publish to; a template, default {{event.topic}}",
                        ),
                    )
                    .config_field(
                        Field::select("qos")
                            .label("QoS")
                            .description("0: at most once, 1: at least once (waits for PUBACK)")
                            .option("0", "0")
                            .option("1", "1")
                            .default_value("1"),
                    )
                    .config_field(
                        Field::checkbox("retain")
                            .label("Retain")
                            .description("Ask the broker to retain the last message of the topic"),
                    )
                    .config_field(
                        Field::select("tls")
                            .label("TLS")
                            .description("Connect with TLS")
                            .option("false", "No")
                            .option("true", "Yes")
                            .default_value("false"),
                    )
                    .credential_field(Field::text("username").label("Username"))
                    .credential_field(Field::text("password").label("Password").sensitive())
                    .url_field("server_url")
                    .tcp(),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts a topic template", "mqtt")
                .config(json!({"server_url": "localhost:1883", "topic": "outrider/{{event.topic}}", "qos": "1"})),
            TestCase::new("requires a server url", "mqtt").expect_error(),
            TestCase::new("rejects wildcard topics", "mqtt")
                .config(json!({"server_url": "localhost:1883", "topic": "a/#"}))
                .expect_error(),
        ]
    }
}

#[derive(Debug, Clone)]
struct Settings {
    endpoint: Endpoint,
    topic: Template,
    qos: u8,
    retain: bool,
    username: Option<String>,
    password: Option<String>,
}

fn settings(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let endpoint = Endpoint::from_config(config, ["mqtt", "mqtts"], 1883, 8883, &mut errors);
    if endpoint.as_ref().is_some_and(|e| e.path.is_some()) {
        errors.push(config.error("server_url", "must not have a path"));
    }
    let topic_text = config
        .opt_str("topic")
        .record(&mut errors)
        .flatten()
        .unwrap_or("{{event.topic}}");
    let topic = match Template::parse(topic_text) {
        Ok(t)
            if packet::valid_topic(
                &t.source()
                    .replace("{{", "")
                    .replace("}}", "")
                    .replace('|', ""),
            ) =>
        {
            Some(t)
        }
        Ok(_) => {
            errors.push(config.error("topic", "must not contain the wildcards + or #"));
            None
        }
        Err(e) => {
            errors.push(config.error("topic", e));
            None
        }
    };
    let qos = match config.get("qos") {
        None => 1,
        Some(serde_json::Value::String(s)) if s == "0" => 0,
        Some(serde_json::Value::String(s)) if s == "1" => 1,
        Some(v) if v.as_u64() == Some(0) => 0,
        Some(v) if v.as_u64() == Some(1) => 1,
        Some(_) => {
            errors.push(config.error("qos", "must be 0 or 1"));
            1
        }
    };
    let retain = config.bool("retain").record(&mut errors).unwrap_or(false);
    let username = credentials
        .opt_str("username")
        .record(&mut errors)
        .flatten();
    let password = credentials
        .opt_str("password")
        .record(&mut errors)
        .flatten();
    if password.is_some() && username.is_none() {
        errors.push(credentials.error("username", "is required with a password (MQTT 3.1.1)"));
    }
    match (endpoint, topic) {
        (Some(endpoint), Some(topic)) if errors.is_empty() => Ok(Settings {
            endpoint,
            topic,
            qos,
            retain,
            username: username.map(str::to_owned),
            password: password.map(str::to_owned),
        }),
        _ => Err(errors),
    }
}

/// One packet: (first byte, body).
fn read_packet(link: &mut Link) -> Result<(u8, Vec<u8>), StepError> {
    let first = link.read_exact(1)?[0];
    let mut length = 0usize;
    for shift in 0..4 {
        let byte = link.read_exact(1)?[0];
        length |= usize::from(byte & 0x7F) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok((first, link.read_exact(length)?));
        }
    }
    Err(StepError::Connection(
        "malformed MQTT remaining length".into(),
    ))
}

fn login(link: &mut Link, s: &Settings) -> Result<u16, StepError> {
    let client_id: String = format!(
        "outrider-{}",
        random::bytes(7)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    link.write(&packet::connect(
        &client_id,
        KEEP_ALIVE_S,
        s.username.as_deref(),
        s.password.as_deref(),
    ))?;
    let (kind, body) = read_packet(link).map_err(|e| match e {
        StepError::Connection(why) => {
            StepError::Connection(format!("no CONNACK from {}: {why}", s.endpoint.address()))
        }
        other => other,
    })?;
    if kind != packet::CONNACK || body.len() != 2 {
        return Err(StepError::broker(DeliveryError::misconfigured(format!(
            "{} did not answer as an MQTT 3.1.1 broker",
            s.endpoint.address()
        ))));
    }
    if let Some((why, configuration)) = packet::connack_refusal(body[1]) {
        let message = format!("the broker refused the connection: {why}");
        return Err(StepError::broker(if configuration {
            DeliveryError::misconfigured(message)
        } else {
            DeliveryError::retry(message)
        }));
    }
    Ok(1)
}

fn publish(
    link: &mut Link,
    s: &Settings,
    packet_id: u16,
    topic: &str,
    payload: &[u8],
) -> Result<(String, Vec<u8>), StepError> {
    let next = packet::next_packet_id(packet_id).to_be_bytes().to_vec();
    let mut out = packet::publish(topic, payload, s.qos, s.retain, packet_id);
    if s.qos == 0 {
        out.extend_from_slice(&packet::PINGREQ);
    }
    link.write(&out)?;
    loop {
        let (kind, body) = read_packet(link)?;
        match kind & 0xF0 {
            // A PUBACK of an earlier, abandoned packet is skipped.
            packet::PUBACK
                if s.qos == 1
                    && body.len() >= 2
                    && u16::from_be_bytes([body[0], body[1]]) == packet_id =>
            {
                return Ok((format!("PUBACK for packet {packet_id}"), next));
            }
            packet::PINGRESP if s.qos == 0 => return Ok(("published at QoS 0".to_owned(), next)),
            _ => {}
        }
    }
}

impl Destination for Mqtt {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        settings(config, credentials).map(|_| ())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let s = settings(&target.config, &target.credentials).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            DeliveryError::misconfigured(text.join("; "))
        })?;
        let metadata = message_metadata(target, event);
        let topic = render_event(&s.topic, event, &metadata)
            .map_err(|e| DeliveryError::fail(format!("config.topic: {e}")))?;
        if !packet::valid_topic(&topic) {
            return Err(DeliveryError::fail(format!(
                "config.topic rendered `{topic}`, which is not a valid MQTT topic"
            )));
        }
        let print = fingerprint(&[
            &s.endpoint.address(),
            if s.endpoint.tls { "tls" } else { "plain" },
            s.username.as_deref().unwrap_or(""),
            s.password.as_deref().unwrap_or(""),
        ]);
        let text = deliver(&s.endpoint.connect_options(), &print, |link, resumed| {
            let packet_id = match resumed {
                Some([a, b]) => u16::from_be_bytes([*a, *b]).max(1),
                _ => login(link, &s)?,
            };
            publish(link, &s, packet_id, &topic, event.data.as_bytes())
        })?;
        Ok(Delivered {
            status_code: None,
            response_body: Some(text),
        })
    }
}

export_destination!(Mqtt);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        config: serde_json::Value,
        creds: serde_json::Value,
    ) -> Result<Settings, Vec<FieldError>> {
        settings(
            &Config::from_value(config).unwrap(),
            &Credentials::from_value(creds).unwrap(),
        )
    }

    #[test]
    fn settings_and_errors() {
        let s = parse(
            json!({"server_url": "mqtts://broker:8884", "qos": "0"}),
            json!({"username": "u", "password": "p"}),
        )
        .unwrap();
        assert!(s.endpoint.tls);
        assert_eq!((s.endpoint.port, s.qos), (8884, 0));
        let s = parse(json!({"server_url": "localhost"}), json!({})).unwrap();
        assert_eq!((s.endpoint.port, s.qos), (1883, 1));
        let errors = parse(
            json!({"server_url": "mqtt://h:1883/x", "topic": "a/+/b", "qos": 2}),
            json!({"password": "p"}),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "config.server_url",
            "config.topic",
            "config.qos",
            "credentials.username",
        ] {
            assert!(fields.contains(&f), "{fields:?} lacks {f}");
        }
    }
}
