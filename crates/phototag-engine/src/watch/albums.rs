//! The daemon's album folders and sidecars, run on the worker thread after committed
//! changes: albums are synced once changes have been quiet for the album delay (or every
//! delay under steady load), sidecars are written for each processed batch.
//!
//! May not: watch anything, or touch a file in an album folder without a link record
//! (it calls `album::sync`, which keeps that rule).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Outputs, Shared};
use crate::index::walk::Entry;
use phototag_light::album::{self, AlbumError};
use phototag_light::catalog::Catalog;
use phototag_light::exclude::Excluder;
use phototag_light::status::AlbumStatus;

/// How often other processes' commits are looked for.
const VERSION_EVERY: Duration = Duration::from_secs(1);

/// The album state of the worker.
pub struct Albums {
    outputs: Outputs,
    excluder: Excluder,
    /// Since when a change waits for the albums; none when they are up to date.
    dirty_since: Option<Instant>,
    last_change: Instant,
    version: Option<i64>,
    version_checked: Instant,
    /// Albums whose links were all looked at since start (later syncs trust the records).
    verified: std::collections::HashSet<String>,
}

impl Albums {
    /// Starts dirty: the first tick syncs every album.
    pub fn new(outputs: Outputs, excluder: Excluder) -> Albums {
        let now = Instant::now();
        Albums {
            outputs,
            excluder,
            dirty_since: Some(now),
            last_change: now,
            version: None,
            version_checked: now,
            verified: Default::default(),
        }
    }

    pub fn set_outputs(&mut self, o: Outputs) {
        self.outputs = o;
        self.touch();
    }

    /// Something changed in the catalog.
    pub fn touch(&mut self) {
        let now = Instant::now();
        self.dirty_since.get_or_insert(now);
        self.last_change = now;
    }

    /// The processed paths that get sidecars.
    pub fn sidecar_paths(&self, entries: &[Entry]) -> Vec<PathBuf> {
        if self.outputs.sidecar_roots.is_empty() {
            return Vec::new();
        }
        entries
            .iter()
            .filter(|e| {
                self.outputs
                    .sidecar_roots
                    .iter()
                    .any(|r| e.path.starts_with(r))
            })
            .map(|e| e.path.clone())
            .collect()
    }

    /// Syncs the albums when due.
    pub fn tick(&mut self, catalog: &mut Catalog, shared: &Shared) {
        let now = Instant::now();
        if now.duration_since(self.version_checked) >= VERSION_EVERY {
            self.version_checked = now;
            if let Ok(v) = catalog.data_version() {
                if self.version.is_some_and(|old| old != v) {
                    tracing::debug!("the catalog changed in another process");
                    self.touch();
                    // An album added from the command line is excluded at once.
                    if let Ok(stored) = catalog.albums() {
                        let all = album::all(&self.outputs.albums, &stored);
                        self.excluder.set_pruned_dirs(album::folders(&all));
                    }
                }
                self.version = Some(v);
            }
        }
        let Some(since) = self.dirty_since else {
            return;
        };
        let delay = self.outputs.album_delay;
        let quiet = now.duration_since(self.last_change) >= delay;
        let overdue = now.duration_since(since) >= delay * 3;
        if !(quiet || overdue) {
            return;
        }
        self.dirty_since = None;
        match self.sync_all(catalog) {
            Ok(st) => *shared.albums.lock().unwrap_or_else(|e| e.into_inner()) = st,
            Err(e) => tracing::error!("albums not synced: {e}"),
        }
    }

    fn sync_all(&mut self, catalog: &mut Catalog) -> Result<Vec<AlbumStatus>, AlbumError> {
        let stored = catalog.albums()?;
        let albums = album::all(&self.outputs.albums, &stored);
        let folders = album::folders(&albums);
        self.excluder.set_pruned_dirs(folders.clone());
        let mut status = Vec::new();
        for a in &albums {
            let mode = if self.verified.contains(&a.name) {
                album::Mode::Incremental
            } else {
                album::Mode::Verify
            };
            let (state, problem) = match album::sync(catalog, a, &folders, mode) {
                Ok((r, _)) => {
                    self.verified.insert(a.name.clone());
                    if r.created + r.removed > 0 {
                        tracing::info!(album = %a.name, created = r.created, removed = r.removed, links = r.kept + r.created, "album updated");
                    }
                    ("ok", r.problems.first().cloned())
                }
                Err(e @ AlbumError::ParentMissing { .. }) => {
                    // Looked at in full once it is back.
                    self.verified.remove(&a.name);
                    tracing::warn!("{e}");
                    ("unavailable", Some(e.to_string()))
                }
                Err(e) => {
                    tracing::error!("{e}");
                    ("error", Some(e.to_string()))
                }
            };
            status.push(AlbumStatus {
                name: a.name.clone(),
                folder: a.folder.clone(),
                state: state.into(),
                links: catalog.album_links(&a.name)?.len(),
                problem,
            });
        }
        // Albums no longer defined: remove the links phototag made for them.
        for name in catalog.albums_with_links()? {
            if !albums.iter().any(|a| a.name == name) {
                let n = album::clear(catalog, &name)?;
                tracing::info!(album = %name, links = n, "album no longer defined: its links removed");
            }
        }
        Ok(status)
    }
}

/// Writes the sidecars of processed files (those the catalog now has tags for).
pub fn write_sidecars(catalog: &Catalog, paths: &[PathBuf]) {
    for p in paths {
        if let Err(e) = write_one(catalog, p) {
            tracing::warn!(path = %p.display(), "sidecar not written: {e}");
        }
    }
}

fn write_one(catalog: &Catalog, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let Some(row) = catalog.file(path)? else {
        return Ok(()); // failed to decode, or gone
    };
    let Some((model, tags)) = catalog.model_and_tags(&row.hash)? else {
        return Ok(());
    };
    let w = phototag_light::sidecar::write(path, &model, &tags)?;
    tracing::debug!(path = %path.display(), "sidecar {w:?}");
    Ok(())
}
