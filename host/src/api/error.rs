//! The API's one error shape, `{"status": 4xx, "message": "...", "data": [...]}`, and our
//! own `Json` extractor whose rejections use it too.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// An error answered to the client. Internal details are logged, never sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    data: Vec<Value>,
}

/// A problem with one field of the request.
#[derive(Debug, Serialize, Clone, PartialEq, utoipa::ToSchema)]
pub struct FieldProblem {
    /// Path of the field, e.g. `config.url`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            data: Vec::new(),
        }
    }

    /// 400 with a message naming the field.
    #[track_caller]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for `what` (e.g. "tenant t1").
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422 carrying one entry per invalid field; the message lists them.
    pub fn validation(problems: Vec<FieldProblem>) -> Self {
        let message = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        let data = problems
            .into_iter()
            .map(|p| serde_json::to_value(p).expect("field problem serialises"))
            .collect();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("validation failed: {message}"),
            data,
        }
    }

    /// An error whose `data` lists structured details (e.g. configuration violations
    /// `{propertyPath, title, helpText}`, or the users of something that cannot go).
    pub fn with_data(status: StatusCode, message: impl Into<String>, data: Vec<Value>) -> Self {
        Self {
            status,
            message: message.into(),
            data,
        }
    }

    /// 500; the cause is logged, the client sees a generic message.
    #[track_caller]
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let location = std::panic::Location::caller();
        tracing::error!(%location, error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// The body of every error answer (`401`/`403` of [`crate::auth::AuthError`] included).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong; for bad input it starts with the field at fault.
    pub message: &'a str,
    /// Details, when there are any: field problems (`{field, message}`), configuration
    /// violations (`{propertyPath, title, helpText}`) or the users of something that
    /// cannot be removed.
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub data: &'a [Value],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: &self.message,
            data: &self.data,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    #[track_caller]
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::NotFound(what) => ApiError::not_found(what),
            crate::store::StoreError::Conflict(what) => ApiError::conflict(what),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        let response = err.status();
        ApiError::new(response, err.to_string())
    }
}

/// `axum::Json` whose rejections answer in the API's error shape, naming what failed;
/// strings holding U+0000 are refused too ([`super::input`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Whether a `Content-Type` is JSON (`application/json` or `application/*+json`), as
/// `axum::Json` decides it.
fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    let Some(essence) = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(axum::http::header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        // axum picks the status (400 syntax, 422 shape).
        let axum::Json(value) =
            axum::Json::<T>::from_bytes(&bytes).map_err(|rejection: JsonRejection| {
                ApiError::new(rejection.status(), rejection.body_text())
            })?;
        super::input::check_json(&bytes)?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejections answer in the API's error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| {
                ApiError::bad_request(format!("query string: {}", rejection.body_text()))
            })
    }
}
