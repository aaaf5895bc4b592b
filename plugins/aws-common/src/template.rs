//! Key templates: S3 object keys, Kinesis partition keys, EventBridge detail types and
//! SQS FIFO message groups built from event fields.
//!
//! Text outside `{{ }}` is copied; each `{{ }}` is replaced by a value:
//!
//! | Placeholder | Value |
//! |---|---|
//! | `event.id`, `event.topic`, `event.tenant_id` | the event's id, topic, tenant |
//! | `event.time` | event time, RFC 3339 with milliseconds (`2024-05-01T12:00:00.000Z`) |
//! | `time.year` `time.month` `time.day` `time.hour` `time.minute` `time.second` | event time fields, zero-padded (UTC) |
//! | `time.date` `time.datetime` `time.unix` `time.unix_ms` `time.rfc3339` `time.rfc3339_nano` | `2024-05-01`, `2024-05-01T12:00:00`, Unix seconds, Unix ms, RFC 3339, RFC 3339 with the fraction |
//! | `metadata.KEY` | metadata value (`event-id`, `topic`, `timestamp`, delivery and event metadata) |
//! | `data.a.b.0` | a value inside the event data (object keys and array indexes); `data` is the whole payload |
//!
//! Strings are inserted as they are, numbers and booleans as text, objects and arrays as
//! compact JSON. Alternatives separated by `|` are tried in order and the first non-empty
//! one is used; a quoted string (`"none"` or `'none'`) always has a value:
//! `{{ data.customer_id | metadata.customer | "anonymous" }}`. A placeholder with no
//! value is an error naming it.
//!
//! Example: `{{event.topic}}/{{time.date}}/{{event.id}}.json` renders
//! `order.paid/2024-05-01/evt_123.json`.

