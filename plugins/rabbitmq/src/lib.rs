//! Outrider's `rabbitmq` destination: publishes each event to an exchange over AMQP
//! 0-9-1 with publisher confirms, with Outpost's fields (`server_url`, `exchange`, `tls`;
//! `username`, `password`). The routing key is the event topic; headers carry
//! `event-id`, `topic`, `timestamp` and the metadata.
//!
//! The connection handshake (`start`/`tune`/`open`, channel 1, `confirm.select`) happens
//! once per pooled connection; the session blob stored with it remembers the frame size
//! and the next delivery tag, so later deliveries only publish and wait for the ack.
//!
//! It takes deliveries in batches (`batch-destination`): the host hands it the events due
//! for one destination together, and it publishes them back to back on one channel and
//! then collects their confirms, one round trip for the batch.

mod amqp;

use amqp::{ids, ChannelState, Frame, Message, Table, Value};
use broker_common::{deliver, fingerprint, message_metadata, Endpoint, Link, StepError};
use outrider_sdk::prelude::*;
use outrider_sdk::Record;

struct RabbitMq;

const CHANNEL: u16 = 1;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="#FF6600"><path d="M14.3 6.4H9.9a.6.6 0 0 1-.6-.6V1.3a.8.8 0 0 0-.8-.8H6.9a.8.8 0 0 0-.8.8v4.4a.6.6 0 0 1-.6.6H4.2a.6.6 0 0 1-.6-.6V1.3a.8.8 0 0 0-.8-.8H1.2a.8.8 0 0 0-.8.8v13.4a.8.8 0 0 0 .8.8h13.1a.8.8 0 0 0 .8-.8V7.2a.8.8 0 0 0-.8-.8Zm-2.1 5a.9.9 0 0 1-.9.9h-1.1a.9.9 0 0 1-.9-.9v-1.1a.9.9 0 0 1 .9-.9h1.1a.9.9 0 0 1 .9.9Z"/></svg>"##;

const INSTRUCTIONS: &str = "\
Events are published to the exchange with the event topic as routing key, as persistent \
JSON messages (`message-id` is the event id). Headers carry `event-id`, `topic`, \
`timestamp` and the event metadata. Each publish waits for the broker's confirm: a \
`nack` is retried, an unknown exchange or a refused login is reported as a configuration \
problem. Leave the exchange empty to publish through the default exchange to the queue \
named like the topic.

`server_url` is `host:port` (or `amqp://host:port/vhost`, `amqps://...`).";

impl Plugin for RabbitMq {
    fn manifest() -> Manifest {
        Manifest::new("rabbitmq", env!("CARGO_PKG_VERSION"))
            .description("RabbitMQ over AMQP 0-9-1 with publisher confirms.")
            .prototype(
                Prototype::destination("rabbitmq")
                    .label("RabbitMQ")
                    .description("Send events to a RabbitMQ exchange.")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("server_url")
                            .label("Server URL")
                            .description("RabbitMQ server address (host:port)")
                            .required(),
                    )
                    .config_field(
                        Field::text("exchange")
                            .label("Exchange")
                            .description("The exchange to publish to (empty: default exchange)"),
                    )
                    .config_field(
                        Field::select("tls")
                            .label("TLS")
                            .description("Connect with TLS")
                            .option("false", "No")
                            .option("true", "Yes")
                            .default_value("false"),
                    )
                    .credential_field(
                        Field::text("username")
                            .label("Username")
                            .description("RabbitMQ username")
                            .required(),
                    )
                    .credential_field(
                        Field::text("password")
                            .label("Password")
                            .description("RabbitMQ password")
                            .required()
                            .sensitive(),
                    )
                    .url_field("server_url")
                    .tcp(),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts Outpost's example", "rabbitmq")
                .config(json!({"server_url": "localhost:5672", "exchange": "my-exchange", "tls": "false"}))
                .credentials(json!({"username": "guest", "password": "guest"})),
            TestCase::new("requires a server url", "rabbitmq")
                .credentials(json!({"username": "guest", "password": "guest"}))
                .expect_error(),
            TestCase::new("rejects a url with another scheme", "rabbitmq")
                .config(json!({"server_url": "http://localhost:5672"}))
                .credentials(json!({"username": "guest", "password": "guest"}))
                .expect_error(),
        ]
    }
}

