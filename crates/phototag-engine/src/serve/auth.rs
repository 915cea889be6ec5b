//! The access token: required on every data route when set (always when listening beyond
//! loopback). A client sends it as `Authorization: Bearer TOKEN`, or logs in once
//! (`POST /api/login`) and then sends the session cookie, which is derived from the token
//! (the token itself is never stored in the browser). Comparisons are constant-time: both
//! sides are hashed to 32 bytes with BLAKE3 and compared with its constant-time equality.
//!
//! Guesses are throttled for the whole server, not per connection: every attempt that
//! names a token (a login, a bearer header) takes one of [`Throttle::BURST`] places, which
//! come back one every [`Throttle::EVERY`] (a right token gives its place back). With none
//! left the answer is 429 with `Retry-After`, whatever the token: so a flood of parallel
//! guesses learns nothing. The session cookie (256 bits derived from the token) cannot be
//! guessed and is not throttled.
//!
//! May not: log or echo a token.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::ApiError;
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

    /// Whether a request carries the session cookie.
    fn has_cookie(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|v| self.cookie_matches(v))
    }

    /// The bearer tokens a request names (`Authorization: Bearer ...`).
    fn bearers(headers: &HeaderMap) -> impl Iterator<Item = &str> {
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
    }

    /// Whether a request's headers carry the token or the session cookie (unthrottled:
    /// for tests and callers that throttle themselves).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        Token::bearers(headers).any(|t| self.matches(t)) || self.has_cookie(headers)
    }
}

/// Failed token attempts for the whole server (see the module documentation).
#[derive(Debug)]
pub struct Throttle {
    /// Places left (fractional: they come back continuously), and when that was counted.
    state: Mutex<(f64, Instant)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            state: Mutex::new((Throttle::BURST, Instant::now())),
        }
    }
}

impl Throttle {
    /// Attempts allowed at once.
    pub const BURST: f64 = 10.0;
    /// One place comes back this often.
    pub const EVERY: Duration = Duration::from_secs(2);

    fn refill(state: &mut (f64, Instant)) {
        let now = Instant::now();
        let back = now.duration_since(state.1).as_secs_f64() / Throttle::EVERY.as_secs_f64();
        *state = ((state.0 + back).min(Throttle::BURST), now);
    }

    /// Takes a place for one attempt; `Err(seconds)` to wait when none is left.
    pub fn take(&self) -> Result<(), u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Throttle::refill(&mut s);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - s.0) * Throttle::EVERY.as_secs_f64();
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    /// Gives the place back: the attempt named the right token.
    pub fn give_back(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = (s.0 + 1.0).min(Throttle::BURST);
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    Denied,
    /// Too many failed attempts: try again after this many seconds.
    Throttled(u64),
}

/// Whether the request may see data: no token is configured, it carries the session
/// cookie, or it names the token (a bearer header, throttled).
pub fn access(state: &AppState, headers: &HeaderMap) -> Access {
    let Some(token) = &state.settings.token else {
        return Access::Granted;
    };
    if token.has_cookie(headers) {
        return Access::Granted;
    }
    if Token::bearers(headers).next().is_none() {
        return Access::Denied;
    }
    if let Err(wait) = state.throttle.take() {
        return Access::Throttled(wait);
    }
    if Token::bearers(headers).any(|t| token.matches(t)) {
        state.throttle.give_back();
        Access::Granted
    } else {
        Access::Denied
    }
}

/// 429 with `Retry-After`: too many failed attempts.
pub fn throttled(wait: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong tokens; try again in {wait} s"),
    )
    .retry_after(wait)
}

/// Middleware for the data routes: 401 with a JSON error unless authorized (429 while
/// wrong tokens are throttled).
pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match access(&state, req.headers()) {
        Access::Granted => return next.run(req).await,
        Access::Throttled(wait) => return throttled(wait).into_response(),
        Access::Denied => {}
    }
    let mut r = ApiError::new(
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
    fn the_throttle_allows_a_burst_then_says_when() {
        let t = Throttle::default();
        for _ in 0..Throttle::BURST as usize {
            assert_eq!(t.take(), Ok(()));
        }
        let wait = t.take().unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        // A right token gives its place back.
        t.give_back();
        assert_eq!(t.take(), Ok(()));
        assert!(t.take().is_err());
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
