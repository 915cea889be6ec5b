//! One watched root: how it is watched (inotify on local disks; polling on network mounts,
//! when configured, or when inotify fails or runs out of watches), the folders under it
//! that get a watch, and whether it looks mounted.
//!
//! May not: settle files, talk to the worker, or touch the catalog.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use phototag_light::config::{RootMode, WatchConfig};
use phototag_light::exclude::Excluder;
use phototag_light::status::RootStatus;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Notify,
    Poll,
}

pub struct Root {
    pub path: PathBuf,
    pub mode: Mode,
    pub reason: Option<String>,
    pub offline: bool,
    pub watcher: Option<RecommendedWatcher>,
    pub next_poll: Instant,
}

pub type Events = tokio::sync::mpsc::UnboundedSender<notify::Result<notify::Event>>;

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Folders under `dir` (itself included) to watch: not excluded, not symlinks.
fn folders(dir: &Path, excluder: &Excluder, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && !excluder.excludes_name(&e.file_name())
            && !excluder.is_pruned(&e.path())
        {
            folders(&e.path(), excluder, out);
        }
    }
}

/// Adds inotify watches for `dir` and the folders below it.
pub fn watch_tree(
    w: &mut RecommendedWatcher,
    dir: &Path,
    excluder: &Excluder,
) -> Result<usize, notify::Error> {
    let mut dirs = Vec::new();
    folders(dir, excluder, &mut dirs);
    for d in &dirs {
        match w.watch(d, RecursiveMode::NonRecursive) {
            Ok(()) => {}
            // Gone meanwhile: not a reason to give up on the root.
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(dirs.len())
}

fn choose_mode(root: &Path, watch: &WatchConfig) -> (Mode, Option<String>) {
    match watch.modes.get(root).copied().unwrap_or(RootMode::Auto) {
        RootMode::Poll => (Mode::Poll, Some("configured".into())),
        RootMode::Notify => (Mode::Notify, None),
        RootMode::Auto => match super::mounts::read_mountinfo() {
            Ok(mounts) => match super::mounts::mount_of(&mounts, root) {
                Some(m) if super::mounts::is_network_fs(&m.fs_type) => {
                    (Mode::Poll, Some(format!("network mount ({})", m.fs_type)))
                }
                _ => (Mode::Notify, None),
            },
            Err(_) => (Mode::Notify, None),
        },
    }
}

fn inotify_limit() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

impl Root {
    pub fn new(path: PathBuf, watch: &WatchConfig, excluder: &Excluder, events: &Events) -> Self {
        let (mode, reason) = choose_mode(&path, watch);
        let mut root = Root {
            path,
            mode,
            reason,
            offline: false,
            watcher: None,
            next_poll: Instant::now() + secs(watch.poll_interval_seconds),
        };
        root.start_watching(excluder, events);
        root
    }

    /// Sets up inotify for a notify root; falls back to polling when that fails.
    pub fn start_watching(&mut self, excluder: &Excluder, events: &Events) {
        self.watcher = None;
        if self.mode != Mode::Notify || !self.path.is_dir() {
            return;
        }
        let tx = events.clone();
        let made = notify::recommended_watcher(move |res| {
            let _ = tx.send(res);
        });
        let result =
            made.and_then(|mut w| watch_tree(&mut w, &self.path, excluder).map(|n| (w, n)));
        match result {
            Ok((w, n)) => {
                tracing::info!(root = %self.path.display(), folders = n, "watching with inotify");
                self.watcher = Some(w);
            }
            Err(e) => self.fall_back_to_polling(&e),
        }
    }

    pub fn fall_back_to_polling(&mut self, e: &notify::Error) {
        self.watcher = None;
        self.mode = Mode::Poll;
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            self.reason = Some("inotify watches exhausted".into());
            tracing::warn!(
                root = %self.path.display(),
                "inotify ran out of watches (fs.inotify.max_user_watches = {}): polling this root instead. Raise it, e.g. `sysctl fs.inotify.max_user_watches=524288` (and in /etc/sysctl.d/), then restart phototag",
                inotify_limit()
            );
        } else {
            self.reason = Some(format!("inotify failed: {e}"));
            tracing::warn!(root = %self.path.display(), "cannot watch with inotify ({e}): polling this root instead");
        }
    }

    pub fn status(&self) -> RootStatus {
        RootStatus {
            path: self.path.clone(),
            state: if self.offline {
                "offline".into()
            } else if self.mode == Mode::Poll {
                "polling".into()
            } else {
                "watching".into()
            },
            reason: self.reason.clone(),
        }
    }

    /// Present and not empty: an unmounted share leaves an empty mount point or nothing.
    pub fn looks_mounted(&self) -> bool {
        std::fs::read_dir(&self.path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }
}
