//! One indexing run over some roots: plan (walk and compare with the catalog, skipping
//! unchanged files by path, size and mtime without reading them), execute (hash new and
//! changed files, classify only content the catalog has never seen), prune when asked,
//! and bring the search lists up to date.
//!
//! May not: delete anything unless asked to prune, or prune a root that is missing or
//! suddenly empty (an unmounted share is not a deletion); print (it reports through
//! `Progress` and the returned `Summary`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::execute::execute;
use super::plan::plan;
use super::queue::classify_queued;
use super::{IndexError, Progress, Summary, Turn};
use crate::classify::{LazyClassifier, Settings};
use phototag_light::catalog::{Catalog, CatalogError};
use phototag_light::exclude::{ExcludeConfig, Excluder};

/// What to index and how.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    pub roots: Vec<PathBuf>,
    /// Remove rows of files that are gone (never for a missing or emptied root).
    pub prune: bool,
    pub follow_symlinks: bool,
    pub exclude: ExcludeConfig,
    pub settings: Settings,
}

/// Rebuilds the catalog's search lists that changes removed (see `catalog::lists`), a
/// second's worth at a time, until none is missing or `stop` is set. Returns how many were
/// rebuilt.
pub fn refresh_search_lists(
    catalog: &mut Catalog,
    stop: &AtomicBool,
) -> Result<usize, CatalogError> {
    let started = Instant::now();
    let mut rebuilt = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = catalog.refresh_class_lists(Some(Duration::from_secs(1)))?;
        rebuilt += r.rebuilt;
        if r.missing == 0 {
            break;
        }
    }
    if rebuilt > 0 {
        tracing::info!(
            classes = rebuilt,
            "search lists brought up to date in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(rebuilt)
}

/// How long to wait before looking again at content another worker is classifying.
const ELSEWHERE_AGAIN: Duration = Duration::from_millis(500);

/// Sleeps `d` unless `stop` is set meanwhile; whether it slept the whole time.
fn pause(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

/// Runs one indexing pass, always classifying. `stop` ends it early (after committing
/// what was done).
pub fn run(
    catalog: &mut Catalog,
    model: &mut LazyClassifier<'_>,
    opts: &IndexOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, IndexError> {
    run_with_turns(catalog, model, opts, stop, &mut || Turn::Classify, progress)
}

/// Queued photos classified per call of `classify_queued` (the queue is read in slices).
const QUEUE_SLICE: usize = 512;

/// Runs one indexing pass, asking `turn` before each batch (see `crate::gate`): new photos
/// are classified, or recorded as queued when it says so; then photos that waited in the
/// queue are classified while it allows. `stop` ends it early (after committing what was
/// done).
pub fn run_with_turns(
    catalog: &mut Catalog,
    model: &mut LazyClassifier<'_>,
    opts: &IndexOptions,
    stop: &AtomicBool,
    turn: &mut dyn FnMut() -> Turn,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, IndexError> {
    let start = Instant::now();
    let excluder = Excluder::new(&opts.exclude).map_err(|e| IndexError::Exclude(e.to_string()))?;
    let plan = plan(catalog, &opts.roots, &excluder, opts.follow_symlinks, stop)?;
    let mut summary = plan.summary;
    progress(Progress::Planned {
        total: plan.todo.len(),
        unchanged: plan.unchanged.len(),
    });
    let mut todo = plan.todo;
    loop {
        let done = execute(
            catalog,
            model,
            todo,
            &plan.root_ids,
            &opts.settings,
            stop,
            turn,
            progress,
        )?;
        summary.new += done.new;
        summary.duplicates += done.duplicates;
        summary.failed += done.failed;
        summary.queued += done.queued;
        // Content another worker sharing the catalog is classifying: look again once it
        // has written it (or its claim expired, if it died).
        todo = done.elsewhere;
        if todo.is_empty() || !pause(stop, ELSEWHERE_AGAIN) {
            break;
        }
        tracing::info!(
            files = todo.len(),
            "another worker is classifying the same content: waiting for it"
        );
    }
    // Then what waited in the queue (from this run or earlier ones), while allowed.
    let mut waiting = catalog.queued_count()?;
    if waiting > 0 && summary.queued == 0 && !stop.load(Ordering::Relaxed) {
        progress(Progress::More(waiting as usize));
        while waiting > 0 && !stop.load(Ordering::Relaxed) {
            let d = classify_queued(
                catalog,
                model,
                &opts.settings,
                QUEUE_SLICE,
                stop,
                turn,
                progress,
            )?;
            summary.from_queue += d.classified;
            summary.failed += d.failed;
            if d.classified + d.failed == 0 {
                // Nothing done: either nothing could be, or another worker sharing the
                // catalog holds what is queued (look again once it has written it).
                if d.elsewhere == 0 || d.left == 0 || !pause(stop, ELSEWHERE_AGAIN) {
                    break;
                }
            } else if d.left >= waiting && d.elsewhere == 0 {
                break;
            }
            waiting = d.left;
        }
    }
    summary.queued = catalog.queued_count()? as usize;
    if opts.prune && !plan.gone.is_empty() && !stop.load(Ordering::Relaxed) {
        let mut w = catalog.begin()?;
        let paths: Vec<&Path> = plan.gone.iter().map(PathBuf::as_path).collect();
        summary.removed = w.remove_files(&paths)?;
        w.remove_orphan_images()?;
        w.commit()?;
    }
    summary.interrupted = stop.load(Ordering::Relaxed);
    summary.seconds = start.elapsed().as_secs_f64();
    summary.images_per_second =
        (summary.new + summary.from_queue) as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}
