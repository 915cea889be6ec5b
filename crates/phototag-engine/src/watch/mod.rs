//! The watcher daemon: `phototag watch` keeps the catalog true while files come and go.
//! The event loop (`daemon`, with its roots in `roots`) notices and settles changes and
//! sends [`Job`]s to the one worker thread (`worker`), which writes the catalog and keeps
//! albums and sidecars (`albums`); they share [`Shared`] counters for the status record.

pub mod albums;
pub mod daemon;
pub mod mounts;
pub mod roots;
pub mod sdnotify;
pub mod settle;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Mutex;
use std::time::Duration;

use crate::index::plan::Plan;
use crate::index::walk::Entry;

/// Why the daemon will not start (or a reload is refused): exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "nothing to watch: add folders to [watch] roots in the configuration, or pass --root DIR"
    )]
    NoRoots,
    #[error("root {path}: {why} (roots are existing folders)")]
    BadRoot { path: PathBuf, why: String },
}

/// Checks the roots the daemon is given: at least one, each an existing folder. (Once
/// running, a root that goes away is offline, never an error.)
pub fn check_roots(roots: &[PathBuf]) -> Result<(), WatchError> {
    if roots.is_empty() {
        return Err(WatchError::NoRoots);
    }
    for r in roots {
        let bad = |why: &str| WatchError::BadRoot {
            path: r.clone(),
            why: why.into(),
        };
        if r.as_os_str().is_empty() || !r.is_absolute() {
            return Err(bad("not an absolute path"));
        }
        match std::fs::metadata(r) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(bad("not a folder")),
            Err(e) => return Err(bad(&e.to_string())),
        }
    }
    Ok(())
}

/// Work for the worker.
pub enum Job {
    /// Walk these roots and compare them with the catalog; the plan comes back.
    Reconcile {
        roots: Vec<PathBuf>,
        reply: tokio::sync::oneshot::Sender<Result<Plan, String>>,
    },
    /// Hash, dedupe and classify settled files.
    Process(Vec<Entry>),
    /// These paths (files or folders) were deleted or moved away a grace period ago:
    /// remove the rows of those that are still missing.
    RemoveMissing(Vec<PathBuf>),
    /// Record a root's state (`online`, `offline`).
    RootState { root: PathBuf, state: &'static str },
    /// New album and sidecar settings (SIGHUP).
    Outputs(Outputs),
}

/// What the worker writes besides the catalog: album folders and sidecars.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The config's `[[album]]` entries (the catalog's are read at each sync).
    pub albums: Vec<phototag_light::config::AlbumConfig>,
    /// Canonical roots whose photos get XMP sidecars.
    pub sidecar_roots: Vec<PathBuf>,
    /// Quiet time before album folders are brought up to date.
    pub album_delay: Duration,
}

/// Counters the event loop reads for the status record.
#[derive(Debug, Default)]
pub struct Shared {
    pub queue: AtomicUsize,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub model: Mutex<Option<String>>,
    pub albums: Mutex<Vec<phototag_light::status::AlbumStatus>>,
}
