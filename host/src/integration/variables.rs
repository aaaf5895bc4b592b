//! Environment variables in configurations: `${NAME}` anywhere inside a string value is
//! replaced by the variable's value when the configuration is used (never when it is
//! stored, so changing a variable changes every configuration that uses it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::crypto::Keyring;
use crate::store::{EnvironmentVariableRow, Store, StoreResult};

/// Names of `${NAME}` references in every string of `value` (keys are not searched).
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect(value, &mut names);
    names
}

fn collect(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else { break };
                let name = &after[..end];
                if is_valid_name(name) {
                    names.insert(name.to_owned());
                }
                rest = &after[end + 1..];
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, names)),
        Value::Object(map) => map.values().for_each(|v| collect(v, names)),
        _ => {}
    }
}

/// Whether `name` is a valid variable name: `^[a-zA-Z0-9_-]+$`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Replace every reference in `value` by its value from `values`. Returns the names
/// that have no value (the references stay as written).
pub fn resolve(value: &mut Value, values: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut missing = BTreeSet::new();
    substitute(value, values, &mut missing);
    missing
}

fn substitute(
    value: &mut Value,
    values: &BTreeMap<String, String>,
    missing: &mut BTreeSet<String>,
) {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let name = &after[..end];
                match values.get(name) {
                    Some(v) if is_valid_name(name) => out.push_str(v),
                    _ => {
                        if is_valid_name(name) {
                            missing.insert(name.to_owned());
                        }
                        out.push_str(&rest[start..start + 2 + end + 1]);
                    }
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| substitute(v, values, missing)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| substitute(v, values, missing)),
        _ => {}
    }
}

/// The AAD binding an encrypted variable's ciphertext to its name.
pub fn variable_aad(name: &str) -> String {
    format!("environment:{name}")
}

/// The plaintext value of a stored variable.
pub fn plaintext(
    keyring: &Keyring,
    row: &EnvironmentVariableRow,
) -> Result<String, crate::crypto::CryptoError> {
    if !row.encrypted {
        return Ok(row.value.clone());
    }
    let bytes = keyring.decrypt(&row.value, variable_aad(&row.name).as_bytes())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Resolve the references in `value` against the stored variables (loaded only when
/// there are references). Returns the names without a value.
pub async fn resolve_stored(
    store: &Store,
    keyring: &Keyring,
    value: &mut Value,
) -> StoreResult<BTreeSet<String>> {
    let wanted = references(value);
    if wanted.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut values = BTreeMap::new();
    for row in store.list_environment_variables().await? {
        if !wanted.contains(&row.name) {
            continue;
        }
        match plaintext(keyring, &row) {
            Ok(v) => {
                values.insert(row.name.clone(), v);
            }
            Err(err) => {
                tracing::error!(variable = %row.name, error = %err, "environment variable cannot be decrypted");
            }
        }
    }
    Ok(resolve(value, &values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_and_resolves_references_inside_strings() {
        let mut value = json!({"url": "https://${HOST}/x", "auth": ["Bearer ${TOKEN}"], "n": 1, "bad": "${no space}"});
        assert_eq!(
            references(&value).into_iter().collect::<Vec<_>>(),
            ["HOST", "TOKEN"]
        );
        let values = BTreeMap::from([("HOST".to_string(), "example.com".to_string())]);
        let missing = resolve(&mut value, &values);
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["TOKEN"]);
        assert_eq!(value["url"], "https://example.com/x");
        assert_eq!(value["auth"][0], "Bearer ${TOKEN}");
        assert_eq!(value["bad"], "${no space}");
    }
}
