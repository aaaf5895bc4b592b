//! `filter`: passes the input through unchanged when its conditions hold (all of them,
//! or any with `match: any`), and drops it otherwise (no output: a skipped delivery).
//! A condition is `{"path": "order.total", "op": "gte", "value": 100}` with `op` one of
//! `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in`, `contains`, `exists`, `not_exists`.

use outrider_sdk::serde_json::Value;
use outrider_sdk::FieldError;

use crate::path::lookup;

/// One checked condition.
#[derive(Debug, Clone)]
pub struct Condition {
    path: String,
    op: Op,
    value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    Exists,
    NotExists,
}

/// Parse the `conditions` list.
pub fn parse(conditions: &Value) -> Result<Vec<Condition>, Vec<FieldError>> {
    let Value::Array(items) = conditions else {
        return Err(vec![FieldError::new(
            "config.conditions",
            "must be a list of {path, op, value} objects",
        )]);
    };
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |what: &str| format!("config.conditions[{i}].{what}");
        let path = item.get("path").and_then(Value::as_str);
        let op = item.get("op").and_then(Value::as_str).unwrap_or("eq");
        let op = match op {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "contains" => Op::Contains,
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            other => {
                errors.push(FieldError::new(
                    at("op"),
                    format!("unknown operator `{other}` (eq, ne, gt, gte, lt, lte, in, contains, exists, not_exists)"),
                ));
                continue;
            }
        };
        let Some(path) = path else {
            errors.push(FieldError::new(
                at("path"),
                "is required (a dotted input path)",
            ));
            continue;
        };
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        if op == Op::In && !value.is_array() {
            errors.push(FieldError::new(at("value"), "must be a list for `in`"));
            continue;
        }
        out.push(Condition {
            path: path.to_owned(),
            op,
            value,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Condition {
    /// Whether `input` satisfies the condition.
    pub fn holds(&self, input: &Value) -> bool {
        use std::cmp::Ordering::*;
        let found = lookup(input, &self.path);
        match (self.op, found) {
            (Op::Exists, found) => found.is_some(),
            (Op::NotExists, found) => found.is_none(),
            (_, None) => self.op == Op::Ne,
            (Op::Eq, Some(v)) => v == &self.value,
            (Op::Ne, Some(v)) => v != &self.value,
            (Op::Gt, Some(v)) => compare(v, &self.value) == Some(Greater),
            (Op::Gte, Some(v)) => matches!(compare(v, &self.value), Some(Greater | Equal)),
            (Op::Lt, Some(v)) => compare(v, &self.value) == Some(Less),
            (Op::Lte, Some(v)) => matches!(compare(v, &self.value), Some(Less | Equal)),
            (Op::In, Some(v)) => self.value.as_array().is_some_and(|list| list.contains(v)),
            (Op::Contains, Some(Value::Array(items))) => items.contains(&self.value),
            (Op::Contains, Some(Value::String(s))) => {
                self.value.as_str().is_some_and(|needle| s.contains(needle))
            }
            (Op::Contains, Some(_)) => false,
        }
    }
}
