//! The daemon's worker thread: the only writer to the catalog and the only user of the
//! model. It takes jobs from the event loop (reconcile roots, process settled files,
//! remove rows of files that stayed gone) and keeps shared counters for the status record.
//! After committed changes it writes the XMP sidecars of processed files under roots that
//! want them, and, once changes have been quiet for `album_delay_seconds` (or every that
//! long under steady load), brings the album folders up to date (`albums.rs`). It also
//! notices other processes' commits (`phototag retag`, `index`, `album add`) through the
//! catalog's data version.
//!
//! May not: watch anything or decide when a file is settled (the event loop does).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Job, Outputs, Shared};
use crate::classify::{LazyClassifier, Settings};
use crate::index::execute::execute;
use crate::index::plan::{self};
use crate::index::Progress;
use crate::model::Classifier;
use phototag_light::catalog::Catalog;
use phototag_light::exclude::Excluder;

type Loader = Box<dyn FnMut() -> anyhow::Result<Classifier> + Send>;

/// Starts the worker; it ends when the job sender is dropped (after the job at hand).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    mut catalog: Catalog,
    loader: Loader,
    settings: Settings,
    excluder: Excluder,
    follow_symlinks: bool,
    outputs: Outputs,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
) -> (mpsc::Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Job>();
    let handle = std::thread::Builder::new()
        .name("phototag-worker".into())
        .spawn(move || {
            let mut model = LazyClassifier::new(loader);
            let mut root_ids: HashMap<PathBuf, i64> = HashMap::new();
            let mut albums = super::albums::Albums::new(outputs, excluder.clone());
            let mut lists = SearchLists::default();
            loop {
                let job = match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        albums.tick(&mut catalog, &shared);
                        lists.tick(&mut catalog, true);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let job = match job {
                    Job::Outputs(o) => {
                        albums.set_outputs(o);
                        continue;
                    }
                    job => job,
                };
                let changes = !matches!(job, Job::RootState { .. });
                let sidecars = match &job {
                    Job::Process(entries) => albums.sidecar_paths(entries),
                    _ => Vec::new(),
                };
                if let Err(e) = handle(
                    &mut catalog,
                    &mut model,
                    &mut root_ids,
                    job,
                    &settings,
                    &excluder,
                    follow_symlinks,
                    &stop,
                    &shared,
                ) {
                    tracing::error!("{e}");
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                super::albums::write_sidecars(&catalog, &sidecars);
                if changes {
                    albums.touch();
                    lists.stale = true;
                }
                albums.tick(&mut catalog, &shared);
                lists.tick(&mut catalog, false);
            }
            let _ = catalog.checkpoint();
        })
        .expect("spawning the worker thread");
    (tx, handle)
}

/// Keeps the catalog's search lists (`catalog::lists`) up to date: when idle, and every
/// few seconds under steady load, rebuilds some of those that changes removed, a bounded
/// time at once so that jobs wait little.
struct SearchLists {
    /// Some list may be missing (true at start: the catalog may come from an older
    /// phototag, or from a run that was stopped).
    stale: bool,
    last: std::time::Instant,
}

impl Default for SearchLists {
    fn default() -> Self {
        SearchLists {
            stale: true,
            last: std::time::Instant::now(),
        }
    }
}

impl SearchLists {
    /// Work per turn, and the longest a busy worker goes without a turn.
    const BUDGET: Duration = Duration::from_millis(200);
    const BUSY_EVERY: Duration = Duration::from_secs(5);

    fn tick(&mut self, catalog: &mut Catalog, idle: bool) {
        if !self.stale || (!idle && self.last.elapsed() < Self::BUSY_EVERY) {
            return;
        }
        self.last = std::time::Instant::now();
        match catalog.refresh_class_lists(Some(Self::BUDGET)) {
            Ok(r) => {
                self.stale = r.missing > 0;
                if r.rebuilt > 0 {
                    tracing::debug!(rebuilt = r.rebuilt, missing = r.missing, "search lists");
                }
            }
            Err(e) => {
                tracing::warn!("search lists not rebuilt: {e}");
                self.stale = false;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    catalog: &mut Catalog,
    model: &mut LazyClassifier<'_>,
    root_ids: &mut HashMap<PathBuf, i64>,
    job: Job,
    settings: &Settings,
    excluder: &Excluder,
    follow_symlinks: bool,
    stop: &AtomicBool,
    shared: &Shared,
) -> Result<(), Box<dyn std::error::Error>> {
    match job {
        Job::Reconcile { roots, reply } => {
            let plan = plan::plan(catalog, &roots, excluder, follow_symlinks, stop);
            if let Ok(p) = &plan {
                root_ids.extend(p.root_ids.iter().map(|(k, v)| (k.clone(), *v)));
            }
            let _ = reply.send(plan.map_err(|e| e.to_string()));
        }
        Job::Process(mut entries) => {
            let n = entries.len();
            // Settled before an album folder was known: never catalogue phototag's links.
            entries.retain(|e| !excluder.is_pruned(&e.path));
            shared.queue.fetch_sub(n - entries.len(), Ordering::Relaxed);
            let n = entries.len();
            let mut progress = |p: Progress| {
                if let Progress::Done = p {
                    shared.queue.fetch_sub(1, Ordering::Relaxed);
                    shared.done.fetch_add(1, Ordering::Relaxed);
                }
            };
            let before = shared.done.load(Ordering::Relaxed);
            let result = execute(
                catalog,
                model,
                entries,
                root_ids,
                settings,
                stop,
                &mut progress,
            );
            if let Some(c) = model.loaded() {
                let mut m = shared.model.lock().unwrap_or_else(|e| e.into_inner());
                if m.is_none() {
                    *m = Some(c.name().to_string());
                }
            }
            // Whatever was not reported done (an interrupted batch) leaves the queue too.
            let reported = (shared.done.load(Ordering::Relaxed) - before) as usize;
            shared
                .queue
                .fetch_sub(n.saturating_sub(reported), Ordering::Relaxed);
            let done = result?;
            shared
                .failed
                .fetch_add(done.failed as u64, Ordering::Relaxed);
            if done.new + done.duplicates + done.failed > 0 {
                tracing::info!(
                    new = done.new,
                    duplicates = done.duplicates,
                    failed = done.failed,
                    "catalog updated"
                );
            }
        }
        Job::RemoveMissing(paths) => {
            // File rows and failure rows alike: a failure of a deleted file is no failure.
            let mut gone: Vec<PathBuf> = Vec::new();
            for p in paths {
                if p.exists() {
                    continue;
                }
                gone.push(p.clone());
                gone.extend(catalog.files_under(&p)?.into_keys().filter(|f| !f.exists()));
                gone.extend(
                    catalog
                        .failures_under(&p)?
                        .into_keys()
                        .filter(|f| !f.exists()),
                );
            }
            if !gone.is_empty() {
                let mut w = catalog.begin()?;
                let refs: Vec<&Path> = gone.iter().map(PathBuf::as_path).collect();
                let n = w.remove_files(&refs)?;
                w.commit()?;
                tracing::info!(
                    files = n,
                    paths = gone.len(),
                    "removed rows of deleted files"
                );
            }
        }
        Job::RootState { root, state } => {
            let now = phototag_light::catalog::unix_now();
            let mut w = catalog.begin()?;
            let id = w.root_id(&root)?;
            w.set_root_state(id, state, now)?;
            w.commit()?;
        }
        Job::Outputs(_) => {}
    }
    Ok(())
}
