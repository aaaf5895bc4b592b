//! Who is calling: the admin API key, tenant JWTs and named API tokens.
//!
//! Every API request carries `Authorization: Bearer <credential>`. The [`Principal`]
//! extractor resolves the credential, in this order:
//!
//! 1. the admin API key (`OUTRIDER_API_KEY`), compared in constant time → [`Principal::Admin`];
//! 2. a tenant JWT issued by `GET /api/v1/tenants/{id}/token` → [`Principal::Tenant`];
//! 3. a named API token, if an [`ApiTokenLookup`] is configured → [`Principal::ApiToken`]
//!    (a JWT signed by [`ApiTokenKeys`], a key of its own; the store says whether it is
//!    still unrevoked, on every request, so revocation takes effect at once);
//!
//! and anything else is answered `401`. Handlers then ask the principal for what they
//! need with [`Principal::require_admin`] or [`Principal::require_tenant_access`]
//! (`403` when the credential is valid but not for this resource, as Outpost does).
//!
//! Tenant JWTs follow Outpost's shape: HS256, claims `iss`, `sub` (tenant id), `iat` and
//! `exp` (24 hours). They are signed with a key derived by HKDF-SHA256 from
//! `OUTRIDER_JWT_SECRET` or, without it, from the admin key.
//!
//! A server started with `--insecure-dev` and no admin key treats every request as
//! [`Principal::Admin`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hkdf::Hkdf;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::crypto::HKDF_SALT;

/// Environment variable holding the admin API key.
pub const API_KEY_ENV: &str = "OUTRIDER_API_KEY";

/// Environment variable holding an optional dedicated secret for tenant JWTs.
pub const JWT_SECRET_ENV: &str = "OUTRIDER_JWT_SECRET";

/// `iss` claim of the tenant JWTs Outrider issues, and the only one it accepts.
pub const JWT_ISSUER: &str = "outrider";

/// Lifetime of a tenant JWT, as in Outpost.
pub const TENANT_TOKEN_TTL: time::Duration = time::Duration::hours(24);

/// Clock skew tolerated on `exp`, in seconds.
pub const JWT_LEEWAY_SECS: u64 = 60;

/// HKDF `info` for the HMAC key that signs tenant JWTs.
const HKDF_INFO_JWT: &[u8] = b"jwt";

/// HKDF `info` for the HMAC key that signs named API tokens. A key of its own, so that
/// an API token can never pass as a tenant JWT or the other way round.
const HKDF_INFO_API_TOKEN: &[u8] = b"api-token";

/// `sub` claim of every named API token.
pub const API_TOKEN_SUBJECT: &str = "api-token";

/// Shortest accepted `OUTRIDER_JWT_SECRET`, in bytes.
pub const MIN_JWT_SECRET_LEN: usize = 16;

/// Why a request is refused. Answers as the API's JSON error shape
/// `{"status": 401|403, "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing authorization header")]
    MissingCredentials,
    /// An `Authorization` header that is not `Bearer <credential>`.
    #[error("invalid authorization header: expected \"Bearer <token>\"")]
    MalformedHeader,
    /// A credential that is neither the admin key, a valid tenant JWT nor a known API
    /// token.
    #[error("invalid token")]
    InvalidToken,
    /// A tenant JWT whose `exp` has passed.
    #[error("token expired")]
    ExpiredToken,
    /// A valid non-admin credential on an admin-only endpoint.
    #[error("this endpoint requires the admin API key")]
    AdminRequired,
    /// A valid tenant JWT used on another tenant's resources.
    #[error("token is not valid for tenant {tenant_id}")]
    WrongTenant {
        /// The tenant the request addressed.
        tenant_id: String,
    },
}