/// The parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    endpoint: Endpoint,
    vhost: String,
    exchange: String,
    username: String,
    password: String,
}

fn settings(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let endpoint = Endpoint::from_config(config, ["amqp", "amqps"], 5672, 5671, &mut errors);
    let exchange = config
        .opt_str("exchange")
        .record(&mut errors)
        .flatten()
        .unwrap_or("")
        .to_owned();
    if exchange.len() > 255 {
        errors.push(config.error("exchange", "must be at most 255 bytes"));
    }
    let username = credentials.str("username").record(&mut errors);
    let password = credentials.str("password").record(&mut errors);
    match (endpoint, username, password) {
        (Some(endpoint), Some(username), Some(password)) if errors.is_empty() => {
            let vhost = endpoint.path.clone().unwrap_or_else(|| "/".to_owned());
            Ok(Settings {
                endpoint,
                vhost,
                exchange,
                username: username.to_owned(),
                password: password.to_owned(),
            })
        }
        _ => Err(errors),
    }
}

impl Destination for RabbitMq {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        settings(config, credentials).map(|_| ())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        Self::deliver_batch(target, std::slice::from_ref(event))
            .pop()
            .unwrap_or_else(|| Err(DeliveryError::retry("no result for the event")))
    }
}

impl BatchDestination for RabbitMq {
    /// Publishes every event of the batch on one channel, then waits for their confirms
    /// (pipelined: one round trip for the batch rather than one per event).
    fn deliver_batch(target: &Target, events: &[Event]) -> Vec<Result<Delivered, DeliveryError>> {
        let s = match settings(&target.config, &target.credentials) {
            Ok(s) => s,
            Err(e) => return every(events, DeliveryError::misconfigured(join(&e))),
        };
        let messages: Vec<Message<'_>> = events
            .iter()
            .map(|event| {
                let mut headers = Table::default();
                for (k, v) in message_metadata(target, event) {
                    headers.0.insert(k, Value::Str(v));
                }
                Message {
                    exchange: &s.exchange,
                    routing_key: &event.topic,
                    headers,
                    message_id: &event.id,
                    timestamp: event.time_ms / 1000,
                    body: event.data.as_bytes(),
                }
            })
            .collect();
        let print = fingerprint(&[
            &s.endpoint.address(),
            &s.vhost,
            &s.username,
            &s.password,
            if s.endpoint.tls { "tls" } else { "plain" },
        ]);
        let confirms = deliver(&s.endpoint.connect_options(), &print, |link, resumed| {
            let state = match resumed.and_then(ChannelState::decode) {
                Some(state) => state,
                None => handshake(link, &s)?,
            };
            publish_all(link, state, &messages)
        });
        match confirms {
            Ok(confirms) => confirms
                .into_iter()
                .map(|confirm| {
                    confirm.map(|tag| Delivered {
                        status_code: None,
                        response_body: Some(format!(
                            "confirmed by the broker (delivery tag {tag})"
                        )),
                    })
                })
                .collect(),
            Err(error) => every(events, error),
        }
    }
}

