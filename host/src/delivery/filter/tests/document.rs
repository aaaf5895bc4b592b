//! Whole filters against the event document: Outpost's documented examples, the empty
//! filter, and serde.

use serde_json::{json, Value};

use super::{event, filter_matches};
use crate::delivery::filter::{event_document, Filter};

#[test]
fn event_document_has_outpost_shape() {
    let doc = event_document(
        "e",
        "t",
        time::macros::datetime!(2025-01-15 10:30:00.250 +02:00),
        &Value::Null,
        &Value::Null,
    );
    assert_eq!(
        doc,
        json!({"id": "e", "topic": "t", "time": "2025-01-15T08:30:00Z", "metadata": {}, "data": {}})
    );
}

/// The examples of Outpost's filter documentation.
#[test]
fn outpost_documentation_examples() {
    assert!(filter_matches(
        json!({"topic": "order.created", "data": {"status": "paid"}, "metadata": {"source": "api"}})
    ));
    assert!(filter_matches(
        json!({"data": {"status": "paid", "currency": "usd"}})
    ));
    assert!(!filter_matches(
        json!({"data": {"status": "paid", "currency": "eur"}})
    ));
    assert!(filter_matches(
        json!({"data": {"customer": {"tier": "premium"}}})
    ));
    assert!(filter_matches(json!({"data": {"tags": "urgent"}})));
    assert!(filter_matches(json!({"data": {"amount": {"$gte": 100}}})));
    assert!(filter_matches(
        json!({"data": {"amount": {"$gte": 100, "$lt": 500}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"amount": {"$gte": 100, "$lt": 200}}})
    ));
    assert!(filter_matches(
        json!({"data": {"status": {"$in": ["pending", "paid", "completed"]}}})
    ));
    assert!(filter_matches(
        json!({"data": {"email": {"$endsWith": "@example.com"}}})
    ));
    assert!(filter_matches(
        json!({"data": {"discount_code": {"$exist": true}}})
    ));
    assert!(filter_matches(
        json!({"data": {"deleted_at": {"$exist": false}}})
    ));
    assert!(filter_matches(
        json!({"$or": [{"data": {"status": "paid"}}, {"data": {"status": "shipped"}}]})
    ));
    assert!(filter_matches(
        json!({"$and": [{"data": {"status": "paid"}}, {"data": {"amount": {"$gte": 100}}}]})
    ));
    assert!(filter_matches(
        json!({"data": {"status": {"$not": {"$in": ["cancelled", "refunded"]}}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"status": {"$not": {"$in": ["paid", "refunded"]}}}})
    ));
    assert!(filter_matches(json!({"metadata": {"source": "api"}})));
    assert!(filter_matches(
        json!({"time": {"$gte": "2025-01-01T00:00:00Z", "$lt": "2025-02-01T00:00:00Z"}})
    ));
    assert!(!filter_matches(
        json!({"time": {"$gte": "2025-02-01T00:00:00Z"}})
    ));
    assert!(filter_matches(json!({"data": {"amount": {"$gte": 100}}})));
    assert!(filter_matches(json!({"id": "evt_1"})));
}

#[test]
fn empty_and_null_filters_match_everything() {
    for filter in [json!(null), json!({})] {
        let parsed = Filter::parse(&filter).unwrap();
        assert!(parsed.is_empty());
        assert!(parsed.matches(&event()));
        assert!(parsed.matches(&json!({})));
        assert_eq!(parsed.as_value(), &filter);
    }
    assert!(Filter::default().is_empty());
}

#[test]
fn serde_round_trip() {
    let raw = json!({"data": {"amount": {"$gte": 100}}});
    let filter: Filter = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(serde_json::to_value(&filter).unwrap(), raw);
    assert_eq!(filter, Filter::parse(&raw).unwrap());
    let err = serde_json::from_value::<Filter>(json!({"data": {"a": {"$x": 1}}})).unwrap_err();
    assert_eq!(err.to_string(), "filter.data.a: unknown operator `$x`");
    let none: Filter = serde_json::from_value(Value::Null).unwrap();
    assert!(none.is_empty());
}
