//! Outrider's `nats` destination: publishes each event's data to a subject (a template,
//! `{{event.topic}}` by default) with the metadata as NATS headers, either as a core
//! publish (confirmed by a `PING`/`PONG` round trip, so a refused publish is seen) or as
//! a JetStream publish that waits for the stream's ack. JetStream messages carry
//! `Nats-Msg-Id: <event id>`, so the stream drops duplicates of a retried delivery.
//!
//! The login (`INFO`, `CONNECT`, `PONG`) and the reply-inbox subscription happen once per
//! pooled connection; the session blob keeps the inbox and the request counter.

mod proto;

use broker_common::{
    deliver, fingerprint, message_metadata, render_event, Endpoint, Link, StepError, Template,
};
use outrider_sdk::prelude::*;
use outrider_sdk::{random, serde_json, Record};
use proto::{ServerLine, Session};

struct Nats;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><path fill="#27AAE1" d="M1 1h14v11H9.5L6 15v-3H1z"/><path fill="#fff" d="M4 4h2l4 4.5V4h2v6h-2L6 5.5V10H4z"/></svg>"##;

const INSTRUCTIONS: &str = "\
Each event's data is published to `subject` (a template, `{{event.topic}}` by default) \
with headers `event-id`, `topic`, `timestamp` and the metadata.

With **JetStream** on, the publish waits for the stream's acknowledgement and carries \
`Nats-Msg-Id: <event id>` for de-duplication; a subject no stream captures is reported as \
a configuration problem. Without it, a core publish is confirmed by a `PING` round trip.

Authenticate with `username` and `password`, or a `token`. TLS connects with TLS first, \
which needs `handshake_first` on the server's TLS block.";

impl Plugin for Nats {
    fn manifest() -> Manifest {
        Manifest::new("nats", env!("CARGO_PKG_VERSION"))
            .description("NATS core and JetStream publish.")
            .prototype(
                Prototype::destination("nats")
                    .label("NATS")
                    .description("Publish events to a NATS subject or JetStream stream.")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("server_url")
                            .label("Server URL")
                            .description("NATS server address (host:port or nats://host:port)")
                            .required(),
                    )
                    .config_field(
                        Field::text("subject").label("Subject").description(
                            "Subject to publish to; a template, default {{event.topic}}",
                        ),
                    )
                    .config_field(
                        Field::checkbox("jetstream")
                            .label("JetStream")
                            .description("Publish to JetStream and wait for the stream's ack"),
                    )
                    .config_field(
                        Field::select("tls")
                            .label("TLS")
                            .description("Connect with TLS (handshake first)")
                            .option("false", "No")
                            .option("true", "Yes")
                            .default_value("false"),
                    )
                    .credential_field(Field::text("username").label("Username"))
                    .credential_field(Field::text("password").label("Password").sensitive())
                    .credential_field(Field::text("token").label("Token").sensitive())
                    .url_field("server_url")
                    .tcp(),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts a JetStream subject template", "nats").config(
                json!({"server_url": "nats://localhost:4222", "subject": "events.{{event.topic}}", "jetstream": true}),
            ),
            TestCase::new("requires a server url", "nats").expect_error(),
            TestCase::new("rejects a wildcard subject", "nats")
                .config(json!({"server_url": "localhost:4222", "subject": "events.>"}))
                .expect_error(),
        ]
    }
}

