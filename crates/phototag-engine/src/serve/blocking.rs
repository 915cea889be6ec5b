//! The bounded pool every blocking job of the server runs on (SQLite, search with its
//! suggestions, decoding thumbnails, reading originals): at most [`size`] at once, so a
//! burst of expensive requests queues here instead of taking the async threads (which keep
//! answering the page) or starting hundreds of threads. A job that cannot start within
//! [`WAIT`] is answered 503 with `Retry-After`.
//!
//! May not: run anything on the async runtime's threads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;

/// How long a request waits for a free place in the pool before it is answered 503.
pub const WAIT: Duration = Duration::from_secs(15);

/// Jobs at once: two per core, between 4 and 16.
pub fn size() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).clamp(4, 16)
}

/// A bounded pool of blocking jobs (on tokio's blocking threads).
#[derive(Debug)]
pub struct Pool {
    permits: Arc<Semaphore>,
}

impl Pool {
    pub fn new(size: usize) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Runs `f` off the async threads once the pool has room (503 after [`WAIT`]).
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        let permit =
            match tokio::time::timeout(WAIT, Arc::clone(&self.permits).acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return Err(ApiError::internal(e)),
                Err(_) => return Err(ApiError::busy("the server is busy; try again in a moment")),
            };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(ApiError::internal)?
    }
}
