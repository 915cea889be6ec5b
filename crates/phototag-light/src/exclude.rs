//! What the walker leaves out: hidden names and NAS housekeeping folders and files (Synology
//! `@eaDir`, `#recycle`, QNAP `.@__thumb`, Windows `$RECYCLE.BIN`, partial downloads, ...),
//! as glob patterns compiled once into a [`globset::GlobSet`].
//!
//! Patterns match one file or folder *name*, never a path, case-sensitively. Names are matched
//! as raw bytes (Unix), so a name that is not UTF-8 never panics and is matched as it is on disk.
//! Every byte counts as one character: `?` matches one byte, not a multi-byte character such
//! as `é` (use `*` there).
//!
//! Besides names, it holds a short list of folders excluded by path: the album folders
//! (phototag's own links), so an album inside a watched root is never walked or watched.
//! That list is shared by every clone of an [`Excluder`] and can be replaced while the
//! daemon runs (an album added from the command line). A second, fixed list holds
//! phototag's own files (the catalog, its `-wal`, `-shm` and `-journal`, the status
//! record), so a catalog kept inside a root is never read as a photo.
//!
//! May not: touch the file system, or match patterns on paths (the walker asks about one
//! name at a time; only the album folders are compared as whole paths).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use globset::{Candidate, Glob, GlobSet, GlobSetBuilder};

/// The names excluded by default: NAS thumbnail, recycle and snapshot folders, desktop trash
/// and thumbnail caches, OS metadata files, files still being written, and XMP sidecars
/// (phototag's and other tools': never photos).
pub const DEFAULT_PATTERNS: &[&str] = &[
    "@eaDir",
    "#recycle",
    "#snapshot",
    ".thumbnails",
    ".Trash-*",
    "$RECYCLE.BIN",
    "System Volume Information",
    "lost+found",
    ".@__thumb",
    "@Recycle",
    "Thumbs.db",
    ".DS_Store",
    "*.tmp",
    "*.part",
    "*.crdownload",
    "*.xmp",
    "*.XMP",
];

/// The `[exclude]` settings.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExcludeConfig {
    /// Skip every file and folder whose name starts with `.`.
    pub skip_hidden: bool,
    /// Glob patterns matched against each file or folder name (not its path), case-sensitive.
    /// An excluded folder is not descended into.
    pub patterns: Vec<String>,
    /// Folders left out by path (album folders), not read from the `[index]` section.
    #[serde(skip)]
    pub prune_dirs: Vec<PathBuf>,
    /// phototag's own files and folders, left out by path ([`crate::paths::own_files`]).
    #[serde(skip)]
    pub own_files: Vec<PathBuf>,
}

impl Default for ExcludeConfig {
    fn default() -> Self {
        ExcludeConfig {
            skip_hidden: true,
            patterns: DEFAULT_PATTERNS.iter().map(|p| p.to_string()).collect(),
            prune_dirs: Vec::new(),
            own_files: Vec::new(),
        }
    }
}

/// A pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("exclude pattern {pattern:?} is not a valid glob: {source}")]
    Invalid {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("exclude pattern {pattern:?} {reason}")]
    NotAName {
        pattern: String,
        reason: &'static str,
    },
    #[error("the exclude patterns cannot be compiled together: {0}")]
    Set(#[source] globset::Error),
}

/// Compiled exclusion rules; cheap to query once per directory entry.
#[derive(Debug, Clone)]
pub struct Excluder {
    skip_hidden: bool,
    set: GlobSet,
    pruned: Arc<RwLock<Vec<PathBuf>>>,
    own: Arc<Vec<PathBuf>>,
}

