//! `phototag index`: walks photo folders (`walk`), compares them with the catalog and skips
//! what has not changed (`plan`), reads, hashes and classifies only content the catalog has
//! never seen (`execute`), in one run over some roots (`run`; the daemon's worker calls
//! `plan` and `execute` itself), and classifies photos recorded while classification
//! waited (`queue`). What they share (the summary, progress, turns, errors) is here.

pub mod execute;
pub mod plan;
pub mod queue;
pub mod run;
pub mod walk;

use std::path::PathBuf;

use phototag_light::catalog::CatalogError;

/// Counts of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Image candidates found by the walk (after exclusions).
    pub seen: usize,
    /// Files whose content was classified in this run.
    pub new: usize,
    /// Files skipped because path, size and mtime were unchanged.
    pub unchanged: usize,
    /// New or changed files whose content was already in the catalog.
    pub duplicates: usize,
    /// Files that failed in this run (recorded; retried only when they change).
    pub failed: usize,
    /// Photos recorded whose classification still waits when the run ends (outside the
    /// schedule windows, or the machine busy): `index --now`, the daemon inside a window,
    /// or the next run in a window classifies them.
    pub queued: usize,
    /// Photos that waited in the queue and were classified in this run.
    pub from_queue: usize,
    /// Files skipped because they failed before and have not changed.
    pub known_failures: usize,
    /// Files in the catalog that the walk no longer found.
    pub gone: usize,
    /// Rows removed (only with prune).
    pub removed: usize,
    /// Roots that were missing or empty: treated as offline, nothing pruned.
    pub offline_roots: Vec<PathBuf>,
    /// Folders that could not be read, symlink loops, and the like.
    pub problems: usize,
    pub excluded: usize,
    pub seconds: f64,
    /// Classified images per second of the run.
    pub images_per_second: f64,
    /// Stopped early by a signal; what was done is committed.
    pub interrupted: bool,
}

/// What to do with the next batch, asked before each (see `crate::gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Run the model on it.
    Classify,
    /// Not now, but soon: commit what is done, sleep a moment, ask again.
    Wait,
    /// Not in this run: record the rest as queued.
    Record,
}

/// Progress reports, for a bar or log lines.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// The walk and the comparison are done: `total` files need reading.
    Planned { total: usize, unchanged: usize },
    /// `n` more to do (photos that waited in the queue).
    More(usize),
    /// One more of them is done.
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The model could not be loaded (the whole chain of causes).
    #[error("{0}")]
    Model(String),
    #[error("bad exclusion pattern: {0}")]
    Exclude(String),
}
