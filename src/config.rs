//! The configuration file (`config/phototag.toml` documents every key): where it is found,
//! its defaults, and errors that name the file, line and key.
//!
//! May not: act on the configuration (callers do), or accept a key it does not know.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::imaging::Limits;

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
    pub limits: Limits,
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
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            modes: Default::default(),
            settle_seconds: 5.0,
            poll_interval_seconds: 300.0,
            delete_grace_seconds: 30.0,
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
        let e = crate::index::exclude::ExcludeConfig::default();
        Self {
            skip_hidden: e.skip_hidden,
            exclude: e.patterns,
            follow_symlinks: false,
        }
    }
}

impl IndexConfig {
    /// The exclusion settings for the walker.
    pub fn exclude_config(&self) -> crate::index::exclude::ExcludeConfig {
        crate::index::exclude::ExcludeConfig {
            skip_hidden: self.skip_hidden,
            patterns: self.exclude.clone(),
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
            model: crate::model::AUTO.to_string(),
            model_dir: PathBuf::new(),
            log_level: "info".into(),
            db: PathBuf::new(),
            classify: ClassifyConfig::default(),
            index: IndexConfig::default(),
            watch: WatchConfig::default(),
            limits: Limits::default(),
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
        if self.model != crate::model::AUTO {
            crate::model::store::check_name(&self.model)
                .map_err(|e| ("model".into(), e.to_string()))?;
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
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(last) && t[last.len()..].trim_start().starts_with('=') {
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
        let text = include_str!("../config/phototag.toml");
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
    fn limits_section_is_read() {
        let c = parse("[limits]\nmax_pixels = 120000000\n", Path::new("x")).unwrap();
        assert_eq!(c.limits.max_pixels, 120_000_000);
        assert_eq!(c.limits.max_width, Limits::default().max_width);
    }
}
