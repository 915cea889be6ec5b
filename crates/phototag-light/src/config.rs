//! The configuration file (`config/phototag.toml` documents every key): where it is found,
//! its defaults, and errors that name the file, line and key.
//!
//! May not: act on the configuration (callers do), or accept a key it does not know.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::limits::Limits;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Model name, or `auto` (resnet18 when prepared, else efficientnet-lite0).
    pub model: String,
    /// Folder of prepared models; empty means `~/.local/share/phototag/models`.
    pub model_dir: PathBuf,
    /// Log filter when `RUST_LOG` is not set (`error`, `warn`, `info`, `debug`, `trace`).
    pub log_level: String,
    /// The catalog database; empty means `~/.local/share/phototag/catalog.db`.
    pub db: PathBuf,
    pub classify: ClassifyConfig,
    pub index: IndexConfig,
    pub watch: WatchConfig,
    pub serve: ServeConfig,
    pub limits: Limits,
    /// Smart albums (`[[album]]`): folders kept equal to a query's results.
    pub album: Vec<AlbumConfig>,
}

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
        }
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: crate::model_files::names::AUTO.to_string(),
            model_dir: PathBuf::new(),
            log_level: "info".into(),
            db: PathBuf::new(),
            classify: ClassifyConfig::default(),
            index: IndexConfig::default(),
            watch: WatchConfig::default(),
            serve: ServeConfig::default(),
            limits: Limits::default(),
            album: Vec::new(),
        }
    }
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            batch_size: 8,
            top_k: 3,
            optimize: true,
            decode_threads: 0,
        }
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// Dotted key path, e.g. `classify.threads`, or `(file)` for syntax errors.
        key: String,
        message: String,
    },
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(PathBuf),
    Defaults,
}

/// The config file to read: `explicit` (from `--config` or `PHOTOTAG_CONFIG`), else the
/// first of `$XDG_CONFIG_HOME/phototag/phototag.toml` (or `~/.config/...`) and
/// `/etc/phototag/phototag.toml` that exists, else none (built-in defaults).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let user = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")),
    };
    let candidates = user
        .map(|u| u.join("phototag").join("phototag.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(
            "/etc/phototag/phototag.toml",
        )));
    candidates.into_iter().find(|p| p.is_file())
}

/// Loads the configuration from `explicit` or the default places.
pub fn load(explicit: Option<&Path>) -> Result<(Config, Origin), ConfigError> {
    match locate(explicit) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            Ok((parse(&text, &path)?, Origin::File(path)))
        }
        None => Ok((Config::default(), Origin::Defaults)),
    }
}

/// Parses configuration text; `path` is only used in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Option<std::ops::Range<usize>>, key: String, message: String| {
        let (line, column) = line_col(text, span.map(|s| s.start).unwrap_or(0));
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid(e.span(), "(syntax)".into(), e.message().trim().to_string()))?;
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        invalid(inner.span(), key, inner.message().trim().to_string())
    })?;
    config.check().map_err(|(key, message)| {
        let span = find_key(text, &key);
        invalid(span, key, message)
    })?;
    Ok(config)
}

