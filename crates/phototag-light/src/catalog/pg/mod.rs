//! The catalog on a PostgreSQL server, for a library shared by several machines: the same
//! rows as the SQLite catalog (see `migrations/pg/`), read and written by any number of
//! processes on any number of hosts.
//!
//! A connection is opened at first use and again after it broke: a server that went away
//! gives [`CatalogError::Unavailable`] until it is back, and the next call reconnects (the
//! daemon queues its work meanwhile). Paths are this host's: roots, files, failures and
//! albums carry the host they are on, and a path another host recorded is shown as
//! `host:/path` (not an absolute path: nothing local opens it).
//!
//! Layout: `connect` (URL, password, TLS), `schema` (migrations and the version),
//! `write` (the writer), `read` (lookups and stats), `query` (search and dupes), `albums`,
//! `claims` (leases on contents being classified), `copy` (bulk rows for
//! `catalog copy`), `embeddings` (reads and streams), `taught` (tags taught by example),
//! `lists` (per-class search lists).
//!
//! May not: decode, hash or classify files, walk folders, or print.

mod albums;
mod claims;
mod connect;
mod copy;
mod embeddings;
mod lists;
mod query;
mod read;
pub(crate) mod schema;
mod split_read;
mod taught;
mod write;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Statement};

pub use claims::{Claim, Claimer};
#[cfg(test)]
pub(in crate::catalog) use query::Way;
pub(crate) use write::Writer;

use super::location::PgTarget;
use super::CatalogError;

/// A PostgreSQL error, shown with the server's message (tokio-postgres shows only its
/// kind, "db error").
#[derive(Debug)]
pub struct PgError(pub postgres::Error);

impl From<postgres::Error> for PgError {
    fn from(e: postgres::Error) -> PgError {
        PgError(e)
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(f, "{}: {}", db.severity(), db.message())?;
            if let Some(d) = db.detail() {
                write!(f, " ({d})")?;
            }
            if let Some(h) = db.hint() {
                write!(f, "; hint: {h}")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl std::error::Error for PgError {}

impl PgError {
    /// Whether the server is away (refused, unreachable, shutting down, the connection
    /// cut): worth waiting for, unlike a refused password or a bad statement.
    pub fn is_unavailable(&self) -> bool {
        let e = &self.0;
        if e.is_closed() {
            return true;
        }
        if let Some(code) = e.code() {
            let c = code.code();
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect
            // now; 53300: too many connections.
            return c.starts_with("08") || c.starts_with("57P0") || c == "53300";
        }
        if e.as_db_error().is_some() {
            return false;
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                // A refused certificate or TLS handshake is a setting to fix, not a server
                // to wait for.
                let tls = io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
                return !tls;
            }
            source = s.source();
        }
        // A timeout connecting, or the connection ending: kinds with no source.
        let text = e.to_string();
        text.contains("timeout")
            || text.contains("error connecting")
            || text.contains("communicating")
    }
}

/// An open (or, while the server is away, not yet open) PostgreSQL catalog.
pub struct PgCatalog {
    target: PgTarget,
    connector: connect::Connector,
    readonly: bool,
    /// This machine's name in the catalog.
    host: String,
    client: RefCell<Option<Client>>,
    /// Prepared statements of the current connection.
    stmts: RefCell<HashMap<&'static str, Statement>>,
    /// What [`PgCatalog::data_version`] counts: commits by other connections.
    changes: Cell<i64>,
    /// The backend of this connection, once it listens for changes.
    listening: Cell<Option<i32>>,
    /// From how many bytes of search lists a second connection reads half of them.
    split_read_from: Cell<usize>,
    /// How many searches a second connection helped read.
    split_reads: Cell<usize>,
}

impl fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCatalog")
            .field("target", &self.target)
            .field("host", &self.host)
            .field("readonly", &self.readonly)
            .finish()
    }
}

