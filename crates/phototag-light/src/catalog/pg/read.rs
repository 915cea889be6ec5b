//! Lookups on PostgreSQL, as `catalog/read.rs` has them for SQLite: what is known under a
//! root of this host, one image, its tags, images by another model (for `retag`, with this
//! host's paths), and the counts for `stats` (all hosts). Reads of several statements run
//! in one read-only REPEATABLE READ transaction: one snapshot.
//!
//! May not: write, or build search queries (see `query`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use postgres::{GenericClient, IsolationLevel, Row, Transaction};

use super::{hash_of, PgCatalog};
use crate::catalog::read::TOP_LABELS;
use crate::catalog::rows::{
    path_bytes, path_from, under_range, FailureRow, FileRow, Hash, ImageRow, LabelCount,
    ModelStats, RootRow, Stats, TagRow,
};
use crate::catalog::CatalogError;

fn u64_of(row: &Row, i: usize) -> Result<u64, CatalogError> {
    let v: i64 = row.get(i);
    u64::try_from(v).map_err(|_| CatalogError::Corrupt(format!("a negative count or size: {v}")))
}

impl PgCatalog {
    /// A read-only snapshot of the catalog.
    pub(super) fn snapshot<'c>(
        &self,
        c: &'c mut postgres::Client,
    ) -> Result<Transaction<'c>, CatalogError> {
        c.build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| super::to_catalog_error(&self.target.to_string(), e))
    }

    /// Rows of a cached statement.
    pub(super) fn rows(
        &self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, CatalogError> {
        let mut c = self.conn()?;
        let s = self.stmt(&mut *c, sql)?;
        c.query(&s, params).map_err(|e| self.error(e))
    }

    /// Every file row of this host strictly under `root`.
    pub fn files_under(&self, root: &Path) -> Result<HashMap<PathBuf, FileRow>, CatalogError> {
        let (lo, hi) = under_range(root);
        let rows = self.rows(
            "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files
             WHERE host = $1 AND path >= $2 AND path < $3",
            &[&self.host, &lo, &hi],
        )?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let row = file_row(r, path_from(r.get(0)))?;
            out.insert(row.path.clone(), row);
        }
        Ok(out)
    }

    /// Every failure row of this host strictly under `root`.
    pub fn failures_under(
        &self,
        root: &Path,
    ) -> Result<HashMap<PathBuf, FailureRow>, CatalogError> {
        let (lo, hi) = under_range(root);
        let rows = self.rows(
            "SELECT path, size, mtime_ns, error, attempts, last_attempt FROM failures
             WHERE host = $1 AND path >= $2 AND path < $3",
            &[&self.host, &lo, &hi],
        )?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let row = FailureRow {
                path: path_from(r.get(0)),
                size: u64_of(r, 1)?,
                mtime_ns: r.get(2),
                error: r.get(3),
                attempts: r.get::<_, i32>(4).max(0) as u32,
                last_attempt: r.get(5),
            };
            out.insert(row.path.clone(), row);
        }
        Ok(out)
    }

    /// The hash of every stored image.
    pub fn image_hashes(&self) -> Result<HashSet<Hash>, CatalogError> {
        let mut c = self.conn()?;
        let mut out = HashSet::new();
        let mut it = c
            .query_raw("SELECT hash FROM images", std::iter::empty::<i32>())
            .map_err(|e| self.error(e))?;
        while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut it)
            .map_err(|e| self.error(e))?
        {
            out.insert(hash_of(&r, 0)?);
        }
        Ok(out)
    }

    /// One image and the name of the model that tagged it.
    pub fn image(&self, hash: &Hash) -> Result<Option<ImageRow>, CatalogError> {
        let rows = self.rows(
            "SELECT i.hash, i.width, i.height, i.format, i.model_id, m.name, i.classified_at
             FROM images i JOIN models m ON m.id = i.model_id WHERE i.hash = $1",
            &[&&hash[..]],
        )?;
        rows.first()
            .map(|r| {
                Ok(ImageRow {
                    hash: hash_of(r, 0)?,
                    width: r.get::<_, i32>(1).max(0) as u32,
                    height: r.get::<_, i32>(2).max(0) as u32,
                    format: r.get(3),
                    model_id: r.get(4),
                    model_name: r.get(5),
                    classified_at: r.get(6),
                })
            })
            .transpose()
    }

    /// The file row of one path of this host.
    pub fn file(&self, path: &Path) -> Result<Option<FileRow>, CatalogError> {
        let rows = self.rows(
            "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files
             WHERE host = $1 AND path = $2",
            &[&self.host, &path_bytes(path)],
        )?;
        rows.first()
            .map(|r| file_row(r, path_from(r.get(0))))
            .transpose()
    }

    /// Every file row of one content, on any host (another host's as `host:path`), by
    /// shown path.
    pub fn files_with(&self, hash: &Hash) -> Result<Vec<FileRow>, CatalogError> {
        let rows = self.rows(
            "SELECT path, root_id, hash, size, mtime_ns, last_seen, host FROM files
             WHERE hash = $1",
            &[&&hash[..]],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let host: &str = r.get(6);
            out.push(file_row(r, self.shown_path(host, r.get(0)))?);
        }
        out.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path)));
        Ok(out)
    }

    /// The `limit` most frequent first-ranked labels (ties by label).
    pub fn top_labels(&self, limit: usize) -> Result<Vec<LabelCount>, CatalogError> {
        let mut c = self.conn()?;
        top_labels(self, &mut *c, limit)
    }

    /// An image's tags, rank 1 first.
    pub fn tags(&self, hash: &Hash) -> Result<Vec<TagRow>, CatalogError> {
        let mut c = self.conn()?;
        tags_of(self, &mut *c, hash)
    }

    /// Images tagged by a model other than `model_id` (and with `without_embedding`, those
    /// of `model_id` that have no embedding by it), each with the paths of its content on
    /// this host (images no path of this host holds are left to the hosts that have them).
    pub fn images_to_retag(
        &self,
        model_id: i64,
        without_embedding: bool,
    ) -> Result<Vec<(Hash, Vec<PathBuf>)>, CatalogError> {
        let rows = self.rows(
            "SELECT i.hash, f.path FROM images i JOIN files f ON f.hash = i.hash
             WHERE f.host = $2
               AND (i.model_id <> $1
                    OR ($3 AND NOT EXISTS (SELECT 1 FROM embeddings e
                                           WHERE e.hash = i.hash AND e.model_id = $1)))
             ORDER BY i.hash, f.path",
            &[&model_id, &self.host, &without_embedding],
        )?;
        let mut out: Vec<(Hash, Vec<PathBuf>)> = Vec::new();
        for r in &rows {
            let hash = hash_of(r, 0)?;
            let path = path_from(r.get(1));
            match out.last_mut() {
                Some((h, paths)) if *h == hash => paths.push(path),
                _ => out.push((hash, vec![path])),
            }
        }
        Ok(out)
    }

    /// Files of this host newest first (by mtime, then path, both descending), those after
    /// `after`, at most `limit` (the web page's library); files whose content waits to be
    /// classified are left out until it is.
    pub fn newest_files(
        &self,
        after: Option<(i64, &Path)>,
        limit: usize,
    ) -> Result<Vec<FileRow>, CatalogError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match after {
            None => self.rows(
                "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files f
                 WHERE host = $1
                   AND NOT EXISTS (SELECT 1 FROM images i
                                   WHERE i.hash = f.hash AND i.classified_at = 0)
                 ORDER BY mtime_ns DESC, path DESC LIMIT $2",
                &[&self.host, &limit],
            )?,
            Some((mtime, path)) => self.rows(
                "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files f
                 WHERE host = $1 AND (mtime_ns, path) < ($2, $3)
                   AND NOT EXISTS (SELECT 1 FROM images i
                                   WHERE i.hash = f.hash AND i.classified_at = 0)
                 ORDER BY mtime_ns DESC, path DESC LIMIT $4",
                &[&self.host, &mtime, &path_bytes(path), &limit],
            )?,
        };
        rows.iter()
            .map(|r| file_row(r, path_from(r.get(0))))
            .collect()
    }

    /// Content recorded while classification waited, at most `limit`, each with the file
    /// rows of this host that point at it, first recorded first (content no file of this
    /// host holds is left to the hosts that have it).
    pub fn queued_images(&self, limit: usize) -> Result<Vec<(Hash, Vec<FileRow>)>, CatalogError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.rows(
            "SELECT f.path, f.root_id, f.hash, f.size, f.mtime_ns, f.last_seen FROM
                 (SELECT i.hash, s.seen FROM images i
                  CROSS JOIN LATERAL (SELECT min(f.last_seen) AS seen FROM files f
                                      WHERE f.hash = i.hash AND f.host = $2) s
                  WHERE i.classified_at = 0 AND s.seen IS NOT NULL
                  ORDER BY s.seen, i.hash LIMIT $1) q
             JOIN files f ON f.hash = q.hash AND f.host = $2
             ORDER BY q.seen, q.hash, f.path",
            &[&limit, &self.host],
        )?;
        let mut out: Vec<(Hash, Vec<FileRow>)> = Vec::new();
        for r in &rows {
            let row = file_row(r, path_from(r.get(0)))?;
            match out.last_mut() {
                Some((h, files)) if *h == row.hash => files.push(row),
                _ => out.push((row.hash, vec![row])),
            }
        }
        Ok(out)
    }

    /// How many contents this host holds that wait to be classified.
    pub fn queued_count(&self) -> Result<u64, CatalogError> {
        let rows = self.rows(
            "SELECT count(*) FROM images i WHERE i.classified_at = 0
             AND EXISTS (SELECT 1 FROM files f WHERE f.hash = i.hash AND f.host = $1)",
            &[&self.host],
        )?;
        u64_of(&rows[0], 0)
    }

    /// Counts for `phototag stats` (every host), from one snapshot.
    pub fn stats(&self) -> Result<Stats, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let e = |e| self.error(e);
        let count = |tx: &mut Transaction<'_>, table: &str| -> Result<u64, CatalogError> {
            let r = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .map_err(e)?;
            u64_of(&r, 0)
        };
        let files = count(&mut tx, "files")?;
        let images = count(&mut tx, "images")?;
        let failures = count(&mut tx, "failures")?;
        let queued = {
            let r = tx
                .query_one("SELECT count(*) FROM images WHERE classified_at = 0", &[])
                .map_err(e)?;
            u64_of(&r, 0)?
        };
        let rows = tx
            .query(
                "SELECT m.id, m.name, m.architecture, substr(m.sha256, 1, 12),
                        (SELECT count(*) FROM images i WHERE i.model_id = m.id)
                 FROM models m ORDER BY m.id",
                &[],
            )
            .map_err(e)?;
        let mut models = Vec::with_capacity(rows.len());
        for r in &rows {
            models.push(ModelStats {
                id: r.get(0),
                name: r.get(1),
                architecture: r.get(2),
                sha256_prefix: r.get(3),
                images: u64_of(r, 4)?,
            });
        }
        let top_labels = top_labels(self, &mut tx, TOP_LABELS)?;
        let rows = tx
            .query("SELECT id, path, state, last_scan, host FROM roots", &[])
            .map_err(e)?;
        let mut roots: Vec<RootRow> = rows
            .iter()
            .map(|r| RootRow {
                id: r.get(0),
                path: self.shown_path(r.get(4), r.get(1)),
                state: r.get(2),
                last_scan: r.get(3),
            })
            .collect();
        roots.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path)));
        tx.commit().map_err(e)?;
        Ok(Stats {
            files,
            images,
            queued,
            failures,
            models,
            top_labels,
            roots,
        })
    }
}

