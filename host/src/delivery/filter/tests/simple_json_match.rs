//! hookdeck's simple-json-match suite, as Outpost's port runs it, against nested filter
//! values.

use serde_json::json;

use super::matches;

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
