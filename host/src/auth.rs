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

mod error;
mod keys;
mod principal;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use error::{AuthError, AuthSetupError, TokenIssueError};
pub use keys::{token_digest, AdminKey, ApiTokenClaims, ApiTokenKeys, JwtKeys, TenantClaims};
pub use principal::{Principal, PrincipalSlot};

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
/// `Arc<AuthConfig>` and reached through [`FromRef`](axum::extract::FromRef).
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

#[cfg(test)]
mod tests;
