//! What every request passes first, and what every error answer passes last.
//!
//! * The host allow-list (DNS rebinding): a request whose `Host` names another host than
//!   the server's own is answered 421, so a web page whose name was rebound to 127.0.0.1
//!   reads nothing. The server's own: its listen address (any IP address when it listens
//!   on all of them, both loopback addresses on loopback), `localhost`, and the names in
//!   `serve.hosts`; ports are not compared. An IP address in `Host` cannot be a rebound
//!   name, so listening on all addresses accepts every IP address.
//! * Cross-site writes: a request that may change something (anything but GET, HEAD and
//!   OPTIONS) with an `Origin` naming another host is answered 403, so another site's page
//!   cannot post uploads or logins (a browser always sends `Origin` with those; a client
//!   that sends none is not a browser).
//! * JSON errors: any error answer that is not JSON already (an extractor's plain-text
//!   rejection, a bare 405) becomes `{"error": message}`.
//!
//! May not: look at anything but headers and the status (no body is read, except an error
//! answer's own text).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Which IP addresses in `Host` are the server's own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ips {
    /// Listening on all addresses: any IP address.
    Any,
    /// Listening on loopback: 127.0.0.0/8 and ::1.
    Loopback,
    /// Listening on one address.
    Exactly(IpAddr),
}

/// The hosts the server answers to.
#[derive(Debug, Clone)]
pub struct Hosts {
    ips: Ips,
    /// Lower case, without a trailing dot; `localhost` included.
    names: Vec<String>,
}

impl Hosts {
    pub fn new(listen: SocketAddr, names: &[String]) -> Hosts {
        let ip = listen.ip();
        let ips = if ip.is_unspecified() {
            Ips::Any
        } else if ip.is_loopback() {
            Ips::Loopback
        } else {
            Ips::Exactly(ip)
        };
        let mut all = vec!["localhost".to_string()];
        all.extend(names.iter().map(|n| normalize(n)));
        Hosts { ips, names: all }
    }

    /// Whether `host` (as in a `Host` header or an origin: `name`, `name:port`,
    /// `1.2.3.4:port`, `[::1]:port`) is the server's own.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host.trim());
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return match self.ips {
                Ips::Any => true,
                Ips::Loopback => ip.is_loopback(),
                Ips::Exactly(own) => ip == own,
            };
        }
        let name = normalize(name);
        !name.is_empty() && self.names.contains(&name)
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host[:port]` → `host` (`[v6]:port` → `[v6]`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The host of an origin (`scheme://host[:port]`), or `None` for `null` or anything else.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    let rest = rest.split('/').next()?;
    (!rest.is_empty()).then_some(rest)
}

/// Middleware: 421 for another host, 403 for a write from another origin.
pub async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let hosts = &state.hosts;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(h) = host.filter(|h| !hosts.allows(h)) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the host `{}`; use its address, localhost, or a name added to serve.hosts",
                h.chars().take(100).collect::<String>()
            ),
        )
        .into_response();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let own = origin
                .to_str()
                .ok()
                .and_then(origin_host)
                .is_some_and(|h| hosts.allows(h));
            if !own {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "a request from another site's page is refused (its Origin is not this server)",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// Response middleware: an error answer that is not JSON becomes `{"error": message}`
/// (its text, or the status's reason when it had none).
pub async fn json_errors(r: Response) -> Response {
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_to_its_addresses_localhost_and_configured_names() {
        let h = Hosts::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["Photos.Example.com".into()],
        );
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "photos.example.com",
            "photos.example.com.:443",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "192.168.1.5:8080",
            "localhost.evil.example",
            "",
            ":8080",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn all_addresses_answer_to_any_ip_but_not_to_any_name() {
        let h = Hosts::new("0.0.0.0:80".parse().unwrap(), &[]);
        assert!(h.allows("192.168.1.5"));
        assert!(h.allows("[fe80::1]:80"));
        assert!(!h.allows("nas.local"));
        let h = Hosts::new("192.168.1.5:80".parse().unwrap(), &["nas.local".into()]);
        assert!(h.allows("192.168.1.5:80") && h.allows("nas.local:80"));
        assert!(!h.allows("10.0.0.1") && !h.allows("127.0.0.1"));
    }

    #[test]
    fn origins() {
        assert_eq!(origin_host("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(origin_host("https://evil.example"), Some("evil.example"));
        assert_eq!(origin_host("null"), None);
    }
}