use crate::clock::DateTime;
use outrider_sdk::serde_json::Value;
use outrider_sdk::Event;
use std::collections::BTreeMap;
use std::fmt;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// Alternatives, the first with a non-empty value wins.
    Placeholder(Vec<Term>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Literal(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    EventId,
    EventTopic,
    EventTenant,
    EventTime,
    Time(TimeField),
    Metadata(String),
    Data(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    Datetime,
    Unix,
    UnixMs,
    Rfc3339,
    Rfc3339Nano,
}

const TIME_FIELDS: [(&str, TimeField); 12] = [
    ("year", TimeField::Year),
    ("month", TimeField::Month),
    ("day", TimeField::Day),
    ("hour", TimeField::Hour),
    ("minute", TimeField::Minute),
    ("second", TimeField::Second),
    ("date", TimeField::Date),
    ("datetime", TimeField::Datetime),
    ("unix", TimeField::Unix),
    ("unix_ms", TimeField::UnixMs),
    ("rfc3339", TimeField::Rfc3339),
    ("rfc3339_nano", TimeField::Rfc3339Nano),
];

/// What a template is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The event.
    pub event: &'a Event,
    /// Merged metadata (see [`crate::metadata::merged`]).
    pub metadata: &'a BTreeMap<String, String>,
    /// The event data parsed as JSON, if it is JSON.
    pub data: Option<&'a Value>,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// The placeholder that had no value, as written.
    pub placeholder: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{{{{{}}}}}` has no value for this event",
            self.placeholder
        )
    }
}

impl std::error::Error for RenderError {}

impl Template {
    /// Parses `text`; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("has an unclosed `{{{{` at `{}`", &rest[start..]))?;
            parts.push(Part::Placeholder(parse_placeholder(&after[..end])?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any placeholder reads the event data (so it must be parsed).
    pub fn uses_data(&self) -> bool {
        self.parts.iter().any(|p| match p {
            Part::Placeholder(terms) => terms.iter().any(|t| matches!(t, Term::Var(Var::Data(_)))),
            Part::Text(_) => false,
        })
    }

    /// Renders the template for one event.
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, RenderError> {
        let time = DateTime::from_unix_millis(ctx.event.time_ms);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Placeholder(terms) => {
                    let value = terms
                        .iter()
                        .map(|t| evaluate(t, ctx, &time))
                        .find(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
                        .flatten()
                        .ok_or_else(|| RenderError {
                            placeholder: describe(terms),
                        })?;
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }
}

fn parse_placeholder(inner: &str) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    for raw in split_alternatives(inner)? {
        let term = raw.trim();
        if term.is_empty() {
            return Err(format!("has an empty placeholder in `{{{{{inner}}}}}`"));
        }
        let quoted = |q: char| term.len() >= 2 && term.starts_with(q) && term.ends_with(q);
        if quoted('"') || quoted('\'') {
            terms.push(Term::Literal(term[1..term.len() - 1].to_string()));
        } else {
            terms.push(Term::Var(parse_var(term)?));
        }
    }
    Ok(terms)
}

/// Splits on `|` outside quotes.
fn split_alternatives(inner: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '|') => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            (None, _) => {}
        }
    }
    if quote.is_some() {
        return Err(format!("has an unclosed quote in `{{{{{inner}}}}}`"));
    }
    parts.push(&inner[start..]);
    Ok(parts)
}

fn parse_var(term: &str) -> Result<Var, String> {
    let (root, rest) = match term.split_once('.') {
        Some((root, rest)) => (root, Some(rest)),
        None => (term, None),
    };
    let unknown = || {
        format!(
            "has an unknown placeholder `{term}` (use event.id, event.topic, event.tenant_id, \
             event.time, time.*, metadata.KEY or data.PATH)"
        )
    };
    match (root, rest) {
        ("event", Some("id")) => Ok(Var::EventId),
        ("event", Some("topic")) => Ok(Var::EventTopic),
        ("event", Some("tenant_id")) => Ok(Var::EventTenant),
        ("event", Some("time")) => Ok(Var::EventTime),
        ("time", Some(field)) => TIME_FIELDS
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, f)| Var::Time(*f))
            .ok_or_else(|| {
                let names: Vec<_> = TIME_FIELDS.iter().map(|(n, _)| *n).collect();
                format!(
                    "has an unknown placeholder `{term}` (time fields: {})",
                    names.join(", ")
                )
            }),
        ("metadata", Some(key)) if !key.is_empty() => Ok(Var::Metadata(key.to_string())),
        ("data", None) => Ok(Var::Data(Vec::new())),
        ("data", Some(path)) => {
            let segments: Vec<String> = path.split('.').map(str::to_string).collect();
            if segments.iter().any(String::is_empty) {
                return Err(format!("has an empty path segment in `{term}`"));
            }
            Ok(Var::Data(segments))
        }
        _ => Err(unknown()),
    }
}

fn evaluate(term: &Term, ctx: &Context<'_>, time: &DateTime) -> Option<String> {
    let var = match term {
        Term::Literal(text) => return Some(text.clone()),
        Term::Var(var) => var,
    };
    Some(match var {
        Var::EventId => ctx.event.id.clone(),
        Var::EventTopic => ctx.event.topic.clone(),
        Var::EventTenant => ctx.event.tenant_id.clone(),
        Var::EventTime => time.rfc3339_millis(),
        Var::Time(field) => match field {
            TimeField::Year => format!("{:04}", time.year),
            TimeField::Month => format!("{:02}", time.month),
            TimeField::Day => format!("{:02}", time.day),
            TimeField::Hour => format!("{:02}", time.hour),
            TimeField::Minute => format!("{:02}", time.minute),
            TimeField::Second => format!("{:02}", time.second),
            TimeField::Date => time.date(),
            TimeField::Datetime => time.datetime(),
            TimeField::Unix => time.unix_seconds().to_string(),
            TimeField::UnixMs => time.unix_ms.to_string(),
            TimeField::Rfc3339 => time.rfc3339(),
            TimeField::Rfc3339Nano => time.rfc3339_nano(),
        },
        Var::Metadata(key) => ctx.metadata.get(key)?.clone(),
        Var::Data(path) => {
            let mut value = ctx.data?;
            for segment in path {
                value = match value {
                    Value::Object(map) => map.get(segment)?,
                    Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            match value {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            }
        }
    })
}

fn describe(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|t| match t {
            Term::Literal(s) => format!("\"{s}\""),
            Term::Var(v) => match v {
                Var::EventId => "event.id".into(),
                Var::EventTopic => "event.topic".into(),
                Var::EventTenant => "event.tenant_id".into(),
                Var::EventTime => "event.time".into(),
                Var::Time(f) => format!(
                    "time.{}",
                    TIME_FIELDS
                        .iter()
                        .find(|(_, x)| x == f)
                        .map(|(n, _)| *n)
                        .unwrap_or("?")
                ),
                Var::Metadata(k) => format!("metadata.{k}"),
                Var::Data(p) if p.is_empty() => "data".into(),
                Var::Data(p) => format!("data.{}", p.join(".")),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Renders `template` for `event` with `metadata`, parsing the event data only when the
/// template reads it.
pub fn render_event(
    template: &Template,
    event: &Event,
    metadata: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    let data = if template.uses_data() {
        event.data_json().ok()
    } else {
        None
    };
    template.render(&Context {
        event,
        metadata,
        data: data.as_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata;

    fn event() -> Event {
        Event {
            id: "evt_123".into(),
            tenant_id: "acme".into(),
            topic: "order.paid".into(),
            // 2024-05-01T12:03:04.560Z
            time_ms: 1_714_564_984_560,
            metadata: vec![("region".into(), "eu".into())],
            data: r#"{"order":{"id":42,"lines":[{"sku":"A-1"}],"gift":false,"note":null},"customer":"c9"}"#
                .into(),
            attempt: 1,
        }
    }

    fn render(template: &str) -> Result<String, String> {
        let e = event();
        let m = metadata::merged(&e, &[], 1_714_564_999);
        let t = Template::parse(template)?;
        render_event(&t, &e, &m).map_err(|e| e.to_string())
    }

    #[test]
    fn renders_event_fields() {
        assert_eq!(
            render("{{event.topic}}/{{event.id}}.json").unwrap(),
            "order.paid/evt_123.json"
        );
        assert_eq!(
            render("{{ event.tenant_id }}/{{event.time}}").unwrap(),
            "acme/2024-05-01T12:03:04.560Z"
        );
        assert_eq!(
            render("{{time.year}}/{{time.month}}/{{time.day}}/{{time.hour}}{{time.minute}}{{time.second}}")
                .unwrap(),
            "2024/05/01/120304"
        );
        assert_eq!(
            render("{{time.date}} {{time.datetime}} {{time.unix}} {{time.unix_ms}}").unwrap(),
            "2024-05-01 2024-05-01T12:03:04 1714564984 1714564984560"
        );
        assert_eq!(
            render("{{time.rfc3339}} {{time.rfc3339_nano}}").unwrap(),
            "2024-05-01T12:03:04Z 2024-05-01T12:03:04.56Z"
        );
        assert_eq!(
            render("{{time.rfc3339_nano}}_{{metadata.event-id}}.json").unwrap(),
            "2024-05-01T12:03:04.56Z_evt_123.json",
            "the equivalent of Outpost's default S3 key"
        );
        assert_eq!(render("plain").unwrap(), "plain");
        assert_eq!(render("").unwrap(), "");
        assert_eq!(render("a}}b").unwrap(), "a}}b");
    }

    #[test]
    fn renders_metadata_and_data() {
        assert_eq!(
            render("{{metadata.region}}-{{metadata.topic}}-{{metadata.timestamp}}").unwrap(),
            "eu-order.paid-1714564999"
        );
        assert_eq!(
            render("{{data.customer}}/{{data.order.id}}/{{data.order.lines.0.sku}}/{{data.order.gift}}")
                .unwrap(),
            "c9/42/A-1/false"
        );
        assert_eq!(
            render("{{data.order.lines}}").unwrap(),
            r#"[{"sku":"A-1"}]"#
        );
    }

    #[test]
    fn alternatives_and_missing_values() {
        assert_eq!(
            render("{{ data.missing | metadata.region }}").unwrap(),
            "eu"
        );
        assert_eq!(
            render(r#"{{data.order.note | "none"}}"#).unwrap(),
            "none",
            "null counts as missing"
        );
        assert_eq!(render("{{data.x | 'a|b'}}").unwrap(), "a|b");
        assert_eq!(
            render("{{data.order.lines.9.sku}}").unwrap_err(),
            "`{{data.order.lines.9.sku}}` has no value for this event"
        );
        assert_eq!(
            render("{{data.nope | metadata.nope}}").unwrap_err(),
            "`{{data.nope | metadata.nope}}` has no value for this event"
        );
    }

    #[test]
    fn data_that_is_not_json_has_no_values() {
        let mut e = event();
        e.data = "not json".into();
        let m = BTreeMap::new();
        let t = Template::parse("{{data.customer | event.id}}").unwrap();
        assert!(t.uses_data());
        assert_eq!(render_event(&t, &e, &m).unwrap(), "evt_123");
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        for (template, message) in [
            ("{{event.id", "has an unclosed `{{` at `{{event.id`"),
            ("{{}}", "has an empty placeholder in `{{}}`"),
            ("{{ event.id | }}", "has an empty placeholder in `{{ event.id | }}`"),
            ("{{event.name}}", "has an unknown placeholder `event.name` (use event.id, event.topic, event.tenant_id, event.time, time.*, metadata.KEY or data.PATH)"),
            ("{{time.week}}", "has an unknown placeholder `time.week` (time fields: year, month, day, hour, minute, second, date, datetime, unix, unix_ms, rfc3339, rfc3339_nano)"),
            ("{{data..a}}", "has an empty path segment in `data..a`"),
            ("{{metadata.}}", "has an unknown placeholder `metadata.` (use event.id, event.topic, event.tenant_id, event.time, time.*, metadata.KEY or data.PATH)"),
            ("{{'open}}", "has an unclosed quote in `{{'open}}`"),
            ("{{id}}", "has an unknown placeholder `id` (use event.id, event.topic, event.tenant_id, event.time, time.*, metadata.KEY or data.PATH)"),
        ] {
            assert_eq!(Template::parse(template).unwrap_err(), message, "{template}");
        }
        assert!(!Template::parse("{{event.id}}").unwrap().uses_data());
    }
}
