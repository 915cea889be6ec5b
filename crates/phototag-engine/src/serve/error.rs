//! The web server's errors: every one is answered as JSON, `{"error": message}` (or an
//! upload's `classify --json` error object), with its status; a 503 or 429 also says when
//! to try again (`Retry-After`). `guard::json_errors` turns any other error answer (an
//! extractor's plain-text rejection, a bare 405) into the same shape.
//!
//! May not: log a token or echo a request's body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use phototag_light::catalog::CatalogError;

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
    /// Seconds to wait before trying again (`Retry-After`).
    retry_after: Option<u64>,
}

/// Seconds a client is told to wait after a 503.
pub const BUSY_RETRY_SECONDS: u64 = 2;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
            retry_after: None,
        }
    }

    /// An error with a body of its own (an upload's `classify --json` error object).
    pub fn with_body(status: StatusCode, body: Value) -> ApiError {
        ApiError {
            status,
            body,
            retry_after: None,
        }
    }

    /// 503: the server is busy for now; `Retry-After` says when to try again.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(BUSY_RETRY_SECONDS)
    }

    /// Adds `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
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
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
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
