//! The folder walker of `phototag index` (and of the watcher's rescans): lists every regular
//! file under a root with the (size, mtime, device, inode) that the index compares to skip
//! unchanged files, leaving out what [`Excluder`] excludes.
//!
//! One `stat` per listed file and none per folder (file types come from `readdir`); folders
//! that cannot be read and symbolic link loops become [`Problem`]s and the walk goes on. Only a
//! root that is missing, unreadable or not a folder is an error. The stop flag is checked
//! before every entry; a stopped walk returns what it had found, marked [`Walk::stopped`].
//!
//! May not: read file contents, follow a symbolic link unless asked, apply exclusion to the
//! root itself, or decide what a missing file means (a walk with problems or stopped early
//! is incomplete: callers must not treat what it did not list as deleted).

use std::cell::Cell;
use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use walkdir::WalkDir;

use phototag_light::exclude::Excluder;

/// One regular file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path under the root (through the link, for a followed symbolic link).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (negative before 1970).
    pub mtime_ns: i64,
    /// Device and inode of the file itself (the link's target when following links).
    pub dev: u64,
    pub ino: u64,
}

/// Something under the root that could not be walked; the walk went on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A folder that could not be listed, or a file whose metadata could not be read.
    Unreadable { path: PathBuf, error: String },
    /// A symbolic link to a folder that contains it; not followed.
    SymlinkLoop { path: PathBuf, target: PathBuf },
    /// Anything else (a dangling symbolic link, an I/O error while listing).
    Other { path: PathBuf, error: String },
}

