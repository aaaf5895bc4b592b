//! The `json_map` mapping: output fields (dotted, creating nested objects) taken from
//! dotted input paths (`user.id`, `items.0.sku`) or given as `{"$literal": value}`.

use outrider_sdk::serde_json::{Map, Value};
use outrider_sdk::FieldError;

/// Where an output field's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A path into the input; object keys, or array indexes for numeric segments.
    Path(Vec<String>),
    /// A fixed value.
    Literal(Value),
}

/// One output field.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Output field path (nested objects are created).
    pub output: Vec<String>,
    pub source: Source,
}

/// A checked mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub rules: Vec<Rule>,
    /// Whether input fields that are not mapped are left out (`true`) or kept (`false`).
    pub drop_unmapped: bool,
}

const LITERAL: &str = "$literal";

fn segments(path: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    parts.iter().all(|p| !p.is_empty()).then_some(parts)
}

/// Checks the `mapping` value, reporting every problem by field
/// (`config.mapping.<output>`).
pub fn parse(mapping: Option<&Value>, drop_unmapped: bool) -> Result<Mapping, Vec<FieldError>> {
    let object = match mapping {
        None => return Err(vec![FieldError::new("config.mapping", "is required")]),
        Some(Value::Object(o)) if !o.is_empty() => o,
        Some(Value::Object(_)) => {
            return Err(vec![FieldError::new(
                "config.mapping",
                "must map at least one field",
            )])
        }
        Some(_) => {
            return Err(vec![FieldError::new(
                "config.mapping",
                "must be an object of output field -> input path",
            )])
        }
    };
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for (output, source) in object {
        let field = format!("config.mapping.{output}");
        let Some(output_path) = segments(output) else {
            errors.push(FieldError::new(
                field,
                "is not a valid output field (empty segment)",
            ));
            continue;
        };
        let source = match source {
            Value::String(path) => match segments(path) {
                Some(path) => Source::Path(path),
                None => {
                    errors.push(FieldError::new(
                        field,
                        "must be a dotted input path like `user.id`",
                    ));
                    continue;
                }
            },
            Value::Object(o) if o.len() == 1 && o.contains_key(LITERAL) => {
                Source::Literal(o[LITERAL].clone())
            }
            _ => {
                errors.push(FieldError::new(
                    field,
                    "must be a dotted input path like `user.id` or {\"$literal\": value}",
                ));
                continue;
            }
        };
        rules.push(Rule {
            output: output_path,
            source,
        });
    }
    // An output field cannot also be the parent of another (`a` and `a.b`).
    for rule in &rules {
        for other in &rules {
            if other.output.len() > rule.output.len() && other.output.starts_with(&rule.output) {
                errors.push(FieldError::new(
                    format!("config.mapping.{}", other.output.join(".")),
                    format!("conflicts with output field `{}`", rule.output.join(".")),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(Mapping {
            rules,
            drop_unmapped,
        })
    } else {
        Err(errors)
    }
}

/// Looks `path` up in `value`; numeric segments index arrays.
pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(o) => o.get(segment),
            Value::Array(a) => segment.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

/// Applies the mapping. Paths missing from the input leave their output field out.
pub fn apply(mapping: &Mapping, input: &Value) -> Result<Value, String> {
    let mut output = if mapping.drop_unmapped {
        Map::new()
    } else {
        match input {
            Value::Object(o) => o.clone(),
            _ => return Err("input must be a JSON object to keep unmapped fields".into()),
        }
    };
    for rule in &mapping.rules {
        let value = match &rule.source {
            Source::Literal(v) => v.clone(),
            Source::Path(path) => match lookup(input, path) {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        set(&mut output, &rule.output, value)?;
    }
    Ok(Value::Object(output))
}

fn set(object: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("paths are non-empty");
    let mut current = object;
    for (depth, segment) in parents.iter().enumerate() {
        let slot = current
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match slot {
            Value::Object(o) => o,
            _ => {
                return Err(format!(
                    "cannot set `{}`: `{}` is not an object",
                    path.join("."),
                    path[..=depth].join(".")
                ))
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json::json;

    fn mapping(m: Value, drop: bool) -> Mapping {
        parse(Some(&m), drop).unwrap()
    }

    #[test]
    fn maps_paths_literals_and_nested_outputs() {
        let m = mapping(
            json!({
                "id": "user.id",
                "first.sku": "items.0.sku",
                "source": {"$literal": {"name": "outrider"}},
                "missing": "user.nope",
            }),
            true,
        );
        let input = json!({"user": {"id": 7}, "items": [{"sku": "A1"}], "extra": 1});
        assert_eq!(
            apply(&m, &input).unwrap(),
            json!({"id": 7, "first": {"sku": "A1"}, "source": {"name": "outrider"}})
        );
    }

    #[test]
    fn keeps_unmapped_fields_when_asked() {
        let m = mapping(json!({"user_id": "user.id"}), false);
        let input = json!({"user": {"id": 7}, "extra": 1});
        assert_eq!(
            apply(&m, &input).unwrap(),
            json!({"user": {"id": 7}, "extra": 1, "user_id": 7})
        );
        assert!(apply(&m, &json!([1]))
            .unwrap_err()
            .contains("must be a JSON object"));
        let clash = mapping(json!({"extra.x": "user.id"}), false);
        assert_eq!(
            apply(&clash, &input).unwrap_err(),
            "cannot set `extra.x`: `extra` is not an object"
        );
    }

    #[test]
    fn lookup_handles_arrays_and_scalars() {
        let v = json!({"a": [10, {"b": true}]});
        let path = |p: &str| segments(p).unwrap();
        assert_eq!(lookup(&v, &path("a.1.b")), Some(&json!(true)));
        assert_eq!(lookup(&v, &path("a.5")), None);
        assert_eq!(lookup(&v, &path("a.x")), None);
        assert_eq!(lookup(&v, &path("a.0.c")), None);
    }

    #[test]
    fn reports_every_problem_by_field() {
        let errors: Vec<String> = parse(
            Some(&json!({
                "ok": "a.b",
                "num": 5,
                "empty": "",
                "bad..out": "x",
                "lit": {"$literal": 1, "extra": 2},
                "ok.child": "c",
            })),
            true,
        )
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            errors,
            [
                "config.mapping.bad..out is not a valid output field (empty segment)",
                "config.mapping.empty must be a dotted input path like `user.id`",
                "config.mapping.lit must be a dotted input path like `user.id` or {\"$literal\": value}",
                "config.mapping.num must be a dotted input path like `user.id` or {\"$literal\": value}",
                "config.mapping.ok.child conflicts with output field `ok`",
            ]
        );
        assert_eq!(
            parse(None, true).unwrap_err()[0].to_string(),
            "config.mapping is required"
        );
        assert_eq!(
            parse(Some(&json!({})), true).unwrap_err()[0].to_string(),
            "config.mapping must map at least one field"
        );
        assert_eq!(
            parse(Some(&json!("user.id")), true).unwrap_err()[0].to_string(),
            "config.mapping must be an object of output field -> input path"
        );
    }
}
