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

use std::cmp::Ordering;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

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
                let root = Parser { depth: 0 }.node(value, &mut Path::root(), Level::Event)?;
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

// ------------------------------------------------------------------------------------
// Topics
// ------------------------------------------------------------------------------------

/// The topics a destination subscribes to: all of them, or a list in which `*` matches
/// any run of characters (`user.*`).
///
/// Deserialises from `"*"`, `["*"]` or a non-empty list of non-empty strings; serialises
/// as Outpost answers it, `["*"]` for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// Every topic (`"*"` or `["*"]`).
    All,
    /// These topics or topic patterns.
    List(Vec<String>),
}

/// A topic list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicsError {
    /// Neither `"*"` nor a list of topics.
    #[error("topics: expected \"*\" or a non-empty array of topics")]
    Shape,
    /// An empty string in the list.
    #[error("topics[{0}]: must not be empty")]
    EmptyTopic(usize),
    /// A topic that is not among the configured ones, or a pattern matching none of them.
    #[error("topics[{index}]: `{topic}` is not an available topic")]
    Unavailable {
        /// Position in the list.
        index: usize,
        /// The topic or pattern.
        topic: String,
    },
}

impl Topics {
    /// Builds a topic list, turning `["*"]` into [`Topics::All`].
    pub fn from_list(topics: Vec<String>) -> Result<Topics, TopicsError> {
        if topics.is_empty() {
            return Err(TopicsError::Shape);
        }
        if let Some(index) = topics.iter().position(String::is_empty) {
            return Err(TopicsError::EmptyTopic(index));
        }
        if topics.len() == 1 && topics[0] == "*" {
            return Ok(Topics::All);
        }
        Ok(Topics::List(topics))
    }

    /// True if an event of `topic` goes to a destination with these topics
    /// (see [`topic_matches`]).
    pub fn matches(&self, topic: &str) -> bool {
        topic_matches(self, topic)
    }

