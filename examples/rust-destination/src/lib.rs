//! Example destination: posts each event as a chat message to a Slack-style incoming
//! webhook (`POST {"text": "..."}`), which Slack, Mattermost, Rocket.Chat, Discord's
//! `/slack` endpoint and many others accept.
//!
//! It shows the parts most destinations need: a manifest with config and credential
//! fields and the network access they imply, `validate` reporting every problem by field,
//! an outbound request through the host's `http` import, and the classification of the
//! answer (2xx delivered, 429/5xx retried honouring `Retry-After`, other 4xx failed).
//!
//! Build: `cargo xtask plugins` writes `target/plugins/rust-destination.wasm`.

use outrider_sdk::http::{self, Request};
use outrider_sdk::prelude::*;

struct ChatWebhook;

/// The message when the destination has no `template`.
const DEFAULT_TEMPLATE: &str = "*{{topic}}* `{{id}}`\n```{{data}}```";

impl Plugin for ChatWebhook {
    fn manifest() -> Manifest {
        Manifest::new("rust-destination", env!("CARGO_PKG_VERSION"))
            .description("Example: events as chat messages through an incoming webhook.")
            .prototype(
                Prototype::destination("chat_webhook")
                    .label("Chat webhook")
                    .description("Post each event as a message to a Slack-style incoming webhook.")
                    .instructions(
                        "Create an *incoming webhook* in your chat tool and paste its URL.\n\n\
                         The message text is the `template` with `{{topic}}`, `{{id}}`, \
                         `{{data}}` (the payload as JSON) and `{{data.KEY}}` (one top-level \
                         field of the payload) replaced.",
                    )
                    .config_field(
                        Field::text("url")
                            .label("Webhook URL")
                            .description("The incoming webhook URL (https://hooks.slack.com/...)")
                            .required(),
                    )
                    .config_field(
                        Field::text("template")
                            .label("Message template")
                            .description("Text of the message; see the instructions")
                            .max_length(2000),
                    )
                    .config_field(
                        Field::text("username")
                            .label("Username")
                            .description("Name shown as the sender, where the tool allows it")
                            .max_length(80),
                    )
                    // The host lets the plugin reach the host named in `config.url` and
                    // nothing else.
                    .url_field("url"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts an https URL", "chat_webhook")
                .config(json!({"url": "https://hooks.example.com/T000/B000/XXX"})),
            TestCase::new("requires a URL", "chat_webhook").expect_error(),
            TestCase::new("refuses a URL that is not http(s)", "chat_webhook")
                .config(json!({"url": "ftp://example.com"}))
                .expect_error(),
        ]
    }
}

impl Destination for ChatWebhook {
    fn validate(
        _prototype: &str,
        config: &Config,
        _credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        url(config).map(|_| ()).map_err(|e| vec![e])
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let url = url(&target.config)?;
        let template = target
            .config
            .opt_str("template")?
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TEMPLATE);
        let mut message = json!({ "text": render(template, event) });
        if let Some(name) = target.config.opt_str("username")?.filter(|n| !n.is_empty()) {
            message["username"] = json!(name);
        }
        let request = Request::post(url)
            .json(&message)?
            .header("user-agent", "outrider-example-rust-destination");
        Delivered::check(&http::send(request)?)
    }
}

export_destination!(ChatWebhook);

/// The configured webhook URL, which must be http(s).
fn url(config: &Config) -> Result<&str, FieldError> {
    let url = config.str("url")?;
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url)
    } else {
        Err(config.error("url", "must be an http:// or https:// URL"))
    }
}

/// `template` with `{{topic}}`, `{{id}}`, `{{data}}` and `{{data.KEY}}` replaced; unknown
/// placeholders stay as written so that a typo shows in the message.
fn render(template: &str, event: &Event) -> String {
    let data: Option<Value> = event.data_json().ok();
    let mut out = String::with_capacity(template.len() + event.data.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find("}}") else {
            rest = &rest[start..];
            break;
        };
        let name = rest[start + 2..start + 2 + len].trim();
        match placeholder(name, event, data.as_ref()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + len + 4]),
        }
        rest = &rest[start + len + 4..];
    }
    out.push_str(rest);
    out
}

fn placeholder(name: &str, event: &Event, data: Option<&Value>) -> Option<String> {
    match name {
        "topic" => Some(event.topic.clone()),
        "id" => Some(event.id.clone()),
        "data" => Some(event.data.clone()),
        _ => {
            let key = name.strip_prefix("data.")?;
            match data?.get(key)? {
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event {
            id: "evt_1".into(),
            tenant_id: "acme".into(),
            topic: "order.paid".into(),
            time_ms: 0,
            metadata: Vec::new(),
            data: data.into(),
            attempt: 1,
        }
    }

    #[test]
    fn renders_placeholders() {
        let e = event(r#"{"amount":42,"customer":"Ada"}"#);
        assert_eq!(
            render(
                "{{ topic }}: {{data.customer}} paid {{data.amount}} ({{id}})",
                &e
            ),
            "order.paid: Ada paid 42 (evt_1)"
        );
        assert_eq!(render("{{data}}", &e), e.data);
    }

    #[test]
    fn unknown_or_unclosed_placeholders_stay() {
        let e = event(r#"{"a":1}"#);
        assert_eq!(
            render("x {{nope}} {{data.b}} y", &e),
            "x {{nope}} {{data.b}} y"
        );
        assert_eq!(render("x {{topic", &e), "x {{topic");
    }

    #[test]
    fn validate_names_the_field() {
        let config = Config::from_json(r#"{"url":"ftp://x"}"#).unwrap();
        let errors =
            ChatWebhook::validate("chat_webhook", &config, &Credentials::default()).unwrap_err();
        assert_eq!(errors[0].field, "config.url", "{errors:?}");
    }
}
