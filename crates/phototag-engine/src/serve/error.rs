//! The web server's errors: every one is answered as JSON, `{"error": message}` (or an
//! upload's `classify --json` error object), with its status.
//!
//! May not: log a token or echo a request's body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use phototag_light::catalog::CatalogError;

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    /// An error with a body of its own (an upload's `classify --json` error object).
    pub fn with_body(status: StatusCode, body: Value) -> ApiError {
        ApiError { status, body }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what} is not in the catalog"),
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("{e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        match e {
            CatalogError::Missing { .. } | CatalogError::TooOld { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            e => ApiError::internal(e),
        }
    }
}

/// An extractor's rejection (bad query string, not multipart) as a JSON error.
pub fn rejected(e: impl IntoResponse + std::fmt::Display) -> ApiError {
    let message = e.to_string();
    ApiError::new(e.into_response().status(), message)
}
