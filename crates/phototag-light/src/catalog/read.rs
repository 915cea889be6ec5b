//! Lookups for the indexer (what is already known under a root), for `show`/`retag`
//! (one image, its tags, images by another model) and the counts for `stats`. Reads
//! that take several statements run in one read transaction, so they see one snapshot.
//!
//! May not: write, or build search queries (see `query`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, Transaction};

use super::rows::{
    get_u64, get_usize, path_bytes, path_from, under_range, FailureRow, FileRow, Hash, ImageRow,
    LabelCount, ModelStats, RootRow, Stats, TagRow,
};
use super::{CatalogError, Sqlite};

/// How many labels [`Catalog::stats`] lists.
pub const TOP_LABELS: usize = 10;

impl Sqlite {
    /// A read transaction: every statement in it sees the same committed state.
    pub(super) fn snapshot(&self) -> rusqlite::Result<Transaction<'_>> {
        // `&mut` is not needed: a Writer borrows the catalog mutably, so none is open.
        self.conn.unchecked_transaction()
    }

    /// Every file row strictly under `root` (by path bytes: `/a/b` does not cover `/a/bc`).
    pub fn files_under(&self, root: &Path) -> Result<HashMap<PathBuf, FileRow>, CatalogError> {
        let (lo, hi) = under_range(root);
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files
             WHERE path >= ?1 AND path < ?2",
        )?;
        let rows = stmt.query_map([lo, hi], file_row)?;
        let mut out = HashMap::new();
        for row in rows {
            let row = row?;
            out.insert(row.path.clone(), row);
        }
        Ok(out)
    }

    /// Every failure row strictly under `root`.
    pub fn failures_under(
        &self,
        root: &Path,
    ) -> Result<HashMap<PathBuf, FailureRow>, CatalogError> {
        let (lo, hi) = under_range(root);
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, size, mtime_ns, error, attempts, last_attempt FROM failures
             WHERE path >= ?1 AND path < ?2",
        )?;
        let rows = stmt.query_map([lo, hi], |r| {
            Ok(FailureRow {
                path: path_from(r.get(0)?),
                size: get_u64(r, 1)?,
                mtime_ns: r.get(2)?,
                error: r.get(3)?,
                attempts: r.get(4)?,
                last_attempt: r.get(5)?,
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let row = row?;
            out.insert(row.path.clone(), row);
        }
        Ok(out)
    }

    /// The hash of every stored image (what never needs classifying again).
    pub fn image_hashes(&self) -> Result<HashSet<Hash>, CatalogError> {
        let mut stmt = self.conn.prepare_cached("SELECT hash FROM images")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One image and the name of the model that tagged it.
    pub fn image(&self, hash: &Hash) -> Result<Option<ImageRow>, CatalogError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT i.hash, i.width, i.height, i.format, i.model_id, m.name, i.classified_at
                 FROM images i JOIN models m ON m.id = i.model_id WHERE i.hash = ?1",
            )?
            .query_row([hash], |r| {
                Ok(ImageRow {
                    hash: r.get(0)?,
                    width: r.get(1)?,
                    height: r.get(2)?,
                    format: r.get(3)?,
                    model_id: r.get(4)?,
                    model_name: r.get(5)?,
                    classified_at: r.get(6)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// The file row of one path.
    pub fn file(&self, path: &Path) -> Result<Option<FileRow>, CatalogError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files WHERE path = ?1",
            )?
            .query_row([path_bytes(path)], file_row)
            .optional()?;
        Ok(row)
    }

    /// Every file row of one content, by path bytes; empty for an unknown hash.
    pub fn files_with(&self, hash: &Hash) -> Result<Vec<FileRow>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files
             WHERE hash = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([hash], file_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `limit` most frequent first-ranked labels, most frequent first (ties by label).
    pub fn top_labels(&self, limit: usize) -> Result<Vec<LabelCount>, CatalogError> {
        Ok(top_labels(&self.conn, limit)?)
    }

    /// An image's tags, rank 1 first; empty for an unknown hash.
    pub fn tags(&self, hash: &Hash) -> Result<Vec<TagRow>, CatalogError> {
        Ok(tags_of(&self.conn, hash)?)
    }

    /// Images tagged by a model other than `model_id`, each with the paths of its content
    /// (for `retag`). Images no path points at are left out: there is nothing to read.
    pub fn images_not_by(&self, model_id: i64) -> Result<Vec<(Hash, Vec<PathBuf>)>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.hash, f.path FROM images i JOIN files f ON f.hash = i.hash
             WHERE i.model_id <> ?1 ORDER BY i.hash, f.path",
        )?;
        let mut rows = stmt.query([model_id])?;
        let mut out: Vec<(Hash, Vec<PathBuf>)> = Vec::new();
        while let Some(r) = rows.next()? {
            let hash: Hash = r.get(0)?;
            let path = path_from(r.get(1)?);
            match out.last_mut() {
                Some((h, paths)) if *h == hash => paths.push(path),
                _ => out.push((hash, vec![path])),
            }
        }
        Ok(out)
    }

    /// Counts for `phototag stats`, from one snapshot.
    pub fn stats(&self) -> Result<Stats, CatalogError> {
        let tx = self.snapshot()?;
        let count = |table: &str| -> rusqlite::Result<u64> {
            tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                get_u64(r, 0)
            })
        };
        let (files, images, failures) = (count("files")?, count("images")?, count("failures")?);

        let mut stmt = tx.prepare(
            "SELECT m.id, m.name, m.architecture, substr(m.sha256, 1, 12),
                    (SELECT count(*) FROM images i WHERE i.model_id = m.id)
             FROM models m ORDER BY m.id",
        )?;
        let models = stmt
            .query_map([], |r| {
                Ok(ModelStats {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    architecture: r.get(2)?,
                    sha256_prefix: r.get(3)?,
                    images: get_u64(r, 4)?,
                })
            })?
            .collect::<Result<_, _>>()?;

        let top_labels = top_labels(&tx, TOP_LABELS)?;

        let mut stmt = tx.prepare("SELECT id, path, state, last_scan FROM roots ORDER BY path")?;
        let roots = stmt
            .query_map([], |r| {
                Ok(RootRow {
                    id: r.get(0)?,
                    path: path_from(r.get(1)?),
                    state: r.get(2)?,
                    last_scan: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Stats {
            files,
            images,
            failures,
            models,
            top_labels,
            roots,
        })
    }
}

fn top_labels(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<LabelCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT class_index, label, count(*) AS n FROM tags WHERE rank = 1
         GROUP BY class_index, label ORDER BY n DESC, label LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit.min(i64::MAX as usize) as i64], |r| {
        Ok(LabelCount {
            class_index: get_usize(r, 0)?,
            label: r.get(1)?,
            images: get_u64(r, 2)?,
        })
    })?;
    rows.collect()
}

/// The tags of one image, rank 1 first.
pub(super) fn tags_of(conn: &Connection, hash: &Hash) -> rusqlite::Result<Vec<TagRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rank, class_index, label, probability FROM tags WHERE hash = ?1 ORDER BY rank",
    )?;
    let rows = stmt.query_map([hash], |r| {
        Ok(TagRow {
            rank: r.get(0)?,
            class_index: get_usize(r, 1)?,
            label: r.get(2)?,
            probability: r.get::<_, f64>(3)? as f32,
        })
    })?;
    rows.collect()
}

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        path: path_from(r.get(0)?),
        root_id: r.get(1)?,
        hash: r.get(2)?,
        size: get_u64(r, 3)?,
        mtime_ns: r.get(4)?,
        last_seen: r.get(5)?,
    })
}