    /// Checks the list against the operator's configured topics (Outpost's `TOPICS`):
    /// every plain topic must be one of them and every pattern must match at least one.
    /// With no configured topics anything goes.
    pub fn validate_against(&self, available: &[String]) -> Result<(), TopicsError> {
        let Topics::List(topics) = self else {
            return Ok(());
        };
        if available.is_empty() {
            return Ok(());
        }
        for (index, topic) in topics.iter().enumerate() {
            if !available
                .iter()
                .any(|candidate| wildcard_match(topic, candidate))
            {
                return Err(TopicsError::Unavailable {
                    index,
                    topic: topic.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Serialize for Topics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Topics::All => ["*"].serialize(serializer),
            Topics::List(topics) => topics.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Topics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        match Wire::deserialize(deserializer).map_err(|_| D::Error::custom(TopicsError::Shape))? {
            Wire::One(star) if star == "*" => Ok(Topics::All),
            Wire::One(_) => Err(D::Error::custom(TopicsError::Shape)),
            Wire::Many(list) => Topics::from_list(list).map_err(D::Error::custom),
        }
    }
}

/// True if an event published with `topic` goes to a destination subscribed to `topics`.
///
/// As in Outpost, an event published without a topic (`""`) or with `*` goes to every
/// destination. Otherwise [`Topics::All`] matches everything and a list matches when one
/// entry equals the topic or, as a pattern, matches it (`*` stands for any run of
/// characters, including none).
pub fn topic_matches(topics: &Topics, topic: &str) -> bool {
    if topic.is_empty() || topic == "*" {
        return true;
    }
    match topics {
        Topics::All => true,
        Topics::List(list) => list.iter().any(|pattern| wildcard_match(pattern, topic)),
    }
}

/// Glob match where `*` is the only special character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` seen, and the text position it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((after_star, tried)) = backtrack {
            p = after_star;
            t = tried + 1;
            backtrack = Some((after_star, tried + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

// ------------------------------------------------------------------------------------
// Filter syntax tree
// ------------------------------------------------------------------------------------

/// One compiled part of a filter, matched against a value that may be missing.
#[derive(Debug, Clone)]
enum Node {
    /// A plain scalar: equal to the value, or contained in an array value.
    Scalar(Value),
    /// A plain array: every item matches some element of an array value.
    Array(Vec<Node>),
    /// A plain object: every clause holds; an empty one only matches an object.
    Object(Vec<Clause>),
}

#[derive(Debug, Clone)]
enum Clause {
    Field(String, Node),
    Eq(Value),
    Neq(Value),
    Compare(Comparison, Value),
    In(Value),
    Nin(Value),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Exist(bool),
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Gt => ordering == Ordering::Greater,
            Comparison::Gte => ordering != Ordering::Less,
            Comparison::Lt => ordering == Ordering::Less,
            Comparison::Lte => ordering != Ordering::Greater,
        }
    }
}

impl Node {
    fn matches(&self, input: Option<&Value>) -> bool {
        match self {
            Node::Scalar(expected) => match input {
                Some(Value::Array(items)) => items.iter().any(|item| loose_eq(item, expected)),
                Some(value) => loose_eq(value, expected),
                None => false,
            },
            Node::Array(nodes) => match input {
                Some(Value::Array(items)) => nodes
                    .iter()
                    .all(|node| items.iter().any(|item| node.matches(Some(item)))),
                _ => false,
            },
            Node::Object(clauses) if clauses.is_empty() => matches!(input, Some(Value::Object(_))),
            Node::Object(clauses) => clauses.iter().all(|clause| clause.holds(input)),
        }
    }
}

impl Clause {
    fn holds(&self, input: Option<&Value>) -> bool {
        match self {
            Clause::Field(key, node) => match input {
                Some(Value::Object(members)) => node.matches(members.get(key)),
                Some(Value::Array(items)) => items.iter().any(|item| match item {
                    Value::Object(members) => node.matches(members.get(key)),
                    _ => false,
                }),
                _ => node.matches(None),
            },
            Clause::Eq(expected) => input.is_some_and(|value| deep_eq(value, expected)),
            Clause::Neq(expected) => !input.is_some_and(|value| deep_eq(value, expected)),
            Clause::Compare(comparison, bound) => input
                .and_then(|value| order(value, bound))
                .is_some_and(|o| comparison.holds(o)),
            Clause::In(operand) => membership(input, operand) == Some(true),
            Clause::Nin(operand) => membership(input, operand) == Some(false),
            Clause::StartsWith(prefixes) => match input {
                Some(Value::String(s)) => prefixes.iter().any(|p| s.starts_with(p.as_str())),
                _ => false,
            },
            Clause::EndsWith(suffixes) => match input {
                Some(Value::String(s)) => suffixes.iter().any(|p| s.ends_with(p.as_str())),
                _ => false,
            },
            Clause::Exist(expected) => input.is_some() == *expected,
            Clause::Or(nodes) => nodes.iter().any(|node| node.matches(input)),
            Clause::And(nodes) => nodes.iter().all(|node| node.matches(input)),
            Clause::Not(node) => !node.matches(input),
        }
    }
}

/// `$in`: `None` when the operator does not apply to this value (so neither `$in` nor
/// `$nin` matches), else whether the value is in.
fn membership(input: Option<&Value>, operand: &Value) -> Option<bool> {
    let value = input?;
    match (value, operand) {
        (Value::Array(_) | Value::Object(_), Value::Array(_)) => None,
        (_, Value::Array(list)) => Some(list.iter().any(|item| loose_eq(value, item))),
        (Value::String(s), Value::String(sub)) => Some(s.contains(sub.as_str())),
        (Value::Array(items), scalar) => Some(items.iter().any(|item| loose_eq(item, scalar))),
        _ => None,
    }
}

/// Equality of scalars as Outpost compares them: numbers by value, otherwise same type
/// and value. Arrays and objects are never loosely equal.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(_), Value::Number(_)) => order(a, b) == Some(Ordering::Equal),
        _ => false,
    }
}

/// Deep equality for `$eq`: numbers by value, objects regardless of member order.
fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| deep_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => loose_eq(a, b),
    }
}

/// Order of two numbers (exactly for integers) or two strings (by bytes); `None` for
/// anything else.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                Some(x.cmp(&y))
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                Some(x.cmp(&y))
            } else {
                x.as_f64()?.partial_cmp(&y.as_f64()?)
            }
        }
        _ => None,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

// ------------------------------------------------------------------------------------
// Parsing
// ------------------------------------------------------------------------------------

/// Whether a node applies to the whole event document (its fields must be event fields)
/// or to a value inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    Event,
    Value,
}

/// The path to the part being parsed, for error messages.
struct Path(String);

