//! The writer: one IMMEDIATE transaction through which the indexer records roots, images
//! with their tags, files and failures. Nothing is visible to readers until
//! [`Writer::commit`]; dropping the writer rolls everything back. Statements are prepared
//! once per connection (cached), so per-file calls stay cheap over 100k files.
//!
//! May not: commit on its own, read files, or decide what to index.

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};

use super::rows::{path_bytes, size_to_sql, NewFile, NewImage};
use super::{CatalogError, Hash};
use crate::vectors::sketch::sketch;

/// The open write transaction (see [`super::Catalog::begin`]).
pub struct Writer<'c> {
    tx: Transaction<'c>,
}

impl<'c> Writer<'c> {
    pub(super) fn new(tx: Transaction<'c>) -> Writer<'c> {
        Writer { tx }
    }

    /// The id of a root folder, recording it (state `online`) the first time. The path is
    /// stored as given: callers pass the canonical form.
    pub fn root_id(&mut self, root: &Path) -> Result<i64, CatalogError> {
        let bytes = path_bytes(root);
        let found = self
            .tx
            .prepare_cached("SELECT id FROM roots WHERE path = ?1")?
            .query_row([bytes], |row| row.get(0))
            .optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
        let id = self
            .tx
            .prepare_cached("INSERT INTO roots (path) VALUES (?1) RETURNING id")?
            .query_row([bytes], |row| row.get(0))?;
        Ok(id)
    }

    /// Records the state a scan found a root in (`online`, `offline`, ...) at `now`.
    pub fn set_root_state(
        &mut self,
        root_id: i64,
        state: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        self.tx
            .prepare_cached("UPDATE roots SET state = ?2, last_scan = ?3 WHERE id = ?1")?
            .execute(params![root_id, state, now])?;
        Ok(())
    }

    /// Marks unchanged files as seen at `now`. Unknown paths are ignored.
    pub fn touch_files(&mut self, paths: &[&Path], now: i64) -> Result<(), CatalogError> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE files SET last_seen = ?2 WHERE path = ?1")?;
        for p in paths {
            stmt.execute(params![path_bytes(p), now])?;
        }
        Ok(())
    }

