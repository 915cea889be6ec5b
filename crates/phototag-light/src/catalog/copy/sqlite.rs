//! Pages of a SQLite catalog for `catalog copy`: read in key order, written with
//! `INSERT OR IGNORE` (a row the catalog has stays as it is) in one transaction.
//!
//! May not: change a row the catalog already has.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{Row, Table};
use crate::catalog::rows::blob;
use crate::catalog::{CatalogError, Hash, Sqlite};

fn hash_from(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Hash> {
    let b = blob(r, i)?;
    <Hash>::try_from(b).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
    })
}

pub(super) fn read_page(
    c: &Sqlite,
    table: Table,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Row>, CatalogError> {
    let conn = &c.conn;
    let after_blob = after.unwrap_or(b"").to_vec();
    let after_text = String::from_utf8_lossy(after.unwrap_or(b"")).into_owned();
    let limit = limit as i64;
    let rows = match table {
        Table::Models => conn
            .prepare_cached(
                "SELECT sha256, name, architecture FROM models WHERE sha256 > ?1
                 ORDER BY sha256 LIMIT ?2",
            )?
            .query_map(params![after_text, limit], |r| {
                Ok(Row::Model {
                    sha256: r.get(0)?,
                    name: r.get(1)?,
                    architecture: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::Roots => conn
            .prepare_cached(
                "SELECT path, state, last_scan FROM roots WHERE path > ?1 ORDER BY path LIMIT ?2",
            )?
            .query_map(params![after_blob, limit], |r| {
                Ok(Row::Root {
                    path: r.get(0)?,
                    state: r.get(1)?,
                    last_scan: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::Images => {
            let mut rows = conn
                .prepare_cached(
                    "SELECT i.hash, i.width, i.height, i.format, m.sha256, i.classified_at
                     FROM images i JOIN models m ON m.id = i.model_id
                     WHERE i.hash > ?1 ORDER BY i.hash LIMIT ?2",
                )?
                .query_map(params![after_blob, limit], |r| {
                    Ok(Row::Image {
                        hash: hash_from(r, 0)?,
                        width: r.get(1)?,
                        height: r.get(2)?,
                        format: r.get(3)?,
                        model_sha256: r.get(4)?,
                        classified_at: r.get(5)?,
                        tags: Vec::new(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT rank, class_index, label, probability FROM tags WHERE hash = ?1
                 ORDER BY rank",
            )?;
            for row in &mut rows {
                if let Row::Image { hash, tags, .. } = row {
                    *tags = stmt
                        .query_map([&hash[..]], |r| {
                            Ok((
                                r.get::<_, i64>(0)? as u32,
                                r.get(1)?,
                                r.get(2)?,
                                r.get::<_, f64>(3)? as f32,
                            ))
                        })?
                        .collect::<Result<_, _>>()?;
                }
            }
            rows
        }
        Table::Embeddings => conn
            .prepare_cached(
                "SELECT e.hash, m.sha256, e.vector, e.scale
                 FROM embeddings e JOIN models m ON m.id = e.model_id
                 WHERE e.hash > ?1 ORDER BY e.hash LIMIT ?2",
            )?
            .query_map(params![after_blob, limit], |r| {
                Ok(Row::Embedding {
                    hash: hash_from(r, 0)?,
                    model_sha256: r.get(1)?,
                    vector: r.get(2)?,
                    scale: r.get::<_, f64>(3)? as f32,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::Files => conn
            .prepare_cached(
                "SELECT f.path, r.path, f.hash, f.size, f.mtime_ns, f.last_seen
                 FROM files f JOIN roots r ON r.id = f.root_id
                 WHERE f.path > ?1 ORDER BY f.path LIMIT ?2",
            )?
            .query_map(params![after_blob, limit], |r| {
                Ok(Row::File {
                    path: r.get(0)?,
                    root: r.get(1)?,
                    hash: hash_from(r, 2)?,
                    size: r.get(3)?,
                    mtime_ns: r.get(4)?,
                    last_seen: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::Failures => conn
            .prepare_cached(
                "SELECT f.path, r.path, f.size, f.mtime_ns, f.error, f.attempts, f.last_attempt
                 FROM failures f JOIN roots r ON r.id = f.root_id
                 WHERE f.path > ?1 ORDER BY f.path LIMIT ?2",
            )?
            .query_map(params![after_blob, limit], |r| {
                Ok(Row::Failure {
                    path: r.get(0)?,
                    root: r.get(1)?,
                    size: r.get(2)?,
                    mtime_ns: r.get(3)?,
                    error: r.get(4)?,
                    attempts: r.get(5)?,
                    last_attempt: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::Albums => conn
            .prepare_cached(
                "SELECT name, query, folder, links, created FROM albums WHERE name > ?1
                 ORDER BY name LIMIT ?2",
            )?
            .query_map(params![after_text, limit], |r| {
                Ok(Row::Album {
                    name: r.get(0)?,
                    query: r.get(1)?,
                    folder: r.get(2)?,
                    links: r.get(3)?,
                    created: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::AlbumLinks => conn
            .prepare_cached(
                "SELECT path, album, target, hash, inode FROM album_links WHERE path > ?1
                 ORDER BY path LIMIT ?2",
            )?
            .query_map(params![after_blob, limit], |r| {
                Ok(Row::Link {
                    path: r.get(0)?,
                    album: r.get(1)?,
                    target: r.get(2)?,
                    hash: hash_from(r, 3)?,
                    inode: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?,
        Table::TaughtTags => crate::catalog::taught::read_taught_page(conn, &after_text, limit)?,
    };
    Ok(rows)
}

pub(super) fn write_page(c: &mut Sqlite, rows: &[Row]) -> Result<u64, CatalogError> {
    let tx = c
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut written = 0u64;
    {
        let model_id = |sha: &str| -> Result<Option<i64>, CatalogError> {
            Ok(tx
                .prepare_cached("SELECT id FROM models WHERE sha256 = ?1")?
                .query_row([sha], |r| r.get(0))
                .optional()?)
        };
        let root_id = |path: &[u8]| -> Result<Option<i64>, CatalogError> {
            Ok(tx
                .prepare_cached("SELECT id FROM roots WHERE path = ?1")?
                .query_row([path], |r| r.get(0))
                .optional()?)
        };
        let missing =
            |what: &str| CatalogError::Corrupt(format!("copy: {what} is not in the target"));
        for row in rows {
            let n = match row {
                Row::Model {
                    sha256,
                    name,
                    architecture,
                } => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO models (name, architecture, sha256) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![name, architecture, sha256])?,
                Row::Root {
                    path,
                    state,
                    last_scan,
                } => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO roots (path, state, last_scan) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![path, state, last_scan])?,
                Row::Image {
                    hash,
                    width,
                    height,
                    format,
                    model_sha256,
                    classified_at,
                    tags,
                } => {
                    let model = model_id(model_sha256)?
                        .ok_or_else(|| missing(&format!("model {model_sha256}")))?;
                    let n = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO images
                             (hash, width, height, format, model_id, classified_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(params![&hash[..], width, height, format, model, classified_at])?;
                    if n == 1 {
                        let mut insert = tx.prepare_cached(
                            "INSERT INTO tags (hash, rank, class_index, label, probability)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?;
                        for (rank, class, label, p) in tags {
                            insert.execute(params![&hash[..], rank, class, label, f64::from(*p)])?;
                        }
                    }
                    n
                }
                Row::Embedding {
                    hash,
                    model_sha256,
                    vector,
                    scale,
                } => {
                    let model = model_id(model_sha256)?
                        .ok_or_else(|| missing(&format!("model {model_sha256}")))?;
                    let n = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO embeddings (hash, model_id, vector, scale)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![&hash[..], model, vector, f64::from(*scale)])?;
                    // Its sketch, as the writer stores it (what `similar` reads first).
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO sketches (id, model_id, bits)
                         SELECT id, model_id, ?2 FROM embeddings WHERE hash = ?1",
                    )?
                    .execute(params![
                        &hash[..],
                        crate::vectors::sketch::sketch(vector).as_slice()
                    ])?;
                    n
                }
                Row::File {
                    path,
                    root,
                    hash,
                    size,
                    mtime_ns,
                    last_seen,
                } => {
                    let root = root_id(root)?.ok_or_else(|| missing("a root"))?;
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO files (path, root_id, hash, size, mtime_ns, last_seen)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![path, root, &hash[..], size, mtime_ns, last_seen])?
                }
                Row::Failure {
                    path,
                    root,
                    size,
                    mtime_ns,
                    error,
                    attempts,
                    last_attempt,
                } => {
                    let root = root_id(root)?.ok_or_else(|| missing("a root"))?;
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO failures
                         (path, root_id, size, mtime_ns, error, attempts, last_attempt)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![path, root, size, mtime_ns, error, attempts, last_attempt])?
                }
                Row::Album {
                    name,
                    query,
                    folder,
                    links,
                    created,
                } => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO albums (name, query, folder, links, created)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![name, query, folder, links, created])?,
                Row::Link {
                    path,
                    album,
                    target,
                    hash,
                    inode,
                } => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO album_links (path, album, target, hash, inode)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![path, album, target, &hash[..], inode])?,
                Row::Taught(t) => crate::catalog::taught::copy_taught(&tx, t)? as usize,
            };
            written += n as u64;
        }
    }
    tx.commit()?;
    Ok(written)
}
