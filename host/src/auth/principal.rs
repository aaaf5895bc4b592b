//! The authenticated caller of a request: the [`Principal`] extractor, what it allows,
//! and the slot where it leaves the caller for middleware.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{AuthConfig, AuthError};

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
