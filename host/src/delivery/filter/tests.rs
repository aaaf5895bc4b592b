//! Tests of `filter`, grouped by what they cover; the helpers they share are here.

mod document;
mod errors;
mod operators;
mod simple_json_match;
mod topics;

use serde_json::{json, Value};

use super::parse::{compile, Level};
use super::{event_document, Filter};

/// Matches `input` against a schema the way nested filter values are matched.
fn matches(input: Value, schema: Value) -> bool {
    let node = compile(&schema, Level::Value)
        .unwrap_or_else(|e| panic!("schema {schema} should parse: {e}"));
    node.matches(Some(&input))
}

fn parse_error(filter: Value) -> String {
    Filter::parse(&filter)
        .expect_err("filter should be rejected")
        .to_string()
}

fn event() -> Value {
    let time = time::macros::datetime!(2025-01-15 10:30:00.250 +02:00);
    event_document(
        "evt_1",
        "order.created",
        time,
        &json!({"source": "api"}),
        &json!({
            "status": "paid",
            "amount": 250,
            "currency": "usd",
            "email": "ann@example.com",
            "customer": {"tier": "premium"},
            "tags": ["urgent", "support"],
            "discount_code": null
        }),
    )
}

fn filter_matches(filter: Value) -> bool {
    Filter::parse(&filter)
        .unwrap_or_else(|e| panic!("{filter} should parse: {e}"))
        .matches(&event())
}
