//! Tests of `filter`.

use super::*;
use serde_json::json;

/// Matches `input` against a schema the way nested filter values are matched.
fn matches(input: Value, schema: Value) -> bool {
    let node = Parser { depth: 0 }
        .node(&schema, &mut Path::root(), Level::Value)
        .unwrap_or_else(|e| panic!("schema {schema} should parse: {e}"));
    node.matches(Some(&input))
}

fn parse_error(filter: Value) -> String {
    Filter::parse(&filter)
        .expect_err("filter should be rejected")
        .to_string()
}

/// The cases of hookdeck's simple-json-match suite that Outpost's port runs (without
/// `$ref`, which Outpost does not implement either); each also runs wrapped in `$not`,
/// which must invert it.
#[test]
fn simple_json_match_vectors() {
    let cases = [
        (json!({"type": "created"}), json!({"type": "created"}), true),
        (json!({}), json!({"type": "created"}), false),
        (
            json!({"type": "updated"}),
            json!({"type": "created"}),
            false,
        ),
        (json!({"type": 1}), json!({"type": "created"}), false),
        (json!({"type": 1}), json!({"type": 1}), true),
        (
            json!({"count": 1, "type": "created"}),
            json!({"count": 1}),
            true,
        ),
        (
            json!({"count": 1, "type": "created"}),
            json!({"count": 1, "type": "created"}),
            true,
        ),
        (
            json!({"count": 1}),
            json!({"count": 1, "type": "created"}),
            false,
        ),
        (json!({"count": 0}), json!({"count": {"$lt": 1}}), true),
        (json!({"count": 2}), json!({"count": {"$lt": 1}}), false),
        (json!({"count": 2}), json!({"count": {"$eq": 2}}), true),
        (json!({"count": 2}), json!({"count": {"$neq": 2}}), false),
        (
            json!({"count": 2}),
            json!({"count": {"$gt": 1, "$lt": 3}}),
            true,
        ),
        (
            json!({"count": 4}),
            json!({"count": {"$gt": 1, "$lt": 3}}),
            false,
        ),
        (json!({"title": "a"}), json!({"title": {"$gt": "b"}}), false),
        (json!({"title": "c"}), json!({"title": {"$gt": "b"}}), true),
        (
            json!({"type": "created"}),
            json!({"type": {"$neq": "created"}}),
            false,
        ),
        (
            json!({"type": "created"}),
            json!({"type": {"$eq": "created"}}),
            true,
        ),
        (
            json!({"type": {"something": "created"}}),
            json!({"type": {"something": "created"}}),
            true,
        ),
        (
            json!({"type": {"something": "created"}}),
            json!({"type": {"something": "updated"}}),
            false,
        ),
        (
            json!({"type": {"something": "created"}}),
            json!({"type": 1}),
            false,
        ),
        (
            json!({"tags": ["test", "other"]}),
            json!({"tags": "test"}),
            true,
        ),
        (
            json!({"tags": ["test", "other"]}),
            json!({"tags": "nope"}),
            false,
        ),
        (
            json!({"items": [{"sku": "test"}]}),
            json!({"items": {"sku": "test"}}),
            true,
        ),
        (
            json!({"items": [{"sku": "test"}]}),
            json!({"items": {"sku": "1"}}),
            false,
        ),
        (
            json!({"items": [{"inventory": 9}, {"inventory": 11}]}),
            json!({"items": {"inventory": {"$lte": 10}}}),
            true,
        ),
        (
            json!({"items": [{"inventory": 12}, {"inventory": 11}]}),
            json!({"items": {"inventory": {"$lte": 10}}}),
            false,
        ),
        (
            json!({"tags": ["test", "other", "more"]}),
            json!({"tags": ["test", "other"]}),
            true,
        ),
        (
            json!({"tags": ["test", "other", "more"]}),
            json!({"tags": ["test", "whatever"]}),
            false,
        ),
        (
            json!({"tags": ["test", "other"]}),
            json!({"tags": {"$eq": ["test", "other"]}}),
            true,
        ),
        (
            json!({"tags": ["test", "other", "more"]}),
            json!({"tags": {"$eq": ["test", "other"]}}),
            false,
        ),
        (json!([1, 2, 3]), json!(3), true),
        (json!([1, 2, 3]), json!(4), false),
        (json!([1, 2, 3]), json!([{"$eq": 3}]), true),
        (json!([1, 2, 3]), json!([{"$eq": 4}]), false),
        (json!([1, 2, 3]), json!({"$eq": 3}), false),
        (json!({"exist": true}), json!({"exist": true}), true),
        (json!({"exist": true}), json!({"exist": false}), false),
        (json!({"exist": null}), json!({"exist": null}), true),
        (json!({"exist": null}), json!({"exist": false}), false),
        (
            json!({"exist": null}),
            json!({"exist": {"$eq": null}}),
            true,
        ),
        (
            json!({"exist": null}),
            json!({"exist": {"$neq": null}}),
            false,
        ),
        (json!("created"), json!("created"), true),
        (json!(1), json!(2), false),
        (json!(10), json!({"$gte": 5}), true),
        (json!({"test": true}), json!(true), false),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$startsWith": "some"}}),
            true,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$endsWith": "some"}}),
            false,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$endsWith": "text"}}),
            true,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"something": "text"}}),
            false,
        ),
        (
            json!({"test": {"more": true}}),
            json!({"test": {"$startsWith": "text"}}),
            false,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$startsWith": ["some", "else"]}}),
            true,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$startsWith": ["something", "else"]}}),
            false,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$endsWith": ["some", "else"]}}),
            false,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$endsWith": ["text", "else"]}}),
            true,
        ),
        (
            json!({"test": "some-text", "id": 123}),
            json!({"test": {"$in": "text"}, "id": {"$in": [123, 456]}}),
            true,
        ),
        (
            json!({"test": "some-text", "id": 123}),
            json!({"test": {"$in": ["some-text", "other-text"]}, "id": {"$in": [123, 456]}}),
            true,
        ),
        (
            json!({"test": "some-text", "id": 123}),
            json!({"test": {"$in": ["some", "text"]}, "id": {"$nin": [123, 456]}}),
            false,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$in": "text"}}),
            true,
        ),
        (
            json!({"test": "some-text"}),
            json!({"test": {"$nin": "some"}}),
            false,
        ),
        (
            json!({"tags": ["test", "something"]}),
            json!({"tags": {"$nin": "test"}}),
            false,
        ),
        (
            json!({"test": true}),
            json!({"$or": [{"test": true}]}),
            true,
        ),
        (
            json!({"test": true}),
            json!({"$or": [{"test": false}]}),
            false,
        ),
        (
            json!({"test": {"something": "else"}}),
            json!({"test": {"$or": [{"something": true}, {"something": {"$in": "else"}}]}}),
            true,
        ),
        (
            json!({"test": {"something": "else"}}),
            json!({"test": {"$or": [{"something": true}, {"something": {"$in": "no"}}]}}),
            false,
        ),
        (json!(1), json!({"$or": [1, 2]}), true),
        (json!(1), json!({"$or": [2, 3]}), false),
        (
            json!({"test": true}),
            json!({"$and": [{"test": true}]}),
            true,
        ),
        (
            json!({"test": {"something": "else"}}),
            json!({"test": {"$and": [{"something": {"$neq": null}}, {"something": {"$in": "else"}}]}}),
            true,
        ),
        (
            json!({"test": {"something": null}}),
            json!({"test": {"$and": [{"something": {"$neq": null}}, {"something": {"$in": "else"}}]}}),
            false,
        ),
        (json!(1), json!({"$and": [1, 2]}), false),
        (
            json!({"test": "else"}),
            json!({"test": {"$exist": true}}),
            true,
        ),
        (
            json!({"test": "else"}),
            json!({"test": {"$exist": false}}),
            false,
        ),
        (
            json!({"test1": "else"}),
            json!({"test": {"$exist": true}}),
            false,
        ),
        (
            json!({"test1": "else"}),
            json!({"test": {"$exist": false}}),
            true,
        ),
        (json!("/test"), json!("/test"), true),
        (json!("/test"), json!("/test2"), false),
        (json!(1), json!(1), true),
        (json!(1), json!({}), false),
        (
            json!({"test": {"test1": "else"}}),
            json!({"test": {"test1": {"$exist": true, "$or": ["else", "not"]}}}),
            true,
        ),
        (
            json!({"test": {"test1": "else1"}}),
            json!({"test": {"test1": {"$exist": true, "$or": ["else", "not"]}}}),
            false,
        ),
        (
            json!({"test": {"test1": "else"}}),
            json!({"test": {"test1": {"$exist": true, "$in": "el"}}}),
            true,
        ),
        (
            json!({"test": {"test1": "else"}}),
            json!({"test": {"test1": {"$exist": true, "$in": "no"}}}),
            false,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"test": {"test1": {"$exist": true, "$or": ["else", "not"]},
                            "$and": [{"test1": "else"}, {"test2": "not"}]}}),
            true,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"test": {"test1": {"$exist": true, "$or": ["else1", "not1"]},
                            "$and": [{"test1": "else1"}, {"test2": "not1"}]}}),
            false,
        ),
        (
            json!({"test": {"test1": {"test2": "else"}}}),
            json!({"test": {"test1": {"test2": {"$exist": true}}}}),
            true,
        ),
        (
            json!({"test": {"test1": {"test2": "else"}}}),
            json!({"test": {"test1": {"test2": {"$exist": false}}}}),
            false,
        ),
        (
            json!({"test": {"test1": {"test3": "else"}}}),
            json!({"test": {"test1": {"test2": {"$exist": false}}}}),
            true,
        ),
        (
            json!({"test": {"test1": {"test3": "else"}}}),
            json!({"test": {"test1": {"test2": {"$exist": true}}}}),
            false,
        ),
        (
            json!({"test": {"test1": "else"}}),
            json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test1": "else1"}}]}),
            true,
        ),
        (
            json!({"test": {"test1": "else"}}),
            json!({"$or": [{"test": {"test1": {"$exist": false}}}, {"test": {"test1": "else"}}]}),
            true,
        ),
        (
            json!({"test": {"test2": "else"}}),
            json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "else"}}]}),
            true,
        ),
        (
            json!({"test": {"test2": "else"}}),
            json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "else1"}}]}),
            false,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "not"}}]}),
            true,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "not1"}}]}),
            false,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true, "$eq": "else"}}}]}),
            true,
        ),
        (
            json!({"test": {"test2": "not"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true, "$eq": "not"}}}]}),
            false,
        ),
        (
            json!({"test": {"test1": "else", "test2": "not"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": {"$exist": false}}}]}),
            false,
        ),
        (
            json!({"test": {"test1": "else"}}),
            json!({"$and": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": {"$exist": false}}}]}),
            true,
        ),
        (
            json!({"test": {"test3": "else"}}),
            json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": {"$exist": false}}}]}),
            true,
        ),
    ];
    for (i, (input, schema, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            matches(input.clone(), schema.clone()),
            expected,
            "case {i}: {input} against {schema}"
        );
        let negated = json!({"$not": schema});
        assert_eq!(
            matches(input.clone(), negated.clone()),
            !expected,
            "case {i}: {input} against {negated}"
        );
    }
}

/// simple-json-match's `$not` combined with sibling operators.
#[test]
fn not_next_to_other_operators() {
    let input = json!({"test": {"test1": "else", "test2": "not"}});
    let and_both = json!([{"test": {"test1": "else"}}, {"test": {"test2": "not"}}]);
    let cases = [
        (
            json!({"$not": {"test": {"test1": "else2"}}, "$and": and_both}),
            true,
        ),
        (
            json!({"$not": {"test": {"test1": "else"}}, "$and": and_both}),
            false,
        ),
        (
            json!({"$not": {"test": {"test1": {"$exist": true}}}, "$and": and_both}),
            false,
        ),
        (
            json!({"$not": {"test": {"test1": {"$exist": false}}}, "$and": and_both}),
            true,
        ),
        (
            json!({"$not": {"test": {"test1": "else2"}},
                   "$or": [{"test": {"test3": {"$exist": true}}}, {"test": {"test2": "not"}}]}),
            true,
        ),
        (
            json!({"$not": {"test": {"test1": "else"}},
                   "$or": [{"test": {"test3": {"$exist": false}}}, {"test": {"test2": "not"}}]}),
            false,
        ),
        (
            json!({"$not": {"test": {"test1": "else2"}},
                   "$or": [{"test": {"test3": {"$exist": true}}}, {"test": {"test2": "not2"}}]}),
            false,
        ),
    ];
    for (i, (schema, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            matches(input.clone(), schema.clone()),
            expected,
            "case {i}: {schema}"
        );
    }
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

#[test]
fn topics_deserialise_from_star_or_list() {
    assert_eq!(
        serde_json::from_value::<Topics>(json!("*")).unwrap(),
        Topics::All
    );
    assert_eq!(
        serde_json::from_value::<Topics>(json!(["*"])).unwrap(),
        Topics::All
    );
    assert_eq!(
        serde_json::from_value::<Topics>(json!(["a", "b.*"])).unwrap(),
        Topics::List(vec!["a".into(), "b.*".into()])
    );
    for bad in [
        json!("user.created"),
        json!([]),
        json!(5),
        json!([1]),
        json!(null),
    ] {
        let err = serde_json::from_value::<Topics>(bad.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topics: expected \"*\" or a non-empty array of topics",
            "{bad}"
        );
    }
    let err = serde_json::from_value::<Topics>(json!(["a", ""])).unwrap_err();
    assert_eq!(err.to_string(), "topics[1]: must not be empty");
}

#[test]
fn topics_serialise_as_outpost_does() {
    assert_eq!(serde_json::to_value(Topics::All).unwrap(), json!(["*"]));
    assert_eq!(
        serde_json::to_value(Topics::List(vec!["a".into()])).unwrap(),
        json!(["a"])
    );
}

#[test]
fn topic_matching() {
    let list = |items: &[&str]| Topics::List(items.iter().map(|s| s.to_string()).collect());
    assert!(topic_matches(&Topics::All, "user.created"));
    assert!(topic_matches(&list(&["user.created"]), "user.created"));
    assert!(!topic_matches(&list(&["user.created"]), "user.updated"));
    assert!(!topic_matches(&list(&["user.created"]), "user.created.v2"));
    assert!(topic_matches(&list(&["user.*"]), "user.created"));
    assert!(!topic_matches(&list(&["user.*"]), "users.created"));
    assert!(topic_matches(&list(&["a", "*.deleted"]), "user.deleted"));
    assert!(topic_matches(&list(&["*"]), "anything"));
    // Events published without a topic, or with `*`, go everywhere (Outpost's rule).
    assert!(topic_matches(&list(&["user.created"]), ""));
    assert!(topic_matches(&list(&["user.created"]), "*"));
    assert!(list(&["x"]).matches("x"));
}

#[test]
fn wildcard_patterns() {
    assert!(wildcard_match("*", ""));
    assert!(wildcard_match("a*", "a"));
    assert!(wildcard_match("a*c", "abbbc"));
    assert!(wildcard_match("*b*", "abc"));
    assert!(wildcard_match("a**c", "ac"));
    assert!(wildcard_match("*.*.v2", "user.created.v2"));
    assert!(!wildcard_match("a*c", "abcd"));
    assert!(!wildcard_match("abc", "ab"));
    assert!(!wildcard_match("", "a"));
    assert!(wildcard_match("a*b*c", "aXbYbZc"));
    assert!(!wildcard_match("a*b*c", "aXbYbZ"));
}

#[test]
fn topics_validated_against_available() {
    let available: Vec<String> = vec!["user.created".into(), "user.deleted".into()];
    let list = |items: &[&str]| Topics::List(items.iter().map(|s| s.to_string()).collect());
    assert_eq!(Topics::All.validate_against(&available), Ok(()));
    assert_eq!(list(&["user.created"]).validate_against(&available), Ok(()));
    assert_eq!(list(&["user.*"]).validate_against(&available), Ok(()));
    assert_eq!(list(&["anything"]).validate_against(&[]), Ok(()));
    let err = list(&["user.created", "order.*"])
        .validate_against(&available)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topics[1]: `order.*` is not an available topic"
    );
    assert_eq!(Topics::from_list(vec![]), Err(TopicsError::Shape));
    assert_eq!(Topics::from_list(vec!["*".into()]), Ok(Topics::All));
}
