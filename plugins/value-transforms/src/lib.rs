//! Outrider's value transformers:
//!
//! - `value_template`: build the output from a JSON template with `{{path}}` placeholders.
//! - `filter`: pass the input on when conditions hold, drop it otherwise.
//! - `jmespath`: evaluate a JMESPath expression on the input; optionally split an array
//!   result into one output per element, and drop `null` results.

mod filter;
mod path;
mod template;

use outrider_sdk::prelude::*;

struct ValueTransforms;

const TEMPLATE_HELP: &str = r#"`template` is any JSON value. Strings may hold `{{path}}`
placeholders: dotted input paths (`user.id`, `items.0.sku`, `$` for the whole input).

```json
{"customer": "{{user.id}}", "subject": "Order {{order.id}} paid", "raw": "{{$}}"}
```

A string that is exactly one placeholder takes the input value with its type."#;

const FILTER_HELP: &str = r#"`conditions` is a list of `{"path", "op", "value"}`:

```json
[{"path": "order.total", "op": "gte", "value": 100}, {"path": "type", "op": "in", "value": ["paid", "refunded"]}]
```

Operators: `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in`, `contains`, `exists`, `not_exists`.
With `match` = `all` (default) every condition must hold, with `any` one is enough. An
input that does not pass is dropped: the delivery is recorded as skipped."#;

const JMESPATH_HELP: &str = r#"`expression` is a [JMESPath](https://jmespath.org) expression
evaluated on the input, e.g. `{id: order.id, skus: items[].sku}` or `items[?qty > `1`]`.
With **Split arrays**, an array result becomes one output per element. A `null` result is
dropped unless **Keep null** is checked."#;

impl Plugin for ValueTransforms {
    fn manifest() -> Manifest {
        Manifest::new("value-transforms", env!("CARGO_PKG_VERSION"))
            .description("Value template, filter and JMESPath transformers.")
            .prototype(
                Prototype::transformer("value_template")
                    .label("Value template")
                    .description(
                        "Builds the output from a JSON template with {{path}} placeholders.",
                    )
                    .instructions(TEMPLATE_HELP)
                    .config_field(
                        Field::json("template")
                            .label("Template")
                            .description("JSON value with {{path}} placeholders")
                            .required(),
                    ),
            )
            .prototype(
                Prototype::transformer("filter")
                    .label("Filter")
                    .description(
                        "Passes the input on when its conditions hold, drops it otherwise.",
                    )
                    .instructions(FILTER_HELP)
                    .config_field(
                        Field::json("conditions")
                            .label("Conditions")
                            .description("List of {path, op, value}")
                            .required(),
                    )
                    .config_field(
                        Field::select("match")
                            .label("Match")
                            .description("Whether all conditions or any one must hold")
                            .option("all", "All conditions")
                            .option("any", "Any condition")
                            .default_value("all"),
                    ),
            )
            .prototype(
                Prototype::transformer("jmespath")
                    .label("JMESPath expression")
                    .description("Evaluates a JMESPath expression on the input.")
                    .instructions(JMESPATH_HELP)
                    .config_field(
                        Field::text("expression")
                            .label("Expression")
                            .description("JMESPath expression, e.g. {id: order.id}")
                            .min_length(1)
                            .required(),
                    )
                    .config_field(
                        Field::checkbox("split_arrays")
                            .label("Split arrays")
                            .description("An array result becomes one output per element")
                            .default_value(false),
                    )
                    .config_field(
                        Field::checkbox("keep_null")
                            .label("Keep null")
                            .description("Output a null result instead of dropping the input")
                            .default_value(false),
                    ),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let order = json!({"order": {"id": 42, "total": 150}, "items": [{"sku": "A"}, {"sku": "B"}], "type": "paid"});
        vec![
            TestCase::new("fills placeholders", "value_template")
                .config(json!({"template": {"id": "{{order.id}}", "text": "Order {{order.id}}", "first": "{{items.0}}"}}))
                .input(order.clone())
                .expect(vec![json!({"id": 42, "text": "Order 42", "first": {"sku": "A"}})]),
            TestCase::new("passes a matching input", "filter")
                .config(json!({"conditions": [{"path": "order.total", "op": "gte", "value": 100}]}))
                .input(order.clone())
                .expect(vec![order.clone()]),
            TestCase::new("drops a non-matching input", "filter")
                .config(json!({"conditions": [{"path": "type", "op": "eq", "value": "refunded"}]}))
                .input(order.clone())
                .expect(vec![]),
            TestCase::new("rejects an unknown operator", "filter")
                .config(json!({"conditions": [{"path": "type", "op": "like"}]}))
                .input(order.clone())
                .expect_error(),
            TestCase::new("projects with an expression", "jmespath")
                .config(json!({"expression": "{id: order.id, skus: items[].sku}"}))
                .input(order.clone())
                .expect(vec![json!({"id": 42, "skus": ["A", "B"]})]),
            TestCase::new("splits an array result", "jmespath")
                .config(json!({"expression": "items", "split_arrays": true}))
                .input(order)
                .expect(vec![json!({"sku": "A"}), json!({"sku": "B"})]),
            TestCase::new("rejects a bad expression", "jmespath")
                .config(json!({"expression": "items[?"}))
                .input(json!({}))
                .expect_error(),
        ]
    }
}

/// A JSON field that Outpost-style clients may also send as JSON text.
fn json_field(config: &Config, key: &str) -> Result<Value, Vec<FieldError>> {
    match config.get(key) {
        Some(Value::String(text)) => outrider_sdk::serde_json::from_str(text)
            .map_err(|e| vec![config.error(key, format!("is not valid JSON: {e}"))]),
        Some(value) => Ok(value.clone()),
        None => Err(vec![config.error(key, "is required")]),
    }
}

fn flag(config: &Config, key: &str) -> Result<bool, Vec<FieldError>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(_) => config.bool(key).map_err(|e| vec![e]),
    }
}

