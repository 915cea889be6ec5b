//! The catalog: what was learned about every photo. Images are keyed by content hash
//! (BLAKE3), so the same content under several paths is classified once and a move keeps
//! its tags; files map paths (raw bytes) to hashes with the stat that lets a rescan skip
//! them; failures record files that could not be tagged; models and roots say which model
//! tagged what and which folders are online.
//!
//! Two backends behind one [`Catalog`]: one SQLite file (bundled SQLite, WAL; the default,
//! nothing to run), or a PostgreSQL database shared by several machines (`pg/`, when the
//! configured `db` is a `postgresql://` URL). `dispatch` hands each call to the backend;
//! both give the same answers to the same rows (tested).
//!
//! SQLite: one writer ([`Catalog::begin`] → [`Writer`], an IMMEDIATE transaction, batched
//! by the caller); any number of readers ([`Catalog::open_readonly`]) that, thanks to WAL,
//! are never blocked by it and see each transaction whole or not at all.
//!
//! Layout: `location` (a file or a URL), `dispatch` (the public calls, to either backend);
//! SQLite's: `schema` (migrations, connection settings, version check), `rows` (the values
//! in and out, shared), `write` (the writer), `read` (lookups and stats), `query` (search),
//! `lists` (the per-class lists full listings read, and keeping them up to date),
//! `listing` (a long result in compact form, shared), `albums` (stored albums, the record
//! of album links, the export listing), `embeddings` (each image's embedding: one, or a
//! stream); PostgreSQL's in `pg/`.
//!
//! May not: decode, hash or classify files, walk folders, or print.

mod albums;
pub mod copy;
mod dispatch;
mod embeddings;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
mod listing;
mod lists;
mod location;
mod pg;
mod query;
mod read;
pub mod readers;
mod rows;
mod schema;
mod taught;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod test_server;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use albums::{AlbumRow, FileTags, LinkRow};
pub use dispatch::Writer;
pub use embeddings::{EmbeddingCounts, EmbeddingScan, StoredEmbedding};
pub use listing::{Listed, Listing};
pub use lists::ListsRefresh;
pub use location::{is_postgres_url, redact, Location, PgOptions, PgTarget};
pub use pg::{system_host_name, Claim, Claimer, PgError};
pub use query::{DupeGroup, SearchQuery};
pub use rows::{
    hash_bytes, hex, parse_hash, FailureRow, FileRow, Hash, Hit, ImageRow, LabelCount, ModelStats,
    NewFile, NewImage, NewTag, RootRow, Stats, TagRow,
};
pub use schema::{Migration, MIGRATIONS, SUPPORTED as SCHEMA_VERSION};
pub use taught::{is_taught_class, taught_class, ExampleRow, NewTaught, TaughtRow, MAX_TAUGHT};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open the catalog {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the folder of the catalog {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the catalog {path} was written by a newer phototag (schema {found}, this one knows {supported}); upgrade phototag")]
    TooNew {
        path: Location,
        found: u32,
        supported: u32,
    },
    #[error("the catalog {path} has an older schema ({found}; this phototag uses {supported}): run `phototag index DIR` once to upgrade it")]
    TooOld {
        path: Location,
        found: u32,
        supported: u32,
    },
    #[error("catalog migration {name} (schema {version}) failed: {source}")]
    Migration {
        version: u32,
        name: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no catalog at {path}: run `phototag index DIR` first")]
    Missing { path: Location },
    #[error("this catalog holds {0} taught tags, the most it can: remove one first (`phototag teach --remove NAME`)")]
    TooManyTaught(i64),
    #[error("catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server cannot be reached, or went away: worth waiting for.
    #[error("cannot reach the catalog server {target}: {source}")]
    Unavailable { target: String, source: PgError },
    /// The server answered but refused the connection (password, TLS, database).
    #[error("cannot connect to the catalog {target}: {source}")]
    Connect { target: String, source: PgError },
    #[error("catalog: {0}")]
    Postgres(PgError),
    /// A bad `db` URL or `[postgresql]` setting (a usage error).
    #[error("catalog settings: {0}")]
    Config(String),
    /// The password file cannot be used (a usage error). Never holds the password.
    #[error("the catalog password file {path}: {why}")]
    Credentials { path: PathBuf, why: String },
    /// A stored value that cannot be what phototag wrote.
    #[error("catalog: {0}")]
    Corrupt(String),
}

impl CatalogError {
    /// Whether the catalog's server is away (the daemon waits for it and retries).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CatalogError::Unavailable { .. })
    }

    /// Whether the settings are at fault (a usage error, exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CatalogError::Config(_) | CatalogError::Credentials { .. }
        )
    }
}

