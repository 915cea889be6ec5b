//! The watcher daemon: `phototag watch` keeps the catalog true while files come and go.
//! The event loop (`daemon`, with its roots in `roots`) notices and settles changes and
//! sends [`Job`]s to the one worker thread (`worker`), which writes the catalog and keeps
//! albums and sidecars (`albums`), classifies within the schedule and load [`Policy`]
//! (`crate::gate`) and unloads the model when idle; they share [`Shared`] counters for
//! the status record.

pub mod albums;
pub mod daemon;
pub mod mounts;
pub mod roots;
pub mod sdnotify;
pub mod settle;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
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
    /// New schedule, load limit and idle unload (SIGHUP).
    Policy(Policy),
}

/// When the worker classifies, and when it lets the model go.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub schedule: phototag_light::config::ScheduleConfig,
    /// Unload the model after this long without classifying (`None`: never).
    pub unload_after: Option<Duration>,
}

impl Policy {
    pub fn of(config: &phototag_light::config::Config) -> Self {
        let secs = config.watch.unload_after_seconds;
        Policy {
            schedule: config.schedule.clone(),
            unload_after: (secs > 0.0).then(|| Duration::from_secs_f64(secs)),
        }
    }
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

/// What the worker and the event loop share: counters for the status record, and the
/// force flag (SIGUSR1).
#[derive(Debug)]
pub struct Shared {
    pub queue: AtomicUsize,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub model: Mutex<Option<String>>,
    pub albums: Mutex<Vec<phototag_light::status::AlbumStatus>>,
    /// Set while the catalog's server is away.
    pub catalog: Mutex<Option<phototag_light::status::CatalogStatus>>,
    /// The model is in memory.
    pub model_loaded: AtomicBool,
    /// Content recorded in the catalog, waiting to be classified.
    pub waiting: AtomicU64,
    /// Why classification waits, when it does.
    pub paused: Mutex<Option<String>>,
    /// Classify now whatever the schedule and load say, until the queue is empty.
    pub force: Arc<AtomicBool>,
    /// Images per second of working time.
    pub rate: Mutex<phototag_light::rate::Rate>,
}

impl Shared {
    /// The measured rate (a poisoned lock still holds a usable rate).
    pub fn rate(&self) -> std::sync::MutexGuard<'_, phototag_light::rate::Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            queue: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            model: Mutex::new(None),
            albums: Mutex::new(Vec::new()),
            model_loaded: AtomicBool::new(false),
            waiting: AtomicU64::new(0),
            paused: Mutex::new(None),
            force: Arc::new(AtomicBool::new(false)),
            rate: Mutex::new(phototag_light::rate::Rate::new(Duration::from_secs(300))),
            catalog: Mutex::new(None),
        }
    }
}