/// The same outcome for every event.
fn every(events: &[Event], error: DeliveryError) -> Vec<Result<Delivered, DeliveryError>> {
    events.iter().map(|_| Err(error.clone())).collect()
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Read one frame, skipping heartbeats.
fn read_frame(link: &mut Link) -> Result<Frame, StepError> {
    loop {
        let head = link.read_exact(7)?;
        let (kind, channel, size) = amqp::frame_header(&head);
        let mut payload = link.read_exact(size + 1)?;
        let end = payload.pop().unwrap_or(0);
        if !amqp::is_frame_end(end) {
            return Err(StepError::Connection("malformed AMQP frame".into()));
        }
        if kind == amqp::FRAME_HEARTBEAT {
            continue;
        }
        return Ok(Frame {
            kind,
            channel,
            payload,
        });
    }
}

/// A close from the broker, classified: a refused login, a missing exchange or vhost is
/// the destination's configuration; anything else (320 connection forced, 541 internal
/// error, ...) is a broken connection, retried.
fn closed(frame: &Frame) -> StepError {
    let reason = amqp::close_reason(frame);
    let message = format!(
        "broker closed the {}: {} {}",
        if frame.method() == Some(ids::CONNECTION_CLOSE) {
            "connection"
        } else {
            "channel"
        },
        reason.code,
        reason.text
    );
    match reason.code {
        403 | 404 | 530 => StepError::broker(DeliveryError::misconfigured(message)),
        406 => StepError::broker(DeliveryError::fail(message)),
        _ => StepError::Connection(message),
    }
}

/// The next frame, which must be `want`; a close is classified.
fn expect(link: &mut Link, want: (u16, u16), during: &str) -> Result<Frame, StepError> {
    let frame = read_frame(link)?;
    match frame.method() {
        Some(m) if m == want => Ok(frame),
        Some(ids::CONNECTION_CLOSE) | Some(ids::CHANNEL_CLOSE) => Err(closed(&frame)),
        other => Err(StepError::Connection(format!(
            "unexpected AMQP frame during {during}: {other:?}"
        ))),
    }
}

/// Connection handshake, channel 1 and confirm mode. A broker that just drops the socket
/// during the login refused it.
fn handshake(link: &mut Link, s: &Settings) -> Result<ChannelState, StepError> {
    link.write(amqp::PROTOCOL_HEADER)?;
    let start = read_frame(link).map_err(|e| match e {
        StepError::Connection(why) => StepError::Connection(format!(
            "no AMQP 0-9-1 greeting from {}: {why}",
            s.endpoint.address()
        )),
        other => other,
    })?;
    if start.method() != Some(ids::CONNECTION_START) {
        return Err(StepError::broker(DeliveryError::misconfigured(format!(
            "{} did not answer as an AMQP 0-9-1 broker",
            s.endpoint.address()
        ))));
    }
    link.write(&amqp::start_ok(&s.username, &s.password))?;
    let tune = match expect(link, ids::CONNECTION_TUNE, "login") {
        Ok(frame) => amqp::negotiate(&mut frame.args())
            .ok_or_else(|| StepError::Connection("malformed connection.tune".into()))?,
        Err(StepError::Connection(why)) if why.contains("closed by peer") => {
            return Err(StepError::broker(DeliveryError::misconfigured(format!(
                "login refused by the broker (connection dropped): {why}"
            ))))
        }
        Err(e) => return Err(e),
    };
    let mut out = amqp::tune_ok(tune);
    out.extend(amqp::open(&s.vhost));
    link.write(&out)?;
    expect(link, ids::CONNECTION_OPEN_OK, "connection.open")?;
    let mut out = amqp::channel_open(CHANNEL);
    out.extend(amqp::confirm_select(CHANNEL));
    link.write(&out)?;
    expect(link, ids::CHANNEL_OPEN_OK, "channel.open")?;
    expect(link, ids::CONFIRM_SELECT_OK, "confirm.select")?;
    Ok(ChannelState {
        frame_max: tune.frame_max,
        next_tag: 1,
    })
}

/// A message's confirm: its delivery tag, or why it must be retried.
type Confirmed = Result<u64, DeliveryError>;

/// Most bytes of publish frames gathered into one write.
const WRITE_CHUNK: usize = 64 * 1024;

/// Publish `messages` back to back, then wait for the confirm of each: its delivery tag,
/// or a retry for a message the broker nacked.
fn publish_all(
    link: &mut Link,
    state: ChannelState,
    messages: &[Message<'_>],
) -> Result<(Vec<Confirmed>, Vec<u8>), StepError> {
    let first = state.next_tag;
    let mut out = Vec::new();
    for message in messages {
        out.extend(amqp::publish(CHANNEL, state.frame_max, message));
        if out.len() >= WRITE_CHUNK {
            link.write(&out)?;
            out.clear();
        }
    }
    if !out.is_empty() {
        link.write(&out)?;
    }
    let next = ChannelState {
        next_tag: first + messages.len() as u64,
        ..state
    };
    let mut confirms = Confirms::new(first, messages.len());
    while !confirms.complete() {
        let frame = read_frame(link)?;
        match frame.method() {
            Some(ids::BASIC_ACK) | Some(ids::BASIC_NACK) => {
                let (tag, multiple) = amqp::ack_args(&frame)
                    .ok_or_else(|| StepError::Connection("malformed basic.ack".into()))?;
                confirms.settle(tag, multiple, frame.method() == Some(ids::BASIC_ACK));
            }
            Some(ids::BASIC_RETURN) => continue, // unroutable; the ack follows
            Some(ids::CONNECTION_CLOSE) | Some(ids::CHANNEL_CLOSE) => return Err(closed(&frame)),
            // The content header and body of a basic.return.
            None if frame.kind == 2 || frame.kind == 3 => continue,
            other => {
                return Err(StepError::Connection(format!(
                    "unexpected AMQP frame while waiting for confirms: {other:?}"
                )))
            }
        }
    }
    Ok((confirms.results(), next.encode()))
}

/// Confirms of the delivery tags `first..first + count`, as they arrive.
struct Confirms {
    first: u64,
    /// Per message: none yet, or acked (true) / nacked (false).
    settled: Vec<Option<bool>>,
    open: usize,
}

impl Confirms {
    fn new(first: u64, count: usize) -> Self {
        Confirms {
            first,
            settled: vec![None; count],
            open: count,
        }
    }

    fn complete(&self) -> bool {
        self.open == 0
    }

    /// A `basic.ack`/`basic.nack` of `tag`, or of every tag up to it when `multiple`.
    /// Tags outside the batch (earlier messages) are ignored.
    fn settle(&mut self, tag: u64, multiple: bool, acked: bool) {
        let from = if multiple { self.first } else { tag };
        for t in from.max(self.first)..=tag {
            let Some(slot) = self.settled.get_mut((t - self.first) as usize) else {
                break;
            };
            if slot.is_none() {
                *slot = Some(acked);
                self.open -= 1;
            }
        }
    }

    fn results(self) -> Vec<Confirmed> {
        let first = self.first;
        self.settled
            .into_iter()
            .enumerate()
            .map(|(i, acked)| match acked {
                Some(true) => Ok(first + i as u64),
                _ => Err(DeliveryError::retry("the broker nacked the message")),
            })
            .collect()
    }
}

export_batch_destination!(RabbitMq);

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
            &config(json!({"server_url": "localhost:5672", "exchange": "events", "tls": "false"})),
            &creds(json!({"username": "guest", "password": "guest"})),
        )
        .unwrap();
        assert_eq!(s.endpoint.port, 5672);
        assert_eq!(s.vhost, "/");
        assert_eq!(s.exchange, "events");
        let s = settings(
            &config(json!({"server_url": "amqps://mq.example.com/prod", "tls": "false"})),
            &creds(json!({"username": "u", "password": "p"})),
        )
        .unwrap();
        assert!(s.endpoint.tls);
        assert_eq!(s.vhost, "prod");
    }

    #[test]
    fn confirms_settle_single_multiple_and_nacks() {
        let mut c = Confirms::new(5, 4); // tags 5, 6, 7, 8
        c.settle(3, true, true); // an earlier batch's confirm: ignored
        assert!(!c.complete());
        c.settle(6, true, true); // 5 and 6
        c.settle(8, false, false); // 8 nacked
        assert!(!c.complete());
        c.settle(9, false, true); // beyond the batch: ignored
        c.settle(7, false, true);
        assert!(c.complete());
        let results = c.results();
        assert_eq!(results[0], Ok(5));
        assert_eq!(results[1], Ok(6));
        assert_eq!(results[2], Ok(7));
        assert!(results[3].is_err());
        // A later multiple ack does not overturn a nack.
        let mut c = Confirms::new(1, 2);
        c.settle(1, false, false);
        c.settle(2, true, true);
        assert!(c.results()[0].is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = settings(
            &config(json!({"server_url": "h:x", "tls": 3})),
            &creds(json!({})),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "config.server_url",
            "config.tls",
            "credentials.username",
            "credentials.password",
        ] {
            assert!(fields.contains(&f), "{fields:?} lacks {f}");
        }
    }
}
