//! `phototag serve`: the web page and its JSON API over HTTP (axum on tokio).
//!
//! Layout, one job per file: `routes` (the router, errors, login, uploads), `views` (search,
//! tag cloud, photo record, thumbnails, originals), `auth` (the access
//! token: bearer header or login cookie, compared in constant time), `worker` (the one
//! thread that owns the model and classifies uploads in memory), `files` (catalog hash →
//! a file on disk whose bytes still have that hash), `thumbs` (JPEG thumbnails made on
//! demand, cached by content hash), `assets` (the page, compiled into the binary).
//!
//! May not: let anything from a request name a file (only hashes the catalog knows map to
//! paths, and those paths come from the catalog), write uploads to disk, or write to the
//! catalog (it opens it read-only, per request, so a running daemon is never blocked).

mod assets;
pub mod auth;
mod error;
mod files;
mod routes;
mod thumbs;
mod views;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use phototag_light::limits::Limits;

pub use auth::Token;
pub use routes::router;
pub use worker::Worker;

/// Thumbnails decoded at once, at most (fewer on fewer cores).
const MAX_THUMB_DECODES: usize = 4;

/// Why the server will not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("refusing to listen on {addr} without an access token: anything but a loopback address needs one (config key serve.token or $PHOTOTAG_SERVE_TOKEN)")]
    NeedsToken { addr: SocketAddr },
    #[error("`{0}` is not an address and port (e.g. 127.0.0.1:8080 or [::]:8080)")]
    BadAddress(String),
}

/// What the handlers need to know, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The catalog, opened read-only per request.
    pub db: phototag_light::catalog::Location,
    /// Decode limits for uploads and thumbnails (the same as everywhere).
    pub limits: Limits,
    /// Largest upload accepted.
    pub max_upload_bytes: u64,
    /// The thumbnail cache folder.
    pub thumb_dir: PathBuf,
    /// Longest side of a grid thumbnail.
    pub thumb_size: u32,
    /// Longest side of the photo view's preview.
    pub preview_size: u32,
    /// The access token, when one is required.
    pub token: Option<Token>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub worker: Worker,
    /// Bounds how many thumbnails are decoded at once (each may hold a large image).
    thumb_permits: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(settings: Settings, worker: Worker) -> Arc<AppState> {
        // A photo at the pixel limit decodes to ~270 MB: a few at a time at most.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(AppState {
            settings,
            worker,
            thumb_permits: tokio::sync::Semaphore::new(cores.min(MAX_THUMB_DECODES)),
        })
    }
}

/// Parses a listen address and refuses one beyond loopback without a token.
pub fn check_listen(addr: &str, token: Option<&Token>) -> Result<SocketAddr, ServeError> {
    let addr: SocketAddr = addr
        .trim()
        .parse()
        .map_err(|_| ServeError::BadAddress(addr.to_string()))?;
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(ServeError::NeedsToken { addr });
    }
    Ok(addr)
}

/// Serves the page and API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_a_token() {
        assert!(check_listen("127.0.0.1:0", None).is_ok());
        assert!(check_listen("[::1]:8080", None).is_ok());
        assert!(matches!(
            check_listen("0.0.0.0:8080", None),
            Err(ServeError::NeedsToken { .. })
        ));
        assert!(matches!(
            check_listen("192.168.1.2:80", None),
            Err(ServeError::NeedsToken { .. })
        ));
        let t = Token::new("secret").unwrap();
        assert!(check_listen("0.0.0.0:8080", Some(&t)).is_ok());
        assert!(matches!(
            check_listen("localhost:80", None),
            Err(ServeError::BadAddress(_))
        ));
    }
}
