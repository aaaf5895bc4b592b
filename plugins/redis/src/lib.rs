//! Outrider's `redis` destination: `XADD` each event to a stream (optionally trimmed with
//! `MAXLEN ~ n`) or `PUBLISH` it on a channel, over RESP with `AUTH` and optional TLS.
//!
//! Stream entries have the fields `event_id`, `topic`, `timestamp` (Unix seconds),
//! `metadata` (a JSON object) and `data` (the event payload). `PUBLISH` sends the payload
//! as it is. `AUTH` (and `SELECT`) run once per pooled connection.

mod resp;

use broker_common::{
    deliver, fingerprint, message_metadata, render_event, Endpoint, Link, StepError, Template,
};
use outrider_sdk::prelude::*;
use outrider_sdk::serde_json;
use outrider_sdk::Record;
use resp::Reply;

struct Redis;

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="#D82C20"><path d="M8 1 1 4.2 8 7.4l7-3.2L8 1Zm0 7.6L1 5.4v2.2l7 3.2 7-3.2V5.4L8 8.6Zm0 3.4L1 8.8V11l7 3.2 7-3.2V8.8L8 12Z"/></svg>"##;

const INSTRUCTIONS: &str = "\
**Stream mode** (default) runs `XADD <key> [MAXLEN ~ <max_len>] * event_id <id> topic \
<topic> timestamp <unix seconds> metadata <json> data <payload>`. **Publish mode** runs \
`PUBLISH <key> <payload>`.

`key` is a template, `{{event.topic}}` by default (see the placeholders of the AWS \
destinations: `event.*`, `metadata.*`, `data.*`, `time.*`). `server_url` is `host:port` \
or `redis://host:port/<db>` (`rediss://` for TLS). Set `password` (and `username` for \
Redis 6 ACL users) when the server requires `AUTH`.";

impl Plugin for Redis {
    fn manifest() -> Manifest {
        Manifest::new("redis", env!("CARGO_PKG_VERSION"))
            .description("Redis streams (XADD) and pub/sub (PUBLISH).")
            .prototype(
                Prototype::destination("redis")
                    .label("Redis")
                    .description("Add events to a Redis stream or publish them on a channel.")
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("server_url")
                            .label("Server URL")
                            .description("Redis server address (host:port)")
                            .required(),
                    )
                    .config_field(
                        Field::select("mode")
                            .label("Mode")
                            .description("XADD to a stream, or PUBLISH on a channel")
                            .option("stream", "Stream (XADD)")
                            .option("publish", "Pub/Sub (PUBLISH)")
                            .default_value("stream"),
                    )
                    .config_field(Field::text("key").label("Stream or channel").description(
                        "Stream key or channel name; a template, default {{event.topic}}",
                    ))
                    .config_field(
                        Field::number("max_len")
                            .label("Max length")
                            .description("Trim the stream to about this many entries (MAXLEN ~)"),
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
                            .description("ACL user (Redis 6+), with the password"),
                    )
                    .credential_field(
                        Field::text("password")
                            .label("Password")
                            .description("Sent with AUTH")
                            .sensitive(),
                    )
                    .url_field("server_url")
                    .tcp(),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts a stream with a cap", "redis")
                .config(json!({"server_url": "localhost:6379", "max_len": 1000})),
            TestCase::new("requires a server url", "redis").expect_error(),
            TestCase::new("rejects an unknown mode", "redis")
                .config(json!({"server_url": "localhost:6379", "mode": "lpush"}))
                .expect_error(),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stream,
    Publish,
}

#[derive(Debug, Clone)]
struct Settings {
    endpoint: Endpoint,
    database: Option<u32>,
    mode: Mode,
    key: Template,
    max_len: Option<u64>,
    username: Option<String>,
    password: Option<String>,
}

fn settings(config: &Config, credentials: &Credentials) -> Result<Settings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let endpoint = Endpoint::from_config(config, ["redis", "rediss"], 6379, 6379, &mut errors);
    let database = match endpoint.as_ref().and_then(|e| e.path.as_deref()) {
        None => None,
        Some(db) => match db.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(config.error("server_url", "path must be a database number"));
                None
            }
        },
    };
    let mode = match config.opt_str("mode") {
        Ok(None) | Ok(Some("stream")) => Mode::Stream,
        Ok(Some("publish")) => Mode::Publish,
        Ok(Some(_)) => {
            errors.push(config.error("mode", "must be stream or publish"));
            Mode::Stream
        }
        Err(e) => {
            errors.push(e);
            Mode::Stream
        }
    };
    let key_text = config
        .opt_str("key")
        .record(&mut errors)
        .flatten()
        .unwrap_or("{{event.topic}}");
    let key = Template::parse(key_text)
        .map_err(|e| errors.push(config.error("key", e)))
        .ok();
    let max_len = match config.opt_number("max_len") {
        Ok(None) => None,
        Ok(Some(n)) if n >= 1.0 && n.fract() == 0.0 && n <= 1e15 => Some(n as u64),
        Ok(Some(_)) => {
            errors.push(config.error("max_len", "must be a positive whole number"));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let username = credentials
        .opt_str("username")
        .record(&mut errors)
        .flatten();
    let password = credentials
        .opt_str("password")
        .record(&mut errors)
        .flatten();
    if username.is_some() && password.is_none() {
        errors.push(credentials.error("password", "is required with a username"));
    }
    match (endpoint, key) {
        (Some(endpoint), Some(key)) if errors.is_empty() => Ok(Settings {
            endpoint,
            database,
            mode,
            key,
            max_len,
            username: username.map(str::to_owned),
            password: password.map(str::to_owned),
        }),
        _ => Err(errors),
    }
}

struct Replies<'a>(&'a mut Link);

