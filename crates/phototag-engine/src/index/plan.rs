//! The first half of an indexing run: walk the roots, compare with the catalog, and sort
//! every file into unchanged (same path, size, mtime: not read again), known failure,
//! gone, or to do. Unchanged files get their last-seen time; roots get their state.
//!
//! May not: read file contents, classify, or delete anything (pruning is the caller's
//! decision, made on `Plan::gone`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::walk::{self, Entry};
use super::{IndexError, Summary};
use phototag_light::catalog::unix_now;
use phototag_light::catalog::Catalog;
use phototag_light::exclude::Excluder;

/// What a walk found that needs doing.
#[derive(Debug, Default)]
pub struct Plan {
    /// New or changed files, to read and hash.
    pub todo: Vec<Entry>,
    /// Unchanged files (already touched in the catalog).
    pub unchanged: Vec<PathBuf>,
    /// Files in the catalog (file or failure rows) the walk did not find (never for
    /// offline roots, folders the walk could not read, or a stopped walk).
    pub gone: Vec<PathBuf>,
    /// Catalog ids of the roots planned.
    pub root_ids: HashMap<PathBuf, i64>,
    /// seen, known_failures, offline_roots, problems, excluded, unchanged and gone filled in.
    pub summary: Summary,
}

/// Walks `roots` and compares them with the catalog.
pub fn plan(
    catalog: &mut Catalog,
    roots: &[PathBuf],
    excluder: &Excluder,
    follow_symlinks: bool,
    stop: &AtomicBool,
) -> Result<Plan, IndexError> {
    let mut plan = Plan::default();
    let summary = &mut plan.summary;
    let now = unix_now();
    for root in roots {
        let known = catalog.files_under(root)?;
        let walked = match walk::walk(root, excluder, follow_symlinks, stop) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(root = %root.display(), "{e}: root is offline; nothing under it is pruned");
                summary.offline_roots.push(root.clone());
                let mut w = catalog.begin()?;
                let id = w.root_id(root)?;
                w.set_root_state(id, "offline", now)?;
                w.commit()?;
                plan.root_ids.insert(root.clone(), id);
                continue;
            }
        };
        for p in &walked.problems {
            tracing::warn!(root = %root.display(), "{p}");
        }
        summary.problems += walked.problems.len();
        summary.excluded += walked.excluded;
        let failures = catalog.failures_under(root)?;
        let mut w = catalog.begin()?;
        let id = w.root_id(root)?;
        // An emptied root that used to hold files looks like an unmounted share.
        let offline = walked.files.is_empty() && !known.is_empty();
        w.set_root_state(id, if offline { "offline" } else { "online" }, now)?;
        w.commit()?;
        plan.root_ids.insert(root.clone(), id);
        if offline {
            tracing::warn!(root = %root.display(), files = known.len(), "root is empty but the catalog has files under it: treated as offline (unmounted?); nothing is pruned");
            summary.offline_roots.push(root.clone());
            continue;
        }
        let mut found: HashSet<&Path> = HashSet::with_capacity(walked.files.len());
        summary.seen += walked.files.len();
        for e in &walked.files {
            found.insert(e.path.as_path());
        }
        // A stopped walk is incomplete, and so is what lies under a folder it could not read:
        // files it did not list there are not gone.
        // A failure of a file that is gone goes like a file row: it is not a failure of
        // anything any more.
        if !walked.stopped {
            let blind: Vec<&Path> = walked.problems.iter().map(|p| p.path()).collect();
            plan.gone.extend(
                known
                    .keys()
                    .chain(failures.keys())
                    .filter(|p| !found.contains(p.as_path()))
                    .filter(|p| !blind.iter().any(|b| p.starts_with(b)))
                    .cloned(),
            );
        }
        for e in walked.files {
            if let Some(row) = known.get(&e.path) {
                if row.size == e.size && row.mtime_ns == e.mtime_ns {
                    plan.unchanged.push(e.path);
                    continue;
                }
            }
            if let Some(f) = failures.get(&e.path) {
                if f.size == e.size && f.mtime_ns == e.mtime_ns {
                    summary.known_failures += 1;
                    continue;
                }
            }
            plan.todo.push(e);
        }
    }
    summary.unchanged = plan.unchanged.len();
    summary.gone = plan.gone.len();

    // Unchanged files: only their last-seen time is written.
    for chunk in plan.unchanged.chunks(20_000) {
        let mut w = catalog.begin()?;
        let paths: Vec<&Path> = chunk.iter().map(PathBuf::as_path).collect();
        w.touch_files(&paths, now)?;
        w.commit()?;
    }
    Ok(plan)
}
