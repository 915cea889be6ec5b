//! Where a catalog is: a SQLite file (the default), or a PostgreSQL database named by a
//! `postgresql://` URL, with the settings of the `[postgresql]` section. Shown, a URL never
//! carries its password.
//!
//! May not: connect or open anything (`Catalog::open` does).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A catalog's place.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgTarget),
}

/// A PostgreSQL catalog: the URL as given (it may hold a password: never shown) and how to
/// use it.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub url: String,
    pub options: PgOptions,
}

/// The `[postgresql]` settings a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// A file holding the password (its first line), readable by its owner only.
    pub password_file: Option<PathBuf>,
    /// The name this machine's roots, files and albums are recorded under; `None`: the
    /// system's host name.
    pub host_name: Option<String>,
    /// How long a worker's claim on a content lasts without renewal.
    pub claim_lease: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            password_file: None,
            host_name: None,
            claim_lease: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Whether `s` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(s: &[u8]) -> bool {
    s.starts_with(b"postgresql://") || s.starts_with(b"postgres://")
}

impl Location {
    /// `postgresql://...` or `postgres://...` is a PostgreSQL database (with `options`),
    /// anything else a SQLite file.
    pub fn parse(s: &OsStr, options: PgOptions) -> Location {
        match s.to_str() {
            Some(url) if is_postgres_url(s.as_bytes()) => Location::Postgres(PgTarget {
                url: url.to_string(),
                options,
            }),
            _ => Location::Sqlite(PathBuf::from(s)),
        }
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

impl From<PgTarget> for Location {
    fn from(t: PgTarget) -> Location {
        Location::Postgres(t)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => write!(f, "{t}"),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Location::Postgres(t) => f.debug_tuple("Postgres").field(t).finish(),
        }
    }
}

impl PgTarget {
    /// A target with the default settings (tests, tools).
    pub fn new(url: &str) -> PgTarget {
        PgTarget {
            url: url.to_string(),
            options: PgOptions::default(),
        }
    }
}

/// The URL without its password (`postgresql://user@host:5432/db?sslmode=require`).
impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &redact(&self.url))
            .field("options", &self.options)
            .finish()
    }
}

/// A URL with any password in its user part, and any `password=` parameter, removed.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let user = &authority[..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{user}@{}", &authority[at + 1..])
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_files() {
        let pg = Location::parse(OsStr::new("postgresql://u@h/db"), PgOptions::default());
        assert!(pg.is_postgres());
        assert!(Location::parse(OsStr::new("postgres://h/db"), PgOptions::default()).is_postgres());
        let f = Location::parse(OsStr::new("/var/lib/catalog.db"), PgOptions::default());
        assert_eq!(f.sqlite_path(), Some(Path::new("/var/lib/catalog.db")));
        assert_eq!(f.to_string(), "/var/lib/catalog.db");
    }

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgresql://alice:s3cret@db.lan:5433/photos?sslmode=require",
                "postgresql://alice@db.lan:5433/photos?sslmode=require",
            ),
            (
                "postgresql://alice@db.lan/photos?password=s3cret&sslmode=verify-full",
                "postgresql://alice@db.lan/photos?sslmode=verify-full",
            ),
            ("postgresql://db.lan/photos", "postgresql://db.lan/photos"),
            ("postgres://a:b:c@h?PASSWORD=x", "postgres://a@h"),
        ] {
            let t = PgTarget::new(url);
            assert_eq!(t.to_string(), shown);
            let debug = format!("{:?}", Location::Postgres(t));
            assert!(
                !debug.contains("s3cret") && !debug.contains(":b"),
                "{debug}"
            );
        }
    }
}
