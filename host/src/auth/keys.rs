//! The secrets credentials are checked against: the admin key's digest, and the keys
//! that sign tenant JWTs and named API tokens, with those tokens' claims.

use std::fmt;

use hkdf::Hkdf;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{
    AuthError, AuthSetupError, TokenIssueError, API_TOKEN_SUBJECT, HKDF_INFO_API_TOKEN,
    HKDF_INFO_JWT, JWT_ISSUER, JWT_LEEWAY_SECS, TENANT_TOKEN_TTL,
};
use crate::crypto::HKDF_SALT;

/// The admin API key. Holds only its SHA-256 digest; `Debug` is redacted.
#[derive(Clone)]
pub struct AdminKey {
    digest: [u8; 32],
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

impl AdminKey {
    /// Wraps the configured key; an empty key is refused.
    pub fn new(key: &str) -> Result<Self, AuthSetupError> {
        if key.trim().is_empty() {
            return Err(AuthSetupError::EmptyAdminKey);
        }
        Ok(AdminKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the admin key. Compares SHA-256 digests in constant
    /// time, so neither the content nor the length of the key leaks through timing.
    pub fn verify(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.digest).into()
    }
}

/// Claims of a tenant JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantClaims {
    /// Issuer, [`JWT_ISSUER`].
    pub iss: String,
    /// The tenant id.
    pub sub: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

impl TenantClaims {
    /// The tenant this token is for.
    pub fn tenant_id(&self) -> &str {
        &self.sub
    }
}

/// Builds from a 32-byte HKDF-SHA256 key of `secret` (salt `outrider/v1`) for `info`,
/// wiping the key afterwards.
fn with_derived_key<T>(secret: &[u8], info: &[u8], build: impl FnOnce(&[u8]) -> T) -> T {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
        .expand(info, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let built = build(&key);
    key.fill(0);
    built
}

/// Builds from a random 32-byte key, wiping it afterwards.
fn with_random_key<T>(build: impl FnOnce(&[u8]) -> T) -> T {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let built = build(&key);
    key.fill(0);
    built
}

/// Signs and verifies tenant JWTs (HS256 only). `Debug` is redacted.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// Derives the signing key from `secret` (the JWT secret or the admin key) with
    /// HKDF-SHA256, salt `outrider/v1`, info `jwt`.
    pub fn derive(secret: &[u8]) -> Self {
        with_derived_key(secret, HKDF_INFO_JWT, Self::from_hmac_key)
    }

    /// A random signing key: tokens it issues stop working when the process exits.
    pub fn ephemeral() -> Self {
        with_random_key(Self::from_hmac_key)
    }

    fn from_hmac_key(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.leeway = JWT_LEEWAY_SECS;
        JwtKeys {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// Issues a token for `tenant_id`, valid for [`TENANT_TOKEN_TTL`]. Signing only
    /// fails on a broken crypto provider, an internal error.
    pub fn issue_tenant_token(&self, tenant_id: &str) -> Result<String, TokenIssueError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.sign(&TenantClaims {
            iss: JWT_ISSUER.to_owned(),
            sub: tenant_id.to_owned(),
            iat: now,
            exp: now + TENANT_TOKEN_TTL.whole_seconds(),
        })
    }

    pub(super) fn sign(&self, claims: &TenantClaims) -> Result<String, TokenIssueError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(TokenIssueError)
    }

    /// Verifies a tenant token: HS256 only, signature, issuer, expiry (with
    /// [`JWT_LEEWAY_SECS`] of leeway) and a non-empty subject.
    pub fn verify_tenant_token(&self, token: &str) -> Result<TenantClaims, AuthError> {
        let data = jsonwebtoken::decode::<TenantClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::ExpiredToken,
                _ => AuthError::InvalidToken,
            })?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::InvalidToken);
        }
        Ok(data.claims)
    }
}

/// Claims of a named API token. It has no `exp`: it lives until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenClaims {
    /// Issuer, [`JWT_ISSUER`].
    pub iss: String,
    /// Always [`API_TOKEN_SUBJECT`].
    pub sub: String,
    /// The token's id in the store.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
}

/// Signs and verifies named API tokens (HS256, a key derived apart from the tenant
/// JWT key). Whether a token is still valid (not revoked) is the store's to say.
#[derive(Clone)]
pub struct ApiTokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for ApiTokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenKeys(<redacted>)")
    }
}

impl ApiTokenKeys {
    /// Derives the key from `secret` with HKDF-SHA256, salt `outrider/v1`, info
    /// `api-token`.
    pub fn derive(secret: &[u8]) -> Self {
        with_derived_key(secret, HKDF_INFO_API_TOKEN, Self::from_hmac_key)
    }

    /// A random key: tokens stop working when the process exits.
    pub fn ephemeral() -> Self {
        with_random_key(Self::from_hmac_key)
    }

    fn from_hmac_key(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_required_spec_claims(&["iss", "sub"]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        ApiTokenKeys {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// A signed token whose `jti` is `id`.
    pub fn issue(&self, id: &str) -> Result<String, TokenIssueError> {
        let claims = ApiTokenClaims {
            iss: JWT_ISSUER.to_owned(),
            sub: API_TOKEN_SUBJECT.to_owned(),
            jti: id.to_owned(),
            iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(TokenIssueError)
    }

    /// The `jti` of a token this server signed, or `None`.
    pub fn verify(&self, token: &str) -> Option<String> {
        let data =
            jsonwebtoken::decode::<ApiTokenClaims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.sub == API_TOKEN_SUBJECT && !data.claims.jti.is_empty())
            .then_some(data.claims.jti)
    }
}

/// SHA-256 of a presented token, hex: what the store keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
