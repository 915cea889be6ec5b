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
    Migration {
        version: 5,
        name: "0005_sketches",
        sql: include_str!("../../../../../migrations/pg/0005_sketches.sql"),
    },
    Migration {
        version: 6,
        name: "0006_taught_tags",
        sql: include_str!("../../../../../migrations/pg/0006_taught_tags.sql"),
    },
    Migration {
        version: 7,
        name: "0007_shared_lists",
        sql: include_str!("../../../../../migrations/pg/0007_shared_lists.sql"),
    },
];

/// The version whose migration needs the sketches of the embeddings already stored.
const SKETCHES: u32 = 5;

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
        if m.version == SKETCHES {
            backfill_sketches(&mut tx).map_err(|source| CatalogError::Migration {
                version: m.version,
                name: m.name,
                source: Box::new(PgError(source)),
            })?;
        }
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

/// The sketches of embeddings stored before schema 5, a page of rows at a time.
fn backfill_sketches(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    let mut after = i64::MIN;
    loop {
        let rows = tx.query(
            "SELECT id, model_id, vector FROM embeddings WHERE id > $1 ORDER BY id LIMIT 1000",
            &[&after],
        )?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let models: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
        let bits: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| crate::vectors::sketch::sketch(r.get::<_, &[u8]>(2)).to_vec())
            .collect();
        tx.execute(
            "INSERT INTO sketches (id, model_id, bits)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
            &[&ids, &models, &bits],
        )?;
    }
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

    /// A schema-4 catalog with an embedding gets its sketch when it is migrated (through 5
    /// to the latest).
    #[test]
    fn embeddings_stored_before_sketches_get_theirs_on_migration() {
        use crate::catalog::{Catalog, Location, PgTarget};
        let test = "embeddings_stored_before_sketches_get_theirs_on_migration (PostgreSQL)";
        let Some(db) = crate::catalog::test_server::database(test) else {
            return;
        };
        let mut c = db.client();
        let v4 = &MIGRATIONS[..4];
        migrate(
            &mut c,
            v4,
            |_, _| panic!("newer"),
            |e| CatalogError::Postgres(PgError(e)),
        )
        .unwrap();
        c.batch_execute(
            "INSERT INTO models (id, name, architecture, sha256) VALUES (3, 'm', 'resnet18', 'ab');
             INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (decode(repeat('01', 32), 'hex'), 1, 1, 'png', 3, 0);
             INSERT INTO embeddings (hash, model_id, vector, scale)
                 VALUES (decode(repeat('01', 32), 'hex'), 3, '\\x017f80'::bytea, 0.5);",
        )
        .unwrap();
        let cat = Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
        assert_eq!(
            cat.schema_version().unwrap(),
            MIGRATIONS.last().unwrap().version
        );
        let mut got = Vec::new();
        cat.scan_sketches((i64::MIN, i64::MAX), |_, m, b| got.push((m, *b)))
            .unwrap();
        assert_eq!(
            got,
            [(3, crate::vectors::sketch::sketch(&[0x01, 0x7f, 0x80]))]
        );
    }
}
