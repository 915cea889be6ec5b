//! Default locations (the per-user cache, the models folder, the catalog), phototag's own
//! files beside a catalog, and which of several roots holds a path.
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

/// phototag's own files for the catalog `db`, as a walk meets them (the folder made
/// canonical): the database, its `-wal`, `-shm` and `-journal`, and the daemon's status
/// record; then `dirs` (the thumbnail cache). Walks and watches leave them out, so a
/// catalog kept inside a root is never read as a photo. A PostgreSQL catalog has only its
/// status record here.
pub fn own_files(db: &crate::catalog::Location, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let canonical = |p: &Path| -> PathBuf {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return p.to_path_buf();
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::canonicalize(parent)
            .or_else(|_| std::path::absolute(parent))
            .map(|d| d.join(name))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let mut out = Vec::new();
    match db {
        crate::catalog::Location::Sqlite(path) => {
            let db = canonical(path);
            out.push(db.clone());
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut name = db.as_os_str().to_os_string();
                name.push(suffix);
                out.push(PathBuf::from(name));
            }
            out.push(crate::status::path_for(&db.into()));
        }
        pg => out.push(canonical(&crate::status::path_for(pg))),
    }
    out.extend(dirs.iter().map(|d| canonical(d)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_are_the_catalog_its_journals_and_status() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().canonicalize().unwrap();
        let own = own_files(&d.path().join("cat.db").into(), &[d.path().join("thumbs")]);
        let names: Vec<_> = own
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "cat.db",
                "cat.db-wal",
                "cat.db-shm",
                "cat.db-journal",
                "cat.db.status.json",
                "thumbs"
            ]
        );
    }

    #[test]
    fn the_deepest_root_holds_a_path() {
        let roots = [Path::new("/p"), Path::new("/p/q"), Path::new("/pq")];
        assert_eq!(root_holding(roots, Path::new("/p/q/a.jpg")), Some(1));
        assert_eq!(root_holding(roots, Path::new("/p/a.jpg")), Some(0));
        assert_eq!(root_holding(roots, Path::new("/pq/a.jpg")), Some(2));
        assert_eq!(root_holding(roots, Path::new("/x/a.jpg")), None);
    }
}
