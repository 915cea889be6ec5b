//! `phototag serve`: the web page and its JSON API over HTTP (axum on tokio).
//!
//! Layout, one job per file: `server` (connections: the accept loop, the connection limit,
//! header, idle and body timeouts, shutdown), `guard` (the Host and Origin allow-list, JSON
//! for every error), `routes` (the router, login, uploads), `views` (search, tag cloud,
//! photo record, thumbnails, originals), `library` (the library newest first, "more like
//! this", near-duplicate groups), `taught` (tags taught by example: list, a tag's page,
//! teach, one-click corrections), `auth` (the access token: bearer header or login
//! cookie, compared in constant time; failed attempts throttled), `blocking` (the bounded
//! pool every blocking job runs on), `worker` (the one thread that owns the model and
//! classifies uploads in memory), `files` (catalog hash → a file on disk whose bytes still
//! have that hash), `thumbs` (JPEG thumbnails made on demand, cached by content hash),
//! `assets` (the page, compiled into the binary).
//!
//! May not: let anything from a request name a file (only hashes the catalog knows map to
//! paths, and those paths come from the catalog), write uploads to disk, write to the
//! catalog beyond taught tags (every view opens it read-only, per request, so a running
//! daemon is never blocked; `taught` writes a tag's examples and scores, one write at a
//! time, as `phototag teach` does), or block the async runtime's threads (blocking work
//! goes to `blocking`).

mod assets;
pub mod auth;
mod blocking;
mod error;
mod files;
mod guard;
mod library;
mod routes;
mod server;
mod taught;
mod thumbs;
mod views;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use phototag_light::limits::Limits;

pub use auth::Token;
pub use routes::router;
pub use server::{serve, RUNTIME_BLOCKING_THREADS};
pub use worker::Worker;

/// Thumbnails decoded at once, at most (fewer on fewer cores).
const MAX_THUMB_DECODES: usize = 4;
/// Bytes of uploads held in memory at once, in units of the largest upload: a third
/// upload waits (briefly, then 503) until one of two is classified.
const UPLOADS_IN_MEMORY: u64 = 2;

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
    /// Similarity from which the near-duplicates view groups photos (`similar.near_threshold`).
    pub near_threshold: f32,
    /// The address listened on (its IP is one of the hosts the server answers to).
    pub listen: SocketAddr,
    /// Further host names it answers to (`serve.hosts`).
    pub hosts: Vec<String>,
    /// Most connections at once (`serve.max_connections`; fewer with few file descriptors).
    pub max_connections: usize,
    /// Header, idle and body-stall timeout (`serve.timeout_seconds`).
    pub timeout: Duration,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub worker: Worker,
    /// Bounds how many thumbnails are decoded at once (each may hold a large image).
    thumb_permits: tokio::sync::Semaphore,
    /// The pool every blocking job (SQLite, search, decoding, file reads) runs on.
    blocking: blocking::Pool,
    /// Upload bytes held in memory, in KiB: bounded as a whole, not only per upload.
    upload_kib: tokio::sync::Semaphore,
    /// Failed logins and wrong bearer tokens, throttled for the whole server.
    throttle: auth::Throttle,
    /// The hosts the server answers to.
    hosts: guard::Hosts,
    /// The last `/api/dupes` answer and the catalog state it was computed from.
    dupes: std::sync::Mutex<Option<library::CachedDupes>>,
    /// Held while a taught tag is fitted and written: one at a time.
    teaching: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(settings: Settings, worker: Worker) -> Arc<AppState> {
        // A photo at the pixel limit decodes to ~270 MB: a few at a time at most.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let upload_kib = (settings.max_upload_bytes.saturating_mul(UPLOADS_IN_MEMORY))
            .div_ceil(1024)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u64);
        Arc::new(AppState {
            hosts: guard::Hosts::new(settings.listen, &settings.hosts),
            settings,
            worker,
            thumb_permits: tokio::sync::Semaphore::new(cores.min(MAX_THUMB_DECODES)),
            blocking: blocking::Pool::new(blocking::size()),
            upload_kib: tokio::sync::Semaphore::new(upload_kib as usize),
            throttle: auth::Throttle::default(),
            dupes: std::sync::Mutex::new(None),
            teaching: tokio::sync::Mutex::new(()),
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
