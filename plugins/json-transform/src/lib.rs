//! Outrider's JSON transformers.
//!
//! `json_map` builds one output object from an input: `mapping` maps each output field
//! (dotted names create nested objects) to a dotted input path (`user.id`,
//! `items.0.sku`) or to a literal (`{"$literal": value}`). With `drop_unmapped` (the
//! default) the output holds only the mapped fields; without it, the input's other
//! fields are kept. Input paths that are missing leave their output field out.

mod mapping;

use outrider_sdk::prelude::*;

struct JsonTransform;

const INSTRUCTIONS: &str = r#"`mapping` is a JSON object from output field to input path:

```json
{
  "id": "user.id",
  "email": "user.contact.email",
  "first_item.sku": "items.0.sku",
  "source": {"$literal": "outrider"}
}
```

- Input paths are dot-separated; numeric segments index arrays. A missing path leaves
  its output field out.
- Dotted output fields create nested objects.
- `{"$literal": value}` sets a fixed value.
- With **Drop unmapped fields** checked (default) the output contains only the mapped
  fields; unchecked, the input's other fields are kept and mapped fields are added."#;

impl Plugin for JsonTransform {
    fn manifest() -> Manifest {
        Manifest::new("json-transform", env!("CARGO_PKG_VERSION"))
            .description("JSON transformers: map fields from one shape to another.")
            .prototype(
                Prototype::transformer("json_map")
                    .label("JSON map")
                    .description("Builds an object from input paths and literals.")
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::json("mapping")
                            .label("Mapping")
                            .description(
                                "Object of output field -> dotted input path, or \
                                 {\"$literal\": value}",
                            )
                            .required(),
                    )
                    .config_field(
                        Field::checkbox("drop_unmapped")
                            .label("Drop unmapped fields")
                            .description(
                                "Output only the mapped fields; uncheck to keep the input's \
                                 other fields",
                            )
                            .default_value(true),
                    ),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        let order = json!({
            "user": {"id": 7, "contact": {"email": "ada@example.com"}},
            "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
            "note": "gift",
        });
        vec![
            TestCase::new("maps paths and literals", "json_map")
                .config(json!({
                    "mapping": {
                        "id": "user.id",
                        "email": "user.contact.email",
                        "source": {"$literal": "outrider"},
                    },
                    "drop_unmapped": true,
                }))
                .input(order.clone())
                .expect(vec![
                    json!({"id": 7, "email": "ada@example.com", "source": "outrider"}),
                ]),
            TestCase::new("indexes arrays into nested outputs", "json_map")
                .config(
                    json!({"mapping": {"first.sku": "items.0.sku", "first.qty": "items.0.qty"}}),
                )
                .input(order.clone())
                .expect(vec![json!({"first": {"sku": "A1", "qty": 2}})]),
            TestCase::new("keeps unmapped fields", "json_map")
                .config(json!({"mapping": {"user_id": "user.id"}, "drop_unmapped": false}))
                .input(json!({"user": {"id": 7}, "note": "gift"}))
                .expect(vec![
                    json!({"user": {"id": 7}, "note": "gift", "user_id": 7}),
                ]),
            TestCase::new("leaves missing paths out", "json_map")
                .config(json!({"mapping": {"id": "user.id", "phone": "user.phone"}}))
                .input(order)
                .expect(vec![json!({"id": 7})]),
            TestCase::new("rejects a non-path mapping", "json_map")
                .config(json!({"mapping": {"id": 5}}))
                .input(json!({}))
                .expect_error(),
        ]
    }
}

impl Transformer for JsonTransform {
    fn validate(
        _prototype: &str,
        config: &Config,
        _credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        load(config).map(|_| ())
    }

    fn transform(target: &Target, input: Value) -> Result<Vec<Value>, TransformError> {
        let mapping = load(&target.config)?;
        let output = mapping::apply(&mapping, &input).map_err(TransformError::invalid_input)?;
        Ok(vec![output])
    }
}

/// The checked mapping of a `json_map` configuration. `drop_unmapped` defaults to true.
fn load(config: &Config) -> Result<mapping::Mapping, Vec<FieldError>> {
    let drop_unmapped = match config.get("drop_unmapped") {
        None => true,
        Some(_) => config.bool("drop_unmapped").map_err(|e| vec![e])?,
    };
    let mapping = config.get("mapping");
    // Outpost-style clients may send JSON fields as text.
    let parsed;
    let mapping = match mapping {
        Some(Value::String(text)) => {
            parsed = outrider_sdk::serde_json::from_str::<Value>(text)
                .map_err(|_| vec![config.error("mapping", "must be a JSON object")])?;
            Some(&parsed)
        }
        other => other,
    };
    mapping::parse(mapping, drop_unmapped)
}

export_transformer!(JsonTransform);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every self-test passes against the real implementation, as the host would run it.
    #[test]
    fn self_tests_pass() {
        for test in JsonTransform::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let validated =
                <JsonTransform as Transformer>::validate("json_map", &config, &credentials);
            let target = Target::new("json_map").with_config(config);
            let result = validated
                .map_err(|e| TransformError::misconfigured(format!("{e:?}")))
                .and_then(|_| JsonTransform::transform(&target, test.input.clone().unwrap()));
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

    #[test]
    fn mapping_may_arrive_as_json_text() {
        let config = Config::from_value(json!({"mapping": "{\"id\": \"user.id\"}"})).unwrap();
        let target = Target::new("json_map").with_config(config);
        let out = JsonTransform::transform(&target, json!({"user": {"id": 1}})).unwrap();
        assert_eq!(out, [json!({"id": 1})]);
    }

    #[test]
    fn manifest_declares_json_map() {
        let manifest = JsonTransform::manifest();
        let p = &manifest.prototypes[0];
        assert_eq!(
            (p.id.as_str(), p.kind),
            ("json_map", outrider_sdk::PrototypeKind::Transformer)
        );
        assert_eq!(p.config_fields[1].default.as_deref(), Some("true"));
    }
}
