//! The operators' edge cases: numbers, type mismatches, missing fields, `$in`/`$nin`,
//! deep `$eq`, and the logical operators at the top level.

use serde_json::json;

use super::filter_matches;
use crate::delivery::filter::Filter;

#[test]
fn numbers_compare_by_value() {
    assert!(filter_matches(json!({"data": {"amount": 250.0}})));
    assert!(filter_matches(json!({"data": {"amount": {"$eq": 2.5e2}}})));
    assert!(filter_matches(
        json!({"data": {"amount": {"$gt": 249.5, "$lte": 250}}})
    ));
    assert!(filter_matches(
        json!({"data": {"amount": {"$in": [1, 250.0]}}})
    ));
    // Beyond f64's exact range, integers still compare exactly.
    let big = json!({"data": {"n": 9007199254740993_u64}});
    let f = Filter::parse(&json!({"data": {"n": {"$gt": 9007199254740992_u64}}})).unwrap();
    assert!(f.matches(&big));
    let f = Filter::parse(&json!({"data": {"n": {"$gt": -1}}})).unwrap();
    assert!(f.matches(&big));
}

#[test]
fn type_mismatches_never_match() {
    assert!(!filter_matches(json!({"data": {"amount": "250"}})));
    assert!(!filter_matches(json!({"data": {"amount": {"$gt": "100"}}})));
    assert!(!filter_matches(
        json!({"data": {"amount": {"$lte": "999"}}})
    ));
    assert!(!filter_matches(json!({"data": {"status": {"$gt": 1}}})));
    assert!(!filter_matches(
        json!({"data": {"amount": {"$startsWith": "2"}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"customer": {"$in": ["premium"]}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"customer": {"$nin": ["premium"]}}})
    ));
    assert!(!filter_matches(json!({"data": {"amount": {"$in": "25"}}})));
    assert!(!filter_matches(json!({"data": {"amount": {"$nin": "25"}}})));
    assert!(!filter_matches(json!({"data": {"status": true}})));
}

#[test]
fn missing_fields() {
    assert!(!filter_matches(json!({"data": {"missing": null}})));
    assert!(!filter_matches(json!({"data": {"missing": {"$eq": null}}})));
    assert!(filter_matches(json!({"data": {"missing": {"$neq": "x"}}})));
    assert!(!filter_matches(json!({"data": {"missing": {"$gt": 1}}})));
    assert!(!filter_matches(
        json!({"data": {"missing": {"$in": ["a"]}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"missing": {"$nin": ["a"]}}})
    ));
    assert!(filter_matches(
        json!({"data": {"missing": {"deeper": {"$exist": false}}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"missing": {"deeper": {"$exist": true}}}})
    ));
    assert!(filter_matches(
        json!({"data": {"missing": {"$not": {"$in": ["a"]}}}})
    ));
}

#[test]
fn in_and_nin() {
    assert!(filter_matches(
        json!({"data": {"status": {"$nin": ["cancelled", "refunded"]}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"status": {"$nin": ["paid"]}}})
    ));
    assert!(filter_matches(
        json!({"data": {"email": {"$in": "@example"}}})
    ));
    assert!(filter_matches(
        json!({"data": {"tags": {"$in": "support"}}})
    ));
    assert!(filter_matches(
        json!({"data": {"tags": {"$nin": "billing"}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"tags": {"$in": ["support"]}}})
    ));
    assert!(filter_matches(
        json!({"data": {"discount_code": {"$in": [null, "x"]}}})
    ));
}

#[test]
fn eq_is_deep_and_order_insensitive_for_objects() {
    assert!(filter_matches(
        json!({"data": {"customer": {"$eq": {"tier": "premium"}}}})
    ));
    assert!(filter_matches(
        json!({"data": {"tags": {"$eq": ["urgent", "support"]}}})
    ));
    assert!(!filter_matches(
        json!({"data": {"tags": {"$eq": ["support", "urgent"]}}})
    ));
    assert!(filter_matches(
        json!({"data": {"customer": {"$neq": {"tier": "basic"}}}})
    ));
    let doc = json!({"data": {"a": {"x": 1, "y": [1.0, {"z": true}]}}});
    let f =
        Filter::parse(&json!({"data": {"a": {"$eq": {"y": [1, {"z": true}], "x": 1.0}}}})).unwrap();
    assert!(f.matches(&doc));
}

#[test]
fn logical_operators_at_the_top() {
    assert!(filter_matches(
        json!({"$not": {"data": {"status": "refunded"}}})
    ));
    assert!(!filter_matches(json!({"$not": {"topic": "order.created"}})));
    assert!(filter_matches(
        json!({"topic": "order.created", "$or": [{"data": {"amount": 1}}, {"metadata": {"source": "api"}}]})
    ));
    assert!(!filter_matches(
        json!({"topic": "order.updated", "$or": [{"data": {"amount": 1}}, {"metadata": {"source": "api"}}]})
    ));
}