impl resp::Source for Replies<'_> {
    type Error = StepError;
    fn line(&mut self) -> Result<Vec<u8>, StepError> {
        self.0.read_line()
    }
    fn exact(&mut self, n: usize) -> Result<Vec<u8>, StepError> {
        self.0.read_exact(n)
    }
}

fn call<A: AsRef<[u8]>>(link: &mut Link, args: &[A]) -> Result<Reply, StepError> {
    link.write(&resp::command(args))?;
    resp::read(&mut Replies(link))
}

/// An error reply: login and permission problems are configuration, `LOADING`/`BUSY`/
/// `TRYAGAIN`/`MASTERDOWN` are transient, anything else rejects this event.
fn classify(error: &str, during: &str) -> DeliveryError {
    let code = error.split_whitespace().next().unwrap_or("");
    let message = format!("redis refused {during}: {error}");
    match code {
        "NOAUTH" | "WRONGPASS" | "NOPERM" | "WRONGTYPE" => DeliveryError::misconfigured(message),
        "LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "READONLY" => {
            DeliveryError::retry(message)
        }
        "ERR" if error.contains("AUTH") || error.contains("invalid password") => {
            DeliveryError::misconfigured(message)
        }
        _ => DeliveryError::fail(message),
    }
}

fn login(link: &mut Link, s: &Settings) -> Result<(), StepError> {
    if let Some(password) = &s.password {
        let reply = match &s.username {
            Some(user) => call(link, &["AUTH", user.as_str(), password.as_str()])?,
            None => call(link, &["AUTH", password.as_str()])?,
        };
        if let Reply::Error(e) = reply {
            return Err(StepError::broker(classify(&e, "AUTH")));
        }
    }
    if let Some(db) = s.database {
        if let Reply::Error(e) = call(link, &["SELECT", &db.to_string()])? {
            return Err(StepError::broker(DeliveryError::misconfigured(format!(
                "redis refused SELECT {db}: {e}"
            ))));
        }
    }
    Ok(())
}

/// The command for `event`.
fn command(s: &Settings, target: &Target, event: &Event) -> Result<Vec<Vec<u8>>, DeliveryError> {
    let metadata = message_metadata(target, event);
    let key = render_event(&s.key, event, &metadata)
        .map_err(|e| DeliveryError::fail(format!("config.key: {e}")))?;
    let mut args: Vec<Vec<u8>> = Vec::new();
    match s.mode {
        Mode::Publish => {
            args.push(b"PUBLISH".to_vec());
            args.push(key.into_bytes());
            args.push(event.data.clone().into_bytes());
        }
        Mode::Stream => {
            args.push(b"XADD".to_vec());
            args.push(key.into_bytes());
            if let Some(n) = s.max_len {
                args.extend([
                    b"MAXLEN".to_vec(),
                    b"~".to_vec(),
                    n.to_string().into_bytes(),
                ]);
            }
            args.push(b"*".to_vec());
            let meta = serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into());
            for (field, value) in [
                ("event_id", event.id.clone()),
                ("topic", event.topic.clone()),
                ("timestamp", (event.time_ms / 1000).to_string()),
                ("metadata", meta),
                ("data", event.data.clone()),
            ] {
                args.push(field.as_bytes().to_vec());
                args.push(value.into_bytes());
            }
        }
    }
    Ok(args)
}

