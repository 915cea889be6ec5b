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
    /// Set while the catalog's server is away.
    pub catalog: Mutex<Option<phototag_light::status::CatalogStatus>>,
}