impl Excluder {
    /// Compiles the patterns; the error names the first pattern that cannot be used.
    pub fn new(cfg: &ExcludeConfig) -> Result<Self, ExcludeError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &cfg.patterns {
            if pattern.is_empty() {
                return Err(ExcludeError::NotAName {
                    pattern: pattern.clone(),
                    reason: "is empty: it would match nothing",
                });
            }
            if pattern.contains('/') {
                return Err(ExcludeError::NotAName {
                    pattern: pattern.clone(),
                    reason: "contains '/': patterns match one file or folder name, never a path",
                });
            }
            let glob = Glob::new(pattern).map_err(|source| ExcludeError::Invalid {
                pattern: pattern.clone(),
                source,
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(ExcludeError::Set)?;
        Ok(Excluder {
            skip_hidden: cfg.skip_hidden,
            set,
            pruned: Arc::new(RwLock::new(cfg.prune_dirs.clone())),
            own: Arc::new(cfg.own_files.clone()),
        })
    }

    /// Replaces the folders excluded by path, for this excluder and all its clones.
    pub fn set_pruned_dirs(&self, dirs: Vec<PathBuf>) {
        *self.pruned.write().unwrap_or_else(|e| e.into_inner()) = dirs;
    }

    /// Whether `path` is excluded by path: one of the folders excluded by path or inside
    /// one, or one of phototag's own files.
    pub fn is_pruned(&self, path: &Path) -> bool {
        if self.own.iter().any(|d| path.starts_with(d)) {
            return true;
        }
        let dirs = self.pruned.read().unwrap_or_else(|e| e.into_inner());
        !dirs.is_empty() && dirs.iter().any(|d| path.starts_with(d))
    }

    /// Whether a file or folder with this name is left out. `name` is one path component;
    /// its bytes are matched as they are, UTF-8 or not.
    pub fn excludes_name(&self, name: &OsStr) -> bool {
        let bytes = name.as_bytes();
        if self.skip_hidden && bytes.first() == Some(&b'.') {
            return true;
        }
        !self.set.is_empty() && self.set.is_match_candidate(&Candidate::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluder(skip_hidden: bool, patterns: &[&str]) -> Excluder {
        Excluder::new(&ExcludeConfig {
            skip_hidden,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            prune_dirs: Vec::new(),
            own_files: Vec::new(),
        })
        .unwrap()
    }

    fn ex(e: &Excluder, name: &str) -> bool {
        e.excludes_name(OsStr::new(name))
    }

    #[test]
    fn defaults_exclude_nas_housekeeping() {
        let e = Excluder::new(&ExcludeConfig::default()).unwrap();
        for name in [
            "@eaDir",
            "#recycle",
            "#snapshot",
            ".Trash-1000",
            "$RECYCLE.BIN",
            "System Volume Information",
            "lost+found",
            "@Recycle",
            "Thumbs.db",
            ".DS_Store",
            "upload.tmp",
            "IMG_1.jpg.part",
            "x.crdownload",
            ".hidden.jpg",
        ] {
            assert!(ex(&e, name), "{name} should be excluded");
        }
        for name in [
            "IMG_0001.JPG",
            "eaDir",
            "recycle",
            "Thumbs.db.jpg",
            "thumbs.db",
            "photo.tmp.jpg",
            "2024",
        ] {
            assert!(!ex(&e, name), "{name} should be kept");
        }
    }

    #[test]
    fn hidden_names_follow_skip_hidden() {
        let on = excluder(true, &[]);
        let off = excluder(false, &[]);
        assert!(ex(&on, ".git") && ex(&on, ".x.jpg"));
        assert!(!ex(&off, ".git") && !ex(&off, ".x.jpg"));
        assert!(!ex(&on, "a.jpg") && !ex(&off, "a.jpg"));
        // With skip_hidden off, a default hidden pattern still applies on its own.
        let defaults_off = Excluder::new(&ExcludeConfig {
            skip_hidden: false,
            ..ExcludeConfig::default()
        })
        .unwrap();
        assert!(ex(&defaults_off, ".DS_Store") && ex(&defaults_off, ".Trash-0"));
        assert!(!ex(&defaults_off, ".photos"));
    }

    #[test]
    fn patterns_are_case_sensitive_names() {
        let e = excluder(false, &["*.RAW", "[Pp]rivate", "cache?"]);
        assert!(ex(&e, "a.RAW") && !ex(&e, "a.raw"));
        assert!(ex(&e, "private") && ex(&e, "Private") && !ex(&e, "PRIVATE"));
        assert!(ex(&e, "cache1") && !ex(&e, "cache") && !ex(&e, "cache12"));
    }

    #[test]
    fn non_utf8_names_match_as_bytes() {
        let e = excluder(false, &["*.tmp", "caf*"]);
        assert!(e.excludes_name(OsStr::from_bytes(b"caf\xe9.jpg")));
        assert!(e.excludes_name(OsStr::from_bytes(b"\xff\xfe.tmp")));
        assert!(!e.excludes_name(OsStr::from_bytes(b"\xff\xfe.jpg")));
        let hidden = excluder(true, &[]);
        assert!(hidden.excludes_name(OsStr::from_bytes(b".\xff")));
    }

    #[test]
    fn question_mark_is_one_byte() {
        // Documented above: `?` does not match the two bytes of a UTF-8 `é`; `*` does.
        assert!(!ex(&excluder(false, &["caf?.jpg"]), "café.jpg"));
        assert!(ex(&excluder(false, &["caf*.jpg"]), "café.jpg"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for (pattern, needle) in [
            ("[unclosed", "not a valid glob"),
            ("a/b", "never a path"),
            ("", "is empty"),
        ] {
            let cfg = ExcludeConfig {
                skip_hidden: true,
                patterns: vec!["ok".into(), pattern.into()],
                prune_dirs: Vec::new(),
                own_files: Vec::new(),
            };
            let err = Excluder::new(&cfg).unwrap_err().to_string();
            assert!(err.contains(&format!("{pattern:?}")), "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn empty_config_excludes_nothing() {
        let e = excluder(false, &[]);
        assert!(!ex(&e, "@eaDir") && !ex(&e, ".x"));
    }
}
