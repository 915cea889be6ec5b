//! The configuration file (`config/phototag.toml` documents every key): where it is found,
//! how it is parsed, and errors that name the file, line and key. The sections and their
//! defaults are `sections`; the checks serde cannot make are `checks`.
//!
//! May not: act on the configuration (callers do), or accept a key it does not know.

mod checks;
mod sections;

pub use sections::{
    check_album_name, AlbumConfig, ClassifyConfig, IndexConfig, LinkKind, MemoryMode,
    PostgresConfig, RootMode, ScheduleConfig, ServeConfig, SimilarConfig, WatchConfig, MAX_THREADS,
    NEAR_THRESHOLD,
};

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
    /// The catalog: a SQLite file (empty means `~/.local/share/phototag/catalog.db`) or a
    /// `postgresql://` URL.
    pub db: PathBuf,
    pub classify: ClassifyConfig,
    pub index: IndexConfig,
    pub watch: WatchConfig,
    pub schedule: ScheduleConfig,
    pub serve: ServeConfig,
    pub postgresql: PostgresConfig,
    pub similar: SimilarConfig,
    pub limits: Limits,
    /// Smart albums (`[[album]]`): folders kept equal to a query's results.
    pub album: Vec<AlbumConfig>,
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
            schedule: ScheduleConfig::default(),
            serve: ServeConfig::default(),
            postgresql: PostgresConfig::default(),
            similar: SimilarConfig::default(),
            limits: Limits::default(),
            album: Vec::new(),
        }
    }
}

impl Config {
    /// The catalog this configuration points at (`db`, else the default file), or
    /// `over` (`--db`, `$PHOTOTAG_DB`) when given.
    pub fn catalog(&self, over: Option<&std::ffi::OsStr>) -> crate::catalog::Location {
        let db = match over {
            Some(o) if !o.is_empty() => PathBuf::from(o),
            _ if self.db.as_os_str().is_empty() => crate::paths::default_db(),
            _ => self.db.clone(),
        };
        crate::catalog::Location::parse(db.as_os_str(), self.postgresql.options())
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
        let text = include_str!("../../../../config/phototag.toml");
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
    fn memory_low_runs_the_model_as_saved_one_image_at_a_time() {
        let c = parse("[classify]\nmemory = \"low\"\n", Path::new("p.toml")).unwrap();
        assert_eq!(c.classify.memory, MemoryMode::Low);
        assert_eq!(c.classify.memory.batch_size(c.classify.batch_size), 1);
        assert!(!c.classify.memory.optimize(c.classify.optimize));
        let d = Config::default().classify;
        assert_eq!(d.memory.batch_size(d.batch_size), 8);
        assert!(d.memory.optimize(d.optimize));
        let e = err("[classify]\nmemory = \"tiny\"\n");
        assert!(e.contains(":2:") && e.contains("classify.memory"), "{e}");
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
    fn roots_are_absolute_paths() {
        for bad in ["\"\"", "\"photos\"", "\"./photos\""] {
            let e = err(&format!("[watch]\n\nroots = [\"/srv/a\", {bad}]\n"));
            assert!(e.contains(":3:") && e.contains("watch.roots"), "{bad}: {e}");
        }
        let c = parse("[watch]\nroots = [\"/srv/a\"]\n", Path::new("x")).unwrap();
        assert_eq!(c.watch.roots, vec![PathBuf::from("/srv/a")]);
    }

    #[test]
    fn serve_hosts_are_names() {
        let c = parse(
            "[serve]\nhosts = [\"photos.example.com\", \"nas\"]\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.serve.hosts, ["photos.example.com", "nas"]);
        for bad in ["http://x", "x:8080", "a/b", ""] {
            let e = err(&format!("[serve]\nhosts = [\"{bad}\"]\n"));
            assert!(e.contains(":2:") && e.contains("serve.hosts"), "{bad}: {e}");
        }
        let e = err("[serve]\ntimeout_seconds = 0\n");
        assert!(e.contains("serve.timeout_seconds"), "{e}");
    }

    #[test]
    fn schedule_windows_are_checked_with_file_line_and_key() {
        let c = parse(
            "[schedule]\nwindows = [\"01:00-07:00\", \"22:30-23:59\"]\nmax_load_per_core = 1.5\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.schedule.windows.len(), 2);
        assert_eq!(c.schedule.windows[0].start, 3600);
        assert_eq!(c.schedule.max_load_per_core, 1.5);
        let e = err("# nights\n[schedule]\nwindows = [\"01:00-07:00\", \"25:00-26:00\"]\n");
        assert!(e.starts_with("/etc/phototag/phototag.toml:3:"), "{e}");
        assert!(e.contains("schedule.windows"), "{e}");
        assert!(e.contains("25:00-26:00"), "{e}");
        let e = err("[schedule]\n\nwindows = [\"abc\"]\n");
        assert!(e.contains(":3:") && e.contains("schedule.windows"), "{e}");
        let e = err("[schedule]\nmax_load_per_core = -1\n");
        assert!(
            e.contains(":2:") && e.contains("schedule.max_load_per_core"),
            "{e}"
        );
        let e = err("[watch]\nunload_after_seconds = -5\n");
        assert!(
            e.contains(":2:") && e.contains("watch.unload_after_seconds"),
            "{e}"
        );
    }

    #[test]
    fn limits_section_is_read() {
        let c = parse("[limits]\nmax_pixels = 120000000\n", Path::new("x")).unwrap();
        assert_eq!(c.limits.max_pixels, 120_000_000);
        assert_eq!(c.limits.max_width, Limits::default().max_width);
    }
}
