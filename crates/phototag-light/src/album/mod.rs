//! Smart albums: folders kept equal to a query's results, one link per matching photo.
//!
//! Albums come from the config file (`[[album]]`, read at start and on SIGHUP) and from
//! the catalog (`phototag album add`). [`sync`] brings one album folder up to date:
//! `plan` decides the link names and the changes, `links` makes and removes links and
//! says whether a file in an album folder is still one phototag made.
//!
//! May not: classify, depend on the model, touch a file in an album folder that has no
//! link record (or no longer is what the record says), or create an album folder whose
//! parent is missing (an unmounted share is reported, never recreated elsewhere).

pub mod links;
pub mod plan;

use std::path::{Path, PathBuf};

use crate::catalog::{AlbumRow, Catalog, CatalogError, Hash, LinkRow};
use crate::config::{AlbumConfig, Config, LinkKind};
use crate::search::{Query, Request};

pub use plan::{Change, Plan};

/// Where an album is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `[[album]]` in the config file (edit the file to change it).
    Config,
    /// `phototag album add` (stored in the catalog).
    Catalog,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Catalog => "catalog",
        }
    }
}

/// One album.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Album {
    pub name: String,
    pub query: String,
    /// Absolute; canonical where its parent exists.
    pub folder: PathBuf,
    pub links: LinkKind,
    pub source: Source,
}

/// Something that stops an album from being synced.
#[derive(Debug, thiserror::Error)]
pub enum AlbumError {
    #[error("album `{album}`: {query_error}")]
    Query { album: String, query_error: String },
    #[error("album `{album}`: the folder {folder} is unavailable: its parent {parent} is missing (unmounted share?); not created elsewhere")]
    ParentMissing {
        album: String,
        folder: PathBuf,
        parent: PathBuf,
    },
    #[error("album `{album}`: {folder} exists and is not a folder")]
    NotAFolder { album: String, folder: PathBuf },
    #[error("album `{album}`: cannot create {folder}: {source}")]
    Create {
        album: String,
        folder: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A mistake in how an album command was asked for (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An album folder as paths are stored: the canonical parent joined with the name (the
/// folder itself may not exist yet); as given when the parent is missing too.
pub fn canonical_folder(folder: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(folder) {
        return c;
    }
    match (folder.parent(), folder.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or_else(|_| folder.to_path_buf()),
        _ => folder.to_path_buf(),
    }
}

impl Album {
    pub fn from_config(a: &AlbumConfig) -> Album {
        Album {
            name: a.name.clone(),
            query: a.query.clone(),
            folder: canonical_folder(&a.folder),
            links: a.links,
            source: Source::Config,
        }
    }

    pub fn from_row(r: &AlbumRow) -> Album {
        Album {
            name: r.name.clone(),
            query: r.query.clone(),
            folder: canonical_folder(&r.folder),
            links: LinkKind::parse(&r.links).unwrap_or_default(),
            source: Source::Catalog,
        }
    }
}

/// Every album: the config's, then the catalog's (a catalog album whose name a config
/// album has is left out, with a warning).
pub fn all(configured: &[AlbumConfig], stored: &[AlbumRow]) -> Vec<Album> {
    let mut out: Vec<Album> = configured.iter().map(Album::from_config).collect();
    for r in stored {
        if out.iter().any(|a| a.name == r.name) {
            tracing::warn!(album = %r.name, "an album of this name is in the config file too; the config's is used");
            continue;
        }
        out.push(Album::from_row(r));
    }
    out
}

/// Every album of a configuration and catalog (the catalog may be absent).
pub fn load(config: &Config, catalog: Option<&Catalog>) -> Result<Vec<Album>, CatalogError> {
    let stored = match catalog {
        Some(c) => c.albums()?,
        None => Vec::new(),
    };
    Ok(all(&config.album, &stored))
}

/// The folders of albums, for exclusion from walks and watches.
pub fn folders(albums: &[Album]) -> Vec<PathBuf> {
    albums.iter().map(|a| a.folder.clone()).collect()
}

/// What [`sync`] did (or, for a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Photos the query matches.
    pub matched: usize,
    pub created: usize,
    pub removed: usize,
    pub kept: usize,
    /// Records dropped because their file was gone or no longer phototag's.
    pub forgotten: usize,
    /// Links that could not be made or removed, each with why.
    pub problems: Vec<String>,
}

/// The photos an album's query matches: (path, hash), files inside any album folder
/// left out.
pub fn matches(
    catalog: &Catalog,
    album: &Album,
    album_folders: &[PathBuf],
) -> Result<Vec<(PathBuf, Hash)>, AlbumError> {
    let q = Query::compile_with(&album.query, 0.0, &catalog.taught_names()?).map_err(|e| {
        AlbumError::Query {
            album: album.name.clone(),
            query_error: e.to_string(),
        }
    })?;
    for t in q.unknown() {
        tracing::warn!(album = %album.name, term = %t.text, "no ImageNet class or label matches this term");
    }
    let hits = catalog.find(&Request::new(q.compiled))?;
    // Another host's file (a shared catalog shows it as `host:/path`) is not linked here.
    Ok(hits
        .into_iter()
        .filter(|h| h.path.is_absolute())
        .filter(|h| !album_folders.iter().any(|f| h.path.starts_with(f)))
        .map(|h| (h.path, h.hash))
        .collect())
}

/// Makes sure the album folder exists, creating it only when its parent exists.
pub fn prepare_folder(album: &Album, create: bool) -> Result<(), AlbumError> {
    let folder = &album.folder;
    match std::fs::symlink_metadata(folder) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(AlbumError::NotAFolder {
                album: album.name.clone(),
                folder: folder.clone(),
            })
        }
        Err(_) => {}
    }
    let parent = folder.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(AlbumError::ParentMissing {
            album: album.name.clone(),
            folder: folder.clone(),
            parent: parent.to_path_buf(),
        });
    }
    if create {
        std::fs::create_dir(folder).map_err(|source| AlbumError::Create {
            album: album.name.clone(),
            folder: folder.clone(),
            source,
        })?;
        tracing::info!(album = %album.name, folder = %folder.display(), "album folder created");
    }
    Ok(())
}

