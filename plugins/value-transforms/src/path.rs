//! Dotted input paths (`user.id`, `items.0.sku`; `$` or empty for the whole input).

use outrider_sdk::serde_json::Value;

/// The value at `path` in `input`, if any.
pub fn lookup<'a>(input: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    if path.is_empty() || path == "$" {
        return Some(input);
    }
    path.split('.')
        .try_fold(input, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}
