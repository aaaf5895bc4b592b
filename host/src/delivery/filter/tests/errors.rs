//! Rejected filters: the error names the path of the offending part.

use serde_json::json;

use super::parse_error;
use crate::delivery::filter::{Filter, MAX_DEPTH};

#[test]
fn errors_name_the_path() {
    assert_eq!(
        parse_error(json!({"data": {"amount": {"$gt": [1]}}})),
        "filter.data.amount: $gt expects a number or string"
    );
    assert_eq!(
        parse_error(json!({"data": {"amount": {"$lte": null}}})),
        "filter.data.amount: $lte expects a number or string"
    );
    assert_eq!(
        parse_error(json!({"data": {"x": {"$foo": 1}}})),
        "filter.data.x: unknown operator `$foo`"
    );
    assert_eq!(
        parse_error(json!({"$or": [{"data": {"a": 1}}, {"data": {"b": {"$exist": "yes"}}}]})),
        "filter.$or[1].data.b: $exist expects true or false"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$startsWith": ["a", 1]}}})),
        "filter.data.s: $startsWith expects a string or a non-empty array of strings"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$endsWith": []}}})),
        "filter.data.s: $endsWith expects a string or a non-empty array of strings"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$in": [{"sku": "a"}]}}})),
        "filter.data.s: $in expects an array of scalar values, or a scalar"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$nin": {"a": 1}}}})),
        "filter.data.s: $nin expects an array of scalar values, or a scalar"
    );
    assert_eq!(
        parse_error(json!({"$and": []})),
        "filter: $and expects a non-empty array of filters"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$or": "a"}}})),
        "filter.data.s: $or expects a non-empty array of filters"
    );
    assert_eq!(
        parse_error(json!({"data": {"list": [1, {"$bad": 2}]}})),
        "filter.data.list[1]: unknown operator `$bad`"
    );
    assert_eq!(
        parse_error(json!({"data": {"s": {"$not": {"$gt": true}}}})),
        "filter.data.s.$not: $gt expects a number or string"
    );
    assert_eq!(
        parse_error(json!({"amount": 5})),
        "filter.amount: unknown field; expected one of id, topic, time, metadata, data"
    );
    assert_eq!(
        parse_error(json!({"$not": {"status": "paid"}})),
        "filter.$not.status: unknown field; expected one of id, topic, time, metadata, data"
    );
    assert_eq!(
        parse_error(json!("paid")),
        "filter: expected an object, got a string"
    );
    assert_eq!(
        parse_error(json!([{"data": {}}])),
        "filter: expected an object, got an array"
    );
}

#[test]
fn nesting_is_bounded() {
    let mut deep = json!(1);
    for _ in 0..MAX_DEPTH + 5 {
        deep = json!({"a": deep});
    }
    let err = Filter::parse(&json!({ "data": deep })).unwrap_err();
    assert!(err.message.contains("nested deeper than"), "{err}");
    assert!(err.path.starts_with("filter.data.a.a"), "{err}");
}
