//! Request signatures: Outpost's `v0` (hex HMAC-SHA256 of `"{timestamp}.{body}"`) and
//! Standard Webhooks' `v1` (base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"` keyed by
//! the base64-decoded `whsec_` secret).

use crate::settings::standard_key;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `x-outpost-signature` value: `v0=<sig>[,<sig>...]`, one hex signature per secret
/// (the secret's UTF-8 bytes are the key). `None` without secrets.
pub fn outpost_signature(secrets: &[&str], timestamp: u64, body: &[u8]) -> Option<String> {
    if secrets.is_empty() {
        return None;
    }
    let timestamp = timestamp.to_string();
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| {
            hex::encode(hmac_sha256(
                secret.as_bytes(),
                &[timestamp.as_bytes(), b".", body],
            ))
        })
        .collect();
    Some(format!("v0={}", signatures.join(",")))
}

/// `webhook-signature` value: `v1,<base64>` per secret, space-separated. Secrets that
/// are not valid Standard Webhooks secrets are skipped (validation rejects them).
/// `None` without usable secrets.
pub fn standard_signature(
    secrets: &[&str],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Option<String> {
    let timestamp = timestamp.to_string();
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|secret| standard_key(secret))
        .map(|key| {
            let mac = hmac_sha256(
                &key,
                &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
            );
            format!("v1,{}", BASE64.encode(mac))
        })
        .collect();
    (!signatures.is_empty()).then(|| signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outpost_v0() {
        // Python: hmac.new(b"secret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        let expected = "v0=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686";
        let got = outpost_signature(&["secret"], 1_700_000_000, br#"{"a":1}"#).unwrap();
        assert_eq!(got, expected);
        let two = outpost_signature(&["new", "old"], 1, b"{}").unwrap();
        let parts: Vec<&str> = two.strip_prefix("v0=").unwrap().split(',').collect();
        assert_eq!(parts.len(), 2);
        assert_ne!(parts[0], parts[1]);
        assert_eq!(outpost_signature(&[], 1, b"{}"), None);
    }

    #[test]
    fn standard_v1_matches_the_reference_library() {
        // Computed with the `standardwebhooks` Python package:
        // Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, timezone.utc), '{"test": 2432232314}')
        let got = standard_signature(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            got.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn standard_signs_with_each_usable_secret() {
        let got =
            standard_signature(&["whsec_c2VjcmV0", "b2xk", "not base64!"], "id", 1, b"{}").unwrap();
        let parts: Vec<&str> = got.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_eq!(standard_signature(&["!!"], "id", 1, b"{}"), None);
    }
}