#[derive(Debug, Clone)]
struct Settings {
    endpoint: Endpoint,
    subject: Template,
    jetstream: bool,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

fn settings(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let endpoint = Endpoint::from_config(config, ["nats", "tls"], 4222, 4222, &mut errors);
    if endpoint.as_ref().is_some_and(|e| e.path.is_some()) {
        errors.push(config.error("server_url", "must not have a path"));
    }
    let subject_text = config
        .opt_str("subject")
        .record(&mut errors)
        .flatten()
        .unwrap_or("{{event.topic}}");
    let subject = match Template::parse(subject_text) {
        Ok(t) => {
            // Check the literal parts with placeholders replaced by a plain token.
            let probe = t
                .source()
                .split("{{")
                .map(|part| match part.split_once("}}") {
                    Some((_, after)) => format!("x{after}"),
                    None => part.to_owned(),
                });
            if proto::valid_subject(&probe.collect::<String>()) {
                Some(t)
            } else {
                errors.push(config.error(
                    "subject",
                    "must be dot-separated tokens without spaces or wildcards (* >)",
                ));
                None
            }
        }
        Err(e) => {
            errors.push(config.error("subject", e));
            None
        }
    };
    let jetstream = config
        .bool("jetstream")
        .record(&mut errors)
        .unwrap_or(false);
    let mut cred = |key: &str| {
        credentials
            .opt_str(key)
            .record(&mut errors)
            .flatten()
            .map(str::to_owned)
    };
    let (username, password, token) = (cred("username"), cred("password"), cred("token"));
    if token.is_some() && username.is_some() {
        errors.push(credentials.error("token", "cannot be combined with a username"));
    }
    match (endpoint, subject) {
        (Some(endpoint), Some(subject)) if errors.is_empty() => Ok(Settings {
            endpoint,
            subject,
            jetstream,
            username,
            password,
            token,
        }),
        _ => Err(errors),
    }
}

/// A `-ERR` from the server: login and permission problems are configuration, an
/// oversized message fails the event, anything else broke the connection.
fn server_error(why: &str) -> StepError {
    let lower = why.to_ascii_lowercase();
    let message = format!("NATS server error: {why}");
    if lower.contains("authorization")
        || lower.contains("authentication")
        || lower.contains("permissions")
    {
        StepError::broker(DeliveryError::misconfigured(message))
    } else if lower.contains("maximum payload") {
        StepError::broker(DeliveryError::fail(message))
    } else {
        StepError::Connection(message)
    }
}

/// The next line that is not `INFO`/`+OK`, answering server `PING`s.
fn next_line(link: &mut Link) -> Result<ServerLine, StepError> {
    loop {
        let line = proto::parse_line(&link.read_line()?)?;
        match line {
            ServerLine::Info(_) | ServerLine::Ok => continue,
            ServerLine::Ping => link.write(b"PONG\r\n")?,
            ServerLine::Err(why) => return Err(server_error(&why)),
            other => return Ok(other),
        }
    }
}

/// Wait for the `PONG` of our `PING`, skipping stray messages.
fn wait_pong(link: &mut Link) -> Result<(), StepError> {
    loop {
        match next_line(link)? {
            ServerLine::Pong => return Ok(()),
            ServerLine::Msg { size, .. } => {
                link.read_exact(size + 2)?;
            }
            _ => {}
        }
    }
}

fn login(link: &mut Link, s: &Settings) -> Result<Session, StepError> {
    let greeting = proto::parse_line(&link.read_line()?)?;
    if !matches!(greeting, ServerLine::Info(_)) {
        return Err(StepError::broker(DeliveryError::misconfigured(format!(
            "{} did not greet as a NATS server",
            s.endpoint.address()
        ))));
    }
    let mut out = proto::connect(
        s.username.as_deref(),
        s.password.as_deref(),
        s.token.as_deref(),
        s.endpoint.tls,
    );
    let inbox = if s.jetstream {
        let inbox = format!("_INBOX.{}", hex(&random::bytes(11)));
        out.extend(proto::subscribe(&format!("{inbox}.*"), 1));
        inbox
    } else {
        String::new()
    };
    link.write(&out)?;
    wait_pong(link)?;
    Ok(Session { inbox, next: 1 })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the JetStream ack said.
fn jetstream_ack(payload: &[u8]) -> Result<String, StepError> {
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|_| StepError::Connection("malformed JetStream ack".into()))?;
    if let Some(error) = value.get("error") {
        let code = error.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
        let text = format!("JetStream refused the message: {error}");
        let outcome = match code {
            503 => DeliveryError::retry(text),
            _ => DeliveryError::fail(text),
        };
        return Err(StepError::Broker {
            error: outcome,
            keep: None,
        });
    }
    Ok(format!(
        "stored in stream {} as sequence {}{}",
        value.get("stream").and_then(|s| s.as_str()).unwrap_or("?"),
        value.get("seq").and_then(|s| s.as_u64()).unwrap_or(0),
        if value.get("duplicate").and_then(|d| d.as_bool()) == Some(true) {
            " (duplicate)"
        } else {
            ""
        }
    ))
}

fn publish(
    link: &mut Link,
    session: Session,
    subject: &str,
    headers: &[u8],
    payload: &[u8],
) -> Result<(String, Vec<u8>), StepError> {
    if session.inbox.is_empty() {
        let mut out = proto::hpub(subject, None, headers, payload);
        out.extend_from_slice(b"PING\r\n");
        link.write(&out)?;
        wait_pong(link)?;
        return Ok(("published".to_owned(), session.encode()));
    }
    let reply = format!("{}.{}", session.inbox, session.next);
    let next = Session {
        next: session.next + 1,
        ..session
    };
    link.write(&proto::hpub(subject, Some(&reply), headers, payload))?;
    loop {
        match next_line(link)? {
            ServerLine::Msg {
                subject: to,
                header_len,
                size,
            } => {
                let mut body = link.read_exact(size + 2)?;
                body.truncate(size);
                if to != reply {
                    continue; // the late answer to an earlier, abandoned request
                }
                let (head, payload) = body.split_at(header_len);
                if proto::status(head) == Some(503) {
                    return Err(StepError::Broker {
                        error: DeliveryError::misconfigured(format!(
                            "no JetStream stream captures subject `{subject}` (no responders)"
                        )),
                        keep: Some(next.encode()),
                    });
                }
                let text = jetstream_ack(payload).map_err(|e| match e {
                    StepError::Broker { error, .. } => StepError::Broker {
                        error,
                        keep: Some(next.encode()),
                    },
                    other => other,
                })?;
                return Ok((text, next.encode()));
            }
            _ => continue,
        }
    }
}

impl Destination for Nats {
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
        let mut metadata = message_metadata(target, event);
        let subject = render_event(&s.subject, event, &metadata)
            .map_err(|e| DeliveryError::fail(format!("config.subject: {e}")))?;
        if !proto::valid_subject(&subject) {
            return Err(DeliveryError::fail(format!(
                "config.subject rendered `{subject}`, which is not a valid NATS subject"
            )));
        }
        if s.jetstream {
            metadata.insert("Nats-Msg-Id".to_owned(), event.id.clone());
        }
        let headers = proto::header_block(&metadata);
        let print = fingerprint(&[
            &s.endpoint.address(),
            if s.endpoint.tls { "tls" } else { "plain" },
            if s.jetstream { "js" } else { "core" },
            s.username.as_deref().unwrap_or(""),
            s.password.as_deref().unwrap_or(""),
            s.token.as_deref().unwrap_or(""),
        ]);
        let text = deliver(&s.endpoint.connect_options(), &print, |link, resumed| {
            let session = match resumed.and_then(Session::decode) {
                Some(session) => session,
                None => login(link, &s)?,
            };
            publish(link, session, &subject, &headers, event.data.as_bytes())
        })?;
        Ok(Delivered {
            status_code: None,
            response_body: Some(text),
        })
    }
}

