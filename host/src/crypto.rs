//! Envelope encryption of secrets at rest, and their obfuscation on read.
//!
//! Destination credentials, encrypted environment variables and webhook secrets are
//! stored as self-describing strings `enc:v1:<kid>:<base64url(nonce || ciphertext)>`,
//! sealed with AES-256-GCM under the key named by `kid`. A [`Keyring`] holds one
//! current key (which encrypts) and any number of older keys (which only decrypt), so
//! `outrider keys rotate` can re-encrypt rows one by one with [`Keyring::reencrypt`]
//! while the server keeps reading both.
//!
//! Every encryption takes associated data (AAD) naming the secret's owner, e.g.
//! `destination:<id>:credentials`; a ciphertext copied into another row fails to
//! decrypt there.
//!
//! ```
//! use outrider::crypto::Keyring;
//!
//! let keyring = Keyring::from_env_value("k2:a-new-long-secret-value,k1:an-old-long-secret-value")?;
//! let sealed = keyring.encrypt(b"hunter2", b"destination:des_1:credentials");
//! assert!(sealed.starts_with("enc:v1:k2:"));
//! let opened = keyring.decrypt(&sealed, b"destination:des_1:credentials")?;
//! assert_eq!(opened, b"hunter2");
//! assert!(keyring.decrypt(&sealed, b"destination:des_2:credentials").is_err());
//! # Ok::<(), outrider::crypto::CryptoError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use rand::RngCore as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Environment variable holding the key specification parsed by [`Keyring::from_env_value`].
pub const ENCRYPTION_KEY_ENV: &str = "OUTRIDER_ENCRYPTION_KEY";

/// Prefix of every string produced by [`Keyring::encrypt`].
pub const ENCRYPTED_PREFIX: &str = "enc:v1:";

/// Shortest secret accepted for a key, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Longest key id accepted.
const MAX_KID_LEN: usize = 64;

/// HKDF salt shared by every key derived by Outrider (also used for the JWT secret).
pub(crate) const HKDF_SALT: &[u8] = b"outrider/v1";

