//! Default locations: the per-user cache (libtorch, downloads) and the models folder.
//!
//! May not: create anything (callers create what they write).

use std::path::PathBuf;

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/phototag"))
}

/// `$PHOTOTAG_CACHE_DIR`, else `$XDG_CACHE_HOME/phototag`, else `~/.cache/phototag`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PHOTOTAG_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("phototag"),
        None => home().join(".cache").join("phototag"),
    }
}

fn data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("phototag"),
        None => home().join(".local").join("share").join("phototag"),
    }
}

/// `$XDG_DATA_HOME/phototag/catalog.db`, else `~/.local/share/phototag/catalog.db`. The config
/// key `db`, `$PHOTOTAG_DB` and `--db` override it.
pub fn default_db() -> PathBuf {
    data_dir().join("catalog.db")
}

/// `$XDG_DATA_HOME/phototag/models`, else `~/.local/share/phototag/models`. The config key
/// `model_dir`, `$PHOTOTAG_MODEL_DIR` and `--model-dir` override it.
pub fn default_model_dir() -> PathBuf {
    data_dir().join("models")
}
