//! Tests of `crypto`.

use super::*;
use serde_json::json;

const AAD: &[u8] = b"destination:des_1:credentials";

fn keyring() -> Keyring {
    Keyring::from_env_value("k1:0123456789abcdef-first").unwrap()
}

#[test]
fn roundtrip() {
    let kr = keyring();
    let sealed = kr.encrypt(b"top secret", AAD);
    assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
    assert!(is_encrypted(&sealed));
    assert_eq!(kr.decrypt(&sealed, AAD).unwrap(), b"top secret");
    // Empty plaintext works too.
    let empty = kr.encrypt(b"", AAD);
    assert_eq!(kr.decrypt(&empty, AAD).unwrap(), b"");
}

#[test]
fn nonces_are_fresh() {
    let kr = keyring();
    assert_ne!(kr.encrypt(b"same", AAD), kr.encrypt(b"same", AAD));
}

#[test]
fn same_secret_same_key_across_keyrings() {
    let sealed = keyring().encrypt(b"x", AAD);
    assert_eq!(keyring().decrypt(&sealed, AAD).unwrap(), b"x");
}

#[test]
fn wrong_aad_fails() {
    let kr = keyring();
    let sealed = kr.encrypt(b"top secret", AAD);
    let err = kr
        .decrypt(&sealed, b"destination:des_2:credentials")
        .unwrap_err();
    assert!(matches!(err, CryptoError::Authentication), "{err:?}");
}

#[test]
fn tampered_ciphertext_fails() {
    let kr = keyring();
    let sealed = kr.encrypt(b"top secret", AAD);
    let (head, payload) = sealed.rsplit_once(':').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
    for i in [0, NONCE_LEN, bytes.len() - 1] {
        bytes[i] ^= 0x01;
        let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
        let err = kr.decrypt(&tampered, AAD).unwrap_err();
        assert!(matches!(err, CryptoError::Authentication), "{err:?}");
        bytes[i] ^= 0x01;
    }
    // Truncation is caught too.
    bytes.truncate(bytes.len() - 1);
    let truncated = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert!(matches!(
        kr.decrypt(&truncated, AAD),
        Err(CryptoError::Authentication)
    ));
}

#[test]
fn same_kid_different_secret_fails_authentication() {
    let sealed = keyring().encrypt(b"x", AAD);
    let other = Keyring::from_env_value("k1:another-secret-of-length").unwrap();
    assert!(matches!(
        other.decrypt(&sealed, AAD),
        Err(CryptoError::Authentication)
    ));
}

#[test]
fn unknown_kid() {
    let sealed = keyring().encrypt(b"x", AAD);
    let other = Keyring::from_env_value("k9:0123456789abcdef-first").unwrap();
    match other.decrypt(&sealed, AAD) {
        Err(CryptoError::UnknownKeyId(kid)) => assert_eq!(kid, "k1"),
        other => panic!("expected UnknownKeyId, got {other:?}"),
    }
}

#[test]
fn bad_format() {
    let kr = keyring();
    for s in [
        "",
        "plaintext",
        "enc:v2:k1:AAAA",
        "enc:v1:k1",
        "enc:v1:k1:",
        "enc:v1::AAAA",
        "enc:v1:k 1:AAAA",
        "enc:v1:k1:not base64!",
        "enc:v1:k1:AAAA",
    ] {
        let err = kr.decrypt(s, AAD).unwrap_err();
        assert!(matches!(err, CryptoError::BadFormat(_)), "{s:?}: {err:?}");
    }
}

#[test]
fn rotation() {
    let old = Keyring::from_env_value("old:the-old-secret-16+").unwrap();
    let sealed_old = old.encrypt(b"v", AAD);

    let rotated =
        Keyring::from_env_value("new:the-new-secret-16+, old:the-old-secret-16+").unwrap();
    assert_eq!(rotated.current_kid(), "new");
    assert_eq!(rotated.kids().collect::<Vec<_>>(), ["new", "old"]);
    // Old key still decrypts.
    assert_eq!(rotated.decrypt(&sealed_old, AAD).unwrap(), b"v");
    assert!(rotated.needs_rotation(&sealed_old));
    // New values use the new key.
    let sealed_new = rotated.encrypt(b"v", AAD);
    assert!(sealed_new.starts_with("enc:v1:new:"));
    assert!(!rotated.needs_rotation(&sealed_new));
    // Re-encryption moves a value to the current key, keeping its AAD.
    let moved = rotated.reencrypt(&sealed_old, AAD).unwrap();
    assert!(!rotated.needs_rotation(&moved));
    assert_eq!(rotated.decrypt(&moved, AAD).unwrap(), b"v");
    // The old keyring cannot read what the new key sealed.
    assert!(matches!(
        old.decrypt(&moved, AAD),
        Err(CryptoError::UnknownKeyId(_))
    ));
    // Nothing to rotate in plaintext or garbage.
    assert!(!rotated.needs_rotation("plaintext"));
    assert!(!rotated.needs_rotation("enc:v1:old"));
}

