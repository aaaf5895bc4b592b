//! `value_template`: the output is the configured JSON template with `{{path}}`
//! placeholders filled from the input. A string that is exactly one placeholder takes the
//! input value with its type (object, number, ...); placeholders inside longer strings
//! are replaced by the value's text (strings without quotes). Missing paths give `null`
//! (whole-string placeholders) or nothing (inside text).

use outrider_sdk::serde_json::Value;

use crate::path::lookup;

/// Fill `template` from `input`.
pub fn render(template: &Value, input: &Value) -> Value {
    match template {
        Value::String(text) => render_text(text, input),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, input)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, input)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn render_text(text: &str, input: &Value) -> Value {
    let trimmed = text.trim();
    if let Some(path) = whole_placeholder(trimmed) {
        return lookup(input, path).cloned().unwrap_or(Value::Null);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match lookup(input, &after[..end]) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

fn whole_placeholder(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}