impl Config {
    /// Checks values serde cannot: ranges and names.
    fn check(&self) -> Result<(), (String, String)> {
        if self.classify.batch_size == 0 || self.classify.batch_size > 256 {
            return Err((
                "classify.batch_size".into(),
                "must be between 1 and 256".into(),
            ));
        }
        if self.classify.top_k == 0 || self.classify.top_k > 1000 {
            return Err(("classify.top_k".into(), "must be between 1 and 1000".into()));
        }
        if self.classify.decode_threads > 1024 {
            return Err((
                "classify.decode_threads".into(),
                "must be at most 1024".into(),
            ));
        }
        if self.classify.threads > 1024 {
            return Err((
                "classify.threads".into(),
                "must be at most 1024 (0 means all cores)".into(),
            ));
        }
        if self.model != crate::model_files::names::AUTO
            && !crate::model_files::names::is_valid(&self.model)
        {
            return Err((
                "model".into(),
                format!("model name `{}` is not valid: use letters, digits, '-', '_' and '.', not starting with '.'", self.model),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err((
                "log_level".into(),
                format!("`{}` is not a log filter (try \"info\")", self.log_level),
            ));
        }
        if let Err(e) = globset_check(&self.index.exclude) {
            return Err(("index.exclude".into(), e));
        }
        let w = &self.watch;
        for (key, v) in [
            ("watch.settle_seconds", w.settle_seconds),
            ("watch.poll_interval_seconds", w.poll_interval_seconds),
            ("watch.delete_grace_seconds", w.delete_grace_seconds),
            ("watch.album_delay_seconds", w.album_delay_seconds),
        ] {
            if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
                return Err((key.into(), "must be between 0 and 86400 seconds".into()));
            }
        }
        if w.poll_interval_seconds < 0.5 {
            return Err((
                "watch.poll_interval_seconds".into(),
                "must be at least 0.5 seconds".into(),
            ));
        }
        for (i, a) in self.album.iter().enumerate() {
            let key = |k: &str| format!("album[{i}].{k}");
            if let Err(e) = check_album_name(&a.name) {
                return Err((key("name"), e));
            }
            if self.album[..i].iter().any(|b| b.name == a.name) {
                return Err((key("name"), format!("a second album named `{}`", a.name)));
            }
            if let Err(e) = crate::search::Query::compile(&a.query, 0.0) {
                return Err((key("query"), e.to_string().replace('\n', " ")));
            }
            if !a.folder.is_absolute() {
                return Err((key("folder"), "must be an absolute path".into()));
            }
            // Album folders are never walked: one holding a root would hide its photos.
            if let Some(r) = self.watch.roots.iter().find(|r| r.starts_with(&a.folder)) {
                return Err((
                    key("folder"),
                    format!(
                        "holds the watched root {}: album folders are never walked",
                        r.display()
                    ),
                ));
            }
        }
        let s = &self.serve;
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "serve.listen".into(),
                format!(
                    "`{}` is not an address and port (e.g. \"127.0.0.1:8080\")",
                    s.listen
                ),
            ));
        }
        if s.max_upload_bytes == 0 {
            return Err((
                "serve.max_upload_bytes".into(),
                "must be greater than zero".into(),
            ));
        }
        for (key, v) in [
            ("serve.thumb_size", s.thumb_size),
            ("serve.preview_size", s.preview_size),
        ] {
            if !(16..=4096).contains(&v) {
                return Err((key.into(), "must be between 16 and 4096 pixels".into()));
            }
        }
        let l = &self.limits;
        if l.max_width == 0
            || l.max_height == 0
            || l.max_pixels == 0
            || l.max_file_bytes == 0
            || l.max_alloc_bytes == 0
        {
            return Err(("limits".into(), "limits must be greater than zero".into()));
        }
        Ok(())
    }

    /// The catalog database this configuration points at.
    pub fn db_path(&self) -> PathBuf {
        if self.db.as_os_str().is_empty() {
            crate::paths::default_db()
        } else {
            self.db.clone()
        }
    }

    /// The models folder this configuration points at.
    pub fn model_dir(&self) -> PathBuf {
        if self.model_dir.as_os_str().is_empty() {
            crate::paths::default_model_dir()
        } else {
            self.model_dir.clone()
        }
    }
}

fn globset_check(patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        globset::Glob::new(p).map_err(|e| format!("bad pattern `{p}`: {e}"))?;
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, column)
}