/// Plans one album: what its folder should hold against what phototag made there.
pub fn plan(
    catalog: &Catalog,
    album: &Album,
    album_folders: &[PathBuf],
    verify: bool,
) -> Result<(Plan, usize), AlbumError> {
    let matched = matches(catalog, album, album_folders)?;
    let records = catalog.album_links(&album.name)?;
    let n = matched.len();
    Ok((plan::plan(album, &matched, records, verify), n))
}

/// How [`sync`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Look at every recorded link on disk (`album sync`, the daemon's first sync).
    Verify,
    /// Trust the records: only what changed is looked at (the daemon's later syncs).
    Incremental,
    /// Verify, but change nothing.
    DryRun,
}

/// Brings one album folder up to date (or, for a dry run, only plans it).
pub fn sync(
    catalog: &mut Catalog,
    album: &Album,
    album_folders: &[PathBuf],
    mode: Mode,
) -> Result<(Report, Plan), AlbumError> {
    let dry_run = mode == Mode::DryRun;
    prepare_folder(album, !dry_run)?;
    let (plan, matched) = plan(catalog, album, album_folders, mode != Mode::Incremental)?;
    let mut report = Report {
        matched,
        kept: plan.kept,
        ..Report::default()
    };
    for c in &plan.changes {
        match c {
            Change::Create(_) => report.created += 1,
            Change::Remove(_) => report.removed += 1,
            Change::Forget(_) => report.forgotten += 1,
        }
    }
    if !dry_run {
        report.problems = apply(catalog, album, &plan)?;
    }
    Ok((report, plan))
}

/// Carries out a plan: forget, then remove, then record and create.
fn apply(catalog: &mut Catalog, album: &Album, plan: &Plan) -> Result<Vec<String>, AlbumError> {
    let mut problems = Vec::new();
    let forget: Vec<&Path> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Forget(r) => Some(r.path.as_path()),
            _ => None,
        })
        .collect();
    catalog.forget_links(&forget)?;
    let mut removed: Vec<&Path> = Vec::new();
    for c in &plan.changes {
        if let Change::Remove(r) = c {
            match links::state(r) {
                links::State::Ours => match std::fs::remove_file(&r.path) {
                    Ok(()) => removed.push(&r.path),
                    Err(e) => problems.push(format!("{}: {e}", r.path.display())),
                },
                links::State::Missing => removed.push(&r.path),
                links::State::Foreign => {
                    tracing::info!(path = %r.path.display(), "no longer the link phototag made: left alone");
                    removed.push(&r.path);
                }
            }
        }
    }
    catalog.forget_links(&removed)?;
    let creates: Vec<LinkRow> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Create(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    // Recorded first: a crash leaves a record without a link, made at the next sync.
    catalog.record_links(&creates)?;
    let mut failed: Vec<&Path> = Vec::new();
    for r in &creates {
        match links::create(r, album.links) {
            Ok(Some(inode)) => catalog.set_link_inode(&r.path, inode)?,
            Ok(None) => {}
            Err(e) => {
                problems.push(format!("{}: {e}", r.path.display()));
                failed.push(&r.path);
            }
        }
    }
    catalog.forget_links(&failed)?;
    for p in &problems {
        tracing::warn!(album = %album.name, "{p}");
    }
    Ok(problems)
}

/// Removes every link phototag made for an album (its folder stays, with anything else
/// in it); returns how many went.
pub fn clear(catalog: &mut Catalog, name: &str) -> Result<usize, AlbumError> {
    let records = catalog.album_links(name)?;
    let mut gone = Vec::new();
    let mut removed = 0;
    for r in &records {
        match links::state(r) {
            links::State::Ours => {
                if links::remove(r).is_ok() {
                    removed += 1;
                    gone.push(r.path.as_path());
                }
            }
            // Missing, or someone else's now: only the record goes.
            _ => gone.push(r.path.as_path()),
        }
    }
    catalog.forget_links(&gone)?;
    Ok(removed)
}