impl Path {
    fn root() -> Path {
        Path("filter".into())
    }

    fn error(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            path: self.0.clone(),
            message: message.into(),
        }
    }

    /// Runs `f` with `segment` appended to the path.
    fn with<T>(&mut self, segment: fmt::Arguments<'_>, f: impl FnOnce(&mut Path) -> T) -> T {
        let len = self.0.len();
        fmt::Write::write_fmt(&mut self.0, segment).expect("writing to a String");
        let result = f(self);
        self.0.truncate(len);
        result
    }
}

struct Parser {
    depth: usize,
}

impl Parser {
    fn node(&mut self, value: &Value, path: &mut Path, level: Level) -> Result<Node, FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(path.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let node = match value {
            Value::Object(members) => self.object(members, path, level).map(Node::Object),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    path.with(format_args!("[{i}]"), |p| self.node(item, p, Level::Value))
                })
                .collect::<Result<_, _>>()
                .map(Node::Array),
            scalar => Ok(Node::Scalar(scalar.clone())),
        };
        self.depth -= 1;
        node
    }

    fn object(
        &mut self,
        members: &Map<String, Value>,
        path: &mut Path,
        level: Level,
    ) -> Result<Vec<Clause>, FilterError> {
        let mut clauses = Vec::with_capacity(members.len());
        for (key, operand) in members {
            let clause = if key.starts_with('$') {
                self.operator(key, operand, path, level)?
            } else {
                if level == Level::Event && !EVENT_FIELDS.contains(&key.as_str()) {
                    return Err(path.with(format_args!(".{key}"), |p| {
                        p.error(format!(
                            "unknown field; expected one of {}",
                            EVENT_FIELDS.join(", ")
                        ))
                    }));
                }
                let node = path.with(format_args!(".{key}"), |p| {
                    self.node(operand, p, Level::Value)
                })?;
                Clause::Field(key.clone(), node)
            };
            clauses.push(clause);
        }
        Ok(clauses)
    }

    fn operator(
        &mut self,
        op: &str,
        operand: &Value,
        path: &mut Path,
        level: Level,
    ) -> Result<Clause, FilterError> {
        let expect = |what: &str| path.error(format!("{op} expects {what}"));
        Ok(match op {
            "$eq" => Clause::Eq(operand.clone()),
            "$neq" => Clause::Neq(operand.clone()),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if !matches!(operand, Value::Number(_) | Value::String(_)) {
                    return Err(expect("a number or string"));
                }
                let comparison = match op {
                    "$gt" => Comparison::Gt,
                    "$gte" => Comparison::Gte,
                    "$lt" => Comparison::Lt,
                    _ => Comparison::Lte,
                };
                Clause::Compare(comparison, operand.clone())
            }
            "$in" | "$nin" => {
                let valid = match operand {
                    Value::Array(items) => items.iter().all(is_scalar),
                    Value::Object(_) => false,
                    _ => true,
                };
                if !valid {
                    return Err(expect("an array of scalar values, or a scalar"));
                }
                if op == "$in" {
                    Clause::In(operand.clone())
                } else {
                    Clause::Nin(operand.clone())
                }
            }
            "$startsWith" | "$endsWith" => {
                let strings = match operand {
                    Value::String(s) => Some(vec![s.clone()]),
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>(),
                    _ => None,
                };
                let strings =
                    strings.ok_or_else(|| expect("a string or a non-empty array of strings"))?;
                if op == "$startsWith" {
                    Clause::StartsWith(strings)
                } else {
                    Clause::EndsWith(strings)
                }
            }
            "$exist" => match operand {
                Value::Bool(expected) => Clause::Exist(*expected),
                _ => return Err(expect("true or false")),
            },
            "$or" | "$and" => {
                let items = match operand {
                    Value::Array(items) if !items.is_empty() => items,
                    _ => return Err(expect("a non-empty array of filters")),
                };
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.with(format_args!(".{op}[{i}]"), |p| self.node(item, p, level))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if op == "$or" {
                    Clause::Or(nodes)
                } else {
                    Clause::And(nodes)
                }
            }
            "$not" => {
                let node = path.with(format_args!(".$not"), |p| self.node(operand, p, level))?;
                Clause::Not(Box::new(node))
            }
            unknown => return Err(path.error(format!("unknown operator `{unknown}`"))),
        })
    }
}

#[cfg(test)]
mod tests;