/// Byte span of the last segment of a dotted key as written in the file, for errors about
/// values that parsed but are out of range.
fn find_key(text: &str, dotted: &str) -> Option<std::ops::Range<usize>> {
    let last = dotted.rsplit('.').next()?;
    // `album[2].query`: look after the third `[[album]]` header.
    let nth_album = dotted
        .strip_prefix("album[")
        .and_then(|r| r.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    let mut headers = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.trim_end() == "[[album]]" {
            headers += 1;
        }
        let in_place = nth_album.is_none_or(|n| headers == n + 1);
        if in_place && t.starts_with(last) && t[last.len()..].trim_start().starts_with('=') {
            let start = offset + (line.len() - t.len());
            return Some(start..start + last.len());
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("/etc/phototag/phototag.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.classify.top_k, 3);
        assert_eq!(c.model, "auto");
    }

    #[test]
    fn the_shipped_example_parses_to_the_defaults() {
        let text = include_str!("../../../config/phototag.toml");
        let c = parse(text, Path::new("config/phototag.toml")).unwrap();
        assert_eq!(
            c,
            Config::default(),
            "config/phototag.toml must document the defaults"
        );
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let e = err("model = \"auto\"\n\n[classify]\nthreads = \"four\"\n");
        assert!(e.starts_with("/etc/phototag/phototag.toml:4:"), "{e}");
        assert!(e.contains("classify.threads"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("[classify]\nbatch_sise = 4\n");
        assert!(e.contains(":2:"), "{e}");
        assert!(e.contains("batch_sise"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = err("model = \"auto\"\nthreads = = 3\n");
        assert!(e.contains(":2:"), "{e}");
    }

    #[test]
    fn out_of_range_value_names_line_and_key() {
        let e = err("# c\n[classify]\nbatch_size = 0\n");
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("classify.batch_size"), "{e}");
        let e = err("model = \"../../etc\"\n");
        assert!(e.contains(":1:") && e.contains("model"), "{e}");
    }

    #[test]
    fn albums_are_read_and_checked() {
        let text = "[[album]]\nname = \"Dogs\"\nquery = \"dog>0.4 AND NOT cat\"\nfolder = \"/srv/albums/dogs\"\n\n[[album]]\nname = \"Cats\"\nquery = \"cat\"\nfolder = \"/srv/albums/cats\"\nlinks = \"hardlink\"\n";
        let c = parse(text, Path::new("x")).unwrap();
        assert_eq!(c.album.len(), 2);
        assert_eq!(c.album[0].links, LinkKind::Symlink);
        assert_eq!(c.album[1].links, LinkKind::Hardlink);
        let bad = text.replace("query = \"cat\"", "query = \"(cat\"");
        let e = err(&bad);
        assert!(e.contains(":8:") && e.contains("album[1].query"), "{e}");
        let e = err(&text.replace("/srv/albums/cats", "albums/cats"));
        assert!(e.contains(":9:") && e.contains("album[1].folder"), "{e}");
        let e = err(&text.replace("Cats", "Dogs"));
        assert!(e.contains(":7:") && e.contains("second album"), "{e}");
        let e = err(&text.replace("\"hardlink\"", "\"copy\""));
        assert!(e.contains(":10:"), "{e}");
        let e = err(&format!(
            "[watch]\nroots = [\"/srv/albums/cats/x\"]\n{text}"
        ));
        assert!(
            e.contains("album[1].folder") && e.contains("watched root"),
            "{e}"
        );
    }

    #[test]
    fn sidecars_are_per_root() {
        let c = parse(
            "[watch]\nsidecars = { \"/srv/photos\" = true }\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.watch.sidecars.get(Path::new("/srv/photos")), Some(&true));
    }

    #[test]
    fn serve_section_errors_name_line_and_key() {
        let e = err("[serve]\nlisten = \"localhost\"\n");
        assert!(e.contains(":2:") && e.contains("serve.listen"), "{e}");
        let e = err("[serve]\n\nthumb_size = 2\n");
        assert!(e.contains(":3:") && e.contains("serve.thumb_size"), "{e}");
        let c = parse("[serve]\nlisten = \"[::]:80\"\n", Path::new("x")).unwrap();
        assert_eq!(c.serve.listen, "[::]:80");
    }

    #[test]
    fn limits_section_is_read() {
        let c = parse("[limits]\nmax_pixels = 120000000\n", Path::new("x")).unwrap();
        assert_eq!(c.limits.max_pixels, 120_000_000);
        assert_eq!(c.limits.max_width, Limits::default().max_width);
    }
}