    /// Stores a classified content: inserts the image, or replaces its size, format,
    /// model, all its tags and its embedding (a retag). Tags keep their ranks. An image
    /// without an embedding loses any it had (it was another model's).
    pub fn put_image(&mut self, img: &NewImage) -> Result<(), CatalogError> {
        self.tx
            .prepare_cached(
                "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (hash) DO UPDATE SET
                     width = excluded.width, height = excluded.height,
                     format = excluded.format, model_id = excluded.model_id,
                     classified_at = excluded.classified_at",
            )?
            .execute(params![
                img.hash,
                img.width,
                img.height,
                img.format,
                img.model_id,
                img.classified_at
            ])?;
        self.tx
            .prepare_cached("DELETE FROM tags WHERE hash = ?1")?
            .execute([img.hash])?;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO tags (hash, rank, class_index, label, probability)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for t in &img.tags {
            insert.execute(params![
                img.hash,
                t.rank,
                t.class_index as i64,
                t.label,
                f64::from(t.probability)
            ])?;
        }
        match &img.embedding {
            Some(e) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO embeddings (hash, model_id, vector, scale)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (hash) DO UPDATE SET model_id = excluded.model_id,
                             vector = excluded.vector, scale = excluded.scale",
                    )?
                    .execute(params![
                        img.hash,
                        img.model_id,
                        e.values,
                        f64::from(e.scale)
                    ])?;
                self.tx
                    .prepare_cached(
                        "INSERT INTO sketches (id, model_id, bits)
                         SELECT id, ?2, ?3 FROM embeddings WHERE hash = ?1
                         ON CONFLICT (id) DO UPDATE SET model_id = excluded.model_id,
                             bits = excluded.bits",
                    )?
                    .execute(params![
                        img.hash,
                        img.model_id,
                        sketch(&e.values).as_slice()
                    ])?;
            }
            None => {
                self.tx
                    .prepare_cached("DELETE FROM embeddings WHERE hash = ?1")?
                    .execute([img.hash])?;
            }
        }
        Ok(())
    }

    /// Records content whose classification waits (outside the schedule windows, or while
    /// the machine is busy): an image row with `classified_at = 0`, no size or format yet
    /// and no tags, for the model that is to classify it, so that its file rows can be
    /// written now (moves and copies work as for any content) and search finds nothing
    /// until [`Writer::put_image`] stores its tags. Content already stored is left alone.
    pub fn put_queued(&mut self, hash: &Hash, model_id: i64) -> Result<(), CatalogError> {
        self.tx
            .prepare_cached(
                "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (?1, 0, 0, '', ?2, 0) ON CONFLICT (hash) DO NOTHING",
            )?
            .execute(params![hash, model_id])?;
        Ok(())
    }

    /// Forgets queued content that no file holds any more (deleted or changed while it
    /// waited). Returns how many.
    pub fn remove_unheld_queued(&mut self) -> Result<usize, CatalogError> {
        Ok(self.tx.execute(
            "DELETE FROM images WHERE classified_at = 0
             AND NOT EXISTS (SELECT 1 FROM files WHERE files.hash = images.hash)",
            [],
        )?)
    }

    /// Records where a content is (insert or update by path) and forgets any earlier
    /// failure of that path. The image must already be stored (foreign key).
    pub fn put_file(&mut self, f: &NewFile) -> Result<(), CatalogError> {
        let path = path_bytes(&f.path);
        self.tx
            .prepare_cached(
                "INSERT INTO files (path, root_id, hash, size, mtime_ns, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (path) DO UPDATE SET
                     root_id = excluded.root_id, hash = excluded.hash, size = excluded.size,
                     mtime_ns = excluded.mtime_ns, last_seen = excluded.last_seen",
            )?
            .execute(params![
                path,
                f.root_id,
                f.hash,
                size_to_sql(f.size),
                f.mtime_ns,
                f.seen
            ])?;
        self.tx
            .prepare_cached("DELETE FROM failures WHERE path = ?1")?
            .execute([path])?;
        Ok(())
    }

    /// Records that a file could not be tagged (counting attempts), and forgets its file
    /// row: a file that changed into something unreadable is no longer tagged. Its image,
    /// if no other path has it, goes at the next [`Writer::remove_orphan_images`].
    pub fn put_failure(
        &mut self,
        path: &Path,
        root_id: i64,
        size: u64,
        mtime_ns: i64,
        error: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        let bytes = path_bytes(path);
        self.tx
            .prepare_cached(
                "INSERT INTO failures (path, root_id, size, mtime_ns, error, attempts, last_attempt)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
                 ON CONFLICT (path) DO UPDATE SET
                     root_id = excluded.root_id, size = excluded.size,
                     mtime_ns = excluded.mtime_ns, error = excluded.error,
                     attempts = attempts + 1, last_attempt = excluded.last_attempt",
            )?
            .execute(params![
                bytes,
                root_id,
                size_to_sql(size),
                mtime_ns,
                error,
                now
            ])?;
        self.tx
            .prepare_cached("DELETE FROM files WHERE path = ?1")?
            .execute([bytes])?;
        Ok(())
    }

    /// Forgets paths (and their failures). Returns how many file rows went. Their images
    /// stay until [`Writer::remove_orphan_images`].
    pub fn remove_files(&mut self, paths: &[&Path]) -> Result<usize, CatalogError> {
        let mut files = self
            .tx
            .prepare_cached("DELETE FROM files WHERE path = ?1")?;
        let mut failures = self
            .tx
            .prepare_cached("DELETE FROM failures WHERE path = ?1")?;
        let mut removed = 0;
        for p in paths {
            let bytes = path_bytes(p);
            removed += files.execute([bytes])?;
            failures.execute([bytes])?;
        }
        Ok(removed)
    }

    /// Deletes images no file points at, with their tags (cascade). Returns how many.
    pub fn remove_orphan_images(&mut self) -> Result<usize, CatalogError> {
        let n = self.tx.execute(
            "DELETE FROM images
             WHERE NOT EXISTS (SELECT 1 FROM files WHERE files.hash = images.hash)",
            [],
        )?;
        Ok(n)
    }

    /// Makes everything written through this writer visible at once.
    pub fn commit(self) -> Result<(), CatalogError> {
        self.tx.commit()?;
        Ok(())
    }
}
