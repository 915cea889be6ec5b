//! Default locations (the per-user cache, the models folder, the catalog), and which of
//! several roots holds a path.
//!
//! May not: create anything (callers create what they write).

use std::path::{Path, PathBuf};

/// Which of `roots` holds `path`: the deepest one (roots may nest), as its position in the
/// iteration; `None` when no root does.
pub fn root_holding<'a>(roots: impl IntoIterator<Item = &'a Path>, path: &Path) -> Option<usize> {
    roots
        .into_iter()
        .enumerate()
        .filter(|(_, r)| path.starts_with(r))
        .max_by_key(|(_, r)| r.as_os_str().len())
        .map(|(i, _)| i)
}

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

/// `$XDG_DATA_HOME/phototag`, else `~/.local/share/phototag`.
pub fn data_dir() -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_root_holds_a_path() {
        let roots = [Path::new("/p"), Path::new("/p/q"), Path::new("/pq")];
        assert_eq!(root_holding(roots, Path::new("/p/q/a.jpg")), Some(1));
        assert_eq!(root_holding(roots, Path::new("/p/a.jpg")), Some(0));
        assert_eq!(root_holding(roots, Path::new("/pq/a.jpg")), Some(2));
        assert_eq!(root_holding(roots, Path::new("/x/a.jpg")), None);
    }
}
