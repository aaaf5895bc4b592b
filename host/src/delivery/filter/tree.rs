//! The compiled form of a filter and how it is matched against an event document: the
//! operators' semantics and Outpost's rules for comparing JSON values.

use std::cmp::Ordering;

use serde_json::Value;

/// One compiled part of a filter, matched against a value that may be missing.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// A plain scalar: equal to the value, or contained in an array value.
    Scalar(Value),
    /// A plain array: every item matches some element of an array value.
    Array(Vec<Node>),
    /// A plain object: every clause holds; an empty one only matches an object.
    Object(Vec<Clause>),
}

#[derive(Debug, Clone)]
pub(super) enum Clause {
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
pub(super) enum Comparison {
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
    pub(super) fn matches(&self, input: Option<&Value>) -> bool {
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
