//! The sections of the configuration file, each with its defaults (equal to
//! `config/phototag.toml`, which documents every key: a test checks).
//!
//! May not: read files, or check values serde cannot (see `checks`).

use std::path::PathBuf;

use serde::Deserialize;

/// How an album folder links to photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// Symbolic links (work across file systems; shares must follow them).
    #[default]
    Symlink,
    /// Hard links (the album folder must be on the photos' file system).
    Hardlink,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Symlink => "symlink",
            LinkKind::Hardlink => "hardlink",
        }
    }

    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "symlink" => Some(LinkKind::Symlink),
            "hardlink" => Some(LinkKind::Hardlink),
            _ => None,
        }
    }
}

/// Checks an album name: 1 to 64 letters, digits, spaces, `-`, `_` or `.`, not starting
/// with `.` or a space.
pub fn check_album_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && !name.starts_with(['.', ' '])
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an album name (1-64 letters, digits, spaces, '-', '_', '.')"
        ))
    }
}

/// One `[[album]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlbumConfig {
    /// Unique name (letters, digits, space, `-`, `_`, `.`).
    pub name: String,
    /// A query in the search language, e.g. `dog>0.4 AND NOT cat`.
    pub query: String,
    /// The album folder (absolute); its parent must exist.
    pub folder: PathBuf,
    /// `symlink` (default) or `hardlink`.
    #[serde(default)]
    pub links: LinkKind,
}

/// The web page (`phototag serve`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on; anything but loopback needs `token`.
    pub listen: String,
    /// Access token (a bearer header or the login cookie); empty means none, which is only
    /// allowed on a loopback address. `$PHOTOTAG_SERVE_TOKEN` overrides it.
    pub token: String,
    /// Largest upload `POST /api/classify` accepts, in bytes.
    pub max_upload_bytes: u64,
    /// Where thumbnails are cached; empty means `<cache dir>/thumbs`.
    pub thumb_dir: PathBuf,
    /// Longest side of a grid thumbnail, in pixels.
    pub thumb_size: u32,
    /// Longest side of the photo view's large preview, in pixels.
    pub preview_size: u32,
    /// Host names the server answers to besides its listen address and `localhost` (a
    /// request naming any other host in `Host` or, for a POST, `Origin` is refused: DNS
    /// rebinding). E.g. `["photos.example.com", "nas.local"]`.
    pub hosts: Vec<String>,
    /// Most connections open at once (fewer when the open-file limit is low); more are
    /// answered 503 and closed.
    pub max_connections: usize,
    /// A client has this long to send a request's headers (and an idle connection is
    /// closed after it); a body must keep arriving at 32 KiB/s after it.
    pub timeout_seconds: f64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            token: String::new(),
            max_upload_bytes: 50 * 1024 * 1024,
            thumb_dir: PathBuf::new(),
            thumb_size: 320,
            preview_size: 1280,
            hosts: Vec::new(),
            max_connections: 256,
            timeout_seconds: 10.0,
        }
    }
}

impl ServeConfig {
    /// The thumbnail cache this configuration points at.
    pub fn thumb_dir(&self) -> PathBuf {
        if self.thumb_dir.as_os_str().is_empty() {
            crate::paths::cache_dir().join("thumbs")
        } else {
            self.thumb_dir.clone()
        }
    }
}

/// Similar photos and near copies (`phototag similar`, `dupes --near`, the web page).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimilarConfig {
    /// Cosine similarity of two photos' embeddings from which `dupes --near` calls them
    /// near copies (0-1).
    pub near_threshold: f32,
}

/// The default `near_threshold`, chosen by measurement (`benches/near_dupes.rs`; README,
/// "Similar photos and near copies"): with EfficientNet-Lite0 on variants of the corpus
/// photos, the lowest threshold at which no pair of different photos scored (96% of the
/// near-copy pairs found).
pub const NEAR_THRESHOLD: f32 = 0.77;

impl Default for SimilarConfig {
    fn default() -> Self {
        Self {
            near_threshold: NEAR_THRESHOLD,
        }
    }
}

/// How a root is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootMode {
    /// inotify on local file systems, polling on network mounts (NFS, SMB, FUSE).
    Auto,
    /// Always inotify.
    Notify,
    /// Always poll.
    Poll,
}

/// The daemon (`phototag watch`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Folders to keep catalogued.
    pub roots: Vec<PathBuf>,
    /// Per-root mode overrides, e.g. `{ "/mnt/nas" = "poll" }`.
    pub modes: std::collections::BTreeMap<PathBuf, RootMode>,
    /// A file is classified once its size and mtime have not changed for this long.
    pub settle_seconds: f64,
    /// How often polled roots are rescanned (stat only).
    pub poll_interval_seconds: f64,
    /// A deleted file's rows are removed after this long (a move shows up meanwhile).
    pub delete_grace_seconds: f64,
    /// Per-root XMP sidecars, e.g. `{ "/srv/photos" = true }`: write `photo.jpg.xmp`.
    pub sidecars: std::collections::BTreeMap<PathBuf, bool>,
    /// Album folders are brought up to date this long after the last change.
    pub album_delay_seconds: f64,
    /// The model is unloaded after this long without classifying (0 = never), and loaded
    /// again when a photo needs it.
    pub unload_after_seconds: f64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            modes: Default::default(),
            settle_seconds: 5.0,
            poll_interval_seconds: 300.0,
            delete_grace_seconds: 30.0,
            sidecars: Default::default(),
            album_delay_seconds: 2.0,
            unload_after_seconds: 600.0,
        }
    }
}