impl AuthError {
    /// `401` when the caller is not authenticated, `403` when it is but may not do this.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::MalformedHeader
            | AuthError::InvalidToken
            | AuthError::ExpiredToken => StatusCode::UNAUTHORIZED,
            AuthError::AdminRequired | AuthError::WrongTenant { .. } => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(serde_json::json!({
            "status": status.as_u16(),
            "message": self.to_string(),
        }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What can go wrong building an [`AuthConfig`] at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthSetupError {
    /// No admin key and no `--insecure-dev`.
    #[error("{API_KEY_ENV} is not set; set an admin API key, or pass --insecure-dev to run without authentication")]
    MissingAdminKey,
    /// An admin key that is empty or only whitespace.
    #[error("{API_KEY_ENV} is empty")]
    EmptyAdminKey,
    /// A JWT secret shorter than [`MIN_JWT_SECRET_LEN`].
    #[error(
        "{JWT_SECRET_ENV} is {len} bytes long; at least {MIN_JWT_SECRET_LEN} bytes are required"
    )]
    JwtSecretTooShort {
        /// Its length in bytes.
        len: usize,
    },
}

/// A tenant JWT could not be signed (an internal error, not the caller's).
#[derive(Debug, thiserror::Error)]
#[error("signing the tenant token failed: {0}")]
pub struct TokenIssueError(jsonwebtoken::errors::Error);

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

    fn sign(&self, claims: &TenantClaims) -> Result<String, TokenIssueError> {
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

/// A boxed future, as returned by [`ApiTokenLookup::lookup`].
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

/// Resolves named API tokens; implemented by the store.
///
/// Returns the token's id when `token` is a known, unrevoked API token. It is a boxed
/// future rather than an `async fn` so that [`AuthConfig`] can hold it as a trait
/// object.
///
/// ```
/// use outrider::auth::{ApiTokenLookup, LookupFuture};
///
/// struct Fixed;
///
/// impl ApiTokenLookup for Fixed {
///     fn lookup<'a>(&'a self, token: &'a str) -> LookupFuture<'a> {
///         Box::pin(async move { (token == "tok_secret").then(|| "tok_1".to_owned()) })
///     }
/// }
/// ```
pub trait ApiTokenLookup: Send + Sync {
    /// The id of the API token `token`, or `None` when it is unknown or revoked.
    fn lookup<'a>(&'a self, token: &'a str) -> LookupFuture<'a>;
}

/// Everything the [`Principal`] extractor needs; held by the app state as
/// `Arc<AuthConfig>` and reached through [`FromRef`].
#[derive(Clone)]
pub struct AuthConfig {
    /// The admin API key; `None` only with `insecure_dev`.
    pub admin_key: Option<AdminKey>,
    /// Keys for tenant JWTs.
    pub jwt: JwtKeys,
    /// `--insecure-dev`: with no admin key, every request is [`Principal::Admin`].
    pub insecure_dev: bool,
    /// Resolves named API tokens, once the store provides them.
    pub api_tokens: Option<Arc<dyn ApiTokenLookup>>,
    /// Signs named API tokens.
    pub api_token_keys: ApiTokenKeys,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("admin_key", &self.admin_key)
            .field("jwt", &self.jwt)
            .field("insecure_dev", &self.insecure_dev)
            .field("api_tokens", &self.api_tokens.is_some())
            .finish()
    }
}

impl AuthConfig {
    /// Builds the configuration from `OUTRIDER_API_KEY`, `OUTRIDER_JWT_SECRET` and
    /// `--insecure-dev`, refusing to run without an admin key unless `insecure_dev`.
    ///
    /// The JWT key derives from the JWT secret if given, else from the admin key; in
    /// insecure dev mode with neither, it is random (tenant tokens then do not survive
    /// a restart).
    pub fn from_settings(
        admin_key: Option<&str>,
        jwt_secret: Option<&str>,
        insecure_dev: bool,
    ) -> Result<Self, AuthSetupError> {
        let admin = admin_key.map(AdminKey::new).transpose()?;
        if admin.is_none() && !insecure_dev {
            return Err(AuthSetupError::MissingAdminKey);
        }
        let (jwt, api_token_keys) = match (jwt_secret, admin_key) {
            (Some(secret), _) if secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(AuthSetupError::JwtSecretTooShort { len: secret.len() });
            }
            (Some(secret), _) | (None, Some(secret)) => (
                JwtKeys::derive(secret.as_bytes()),
                ApiTokenKeys::derive(secret.as_bytes()),
            ),
            (None, None) => (JwtKeys::ephemeral(), ApiTokenKeys::ephemeral()),
        };
        Ok(AuthConfig {
            admin_key: admin,
            jwt,
            insecure_dev,
            api_tokens: None,
            api_token_keys,
        })
    }