/// Seconds since the Unix epoch: how the catalog stores every time it records.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An open catalog, on either backend (every call is in `dispatch`).
#[derive(Debug)]
pub struct Catalog {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Box<pg::PgCatalog>),
}

impl Catalog {
    /// Opens the catalog for indexing, creating it (a SQLite file and its folders, or the
    /// tables in a PostgreSQL database) and migrating it to this binary's schema. Refuses
    /// a catalog from a newer phototag ([`CatalogError::TooNew`]) before changing anything
    /// in it.
    pub fn open(at: impl Into<Location>) -> Result<Catalog, CatalogError> {
        let backend = match at.into() {
            Location::Sqlite(path) => Backend::Sqlite(Sqlite::open(&path)?),
            Location::Postgres(t) => Backend::Postgres(Box::new(pg::PgCatalog::open(&t)?)),
        };
        Ok(Catalog { backend })
    }

    /// As [`Catalog::open`], but a PostgreSQL server that cannot be reached now is no
    /// error: the catalog connects (and migrates) at its first use once the server is
    /// back, and each call meanwhile fails with [`CatalogError::Unavailable`] (the daemon
    /// starts this way and waits).
    pub fn open_waiting(at: impl Into<Location>) -> Result<Catalog, CatalogError> {
        let backend = match at.into() {
            Location::Sqlite(path) => Backend::Sqlite(Sqlite::open(&path)?),
            Location::Postgres(t) => Backend::Postgres(Box::new(pg::PgCatalog::open_waiting(&t)?)),
        };
        Ok(Catalog { backend })
    }

    /// Opens the catalog for searching and reporting. Never creates, writes or migrates:
    /// a missing catalog (or one never indexed into) is [`CatalogError::Missing`], a newer
    /// schema [`CatalogError::TooNew`], and an older one [`CatalogError::TooOld`] (the
    /// next `phototag index` migrates it; reads assume the current schema).
    pub fn open_readonly(at: impl Into<Location>) -> Result<Catalog, CatalogError> {
        let backend = match at.into() {
            Location::Sqlite(path) => Backend::Sqlite(Sqlite::open_readonly(&path)?),
            Location::Postgres(t) => Backend::Postgres(Box::new(pg::PgCatalog::open_readonly(&t)?)),
        };
        Ok(Catalog { backend })
    }

    /// The SQLite catalog (tests of SQLite's own strategies and settings).
    #[cfg(test)]
    fn sqlite(&self) -> &Sqlite {
        match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(_) => panic!("a SQLite catalog was expected"),
        }
    }
}