impl Destination for Redis {
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
        let args = command(&s, target, event)?;
        let print = fingerprint(&[
            &s.endpoint.address(),
            if s.endpoint.tls { "tls" } else { "plain" },
            s.username.as_deref().unwrap_or(""),
            s.password.as_deref().unwrap_or(""),
            &s.database.map(|d| d.to_string()).unwrap_or_default(),
        ]);
        let reply = deliver(&s.endpoint.connect_options(), &print, |link, resumed| {
            if resumed.is_none() {
                login(link, &s)?;
            }
            match call(link, &args)? {
                Reply::Error(e) => Err(StepError::Broker {
                    error: classify(
                        &e,
                        if s.mode == Mode::Stream {
                            "XADD"
                        } else {
                            "PUBLISH"
                        },
                    ),
                    keep: Some(Vec::new()),
                }),
                reply => Ok((reply, Vec::new())),
            }
        })?;
        let body = match reply {
            Reply::Bulk(Some(id)) => format!("stream entry {}", String::from_utf8_lossy(&id)),
            Reply::Integer(n) => format!("published to {n} subscribers"),
            other => format!("{other:?}"),
        };
        Ok(Delivered {
            status_code: None,
            response_body: Some(body),
        })
    }
}

export_destination!(Redis);

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: "evt_1".into(),
            tenant_id: "acme".into(),
            topic: "order.paid".into(),
            time_ms: 1_700_000_000_000,
            metadata: vec![("k".into(), "v".into())],
            data: r#"{"a":1}"#.into(),
            attempt: 1,
        }
    }

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
    fn xadd_with_maxlen_and_fields() {
        let s = parse(json!({"server_url": "127.0.0.1:6379", "max_len": 100, "key": "events.{{event.topic}}"}), json!({})).unwrap();
        let args = command(&s, &Target::new("redis"), &event()).unwrap();
        let text: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            &text[..6],
            ["XADD", "events.order.paid", "MAXLEN", "~", "100", "*"]
        );
        assert_eq!(text[6..8], ["event_id", "evt_1"]);
        assert_eq!(text.last().unwrap(), r#"{"a":1}"#);
        assert!(text.iter().any(|t| t.contains(r#""k":"v""#)));
    }

    #[test]
    fn publish_sends_the_payload() {
        let s = parse(
            json!({"server_url": "redis://h:6380/2", "mode": "publish"}),
            json!({"password": "pw"}),
        )
        .unwrap();
        assert_eq!(s.database, Some(2));
        assert_eq!(s.endpoint.port, 6380);
        let args = command(&s, &Target::new("redis"), &event()).unwrap();
        assert_eq!(
            args,
            vec![
                b"PUBLISH".to_vec(),
                b"order.paid".to_vec(),
                br#"{"a":1}"#.to_vec()
            ]
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let errors = parse(
            json!({"server_url": "redis://h/x", "mode": "lpush", "max_len": -3, "key": "{{nope}}"}),
            json!({"username": "u"}),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "config.server_url",
            "config.mode",
            "config.max_len",
            "config.key",
            "credentials.password",
        ] {
            assert!(fields.contains(&f), "{fields:?} lacks {f}");
        }
    }

    #[test]
    fn error_replies_are_classified() {
        assert!(matches!(
            classify("WRONGPASS invalid username-password pair", "AUTH"),
            DeliveryError::Misconfigured(_)
        ));
        assert!(matches!(
            classify("LOADING Redis is loading", "XADD"),
            DeliveryError::Retry { .. }
        ));
        assert!(matches!(
            classify("ERR The ID specified in XADD is equal or smaller", "XADD"),
            DeliveryError::Fail(_)
        ));
    }
}
