//! The API's one error type: a status and a message, answered as `{"error": "…"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use benchfleet::store::{ErrorKind, StoreError};

/// An API error: `{"error": message}` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }

    pub fn into_response_json(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "{}", self.message);
        }
        self.into_response_json()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match e.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<benchfleet::Error> for ApiError {
    fn from(e: benchfleet::Error) -> Self {
        match e {
            benchfleet::Error::RunNotFound(_) | benchfleet::Error::AmbiguousRun { .. } => {
                ApiError::not_found(e.to_string())
            }
            benchfleet::Error::Store(s) => s.into(),
            e if e.is_user_input() => ApiError::bad_request(e.to_string()),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<benchfleet::compare::CompareError> for ApiError {
    fn from(e: benchfleet::compare::CompareError) -> Self {
        use benchfleet::compare::CompareError;
        match e {
            CompareError::Facade(e) => e.into(),
            e @ (CompareError::TagNotFound { .. } | CompareError::Unresolvable(_)) => {
                ApiError::not_found(e.to_string())
            }
            e => ApiError::bad_request(e.to_string()),
        }
    }
}
