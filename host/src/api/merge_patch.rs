//! JSON Merge Patch (RFC 7396): how a `PATCH` body updates a stored JSON document.
//!
//! A patch object names the members to change: a member set to `null` is removed, a member
//! holding an object is merged recursively, any other value replaces the member. A patch
//! that is not an object replaces the whole target. Arrays are never merged, only
//! replaced, so there is no way to patch one element of an array.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place, as RFC 7396 section 2 specifies.
///
/// ```
/// use outrider::api::merge_patch::merge_patch;
/// use serde_json::json;
///
/// let mut config = json!({"url": "https://a.example", "headers": {"x-a": "1", "x-b": "2"}});
/// merge_patch(&mut config, &json!({"headers": {"x-b": null, "x-c": "3"}}));
/// assert_eq!(config, json!({"url": "https://a.example", "headers": {"x-a": "1", "x-c": "3"}}));
/// ```
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(members) = target else {
        unreachable!("target was just made an object");
    };
    for (key, value) in patch {
        if value.is_null() {
            members.remove(key);
        } else {
            merge_patch(members.entry(key.as_str()).or_insert(Value::Null), value);
        }
    }
}

/// Returns `target` with `patch` applied, leaving the original untouched.
pub fn merged(target: &Value, patch: &Value) -> Value {
    let mut result = target.clone();
    merge_patch(&mut result, patch);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7396 appendix A, every example in order: (target, patch, result).
    #[test]
    fn rfc_7396_appendix_a_vectors() {
        let vectors = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (i, (target, patch, expected)) in vectors.into_iter().enumerate() {
            let mut doc = target.clone();
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, expected, "vector {} ({target} + {patch})", i + 1);
        }
    }

    /// The worked example of RFC 7396 section 3.
    #[test]
    fn rfc_7396_section_3_example() {
        let mut doc = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged"
        });
        let patch = json!({
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null},
            "tags": ["example"]
        });
        merge_patch(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890"
            })
        );
    }

    #[test]
    fn empty_patch_changes_nothing() {
        let original = json!({"a": {"b": [1, 2]}, "c": null});
        assert_eq!(merged(&original, &json!({})), original);
    }

    #[test]
    fn null_for_a_missing_member_is_a_no_op() {
        assert_eq!(
            merged(&json!({"a": 1}), &json!({"z": null})),
            json!({"a": 1})
        );
    }

    #[test]
    fn object_patch_replaces_a_scalar_member_with_the_patch_minus_nulls() {
        let doc = merged(&json!({"a": 1}), &json!({"a": {"b": 2, "c": null}}));
        assert_eq!(doc, json!({"a": {"b": 2}}));
    }

    #[test]
    fn merged_leaves_the_original_untouched() {
        let original = json!({"a": 1});
        let result = merged(&original, &json!({"a": 2}));
        assert_eq!(original, json!({"a": 1}));
        assert_eq!(result, json!({"a": 2}));
    }
}
