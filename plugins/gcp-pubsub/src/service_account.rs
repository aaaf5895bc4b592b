//! Service account key files (the JSON `gcloud iam service-accounts keys create`
//! writes) and the RS256 JWT assertion of the OAuth2 JWT bearer flow (RFC 7523) that
//! exchanges them for access tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use outrider_sdk::serde_json::{json, Value};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

/// Google's token endpoint, for key files without `token_uri`.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The OAuth2 scope access tokens are requested for.
pub const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

/// Lifetime asked for in assertions (Google's maximum).
const ASSERTION_LIFETIME_S: u64 = 3600;

/// What the plugin uses of a service account key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// `client_email`: the assertion's issuer.
    pub client_email: String,
    /// `private_key`: PEM, PKCS#8 (as Google issues it) or PKCS#1.
    pub private_key: String,
    /// `private_key_id`: the assertion's `kid`, if given.
    pub private_key_id: Option<String>,
    /// `token_uri`: where assertions are exchanged.
    pub token_uri: String,
}

/// What `service_account_json` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFile {
    /// A service account key.
    Key(ServiceAccount),
    /// A JSON object without a private key (`{}`): no credentials, for the emulator.
    Empty,
}

impl KeyFile {
    /// Parses and checks a key file without decoding the key itself; the error
    /// completes "credentials.service_account_json ...".
    pub fn parse(text: &str) -> Result<KeyFile, String> {
        let value: Value = outrider_sdk::serde_json::from_str(text)
            .map_err(|e| format!("is not valid JSON: {e}"))?;
        let Value::Object(object) = value else {
            return Err("must be a JSON object (the service account key file)".into());
        };
        let text_field = |key: &str| -> Result<Option<String>, String> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(format!("has a `{key}` that is not a string")),
            }
        };
        let private_key = text_field("private_key")?;
        let Some(private_key) = private_key else {
            if object.is_empty() {
                return Ok(KeyFile::Empty);
            }
            return Err(
                "has no `private_key`: paste the whole key file of a service account".into(),
            );
        };
        match text_field("type")?.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(format!(
                    "has type `{other}`: expected a `service_account` key file"
                ))
            }
            None => return Err("has no `type`: expected a `service_account` key file".into()),
        }
        let client_email = text_field("client_email")?
            .ok_or("has no `client_email`: paste the whole key file of a service account")?;
        let token_uri = text_field("token_uri")?.unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
        if !crate::settings::is_http_url(&token_uri) {
            return Err("has a `token_uri` that is not an http(s) URL".into());
        }
        Ok(KeyFile::Key(ServiceAccount {
            client_email,
            private_key,
            private_key_id: text_field("private_key_id")?,
            token_uri,
        }))
    }
}

impl ServiceAccount {
    /// Decodes the private key (RSA, PEM).
    pub fn signing_key(&self) -> Result<SigningKey<Sha256>, String> {
        // Key files carry the PEM with `\n` escapes, which JSON decoding turned into
        // newlines; tolerate literal `\n` too (keys pasted through env files).
        let pem = self.private_key.replace("\\n", "\n");
        let key = RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|_| "has a `private_key` that is not an RSA private key in PEM".to_string())?;
        Ok(SigningKey::<Sha256>::new(key))
    }

    /// A signed assertion issued at `now_s` (Unix seconds) for `scope`.
    pub fn assertion(&self, scope: &str, now_s: u64) -> Result<String, String> {
        let key = self.signing_key()?;
        Ok(sign_assertion(
            &key,
            &assertion_header(self.private_key_id.as_deref()),
            &assertion_claims(&self.client_email, scope, &self.token_uri, now_s),
        ))
    }

    /// A stable, non-secret name for this key and scope (a state key for its token).
    pub fn fingerprint(&self, scope: &str) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.token_uri.as_str(),
            self.client_email.as_str(),
            self.private_key_id.as_deref().unwrap_or(""),
            self.private_key.as_str(),
            scope,
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..16])
    }
}

/// The JOSE header: `{"alg":"RS256","kid":...,"typ":"JWT"}`.
pub fn assertion_header(key_id: Option<&str>) -> Value {
    match key_id {
        Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        None => json!({"alg": "RS256", "typ": "JWT"}),
    }
}

/// The claims Google's token endpoint expects of a service account assertion.
pub fn assertion_claims(issuer: &str, scope: &str, audience: &str, now_s: u64) -> Value {
    json!({
        "iss": issuer,
        "scope": scope,
        "aud": audience,
        "iat": now_s,
        "exp": now_s + ASSERTION_LIFETIME_S,
    })
}