fn compile(config: &Config) -> Result<jmespath::Expression<'static>, Vec<FieldError>> {
    let expression = config.str("expression").map_err(|e| vec![e])?;
    jmespath::compile(expression).map_err(|e| {
        vec![config.error(
            "expression",
            format!("is not a valid JMESPath expression: {e}"),
        )]
    })
}

/// Whether all (or any) conditions hold.
fn passes(config: &Config, input: &Value) -> Result<bool, Vec<FieldError>> {
    let conditions = filter::parse(&json_field(config, "conditions")?)?;
    let any = match config.get("match") {
        None | Some(Value::Null) => false,
        Some(_) => match config.str("match").map_err(|e| vec![e])? {
            "all" => false,
            "any" => true,
            other => {
                return Err(vec![
                    config.error("match", format!("must be all or any, not `{other}`"))
                ])
            }
        },
    };
    Ok(if any {
        conditions.iter().any(|c| c.holds(input))
    } else {
        conditions.iter().all(|c| c.holds(input))
    })
}

impl Transformer for ValueTransforms {
    fn validate(
        prototype: &str,
        config: &Config,
        _credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        match prototype {
            "value_template" => json_field(config, "template").map(|_| ()),
            "filter" => passes(config, &Value::Null).map(|_| ()),
            "jmespath" => {
                compile(config)?;
                flag(config, "split_arrays")?;
                flag(config, "keep_null").map(|_| ())
            }
            other => Err(vec![FieldError::new(
                "prototype",
                format!("unknown prototype `{other}`"),
            )]),
        }
    }

    fn transform(target: &Target, input: Value) -> Result<Vec<Value>, TransformError> {
        let config = &target.config;
        match target.prototype.as_str() {
            "value_template" => Ok(vec![template::render(
                &json_field(config, "template")?,
                &input,
            )]),
            "filter" => Ok(if passes(config, &input)? {
                vec![input]
            } else {
                vec![]
            }),
            "jmespath" => {
                let expression = compile(config)?;
                let result = expression.search(input).map_err(|e| {
                    TransformError::invalid_input(format!("expression failed: {e}"))
                })?;
                let value = outrider_sdk::serde_json::to_value(&*result)
                    .map_err(|e| TransformError::invalid_input(e.to_string()))?;
                Ok(match value {
                    Value::Null if !flag(config, "keep_null")? => vec![],
                    Value::Array(items) if flag(config, "split_arrays")? => items,
                    other => vec![other],
                })
            }
            other => Err(TransformError::misconfigured(format!(
                "unknown prototype `{other}`"
            ))),
        }
    }
}

export_transformer!(ValueTransforms);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every self-test passes against the real implementation, as the host runs them.
    #[test]
    fn self_tests_pass() {
        for test in ValueTransforms::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result =
                <ValueTransforms as Transformer>::validate(&test.prototype, &config, &credentials)
                    .map_err(TransformError::from)
                    .and_then(|_| {
                        let target = Target::new(test.prototype.clone()).with_config(config);
                        ValueTransforms::transform(&target, test.input.clone().unwrap())
                    });
            match (&test.expected, result) {
                (_, Err(e)) => assert!(test.expect_error, "{}: {e}", test.name),
                (Some(expected), Ok(outputs)) => {
                    assert!(!test.expect_error, "{}: expected an error", test.name);
                    assert_eq!(&outputs, expected, "{}", test.name);
                }
                (None, Ok(_)) => assert!(!test.expect_error, "{}", test.name),
            }
        }
    }
}