/// HKDF `info` for the AES-256-GCM key that seals secrets.
const HKDF_INFO_SECRETS: &[u8] = b"secrets";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What went wrong building a keyring, or opening a sealed secret.
///
/// No variant ever carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key specification could not be parsed (empty, bad key id, duplicate id).
    #[error("invalid {ENCRYPTION_KEY_ENV}: {0}")]
    InvalidKeySpec(String),
    /// A secret in the key specification is too short to derive a key from.
    #[error(
        "invalid {ENCRYPTION_KEY_ENV}: key #{position} is {len} bytes long; \
         at least {MIN_SECRET_LEN} bytes are required"
    )]
    KeyTooShort {
        /// 1-based position of the key in the specification.
        position: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The string is not of the form `enc:v1:<kid>:<base64url>`.
    #[error("malformed encrypted value: {0}")]
    BadFormat(&'static str),
    /// The value was sealed under a key id this keyring does not hold.
    #[error("encrypted value uses unknown key id {0:?}; is an old key missing from {ENCRYPTION_KEY_ENV}?")]
    UnknownKeyId(String),
    /// The key id matched but the ciphertext did not authenticate: a different secret
    /// behind the same id, different associated data, or a tampered value.
    #[error("decryption failed: wrong key, wrong associated data or tampered ciphertext")]
    Authentication,
    /// The plaintext decrypted but is not the JSON [`Keyring::decrypt_json`] expects.
    #[error("decrypted value is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One derived AES-256-GCM key and the id written next to its ciphertexts.
struct Key {
    kid: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn derive(kid: String, secret: &[u8]) -> Self {
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
            .expand(HKDF_INFO_SECRETS, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let cipher = Aes256Gcm::new_from_slice(&okm).expect("AES-256 key is 32 bytes");
        okm.fill(0);
        Key { kid, cipher }
    }
}

/// The encryption keys of a server: the first encrypts, all of them decrypt.
///
/// `Debug` shows key ids only.
pub struct Keyring {
    /// Never empty; `keys[0]` is the current key.
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_kid())
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The key id given to a secret written without `kid:`: the first 8 hex characters of
/// its SHA-256.
fn derived_kid(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    hex::encode(&digest[..4])
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Keyring {
    /// Parses a key specification as given in `OUTRIDER_ENCRYPTION_KEY`:
    /// `kid1:secret1,kid2:secret2`, the first being the current key and the others
    /// kept to decrypt older values. An entry without `kid:` gets the id
    /// [first 8 hex characters of sha256(secret)], so a single bare secret works.
    ///
    /// Entries are trimmed; key ids are 1 to 64 characters of `[A-Za-z0-9._-]`; an
    /// entry is split at its first `:`, so a bare secret must not contain one.
    /// Each secret must be at least 16 bytes.
    pub fn from_env_value(spec: &str) -> Result<Self, CryptoError> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let (kid, secret) = match entry.split_once(':') {
                Some((kid, secret)) => {
                    let kid = kid.trim();
                    if !valid_kid(kid) {
                        return Err(CryptoError::InvalidKeySpec(format!(
                            "key #{position} has an invalid key id: use 1 to {MAX_KID_LEN} \
                             characters of A-Z, a-z, 0-9, '.', '_' or '-'"
                        )));
                    }
                    (Some(kid.to_owned()), secret.trim().as_bytes())
                }
                None => (None, entry.as_bytes()),
            };
            if secret.len() < MIN_SECRET_LEN {
                return Err(CryptoError::KeyTooShort {
                    position,
                    len: secret.len(),
                });
            }
            let kid = kid.unwrap_or_else(|| derived_kid(secret));
            if keys.iter().any(|k| k.kid == kid) {
                return Err(CryptoError::InvalidKeySpec(format!(
                    "key id {kid:?} appears more than once"
                )));
            }
            keys.push(Key::derive(kid, secret));
        }
        if keys.is_empty() {
            return Err(CryptoError::InvalidKeySpec("no key given".to_owned()));
        }
        Ok(Keyring { keys })
    }

    /// A keyring with one random key, for `--insecure-dev` without
    /// `OUTRIDER_ENCRYPTION_KEY`. Logs a warning: whatever it encrypts cannot be read
    /// after a restart.
    pub fn ephemeral() -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let kid = format!("ephemeral-{}", derived_kid(&secret));
        let key = Key::derive(kid, &secret);
        secret.fill(0);
        tracing::warn!(
            kid = %key.kid,
            "no {ENCRYPTION_KEY_ENV} set: secrets are encrypted with a random key and \
             cannot be decrypted after this process exits"
        );
        Keyring { keys: vec![key] }
    }

    /// The id of the key new values are encrypted with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// All key ids, current first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    fn key(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Seals `plaintext` under the current key with a fresh random 96-bit nonce,
    /// binding it to `aad` (which is not stored and must be given again to decrypt).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption only fails for plaintexts over 64 GiB");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!(
            "{ENCRYPTED_PREFIX}{}:{}",
            key.kid,
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// Opens a value produced by [`Keyring::encrypt`] with the key its id names.
    pub fn decrypt(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (kid, payload) = split_sealed(sealed)?;
        let key = self
            .key(kid)
            .ok_or_else(|| CryptoError::UnknownKeyId(kid.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CryptoError::BadFormat("payload is not unpadded base64url"))?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::BadFormat("payload is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)
    }

    /// Serialises `value` as JSON and seals it like [`Keyring::encrypt`].
    pub fn encrypt_json(&self, value: &Value, aad: &[u8]) -> String {
        self.encrypt(value.to_string().as_bytes(), aad)
    }

    /// Opens a value sealed by [`Keyring::encrypt_json`].
    pub fn decrypt_json(&self, sealed: &str, aad: &[u8]) -> Result<Value, CryptoError> {
        let plaintext = self.decrypt(sealed, aad)?;
        Ok(serde_json::from_slice(&plaintext)?)
    }

    /// Whether `sealed` is a well-formed encrypted value under a key other than the
    /// current one. Plaintext and malformed strings answer `false`: there is nothing
    /// [`Keyring::reencrypt`] could do with them.
    pub fn needs_rotation(&self, sealed: &str) -> bool {
        matches!(split_sealed(sealed), Ok((kid, _)) if kid != self.current_kid())
    }

    /// Decrypts `sealed` with whichever key it names and encrypts it again under the
    /// current key, with the same associated data.
    pub fn reencrypt(&self, sealed: &str, aad: &[u8]) -> Result<String, CryptoError> {
        let plaintext = self.decrypt(sealed, aad)?;
        Ok(self.encrypt(&plaintext, aad))
    }
}

impl FromStr for Keyring {
    type Err = CryptoError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Keyring::from_env_value(spec)
    }
}

/// Whether `s` looks like a value produced by [`Keyring::encrypt`] (by its prefix only).
pub fn is_encrypted(s: &str) -> bool {
    s.starts_with(ENCRYPTED_PREFIX)
}

/// Splits `enc:v1:<kid>:<payload>` into its key id and payload.
fn split_sealed(sealed: &str) -> Result<(&str, &str), CryptoError> {
    let rest = sealed
        .strip_prefix(ENCRYPTED_PREFIX)
        .ok_or(CryptoError::BadFormat("expected the prefix \"enc:v1:\""))?;
    let (kid, payload) = rest
        .split_once(':')
        .ok_or(CryptoError::BadFormat("expected enc:v1:<kid>:<payload>"))?;
    if !valid_kid(kid) {
        return Err(CryptoError::BadFormat("invalid key id"));
    }
    if payload.is_empty() {
        return Err(CryptoError::BadFormat("empty payload"));
    }
    Ok((kid, payload))
}

/// Hides a secret for display, Outpost's way: fewer than 10 characters become as many
/// `*`; longer values keep their first 4 characters and the rest become `*`.
/// Characters are Unicode scalar values, not bytes.
///
/// ```
/// use outrider::crypto::obfuscate;
/// assert_eq!(obfuscate("short"), "*****");
/// assert_eq!(obfuscate("some-secret-value"), "some*************");
/// ```
pub fn obfuscate(s: &str) -> String {
    let len = s.chars().count();
    if len < 10 {
        return "*".repeat(len);
    }
    let mut out: String = s.chars().take(4).collect();
    out.push_str(&"*".repeat(len - 4));
    out
}

/// Returns a copy of the JSON object `value` in which the values of `sensitive_keys`
/// are obfuscated with [`obfuscate`]; other keys are copied unchanged.
///
/// Only the object's own keys are matched. A sensitive string is obfuscated; a
/// sensitive number or boolean is obfuscated as its JSON text (and so becomes a
/// string); a sensitive array or object (e.g. a `key_value_map` of headers) has every
/// leaf obfuscated; `null` stays `null`. A `value` that is not an object is returned
/// unchanged.
pub fn obfuscate_object<S: AsRef<str>>(value: &Value, sensitive_keys: &[S]) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let is_sensitive = |key: &str| sensitive_keys.iter().any(|s| s.as_ref() == key);
    Value::Object(
        map.iter()
            .map(|(k, v)| {
                let v = if is_sensitive(k) {
                    obfuscate_all(v)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

fn obfuscate_all(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(obfuscate(s)),
        Value::Bool(_) | Value::Number(_) => Value::String(obfuscate(&value.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(obfuscate_all).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), obfuscate_all(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests;
