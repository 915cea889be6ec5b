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

    /// Files newest first (by mtime, then path, both descending), those after `after` (the
    /// mtime and path of the last file of the previous page), at most `limit`: the web
    /// page's library, a page at a time through `files_by_mtime`. Files whose content waits
    /// to be classified (see [`Catalog::queued_count`]) are left out until it is.
    pub fn newest_files(
        &self,
        after: Option<(i64, &Path)>,
        limit: usize,
    ) -> Result<Vec<FileRow>, CatalogError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match after {
            None => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files f
                     WHERE NOT EXISTS (SELECT 1 FROM images i
                                       WHERE i.hash = f.hash AND i.classified_at = 0)
                     ORDER BY mtime_ns DESC, path DESC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], file_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            }
            Some((mtime, path)) => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT path, root_id, hash, size, mtime_ns, last_seen FROM files f
                     WHERE (mtime_ns, path) < (?1, ?2)
                       AND NOT EXISTS (SELECT 1 FROM images i
                                       WHERE i.hash = f.hash AND i.classified_at = 0)
                     ORDER BY mtime_ns DESC, path DESC LIMIT ?3",
                )?;
                let rows =
                    stmt.query_map(rusqlite::params![mtime, path_bytes(path), limit], file_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// The `limit` most frequent first-ranked labels, most frequent first (ties by label).
    pub fn top_labels(&self, limit: usize) -> Result<Vec<LabelCount>, CatalogError> {
        Ok(top_labels(&self.conn, limit)?)
    }

    /// An image's tags, rank 1 first; empty for an unknown hash.
    pub fn tags(&self, hash: &Hash) -> Result<Vec<TagRow>, CatalogError> {
        Ok(tags_of(&self.conn, hash)?)
    }

    /// Images tagged by a model other than `model_id` (and with `without_embedding`, those
    /// of `model_id` that have no embedding by it), each with the paths of its content (for
    /// `retag`). Images no path points at are left out: there is nothing to read.
    pub fn images_to_retag(
        &self,
        model_id: i64,
        without_embedding: bool,
    ) -> Result<Vec<(Hash, Vec<PathBuf>)>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.hash, f.path FROM images i JOIN files f ON f.hash = i.hash
             WHERE i.model_id <> ?1
                OR (?2 AND NOT EXISTS (SELECT 1 FROM embeddings e
                                       WHERE e.hash = i.hash AND e.model_id = ?1))
             ORDER BY i.hash, f.path",
        )?;
        let mut rows = stmt.query(rusqlite::params![model_id, without_embedding])?;
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

    /// Content recorded while classification waited (see [`super::Writer::put_queued`]),
    /// at most `limit`, each with the file rows that point at it, first recorded first.
    /// Content no file points at any more is left out.
    pub fn queued_images(&self, limit: usize) -> Result<Vec<(Hash, Vec<FileRow>)>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.path, f.root_id, f.hash, f.size, f.mtime_ns, f.last_seen FROM
                 (SELECT i.hash, (SELECT min(f.last_seen) FROM files f WHERE f.hash = i.hash) AS seen
                  FROM images i WHERE i.classified_at = 0 AND seen IS NOT NULL
                  ORDER BY seen, i.hash LIMIT ?1) q
             JOIN files f ON f.hash = q.hash ORDER BY q.seen, q.hash, f.path",
        )?;
        let rows = stmt.query_map([limit as i64], file_row)?;
        let mut out: Vec<(Hash, Vec<FileRow>)> = Vec::new();
        for row in rows {
            let row = row?;
            match out.last_mut() {
                Some((h, files)) if *h == row.hash => files.push(row),
                _ => out.push((row.hash, vec![row])),
            }
        }
        Ok(out)
    }

    /// How many contents wait to be classified.
    pub fn queued_count(&self) -> Result<u64, CatalogError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM images WHERE classified_at = 0",
            [],
            |r| get_u64(r, 0),
        )?)
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
        let queued = tx.query_row(
            "SELECT count(*) FROM images WHERE classified_at = 0",
            [],
            |r| get_u64(r, 0),
        )?;

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
            queued,
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
