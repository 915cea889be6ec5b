//! The PostgreSQL catalog's schema: the PostgreSQL flavour of each migration, compiled in
//! from `migrations/pg/NNNN_name.sql` (same versions and names as SQLite's, beside them),
//! and the version check. The version is the one row of `phototag_schema` (SQLite keeps it
//! in `user_version`). Migrations run in order in one transaction, under an advisory lock so
//! that workers starting together migrate once; a catalog is at one version or the next.
//!
//! May not: read or write catalog rows, or change a migration once released (add one).

use postgres::{Client, GenericClient};

use super::PgError;
use crate::catalog::schema::Migration;
use crate::catalog::CatalogError;

/// Every migration, in the order and with the versions and names of SQLite's (a test
/// checks).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../../../../migrations/pg/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_albums",
        sql: include_str!("../../../../../migrations/pg/0002_albums.sql"),
    },
    Migration {
        version: 3,
        name: "0003_class_lists",
        sql: include_str!("../../../../../migrations/pg/0003_class_lists.sql"),
    },
    Migration {
        version: 4,
        name: "0004_embeddings",
        sql: include_str!("../../../../../migrations/pg/0004_embeddings.sql"),
    },
];

/// The key of the advisory lock migrations hold.
const LOCK: i64 = 0x7068_6f74_6f74_6167; // "phototag"

/// The version recorded in the database; 0 when it holds no phototag catalog.
pub fn version(c: &mut impl GenericClient) -> Result<u32, postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('phototag_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = c
        .query_opt("SELECT version FROM phototag_schema", &[])?
        .map(|r| r.get(0));
    Ok(v.unwrap_or(0).max(0) as u32)
}

/// Brings the catalog to the newest version, applying the missing migrations in order in
/// one transaction. Returns the version found before. `newer` makes the error for a catalog
/// of a newer phototag (checked again under the lock; nothing is changed then).
pub fn migrate(
    c: &mut Client,
    migrations: &[Migration],
    newer: impl Fn(u32, u32) -> CatalogError,
    error: impl Fn(postgres::Error) -> CatalogError,
) -> Result<u32, CatalogError> {
    let supported = migrations.last().map_or(0, |m| m.version);
    let mut tx = c.transaction().map_err(&error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .map_err(&error)?;
    let found = version(&mut tx).map_err(&error)?;
    if found > supported {
        return Err(newer(found, supported));
    }
    if found == supported {
        return Ok(found);
    }
    tx.batch_execute("CREATE TABLE IF NOT EXISTS phototag_schema (version integer NOT NULL)")
        .map_err(&error)?;
    for m in migrations.iter().filter(|m| m.version > found) {
        tx.batch_execute(m.sql)
            .map_err(|source| CatalogError::Migration {
                version: m.version,
                name: m.name,
                source: Box::new(PgError(source)),
            })?;
        tracing::debug!(
            version = m.version,
            name = m.name,
            "catalog migration applied"
        );
    }
    tx.execute("DELETE FROM phototag_schema", &[])
        .map_err(&error)?;
    tx.execute(
        "INSERT INTO phototag_schema (version) VALUES ($1)",
        &[&(supported as i32)],
    )
    .map_err(&error)?;
    tx.commit().map_err(&error)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sqlite_migration_has_its_postgresql_flavour() {
        let sqlite: Vec<(u32, &str)> = crate::catalog::MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name))
            .collect();
        let pg: Vec<(u32, &str)> = MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
        assert_eq!(pg, sqlite);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/pg");
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
}