    /// Adds the resolver of named API tokens.
    pub fn with_api_tokens(mut self, lookup: Arc<dyn ApiTokenLookup>) -> Self {
        self.api_tokens = Some(lookup);
        self
    }

    /// Issues a tenant JWT (see [`JwtKeys::issue_tenant_token`]).
    pub fn issue_tenant_token(&self, tenant_id: &str) -> Result<String, TokenIssueError> {
        self.jwt.issue_tenant_token(tenant_id)
    }

    /// Verifies a tenant JWT (see [`JwtKeys::verify_tenant_token`]).
    pub fn verify_tenant_token(&self, token: &str) -> Result<TenantClaims, AuthError> {
        self.jwt.verify_tenant_token(token)
    }

    /// Insecure dev mode without an admin key: no authentication at all.
    fn is_open(&self) -> bool {
        self.insecure_dev && self.admin_key.is_none()
    }

    /// Resolves the `Authorization` header value (if any) to a principal.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        if self.is_open() {
            return Ok(Principal::Admin);
        }
        let token = bearer_token(authorization.ok_or(AuthError::MissingCredentials)?)?;
        if self.admin_key.as_ref().is_some_and(|k| k.verify(token)) {
            return Ok(Principal::Admin);
        }
        let jwt_error = match self.jwt.verify_tenant_token(token) {
            Ok(claims) => return Ok(Principal::Tenant(claims.sub)),
            Err(e) => e,
        };
        if let Some(lookup) = &self.api_tokens {
            if let Some(id) = lookup.lookup(token).await {
                return Ok(Principal::ApiToken { id });
            }
        }
        Err(jwt_error)
    }
}

/// Extracts the credential from `Bearer <credential>` (scheme case-insensitive).
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, token) = header.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// The authenticated caller of a request.
///
/// Use it as a handler argument; the state must provide `Arc<AuthConfig>` via
/// [`FromRef`]. Extraction fails with `401` ([`AuthError`]) when the credential is
/// missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin API key (or any request in insecure dev mode without one).
    Admin,
    /// A tenant JWT for this tenant id.
    Tenant(String),
    /// A named API token. API tokens act with admin rights.
    ApiToken {
        /// The token's id (never the token itself).
        id: String,
    },
}

impl Principal {
    /// Allows admin credentials (admin key and API tokens) only; `403` otherwise.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        match self {
            Principal::Admin | Principal::ApiToken { .. } => Ok(()),
            Principal::Tenant(_) => Err(AuthError::AdminRequired),
        }
    }

    /// Allows admin credentials, and a tenant JWT for `tenant_id` itself; a tenant JWT
    /// for another tenant gets `403` ("token is not valid for tenant X").
    pub fn require_tenant_access(&self, tenant_id: &str) -> Result<(), AuthError> {
        match self {
            Principal::Admin | Principal::ApiToken { .. } => Ok(()),
            Principal::Tenant(own) if own == tenant_id => Ok(()),
            Principal::Tenant(_) => Err(AuthError::WrongTenant {
                tenant_id: tenant_id.to_owned(),
            }),
        }
    }

    /// The tenant a tenant JWT is bound to; `None` for admin credentials.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Principal::Tenant(id) => Some(id),
            Principal::Admin | Principal::ApiToken { .. } => None,
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    Arc<AuthConfig>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<AuthConfig>::from_ref(state);
        let principal = if config.is_open() {
            Principal::Admin
        } else {
            let header = match parts.headers.get(AUTHORIZATION) {
                Some(value) => Some(value.to_str().map_err(|_| AuthError::MalformedHeader)?),
                None => None,
            };
            config.authenticate(header).await?
        };
        if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
            slot.fill(&principal);
        }
        Ok(principal)
    }
}

/// A place in a request's extensions where the [`Principal`] extractor leaves who the
/// caller turned out to be, for middleware that wraps the handler (the audit trail) to
/// read once the response is ready, without authenticating twice.
#[derive(Clone, Default, Debug)]
pub struct PrincipalSlot(Arc<std::sync::Mutex<Option<Principal>>>);

impl PrincipalSlot {
    fn fill(&self, principal: &Principal) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(principal.clone());
        }
    }

    /// The principal, if a handler extracted one.
    pub fn get(&self) -> Option<Principal> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

#[cfg(test)]
mod tests;