export_destination!(Nats);

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
            json!({"server_url": "nats://127.0.0.1:4222", "jetstream": "true"}),
            json!({}),
        )
        .unwrap();
        assert!(s.jetstream);
        assert_eq!(s.subject.source(), "{{event.topic}}");
        let errors = parse(
            json!({"server_url": "nats://h:4222/x", "subject": "a.*"}),
            json!({"token": "t", "username": "u"}),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"config.server_url"), "{fields:?}");
        assert!(fields.contains(&"config.subject"), "{fields:?}");
        assert!(fields.contains(&"credentials.token"), "{fields:?}");
    }

    #[test]
    fn acks_and_errors() {
        assert_eq!(
            jetstream_ack(br#"{"stream":"EVENTS","seq":7}"#).unwrap(),
            "stored in stream EVENTS as sequence 7"
        );
        assert!(matches!(
            jetstream_ack(br#"{"error":{"code":400,"description":"bad"}}"#),
            Err(StepError::Broker {
                error: DeliveryError::Fail(_),
                ..
            })
        ));
        assert!(matches!(
            server_error("Authorization Violation"),
            StepError::Broker {
                error: DeliveryError::Misconfigured(_),
                ..
            }
        ));
        assert!(matches!(
            server_error("Stale Connection"),
            StepError::Connection(_)
        ));
    }
}