/// An open SQLite catalog file.
#[derive(Debug)]
struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Opens the catalog for indexing, creating the file and its folders, and migrates it
    /// to this binary's schema. Refuses a catalog from a newer phototag ([`CatalogError::TooNew`])
    /// before changing anything in it.
    fn open(path: &Path) -> Result<Sqlite, CatalogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| CatalogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Reading the header also tells a file that is not SQLite.
        let found = schema::user_version(&conn).map_err(open_err)?;
        schema::check_not_newer(path, found)?;
        schema::configure_writer(&conn, path).map_err(open_err)?;
        let before = schema::migrate(&mut conn, path)?;
        if before < schema::SUPPORTED {
            tracing::info!(path = %path.display(), from = before, to = schema::SUPPORTED, "catalog schema migrated");
        }
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the catalog for searching and reporting (see [`Catalog::open_readonly`]).
    fn open_readonly(path: &Path) -> Result<Sqlite, CatalogError> {
        if !path.exists() {
            return Err(CatalogError::Missing { path: path.into() });
        }
        let open_err = |source| CatalogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        schema::configure_reader(&conn).map_err(open_err)?;
        let found = schema::user_version(&conn).map_err(open_err)?;
        schema::check_not_newer(path, found)?;
        if found == 0 {
            return Err(CatalogError::Missing { path: path.into() });
        }
        if found < schema::SUPPORTED {
            return Err(CatalogError::TooOld {
                path: path.into(),
                found,
                supported: schema::SUPPORTED,
            });
        }
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, CatalogError> {
        Ok(schema::user_version(&self.conn)?)
    }

    /// Records a model and returns its id; the same SHA-256 always gives the same id (the
    /// name and architecture are updated to the latest seen).
    pub fn register_model(
        &mut self,
        name: &str,
        sha256: &str,
        architecture: &str,
    ) -> Result<i64, CatalogError> {
        let sha256 = sha256.to_ascii_lowercase();
        let id = self.conn.query_row(
            "INSERT INTO models (name, architecture, sha256) VALUES (?1, ?2, ?3)
             ON CONFLICT (sha256) DO UPDATE SET name = excluded.name,
                                                architecture = excluded.architecture
             RETURNING id",
            (name, architecture, &sha256),
            |row| row.get(0),
        )?;
        Ok(id)
    }

    /// Starts the one write transaction (IMMEDIATE: it takes the write lock now, waiting
    /// up to the busy timeout for another process's). Dropped without
    /// [`Writer::commit`], it rolls back.
    pub fn begin(&mut self) -> Result<write::Writer<'_>, CatalogError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(write::Writer::new(tx))
    }

    /// Moves the write-ahead log into the database file and truncates the log (SQLite
    /// also does this on its own every ~1000 pages). Returns whether it completed (a
    /// reader holding an old snapshot can keep part of the log in use).
    pub fn checkpoint(&self) -> Result<bool, CatalogError> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        Ok(busy == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_connection_settings() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path().join("a/b/catalog.db")).unwrap();
        let get = |name: &str| -> String {
            cat.sqlite()
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("synchronous"), "Integer(1)", "NORMAL");
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("busy_timeout"), "Integer(5000)");
        assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn library_pages_leave_out_content_waiting_to_be_classified() {
        for place in fixtures::places("library_pages_leave_out_content_waiting_to_be_classified") {
            library_leaves_out_queued(fixtures::three_images(place.location.clone()));
        }
    }

    fn library_leaves_out_queued(mut cat: Catalog) {
        let model = cat.register_model("m", "00", "resnet18").unwrap();
        // The newest file of all, recorded while classification waits.
        let waiting = hash_bytes(b"waiting");
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        w.put_queued(&waiting, model).unwrap();
        w.put_file(&fixtures::file(
            "/p/new.jpg",
            root,
            waiting,
            10,
            9_000_000_000,
        ))
        .unwrap();
        w.commit().unwrap();
        assert_eq!(cat.queued_count().unwrap(), 1);
        let paths = |files: Vec<FileRow>| -> Vec<String> {
            files.iter().map(|f| f.path.display().to_string()).collect()
        };
        let all = ["/p/y/c.jpg", "/p/x/b.jpg", "/p/y/a2.jpg", "/p/x/a1.jpg"];
        assert_eq!(paths(cat.newest_files(None, 10).unwrap()), all);
        // Paged, the waiting file is skipped too.
        let first = cat.newest_files(None, 2).unwrap();
        assert_eq!(paths(first.clone()), all[..2]);
        let last = first.last().unwrap();
        let rest = cat
            .newest_files(Some((last.mtime_ns, last.path.as_path())), 10)
            .unwrap();
        assert_eq!(paths(rest), all[2..]);
        // Once classified it is listed, newest first.
        let mut w = cat.begin().unwrap();
        let mut img = fixtures::image(waiting, model, &[(4, 0.7)]);
        img.classified_at = 1_700_000_100;
        w.put_image(&img).unwrap();
        w.commit().unwrap();
        assert_eq!(cat.queued_count().unwrap(), 0);
        let listed = paths(cat.newest_files(None, 10).unwrap());
        assert_eq!(listed[0], "/p/new.jpg");
        assert_eq!(listed[1..], all);
    }

    #[test]
    fn register_model_is_idempotent_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let a = cat.register_model("resnet18", "AB12", "resnet18").unwrap();
        let b = cat
            .register_model("efficientnet-lite0", "cd34", "efficientnet-lite0")
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(
            cat.register_model("renamed", "ab12", "resnet18").unwrap(),
            a
        );
        let name: String = cat
            .sqlite()
            .conn
            .query_row("SELECT name FROM models WHERE id = ?1", [a], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "renamed");
    }
}
