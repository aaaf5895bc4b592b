//! Parsing and checking a filter into its compiled form ([`Node`]), with errors that name
//! the path of the offending part.

use std::fmt;

use serde_json::{Map, Value};

use super::tree::{Clause, Comparison, Node};
use super::{FilterError, EVENT_FIELDS, MAX_DEPTH};

/// Parses `value` as a filter node applying at `level`.
pub(super) fn compile(value: &Value, level: Level) -> Result<Node, FilterError> {
    Parser { depth: 0 }.node(value, &mut Path::root(), level)
}

/// Whether a node applies to the whole event document (its fields must be event fields)
/// or to a value inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Level {
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
        match op {
            "$or" | "$and" => {
                let items = match operand {
                    Value::Array(items) if !items.is_empty() => items,
                    _ => {
                        return Err(path.error(format!("{op} expects a non-empty array of filters")))
                    }
                };
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.with(format_args!(".{op}[{i}]"), |p| self.node(item, p, level))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "$or" {
                    Clause::Or(nodes)
                } else {
                    Clause::And(nodes)
                })
            }
            "$not" => {
                let node = path.with(format_args!(".$not"), |p| self.node(operand, p, level))?;
                Ok(Clause::Not(Box::new(node)))
            }
            _ => value_operator(op, operand).map_err(|message| path.error(message)),
        }
    }
}

/// An operator whose operand is a value rather than a filter, or the message saying why
/// it cannot be used.
fn value_operator(op: &str, operand: &Value) -> Result<Clause, String> {
    let expect = |what: &str| format!("{op} expects {what}");
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
        unknown => return Err(format!("unknown operator `{unknown}`")),
    })
}

pub(super) fn type_name(value: &Value) -> &'static str {
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
