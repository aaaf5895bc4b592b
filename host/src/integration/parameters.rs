//! A configuration's `parameters` are one JSON object: the prototype's config fields and
//! credential fields side by side. Secret values (every credential field and every
//! sensitive config field) are stored sealed as `{"$sealed": "<ciphertext>"}` and read
//! back obfuscated; a value that is only a `${NAME}` reference is not a secret itself
//! and stays readable (put the secret in an encrypted environment variable).

use serde_json::{Map, Value};

use crate::crypto::{obfuscate, CryptoError, Keyring};
use crate::runtime::Prototype;

const SEALED: &str = "$sealed";

/// The AAD binding sealed values to their configuration.
pub fn sealing_aad(r#type: &str, identifier: &str) -> String {
    format!("configuration:{type}:{identifier}")
}

fn is_secret(proto: &Prototype, key: &str) -> bool {
    proto.credential_fields.iter().any(|f| f.key == key)
        || proto
            .config_fields
            .iter()
            .any(|f| f.key == key && f.sensitive)
}

fn is_reference(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.starts_with("${") && s.ends_with('}') && s[2..s.len() - 1].find('}').is_none()
    })
}

fn sealed(value: &Value) -> Option<&str> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.get(SEALED)?.as_str()
}

/// Seal the secret values of `params` in place (already sealed ones are kept).
pub fn seal(keyring: &Keyring, aad: &str, proto: &Prototype, params: &mut Value) {
    let Value::Object(map) = params else { return };
    for (key, value) in map.iter_mut() {
        if !is_secret(proto, key)
            || value.is_null()
            || is_reference(value)
            || sealed(value).is_some()
        {
            continue;
        }
        let text = serde_json::to_string(value).expect("JSON serialises");
        let mut wrapper = Map::new();
        wrapper.insert(
            SEALED.into(),
            Value::String(keyring.encrypt(text.as_bytes(), aad.as_bytes())),
        );
        *value = Value::Object(wrapper);
    }
}

/// Open the sealed values of `params` in place.
pub fn unseal(keyring: &Keyring, aad: &str, params: &mut Value) -> Result<(), CryptoError> {
    let Value::Object(map) = params else {
        return Ok(());
    };
    for value in map.values_mut() {
        if let Some(sealed) = sealed(value) {
            let bytes = keyring.decrypt(sealed, aad.as_bytes())?;
            *value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        }
    }
    Ok(())
}

/// Re-encrypt the sealed values of `params` that are not under the current key; returns
/// how many were rewritten.
pub fn reseal(keyring: &Keyring, aad: &str, params: &mut Value) -> Result<u64, CryptoError> {
    let Value::Object(map) = params else {
        return Ok(0);
    };
    let mut rewritten = 0;
    for value in map.values_mut() {
        let Some(old) = sealed(value).filter(|s| keyring.needs_rotation(s)) else {
            continue;
        };
        let new = keyring.reencrypt(old, aad.as_bytes())?;
        value[SEALED] = Value::String(new);
        rewritten += 1;
    }
    Ok(rewritten)
}

/// `params` for reading: sealed values obfuscated. The ciphertext never leaves here.
pub fn obfuscated(keyring: &Keyring, aad: &str, params: &Value) -> Value {
    let Value::Object(map) = params else {
        return params.clone();
    };
    Value::Object(
        map.iter()
            .map(|(key, value)| {
                let shown = match sealed(value) {
                    Some(sealed) => {
                        let plain = keyring
                            .decrypt(sealed, aad.as_bytes())
                            .map(|b| String::from_utf8_lossy(&b).trim_matches('"').to_string())
                            .unwrap_or_default();
                        Value::String(obfuscate(&plain))
                    }
                    None => value.clone(),
                };
                (key.clone(), shown)
            })
            .collect(),
    )
}

/// Split plain `params` into the prototype's `config` and `credentials` objects.
pub fn split(proto: &Prototype, params: &Value) -> (Value, Value) {
    let mut config = Map::new();
    let mut credentials = Map::new();
    if let Value::Object(map) = params {
        for (key, value) in map {
            if proto.credential_fields.iter().any(|f| &f.key == key) {
                credentials.insert(key.clone(), value.clone());
            } else {
                config.insert(key.clone(), value.clone());
            }
        }
    }
    (Value::Object(config), Value::Object(credentials))
}

/// A plugin's field path (`config.url`, `credentials.secret`) as a path in a
/// configuration (`object.parameters.url`).
pub fn property_path(field: &str) -> String {
    let key = field
        .strip_prefix("config.")
        .or_else(|| field.strip_prefix("credentials."))
        .unwrap_or(field);
    format!("object.parameters.{key}")
}