fn top_labels(
    cat: &PgCatalog,
    c: &mut impl GenericClient,
    limit: usize,
) -> Result<Vec<LabelCount>, CatalogError> {
    let rows = c
        .query(
            "SELECT class_index, label, count(*) AS n FROM tags WHERE rank = 1
             GROUP BY class_index, label ORDER BY n DESC, label COLLATE \"C\" LIMIT $1",
            &[&(limit.min(i64::MAX as usize) as i64)],
        )
        .map_err(|e| cat.error(e))?;
    rows.iter()
        .map(|r| {
            Ok(LabelCount {
                class_index: r.get::<_, i32>(0).max(0) as usize,
                label: r.get(1),
                images: u64_of(r, 2)?,
            })
        })
        .collect()
}

/// The tags of one image, rank 1 first.
pub(super) fn tags_of(
    cat: &PgCatalog,
    c: &mut impl GenericClient,
    hash: &Hash,
) -> Result<Vec<TagRow>, CatalogError> {
    let s = cat.stmt(
        c,
        "SELECT rank, class_index, label, probability FROM tags WHERE hash = $1 ORDER BY rank",
    )?;
    let rows = c.query(&s, &[&&hash[..]]).map_err(|e| cat.error(e))?;
    Ok(rows
        .iter()
        .map(|r| TagRow {
            rank: r.get::<_, i32>(0).max(0) as u32,
            class_index: r.get::<_, i32>(1).max(0) as usize,
            label: r.get(2),
            probability: r.get(3),
        })
        .collect())
}

fn file_row(r: &Row, path: PathBuf) -> Result<FileRow, CatalogError> {
    Ok(FileRow {
        path,
        root_id: r.get(1),
        hash: hash_of(r, 2)?,
        size: u64_of(r, 3)?,
        mtime_ns: r.get(4),
        last_seen: r.get(5),
    })
}
