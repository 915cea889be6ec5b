//! The catalog's schema: the migrations compiled in from `migrations/NNNN_name.sql`, the
//! connection settings (WAL, synchronous, busy timeout, foreign keys) and the version
//! check. Migrations run in order, all in one IMMEDIATE transaction that also records
//! `PRAGMA user_version`, so a catalog is at one version or the next, never between.
//!
//! May not: read or write catalog rows, or change a migration once released (add one).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::CatalogError;

/// One schema step: `version` is the `NNNN` of its file name, and equals the
/// `user_version` the catalog has once it is applied.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; versions run 1, 2, 3... without gaps (a test checks, and
/// that each file under `migrations/` is listed).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../../../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_albums",
        sql: include_str!("../../../../migrations/0002_albums.sql"),
    },
    Migration {
        version: 3,
        name: "0003_class_lists",
        sql: include_str!("../../../../migrations/0003_class_lists.sql"),
    },
    Migration {
        version: 4,
        name: "0004_embeddings",
        sql: include_str!("../../../../migrations/0004_embeddings.sql"),
    },
    Migration {
        version: 5,
        name: "0005_sketches",
        sql: include_str!("../../../../migrations/0005_sketches.sql"),
    },
    Migration {
        version: 6,
        name: "0006_taught_tags",
        sql: include_str!("../../../../migrations/0006_taught_tags.sql"),
    },
    Migration {
        version: 7,
        name: "0007_shared_lists",
        sql: include_str!("../../../../migrations/0007_shared_lists.sql"),
    },
];

/// The schema version this binary writes and reads.
pub const SUPPORTED: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// How long a connection waits for a lock before SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `PRAGMA user_version`.
pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Refuses a catalog written by a newer phototag.
pub fn check_not_newer(path: &Path, found: u32) -> Result<(), CatalogError> {
    check_version(path, found, SUPPORTED)
}

fn check_version(path: &Path, found: u32, supported: u32) -> Result<(), CatalogError> {
    if found > supported {
        return Err(CatalogError::TooNew {
            path: path.into(),
            found,
            supported,
        });
    }
    Ok(())
}

/// Settings of the writing connection: WAL (readers never blocked, never see a
/// transaction half done), synchronous=NORMAL (durable at checkpoints, never corrupt),
/// foreign keys on, busy timeout. `journal_mode` persists in the file; the rest are per
/// connection.
pub fn configure_writer(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            mode,
            "the catalog's file system does not support WAL: searches may wait for indexing"
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Settings of a read-only connection.
pub fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Brings the catalog to [`SUPPORTED`], applying the missing migrations in order inside
/// one transaction. Returns the version found before. Refuses a newer catalog.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, CatalogError> {
    migrate_with(conn, path, MIGRATIONS)
}

fn migrate_with(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<u32, CatalogError> {
    let supported = migrations.last().map_or(0, |m| m.version);
    register_functions(conn)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let found = user_version(&tx)?;
    check_version(path, found, supported)?;
    for m in migrations.iter().filter(|m| m.version > found) {
        let step = || -> rusqlite::Result<()> {
            tx.execute_batch(m.sql)?;
            tx.pragma_update(None, "user_version", m.version)
        };
        step().map_err(|source| CatalogError::Migration {
            version: m.version,
            name: m.name,
            source: Box::new(source),
        })?;
        tracing::debug!(
            version = m.version,
            name = m.name,
            "catalog migration applied"
        );
    }
    tx.commit()?;
    Ok(found)
}

/// SQL functions the migrations use: `phototag_sketch(vector)`, the sketch of a stored
/// embedding (`vectors::sketch`).
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "phototag_sketch",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let values = ctx.get_raw(0).as_blob()?;
            Ok(crate::vectors::sketch::sketch(values).to_vec())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn every_migration_file_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn a_failing_migration_applies_none() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            Migration {
                version: 1,
                name: "0001_a",
                sql: "CREATE TABLE a (x);",
            },
            Migration {
                version: 2,
                name: "0002_b",
                sql: "CREATE TABLE b (x); CREATE TABLE b (x);",
            },
        ];
        let err = migrate_with(&mut conn, Path::new("mem"), &broken).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::Migration {
                    version: 2,
                    name: "0002_b",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("0002_b"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 0);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "table a was rolled back");

        // Applied one at a time, a later run applies only what is missing.
        assert_eq!(
            migrate_with(&mut conn, Path::new("mem"), &broken[..1]).unwrap(),
            0
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
        let fixed = [
            broken[0],
            Migration {
                version: 2,
                name: "0002_b",
                sql: "CREATE TABLE b (x);",
            },
        ];
        assert_eq!(
            migrate_with(&mut conn, Path::new("mem"), &fixed).unwrap(),
            1
        );
        assert_eq!(user_version(&conn).unwrap(), 2);
        let err = migrate_with(&mut conn, Path::new("mem"), &fixed[..1]).unwrap_err();
        assert!(matches!(
            err,
            CatalogError::TooNew {
                found: 2,
                supported: 1,
                ..
            }
        ));
    }
}