/// The PostgreSQL catalog (`db = "postgresql://..."`): what a connection needs beyond the
/// URL. Ignored for a SQLite catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// A file holding the password (its first line), readable by its owner only; empty:
    /// `$PGPASSWORD`, then `~/.pgpass`.
    pub password_file: PathBuf,
    /// The name this machine's roots, files and albums are recorded under; empty: the
    /// system's host name.
    pub host_name: String,
    /// How long a worker's claim on a content lasts without renewal: what a worker that
    /// died mid-batch holds up.
    pub claim_seconds: f64,
    /// How long connecting may take.
    pub connect_timeout_seconds: f64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        let d = crate::catalog::PgOptions::default();
        Self {
            password_file: PathBuf::new(),
            host_name: String::new(),
            claim_seconds: d.claim_lease.as_secs_f64(),
            connect_timeout_seconds: d.connect_timeout.as_secs_f64(),
        }
    }
}

impl PostgresConfig {
    /// The connection options these settings give.
    pub fn options(&self) -> crate::catalog::PgOptions {
        crate::catalog::PgOptions {
            password_file: (!self.password_file.as_os_str().is_empty())
                .then(|| self.password_file.clone()),
            host_name: (!self.host_name.is_empty()).then(|| self.host_name.clone()),
            claim_lease: std::time::Duration::from_secs_f64(self.claim_seconds),
            connect_timeout: std::time::Duration::from_secs_f64(self.connect_timeout_seconds),
        }
    }
}

/// What `index` (and later the watcher) walks past.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Skip files and folders whose names start with '.'.
    pub skip_hidden: bool,
    /// Glob patterns matched against file and folder names.
    pub exclude: Vec<String>,
    /// Follow symbolic links (loops are detected and reported).
    pub follow_symlinks: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let e = crate::exclude::ExcludeConfig::default();
        Self {
            skip_hidden: e.skip_hidden,
            exclude: e.patterns,
            follow_symlinks: false,
        }
    }
}

impl IndexConfig {
    /// The exclusion settings for the walker.
    pub fn exclude_config(&self) -> crate::exclude::ExcludeConfig {
        crate::exclude::ExcludeConfig {
            skip_hidden: self.skip_hidden,
            patterns: self.exclude.clone(),
            prune_dirs: Vec::new(),
            own_files: Vec::new(),
        }
    }
}

/// The most inference or decoding threads a command may ask for, on the command line
/// (`--threads`) or in the configuration (`classify.threads`, `classify.decode_threads`):
/// one bound for both. Beyond it libgomp fails or the process runs out of stack.
pub const MAX_THREADS: usize = 1024;

/// How much memory classification may use (`[classify] memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// The fastest settings: `optimize` and `batch_size` as configured.
    #[default]
    Normal,
    /// Under 250 MB while indexing 12-megapixel photos, for small machines: the model runs
    /// as saved (one copy of its weights, none prepacked) one image at a time. Slower.
    Low,
}

impl MemoryMode {
    /// Images per forward pass in this mode, from the configured (or flagged) size.
    pub fn batch_size(self, configured: usize) -> usize {
        match self {
            MemoryMode::Normal => configured,
            MemoryMode::Low => 1,
        }
    }

    /// Whether the model is frozen and optimised, from the configured `optimize`.
    pub fn optimize(self, configured: bool) -> bool {
        configured && self == MemoryMode::Normal
    }
}

/// How images are classified.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Inference threads; 0 means all cores.
    pub threads: usize,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Classes kept per image.
    pub top_k: usize,
    /// Freeze the model and apply `optimize_for_inference` at load time.
    pub optimize: bool,
    /// Threads decoding photos while the model runs; 0 means one per core.
    pub decode_threads: usize,
    /// `low` trades speed for memory (see [`MemoryMode`]).
    pub memory: MemoryMode,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            batch_size: 8,
            top_k: 3,
            optimize: true,
            decode_threads: 0,
            memory: MemoryMode::Normal,
        }
    }
}

/// When classification runs (`[schedule]`): daily windows of local time, and a load limit.
/// Outside a window or above the load, new photos are still noticed, hashed and recorded;
/// their classification waits in the queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Windows such as `"01:00-07:00"` (local time; may wrap midnight); empty means always.
    pub windows: Vec<crate::schedule::Window>,
    /// Classification pauses while the 1-minute load average per core (phototag's own
    /// threads not counted) is above this; 0 means no limit.
    pub max_load_per_core: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            windows: Vec::new(),
            max_load_per_core: 0.0,
        }
    }
}

impl ScheduleConfig {
    /// The windows as a [`crate::schedule::Schedule`].
    pub fn schedule(&self) -> crate::schedule::Schedule {
        crate::schedule::Schedule::new(self.windows.clone())
    }
}
