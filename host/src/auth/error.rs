//! Why authentication fails or cannot be set up, and how a refusal answers.

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{API_KEY_ENV, JWT_SECRET_ENV, MIN_JWT_SECRET_LEN};

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

/// What can go wrong building an [`AuthConfig`](super::AuthConfig) at startup.
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
pub struct TokenIssueError(pub(super) jsonwebtoken::errors::Error);
