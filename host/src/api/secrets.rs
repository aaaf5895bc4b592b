//! Host-generated credentials and their rotation, driven by the prototype's fields: a
//! credential field with a `generate` rule gets a random value when left empty on create,
//! and `rotate_<key>: true` in an update moves the current value to `previous_<key>`
//! (valid until `previous_<key>_invalid_at`, default 24 h) and generates a new one. This
//! is how Outpost's webhook `secret` / `rotate_secret` work, for any prototype.

use base64::Engine;
use rand::RngCore;
use serde_json::{Map, Value};

use super::wire::rfc3339;
use super::{ApiError, ApiResult};
use crate::runtime::manifest::{Field, Prototype};
use crate::store::now_ms;

/// How long a rotated-out secret keeps verifying by default.
const ROTATION_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// (prefix, random bytes) of a field's generator.
fn generator(field: &Field) -> Option<(String, u32)> {
    field.generate.as_ref().map(|g| (g.prefix.clone(), g.bytes))
}

fn generate(field: &Field) -> Option<String> {
    let (prefix, len) = generator(field)?;
    let mut bytes = vec![0u8; len.clamp(16, 256) as usize];
    rand::thread_rng().fill_bytes(&mut bytes);
    Some(format!(
        "{}{}",
        prefix,
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Fill every empty generated credential.
pub fn fill_generated(prototype: &Prototype, credentials: &mut Map<String, Value>) {
    for field in &prototype.credential_fields {
        if is_empty(credentials.get(&field.key)) {
            if let Some(value) = generate(field) {
                credentials.insert(field.key.clone(), Value::String(value));
            }
        }
    }
}

/// Handle `rotate_<key>` flags of a credentials patch against the current credentials,
/// rewriting the patch so a merge applies the rotation.
pub fn apply_rotation(
    prototype: &Prototype,
    current: &Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> ApiResult<()> {
    let flags: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with("rotate_"))
        .cloned()
        .collect();
    for flag in flags {
        let key = flag.trim_start_matches("rotate_").to_string();
        let rotate = match patch.remove(&flag) {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            _ => {
                return Err(ApiError::bad_request(format!(
                    "credentials.{flag}: must be true or false"
                )))
            }
        };
        if !rotate {
            continue;
        }
        let field = prototype
            .credential_fields
            .iter()
            .find(|f| f.key == key && generator(f).is_some())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "credentials.{flag}: `{key}` is not a rotatable credential of {}",
                    prototype.id
                ))
            })?;
        let new_value = generate(field).expect("field has a generator");
        let invalid_at_key = format!("previous_{key}_invalid_at");
        let invalid_at = match patch.get(&invalid_at_key) {
            Some(Value::String(s)) => s.clone(),
            _ => rfc3339(now_ms() + ROTATION_GRACE_MS),
        };
        if let Some(old) = current.get(&key) {
            patch.insert(format!("previous_{key}"), old.clone());
        }
        patch.insert(invalid_at_key, Value::String(invalid_at));
        patch.insert(key, Value::String(new_value));
    }
    Ok(())
}