/// `base64url(header).base64url(claims).base64url(RS256 signature)`. PKCS#1 v1.5 is
/// deterministic: no randomness is needed.
pub fn sign_assertion(key: &SigningKey<Sha256>, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        BASE64URL.encode(header.to_string()),
        BASE64URL.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes()).to_bytes();
    format!("{signing_input}.{}", BASE64URL.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use rsa::RsaPublicKey;

    /// A throwaway key generated for these tests only.
    const KEY: &str = include_str!("../testdata/test-only-rsa-key.pem");
    const PUBLIC: &str = include_str!("../testdata/test-only-rsa-key.pub.pem");

    fn key_file(extra: Value) -> String {
        let mut file = json!({
            "type": "service_account",
            "project_id": "demo",
            "private_key_id": "kid-1",
            "private_key": KEY,
            "client_email": "publisher@demo.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        for (k, v) in extra.as_object().unwrap() {
            file[k] = v.clone();
        }
        file.to_string()
    }

    fn account() -> ServiceAccount {
        match KeyFile::parse(&key_file(json!({}))).unwrap() {
            KeyFile::Key(account) => account,
            KeyFile::Empty => panic!("a key"),
        }
    }

    fn decode(part: &str) -> Value {
        outrider_sdk::serde_json::from_slice(&BASE64URL.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn parses_key_files() {
        let a = account();
        assert_eq!(a.client_email, "publisher@demo.iam.gserviceaccount.com");
        assert_eq!(a.private_key_id.as_deref(), Some("kid-1"));
        assert_eq!(a.token_uri, "https://oauth2.googleapis.com/token");
        assert!(a.signing_key().is_ok());
        assert_eq!(KeyFile::parse("{}").unwrap(), KeyFile::Empty);
        let no_uri = KeyFile::parse(&key_file(json!({"token_uri": null}))).unwrap();
        assert!(matches!(no_uri, KeyFile::Key(a) if a.token_uri == DEFAULT_TOKEN_URI));
    }

    #[test]
    fn rejects_what_is_not_a_service_account_key() {
        let err = |text: &str| KeyFile::parse(text).unwrap_err();
        assert!(err("nope").starts_with("is not valid JSON: "));
        assert_eq!(
            err("[1]"),
            "must be a JSON object (the service account key file)"
        );
        assert!(err(&key_file(json!({"type": "authorized_user"})))
            .starts_with("has type `authorized_user`"));
        assert!(err(&key_file(json!({"type": null}))).starts_with("has no `type`"));
        assert!(err(&key_file(json!({"client_email": ""}))).starts_with("has no `client_email`"));
        assert!(err(r#"{"type":"service_account"}"#).starts_with("has no `private_key`"));
        assert_eq!(
            err(&key_file(json!({"token_uri": "ftp://x"}))),
            "has a `token_uri` that is not an http(s) URL"
        );
        let bad_key = match KeyFile::parse(&key_file(json!({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}))).unwrap() {
            KeyFile::Key(a) => a,
            KeyFile::Empty => unreachable!(),
        };
        assert_eq!(
            bad_key.signing_key().unwrap_err(),
            "has a `private_key` that is not an RSA private key in PEM"
        );
    }

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt() {
        let jwt = account().assertion(PUBSUB_SCOPE, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
        );
        assert_eq!(
            decode(parts[1]),
            json!({
                "iss": "publisher@demo.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/pubsub",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let public = RsaPublicKey::from_public_key_pem(PUBLIC).unwrap();
        let signature =
            Signature::try_from(BASE64URL.decode(parts[2]).unwrap().as_slice()).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        VerifyingKey::<Sha256>::new(public.clone())
            .verify(signed.as_bytes(), &signature)
            .expect("signature verifies with the public key");
        assert!(VerifyingKey::<Sha256>::new(public)
            .verify(b"tampered", &signature)
            .is_err());
    }

    #[test]
    fn signature_matches_an_independent_implementation() {
        // Python `cryptography`: key.sign(input, padding.PKCS1v15(), hashes.SHA256()),
        // base64url without padding.
        let key = account().signing_key().unwrap();
        let signature = key.sign(b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0").to_bytes();
        assert_eq!(
            BASE64URL.encode(signature),
            "dW3u-Ij1eoWSY51up6FazkTlrmxXi5qi39fLJggcGc4dIZyu7T98ktwhdqJLvoHhhWZvUX1xfCSEmyN5WgCwL68MQ-IqV4EoZermg-tWl34yfwrHveWnqvafZrdTONPrBXhnhAIPZUqMyhUQvDa1USYbBdkYS9jBBFS8JaX7lioGYMB6abWU-cLIdeENn14lf9sKhaSIBkylCOsd9L0EaUxMWMC-kJOgfJMgZjQWh5Xo8VjEbdYtViF9dh2dzBC4n-k1iZhdTefQ1Au4pE4MmRMmugF0OHh_UnTkgRYC_1GDktiEuZyQHbCNdftWHQBydii-9A_StHRb5ckT4sOtdg"
        );
    }

    #[test]
    fn fingerprints_change_with_the_key() {
        let a = account();
        let mut b = a.clone();
        b.private_key_id = Some("kid-2".into());
        assert_eq!(a.fingerprint(PUBSUB_SCOPE), a.fingerprint(PUBSUB_SCOPE));
        assert_ne!(a.fingerprint(PUBSUB_SCOPE), b.fingerprint(PUBSUB_SCOPE));
        assert_eq!(a.fingerprint(PUBSUB_SCOPE).len(), 32);
    }
}