/// The system's host name.
pub fn system_host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl PgCatalog {
    fn new(target: &PgTarget, readonly: bool) -> Result<PgCatalog, CatalogError> {
        let connector = connect::Connector::new(target)?;
        let host = target
            .options
            .host_name
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(system_host_name);
        Ok(PgCatalog {
            target: target.clone(),
            connector,
            readonly,
            host,
            client: RefCell::new(None),
            stmts: RefCell::new(HashMap::new()),
            changes: Cell::new(0),
            listening: Cell::new(None),
            split_read_from: Cell::new(split_read::SPLIT_FROM_BYTES),
            split_reads: Cell::new(0),
        })
    }

    /// Connects, refuses a catalog of a newer phototag untouched, and migrates.
    pub fn open(target: &PgTarget) -> Result<PgCatalog, CatalogError> {
        let cat = PgCatalog::new(target, false)?;
        drop(cat.conn()?);
        Ok(cat)
    }

    /// As [`PgCatalog::open`], but a server that is away is not an error: the catalog
    /// connects (and migrates) at its first use once the server is back.
    pub fn open_waiting(target: &PgTarget) -> Result<PgCatalog, CatalogError> {
        let cat = PgCatalog::new(target, false)?;
        match cat.conn() {
            Ok(c) => drop(c),
            Err(CatalogError::Unavailable { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(cat)
    }

    /// Connects for reading: never creates or migrates (a database without a catalog is
    /// [`CatalogError::Missing`], an older one [`CatalogError::TooOld`]); the session is
    /// read-only.
    pub fn open_readonly(target: &PgTarget) -> Result<PgCatalog, CatalogError> {
        let cat = PgCatalog::new(target, true)?;
        drop(cat.conn()?);
        Ok(cat)
    }

    /// Reads of search lists from `from_bytes` on are split over two connections (tests);
    /// how many have been so far.
    #[cfg(test)]
    pub(super) fn split_reads(&self, from_bytes: usize) -> usize {
        self.split_read_from.set(from_bytes);
        self.split_reads.get()
    }

    /// This machine's name in the catalog.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    fn location(&self) -> super::Location {
        super::Location::Postgres(self.target.clone())
    }

    /// The connection, opened (or opened again) when needed.
    fn conn(&self) -> Result<RefMut<'_, Client>, CatalogError> {
        let mut slot = self.client.borrow_mut();
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        if slot.is_none() {
            self.stmts.borrow_mut().clear();
            if self.listening.take().is_some() {
                // Changes made while disconnected were not heard: count one.
                self.changes.set(self.changes.get() + 1);
            }
            let mut c = self.connector.connect()?;
            self.prepare_session(&mut c)?;
            *slot = Some(c);
        }
        Ok(RefMut::map(slot, |c| c.as_mut().expect("connected")))
    }

    /// Version checks, migration (writers), read-only sessions (readers).
    fn prepare_session(&self, c: &mut Client) -> Result<(), CatalogError> {
        let version = schema::version(c).map_err(|e| self.error(e))?;
        let supported = schema::MIGRATIONS.last().map_or(0, |m| m.version);
        let newer = |found, supported| CatalogError::TooNew {
            path: self.location(),
            found,
            supported,
        };
        if version > supported {
            return Err(newer(version, supported));
        }
        if self.readonly {
            if version == 0 {
                return Err(CatalogError::Missing {
                    path: self.location(),
                });
            }
            if version < supported {
                return Err(CatalogError::TooOld {
                    path: self.location(),
                    found: version,
                    supported,
                });
            }
            c.batch_execute("SET default_transaction_read_only = on")
                .map_err(|e| self.error(e))?;
        } else if version < supported {
            let before = schema::migrate(c, schema::MIGRATIONS, newer, |e| self.error(e))?;
            if before < supported {
                tracing::info!(catalog = %self.target, from = before, to = supported, "catalog schema migrated");
            }
        }
        Ok(())
    }

    /// A PostgreSQL error as a catalog error (see [`to_catalog_error`]).
    fn error(&self, e: postgres::Error) -> CatalogError {
        to_catalog_error(&self.target.to_string(), e)
    }

    /// A statement of the current connection, prepared once.
    fn stmt(
        &self,
        c: &mut impl postgres::GenericClient,
        sql: &'static str,
    ) -> Result<Statement, CatalogError> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql).map_err(|e| self.error(e))?;
        self.stmts.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    /// Whether the server answers now (connecting if needed).
    pub fn ping(&self) -> Result<(), CatalogError> {
        let mut c = self.conn()?;
        c.simple_query("SELECT 1").map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<u32, CatalogError> {
        let mut c = self.conn()?;
        schema::version(&mut *c).map_err(|e| self.error(e))
    }

    /// Records a model and returns its id (the same SHA-256 always gives the same id).
    pub fn register_model(
        &mut self,
        name: &str,
        sha256: &str,
        architecture: &str,
    ) -> Result<i64, CatalogError> {
        let sha256 = sha256.to_ascii_lowercase();
        let mut c = self.conn()?;
        let sql = "INSERT INTO models (name, architecture, sha256) VALUES ($1, $2, $3)
                   ON CONFLICT (sha256) DO UPDATE SET name = excluded.name,
                                                      architecture = excluded.architecture
                   RETURNING id";
        let row = c
            .query_one(sql, &[&name, &architecture, &sha256])
            .map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }

    /// Starts the one write transaction of this connection.
    pub fn begin(&mut self) -> Result<Writer<'_>, CatalogError> {
        drop(self.conn()?);
        let PgCatalog {
            client,
            stmts,
            host,
            target,
            ..
        } = self;
        let client = client.get_mut().as_mut().expect("connected");
        let shown = target.to_string();
        let tx = client
            .transaction()
            .map_err(|e| to_catalog_error(&shown, e))?;
        Ok(Writer::new(tx, stmts, host, shown))
    }

    /// A number that changes when another connection commits a change to images, tags,
    /// files or albums (notifications on `phototag_changes`), or when the connection had
    /// to be opened again.
    pub fn data_version(&self) -> Result<i64, CatalogError> {
        let mut c = self.conn()?;
        let own = match self.listening.get() {
            Some(pid) => pid,
            None => {
                c.batch_execute("LISTEN phototag_changes")
                    .map_err(|e| self.error(e))?;
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .map_err(|e| self.error(e))?
                    .get(0);
                self.listening.set(Some(pid));
                pid
            }
        };
        let mut others = 0;
        let mut notes = c.notifications();
        let mut it = notes.iter();
        loop {
            match it.next() {
                Ok(Some(n)) => {
                    if n.process_id() != own {
                        others += 1;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.error(e)),
            }
        }
        self.changes.set(self.changes.get() + others);
        Ok(self.changes.get())
    }

    /// The shown form of a stored path: as it is for this host, `host:path` for another.
    fn shown_path(&self, host: &str, path: Vec<u8>) -> PathBuf {
        if host == self.host {
            super::rows::path_from(path)
        } else {
            let mut p = Vec::with_capacity(host.len() + 1 + path.len());
            p.extend_from_slice(host.as_bytes());
            p.push(b':');
            p.extend_from_slice(&path);
            super::rows::path_from(p)
        }
    }
}

/// A PostgreSQL error of the catalog `shown` as a catalog error:
/// [`CatalogError::Unavailable`] when the server is away (the connection is opened again
/// at the next call), [`CatalogError::Postgres`] otherwise.
pub(super) fn to_catalog_error(shown: &str, e: postgres::Error) -> CatalogError {
    let e = PgError(e);
    if e.is_unavailable() {
        CatalogError::Unavailable {
            target: shown.to_string(),
            source: e,
        }
    } else {
        CatalogError::Postgres(e)
    }
}

/// Unix time in milliseconds (claims' leases).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A 32-byte hash from a bytea column.
fn hash_of(row: &postgres::Row, i: usize) -> Result<super::Hash, CatalogError> {
    let b: &[u8] = row.get(i);
    <super::Hash>::try_from(b)
        .map_err(|_| CatalogError::Corrupt(format!("a stored hash has {} bytes, not 32", b.len())))
}
