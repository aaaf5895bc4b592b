//! Which destinations an event goes to: topic subscriptions and Outpost's destination
//! `filter` syntax.
//!
//! A filter is a JSON object matched against the event document
//! `{"id", "topic", "time", "metadata", "data"}` (see [`event_document`]). It follows
//! Outpost's filters (a port of hookdeck's `simple-json-match`):
//!
//! - A plain value means equality (`1` equals `1.0`); against an array field it means
//!   "the array contains it".
//! - A nested object matches nested fields, every member must hold; against an array
//!   field it holds when some element matches. An empty object only matches an object.
//! - An array means every item matches some element of an array field.
//! - Operators: `$eq`/`$neq` (deep equality), `$gt`/`$gte`/`$lt`/`$lte` (numbers
//!   numerically, strings lexically, so RFC 3339 UTC times compare as times), `$in`
//!   (value in a list, substring of a string, or element of an array field), `$nin`,
//!   `$startsWith`/`$endsWith` (a string or any of a list of strings), `$exist`
//!   (`true`/`false`), and the logical `$or`, `$and` (lists of filters) and `$not`.
//! - A type mismatch never matches, and a missing field never satisfies an operator other
//!   than `$exist: false`, `$neq` and `$not`; `$nin` against a field of the wrong type (or
//!   none) does not match either, as in Outpost.
//!
//! Where Outpost silently accepts a filter that can never match, [`Filter::parse`] rejects
//! it with an error naming the path: unknown operators (`$foo`), operands of the wrong
//! type, and top-level fields other than the five of the event document.

mod parse;
mod topics;
mod tree;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use parse::{type_name, Level};
use tree::Node;

pub use topics::{topic_matches, Topics, TopicsError};

/// The top-level fields of the document a filter is matched against.
pub const EVENT_FIELDS: [&str; 5] = ["id", "topic", "time", "metadata", "data"];

/// Deepest nesting of objects, arrays and operators a filter may use.
pub const MAX_DEPTH: usize = 32;

/// A filter that cannot be used, with the path of the offending part
/// (`filter.data.amount`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FilterError {
    /// Where in the filter, starting with `filter`, e.g. `filter.$or[1].data.amount`.
    pub path: String,
    /// What is wrong, e.g. `$gt expects a number or string`.
    pub message: String,
}

/// A parsed destination filter. An absent (`null`) or empty (`{}`) filter matches every
/// event.
///
/// ```
/// use outrider::delivery::filter::Filter;
/// use serde_json::json;
///
/// let filter = json!({"data": {"amount": {"$gte": 100}, "tags": "urgent"}});
/// let filter = Filter::parse(&filter).unwrap();
/// assert!(filter.matches(&json!({"data": {"amount": 250, "tags": ["urgent", "eu"]}})));
/// assert!(!filter.matches(&json!({"data": {"amount": "250", "tags": ["urgent"]}})));
///
/// let err = Filter::parse(&json!({"data": {"amount": {"$gt": [1]}}})).unwrap_err();
/// assert_eq!(err.to_string(), "filter.data.amount: $gt expects a number or string");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Filter {
    raw: Value,
    root: Option<Node>,
}

impl Filter {
    /// Parses and checks a filter as sent in a destination's `filter` field.
    pub fn parse(value: &Value) -> Result<Filter, FilterError> {
        match value {
            Value::Null => Ok(Filter::default()),
            Value::Object(members) if members.is_empty() => Ok(Filter {
                raw: value.clone(),
                root: None,
            }),
            Value::Object(_) => {
                let root = parse::compile(value, Level::Event)?;
                Ok(Filter {
                    raw: value.clone(),
                    root: Some(root),
                })
            }
            other => Err(FilterError {
                path: "filter".into(),
                message: format!("expected an object, got {}", type_name(other)),
            }),
        }
    }

    /// True if the filter lets every event through (`null` or `{}`).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The filter as it was given, for storing and returning through the API.
    pub fn as_value(&self) -> &Value {
        &self.raw
    }

    /// True if the event document (see [`event_document`]) matches the filter.
    pub fn matches(&self, event: &Value) -> bool {
        match &self.root {
            None => true,
            Some(root) => root.matches(Some(event)),
        }
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Filter::parse(&value).map_err(D::Error::custom)
    }
}

/// Builds the document a filter is matched against, as Outpost does: `time` in RFC 3339
/// UTC to the second (`2025-01-01T00:00:00Z`), a `null` `metadata` or `data` as `{}`.
pub fn event_document(
    id: &str,
    topic: &str,
    time: OffsetDateTime,
    metadata: &Value,
    data: &Value,
) -> Value {
    let time = time
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("a UTC date formats");
    let or_empty = |value: &Value| match value {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    let mut document = Map::new();
    document.insert("id".into(), Value::String(id.into()));
    document.insert("topic".into(), Value::String(topic.into()));
    document.insert("time".into(), Value::String(time));
    document.insert("metadata".into(), or_empty(metadata));
    document.insert("data".into(), or_empty(data));
    Value::Object(document)
}

#[cfg(test)]
mod tests;