impl Problem {
    /// The path the problem is about.
    pub fn path(&self) -> &Path {
        match self {
            Problem::Unreadable { path, .. }
            | Problem::SymlinkLoop { path, .. }
            | Problem::Other { path, .. } => path,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable { path, error } => {
                write!(f, "cannot read {}: {error}; skipped", path.display())
            }
            Problem::SymlinkLoop { path, target } => write!(
                f,
                "symbolic link loop: {} leads back to {}; not followed",
                path.display(),
                target.display()
            ),
            Problem::Other { path, error } => write!(f, "{}: {error}; skipped", path.display()),
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files, sorted by path.
    pub files: Vec<Entry>,
    /// What could not be walked, in the order met.
    pub problems: Vec<Problem>,
    /// Files and folders left out by exclusion (an excluded folder counts once, whatever it holds).
    pub excluded: usize,
    /// The stop flag was seen: `files` holds only what was found before it.
    pub stopped: bool,
}

/// The root itself cannot be walked.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("{path} does not exist (is the share mounted?)")]
    RootMissing { path: PathBuf },
    #[error("{path} is not a folder")]
    RootNotDir { path: PathBuf },
    #[error("cannot read folder {path}: {source}")]
    RootUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Modification time in nanoseconds since the Unix epoch (negative before 1970), saturating
/// far outside ±292 years.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    // mtime_nsec is always in 0..1e9, also for times before the epoch.
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// Lists the regular files under `root`, sorted by path.
///
/// With `follow_symlinks`, symbolic links are followed (files are listed under the link's
/// path, with the target's metadata; a folder reached twice through links is listed twice);
/// without it, symbolic links are left out. The root is always followed if it is a link.
pub fn walk(
    root: &Path,
    excluder: &Excluder,
    follow_symlinks: bool,
    stop: &AtomicBool,
) -> Result<Walk, WalkError> {
    check_root(root)?;

    let excluded = Cell::new(0usize);
    let mut out = Walk::default();
    let mut it = WalkDir::new(root)
        .follow_links(follow_symlinks)
        .into_iter()
        .filter_entry(|e| {
            let out = e.depth() > 0
                && (excluder.excludes_name(e.file_name()) || excluder.is_pruned(e.path()));
            if !out {
                true
            } else {
                excluded.set(excluded.get() + 1);
                false
            }
        });

    loop {
        if stop.load(Ordering::Relaxed) {
            out.stopped = true;
            break;
        }
        let Some(next) = it.next() else { break };
        let entry = match next {
            Ok(entry) => entry,
            Err(err) => {
                // walkdir checks a link for a loop (or stats it) before `filter_entry` sees
                // it, so an error about an excluded name is an excluded entry.
                match err.path() {
                    Some(p) if err.depth() > 0 && is_excluded_path(excluder, p) => {
                        excluded.set(excluded.get() + 1)
                    }
                    Some(p) if err.depth() == 0 && p == root => {
                        // Raced with check_root: the root went away or became unreadable.
                        let source = err
                            .into_io_error()
                            .unwrap_or_else(|| io::Error::other("cannot read the root"));
                        return Err(root_error(root, source));
                    }
                    _ => out.problems.push(problem(err, root)),
                }
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue; // folders (descended), links not followed, fifos, sockets, devices
        }
        // lstat, or stat when following links: the one system call per file.
        match entry.metadata() {
            Ok(meta) => out.files.push(Entry {
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                dev: meta.dev(),
                ino: meta.ino(),
                path: entry.into_path(),
            }),
            Err(err) => {
                if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) {
                    // Deleted between readdir and stat: nothing to list.
                    tracing::debug!(path = %entry.path().display(), "vanished during the walk");
                } else {
                    out.problems.push(problem(err, root));
                }
            }
        }
    }
    out.excluded = excluded.get();
    out.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn check_root(root: &Path) -> Result<(), WalkError> {
    let meta = std::fs::metadata(root).map_err(|e| root_error(root, e))?;
    if !meta.is_dir() {
        return Err(WalkError::RootNotDir {
            path: root.to_path_buf(),
        });
    }
    // Opening it is what fails on a folder without read permission or a stale mount.
    std::fs::read_dir(root).map_err(|e| root_error(root, e))?;
    Ok(())
}

fn root_error(root: &Path, source: io::Error) -> WalkError {
    let path = root.to_path_buf();
    if source.kind() == io::ErrorKind::NotFound {
        WalkError::RootMissing { path }
    } else if source.kind() == io::ErrorKind::NotADirectory {
        WalkError::RootNotDir { path }
    } else {
        WalkError::RootUnreadable { path, source }
    }
}

fn is_excluded_path(excluder: &Excluder, path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| excluder.excludes_name(name))
        || excluder.is_pruned(path)
}

fn problem(err: walkdir::Error, root: &Path) -> Problem {
    let path = err.path().unwrap_or(root).to_path_buf();
    if let Some(target) = err.loop_ancestor() {
        return Problem::SymlinkLoop {
            target: target.to_path_buf(),
            path,
        };
    }
    let Some(io_err) = err.io_error() else {
        return Problem::Other {
            error: err.to_string(),
            path,
        };
    };
    match io_err.kind() {
        io::ErrorKind::PermissionDenied => Problem::Unreadable {
            error: io_err.to_string(),
            path,
        },
        io::ErrorKind::NotFound
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            Problem::Other {
                error: format!("dangling symbolic link ({io_err})"),
                path,
            }
        }
        _ => Problem::Other {
            error: io_err.to_string(),
            path,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
    use std::time::{Duration, SystemTime};

    use phototag_light::exclude::ExcludeConfig;

    fn default_excluder() -> Excluder {
        Excluder::new(&ExcludeConfig::default()).unwrap()
    }

    #[test]
    fn mtime_ns_before_and_after_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = File::create(&p).unwrap();
        let after = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        f.set_modified(after).unwrap();
        assert_eq!(
            mtime_ns(&fs::metadata(&p).unwrap()),
            1_700_000_000_123_456_789
        );
        // Half a second before the epoch: mtime -1, mtime_nsec 500_000_000.
        let before = SystemTime::UNIX_EPOCH - Duration::from_millis(500);
        f.set_modified(before).unwrap();
        assert_eq!(mtime_ns(&fs::metadata(&p).unwrap()), -500_000_000);
    }

    #[test]
    fn root_errors() {
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let ex = default_excluder();
        let missing = dir.path().join("nope");
        assert!(matches!(
            walk(&missing, &ex, false, &stop),
            Err(WalkError::RootMissing { .. })
        ));
        let file = dir.path().join("file.jpg");
        File::create(&file).unwrap();
        assert!(matches!(
            walk(&file, &ex, false, &stop),
            Err(WalkError::RootNotDir { .. })
        ));
        assert!(matches!(
            walk(&file.join("below"), &ex, false, &stop),
            Err(WalkError::RootNotDir { .. })
        ));
    }

    #[test]
    fn excluded_or_hidden_root_is_still_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("@eaDir");
        fs::create_dir(&root).unwrap();
        File::create(root.join("a.jpg")).unwrap();
        let hidden = dir.path().join(".photos");
        fs::create_dir(&hidden).unwrap();
        File::create(hidden.join("b.jpg")).unwrap();
        let stop = AtomicBool::new(false);
        let ex = default_excluder();
        assert_eq!(walk(&root, &ex, false, &stop).unwrap().files.len(), 1);
        assert_eq!(walk(&hidden, &ex, false, &stop).unwrap().files.len(), 1);
    }

    #[test]
    fn problem_display_is_clear() {
        let p = Problem::SymlinkLoop {
            path: "/p/a/link".into(),
            target: "/p".into(),
        };
        assert_eq!(
            p.to_string(),
            "symbolic link loop: /p/a/link leads back to /p; not followed"
        );
        let p = Problem::Unreadable {
            path: "/p/x".into(),
            error: "Permission denied (os error 13)".into(),
        };
        assert_eq!(
            p.to_string(),
            "cannot read /p/x: Permission denied (os error 13); skipped"
        );
        assert_eq!(p.path(), Path::new("/p/x"));
    }
}