#[test]
fn bare_secret_gets_derived_kid() {
    let secret = "a-bare-secret-without-id";
    let kr = Keyring::from_env_value(secret).unwrap();
    let expected = &hex::encode(Sha256::digest(secret.as_bytes()))[..8];
    assert_eq!(kr.current_kid(), expected);
    // Mixed with named keys, in any position.
    let kr = Keyring::from_env_value(&format!("k2:0123456789abcdef-second,{secret}")).unwrap();
    assert_eq!(kr.kids().collect::<Vec<_>>(), ["k2", expected]);
}

#[test]
fn key_spec_errors() {
    assert!(matches!(
        Keyring::from_env_value(""),
        Err(CryptoError::InvalidKeySpec(_))
    ));
    assert!(matches!(
        Keyring::from_env_value(" , "),
        Err(CryptoError::InvalidKeySpec(_))
    ));
    match Keyring::from_env_value("k1:0123456789abcdef,k2:short") {
        Err(CryptoError::KeyTooShort { position, len }) => {
            assert_eq!((position, len), (2, 5));
        }
        other => panic!("expected KeyTooShort, got {other:?}"),
    }
    assert!(matches!(
        Keyring::from_env_value("fifteen-bytes!!"),
        Err(CryptoError::KeyTooShort { len: 15, .. })
    ));
    assert!(Keyring::from_env_value("sixteen-bytes!!!").is_ok());
    assert!(matches!(
        Keyring::from_env_value("bad kid:0123456789abcdef"),
        Err(CryptoError::InvalidKeySpec(_))
    ));
    assert!(matches!(
        Keyring::from_env_value(":0123456789abcdef"),
        Err(CryptoError::InvalidKeySpec(_))
    ));
    assert!(matches!(
        Keyring::from_env_value("k1:0123456789abcdef,k1:fedcba9876543210"),
        Err(CryptoError::InvalidKeySpec(_))
    ));
    // Error messages never echo the secret.
    let msg = Keyring::from_env_value("k1:tiny-secret")
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("tiny-secret"), "{msg}");
    assert!(msg.contains("16"), "{msg}");
}

#[test]
fn debug_redacts() {
    let kr = Keyring::from_env_value("k1:0123456789abcdef-first").unwrap();
    let dbg = format!("{kr:?}");
    assert!(dbg.contains("k1"), "{dbg}");
    assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
}

#[test]
fn ephemeral_keyring_works() {
    let kr = Keyring::ephemeral();
    assert!(kr.current_kid().starts_with("ephemeral-"));
    let sealed = kr.encrypt(b"x", AAD);
    assert_eq!(kr.decrypt(&sealed, AAD).unwrap(), b"x");
    assert_ne!(Keyring::ephemeral().current_kid(), kr.current_kid());
}

#[test]
fn json_roundtrip() {
    let kr = keyring();
    let value = json!({"secret": "s3cr3t", "nested": {"n": 1}});
    let sealed = kr.encrypt_json(&value, AAD);
    assert_eq!(kr.decrypt_json(&sealed, AAD).unwrap(), value);
    let not_json = kr.encrypt(b"{not json", AAD);
    assert!(matches!(
        kr.decrypt_json(&not_json, AAD),
        Err(CryptoError::Json(_))
    ));
}

#[test]
fn obfuscation_rule() {
    assert_eq!(obfuscate(""), "");
    assert_eq!(obfuscate("a"), "*");
    assert_eq!(obfuscate("123456789"), "*********"); // 9
    assert_eq!(obfuscate("1234567890"), "1234******"); // 10
    assert_eq!(obfuscate("12345678901"), "1234*******"); // 11
    assert_eq!(obfuscate("some-secret"), "some*******");
}

#[test]
fn obfuscation_counts_chars_not_bytes() {
    // 9 characters, 18 bytes: still under the threshold.
    assert_eq!(obfuscate("ééééééééé"), "*********");
    // 10 characters.
    assert_eq!(obfuscate("日本語のパスワード!"), "日本語の******");
    // 11 characters with a 4-byte character in the kept prefix.
    assert_eq!(obfuscate("🔑abcdefghij"), "🔑abc*******");
}

#[test]
fn obfuscate_object_masks_only_sensitive_keys() {
    let creds = json!({
        "secret": "whsec_abcdefghijkl",
        "pin": "1234",
        "port": 123456789012_u64,
        "headers": {"Authorization": "Bearer abcdefghijk"},
        "empty": null,
        "url": "https://example.com/hook",
    });
    let out = obfuscate_object(
        &creds,
        &["secret", "pin", "port", "headers", "empty", "missing"],
    );
    assert_eq!(
        out,
        json!({
            "secret": "whse**************",
            "pin": "****",
            "port": "1234********",
            "headers": {"Authorization": "Bear**************"},
            "empty": null,
            "url": "https://example.com/hook",
        })
    );
    // Owned key names work as well, and non-objects pass through.
    let keys = vec!["secret".to_owned()];
    assert_eq!(obfuscate_object(&json!("x"), &keys), json!("x"));
}
