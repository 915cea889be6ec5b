//! The access token: required on every data route when set (always when listening beyond
//! loopback). A client sends it as `Authorization: Bearer TOKEN`, or logs in once
//! (`POST /api/login`) and then sends the session cookie, which is derived from the token
//! (the token itself is never stored in the browser). Comparisons are constant-time: both
//! sides are hashed to 32 bytes with BLAKE3 and compared with its constant-time equality.
//!
//! May not: log or echo a token.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::AppState;

/// The name of the login cookie.
pub const COOKIE: &str = "phototag_session";

/// A configured access token.
#[derive(Clone)]
pub struct Token {
    token: blake3::Hash,
    cookie: String,
    cookie_hash: blake3::Hash,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// `None` for an empty (or blank) token: no token.
    pub fn new(token: &str) -> Option<Token> {
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        let cookie = blake3::derive_key("phototag serve session cookie v1", token.as_bytes());
        let cookie = phototag_light::catalog::hex(&cookie);
        Some(Token {
            token: blake3::hash(token.as_bytes()),
            cookie_hash: blake3::hash(cookie.as_bytes()),
            cookie,
        })
    }

    /// Whether `candidate` is the token (constant-time).
    pub fn matches(&self, candidate: &str) -> bool {
        blake3::hash(candidate.as_bytes()) == self.token
    }

    /// The session cookie's value.
    pub fn cookie_value(&self) -> &str {
        &self.cookie
    }

    fn cookie_matches(&self, candidate: &str) -> bool {
        blake3::hash(candidate.as_bytes()) == self.cookie_hash
    }

    /// Whether a request's headers carry the token or the session cookie.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .any(|t| self.matches(t.trim()));
        bearer
            || headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
                .any(|v| self.cookie_matches(v))
    }
}

/// Whether the request may see data: no token is configured, or it carries it.
pub fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .settings
        .token
        .as_ref()
        .is_none_or(|t| t.allows(headers))
}

/// Middleware for the data routes: 401 with a JSON error unless authorized.
pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if authorized(&state, req.headers()) {
        return next.run(req).await;
    }
    let mut r = super::error::ApiError::new(
        StatusCode::UNAUTHORIZED,
        "an access token is needed: log in on the page, or send `Authorization: Bearer TOKEN`",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blank_token_is_none() {
        assert!(Token::new("").is_none());
        assert!(Token::new("  ").is_none());
    }

    #[test]
    fn bearer_and_cookie() {
        let t = Token::new("s3cret").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(t.allows(&headers(&[(header::AUTHORIZATION, "Bearer s3cret")])));
        assert!(!t.allows(&headers(&[(header::AUTHORIZATION, "Bearer wrong")])));
        assert!(!t.allows(&headers(&[(header::AUTHORIZATION, "Basic s3cret")])));
        let cookie = format!("a=b; {COOKIE}={}", t.cookie_value());
        assert!(t.allows(&headers(&[(header::COOKIE, &cookie)])));
        // The raw token is not a valid cookie, nor another token's cookie.
        let raw = format!("{COOKIE}=s3cret");
        assert!(!t.allows(&headers(&[(header::COOKIE, &raw)])));
        let other = Token::new("other").unwrap();
        let theirs = format!("{COOKIE}={}", other.cookie_value());
        assert!(!t.allows(&headers(&[(header::COOKIE, &theirs)])));
        assert!(!t.allows(&HeaderMap::new()));
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
