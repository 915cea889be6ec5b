//! The writer on PostgreSQL: one transaction through which a worker records roots,
//! images with their tags, files and failures, all under this host. Nothing is visible to
//! other connections until [`Writer::commit`]; dropping the writer rolls back. The SQL is
//! the SQLite writer's (`catalog/write.rs`), with `host` in the keys.
//!
//! May not: commit on its own, read files, or decide what to index.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use postgres::types::ToSql;
use postgres::{Statement, Transaction};

use crate::catalog::rows::{path_bytes, size_to_sql, Hash, NewFile, NewImage};
use crate::catalog::taught::TaughtRow;
use crate::catalog::CatalogError;
use crate::vectors::sketch::sketch;

/// The open write transaction (see [`super::PgCatalog::begin`]).
pub struct Writer<'c> {
    pub(super) tx: Transaction<'c>,
    stmts: &'c RefCell<HashMap<&'static str, Statement>>,
    host: &'c str,
    shown: String,
    /// The taught tags, read when the first image is stored (see `taught.rs`).
    pub(super) taught: Option<Vec<TaughtRow>>,
}

/// Paths per statement of the set operations (`touch_files`, `remove_files`).
const CHUNK: usize = 5_000;

impl<'c> Writer<'c> {
    pub(super) fn new(
        tx: Transaction<'c>,
        stmts: &'c RefCell<HashMap<&'static str, Statement>>,
        host: &'c str,
        shown: String,
    ) -> Writer<'c> {
        Writer {
            tx,
            stmts,
            host,
            shown,
            taught: None,
        }
    }

    pub(super) fn error(&self, e: postgres::Error) -> CatalogError {
        super::to_catalog_error(&self.shown, e)
    }

    pub(super) fn stmt(&mut self, sql: &'static str) -> Result<Statement, CatalogError> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(|e| self.error(e))?;
        self.stmts.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, CatalogError> {
        let s = self.stmt(sql)?;
        self.tx.execute(&s, params).map_err(|e| self.error(e))
    }

    /// The id of a root folder of this host, recording it (state `online`) the first time.
    pub fn root_id(&mut self, root: &Path) -> Result<i64, CatalogError> {
        let bytes = path_bytes(root);
        let s = self.stmt(
            "INSERT INTO roots (host, path) VALUES ($1, $2)
             ON CONFLICT (host, path) DO UPDATE SET path = excluded.path
             RETURNING id",
        )?;
        let host = self.host;
        let row = self
            .tx
            .query_one(&s, &[&host, &bytes])
            .map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }

    /// Records the state a scan found a root in at `now`.
    pub fn set_root_state(
        &mut self,
        root_id: i64,
        state: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        self.execute(
            "UPDATE roots SET state = $2, last_scan = $3 WHERE id = $1",
            &[&root_id, &state, &now],
        )?;
        Ok(())
    }

    /// Marks unchanged files of this host as seen at `now`. Unknown paths are ignored.
    pub fn touch_files(&mut self, paths: &[&Path], now: i64) -> Result<(), CatalogError> {
        let host = self.host;
        for chunk in paths.chunks(CHUNK) {
            let bytes: Vec<&[u8]> = chunk.iter().map(|p| path_bytes(p)).collect();
            self.execute(
                "UPDATE files SET last_seen = $3 WHERE host = $1 AND path = ANY ($2)",
                &[&host, &bytes, &now],
            )?;
        }
        Ok(())
    }

    /// Stores a classified content: inserts the image, or replaces its size, format, model
    /// and all its tags (a retag). With an embedding, it gets the taught tags of its model
    /// whose threshold it reaches.
    pub fn put_image(&mut self, img: &NewImage) -> Result<(), CatalogError> {
        let hash = &img.hash[..];
        self.execute(
            "INSERT INTO images (hash, width, height, format, model_id, classified_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (hash) DO UPDATE SET
                 width = excluded.width, height = excluded.height,
                 format = excluded.format, model_id = excluded.model_id,
                 classified_at = excluded.classified_at",
            &[
                &hash,
                &(img.width as i32),
                &(img.height as i32),
                &img.format,
                &img.model_id,
                &img.classified_at,
            ],
        )?;
        self.execute("DELETE FROM tags WHERE hash = $1", &[&hash])?;
        let ranks: Vec<i32> = img.tags.iter().map(|t| t.rank as i32).collect();
        let classes: Vec<i32> = img.tags.iter().map(|t| t.class_index as i32).collect();
        let labels: Vec<&str> = img.tags.iter().map(|t| t.label.as_str()).collect();
        let probs: Vec<f32> = img.tags.iter().map(|t| t.probability).collect();
        self.execute(
            "INSERT INTO tags (hash, rank, class_index, label, probability)
             SELECT $1, * FROM unnest($2::integer[], $3::integer[], $4::text[], $5::real[])",
            &[&hash, &ranks, &classes, &labels, &probs],
        )?;
        match &img.embedding {
            Some(e) => {
                self.execute(
                    "INSERT INTO embeddings (hash, model_id, vector, scale)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (hash) DO UPDATE SET model_id = excluded.model_id,
                         vector = excluded.vector, scale = excluded.scale",
                    &[&hash, &img.model_id, &e.values, &e.scale],
                )?;
                let bits = sketch(&e.values);
                self.execute(
                    "INSERT INTO sketches (id, model_id, bits)
                     SELECT id, $2, $3 FROM embeddings WHERE hash = $1
                     ON CONFLICT (id) DO UPDATE SET model_id = excluded.model_id,
                         bits = excluded.bits",
                    &[&hash, &img.model_id, &bits.as_slice()],
                )?;
                self.score_taught(&img.hash, img.model_id, e.as_ref())?;
            }
            None => {
                self.execute("DELETE FROM embeddings WHERE hash = $1", &[&hash])?;
            }
        }
        Ok(())
    }

    /// Records content whose classification waits (see the SQLite writer's
    /// `put_queued`): an image row with `classified_at = 0` and no tags. Content already
    /// stored is left alone.
    pub fn put_queued(&mut self, hash: &Hash, model_id: i64) -> Result<(), CatalogError> {
        self.execute(
            "INSERT INTO images (hash, width, height, format, model_id, classified_at)
             VALUES ($1, 0, 0, '', $2, 0) ON CONFLICT (hash) DO NOTHING",
            &[&&hash[..], &model_id],
        )?;
        Ok(())
    }

    /// Forgets queued content that no file of any host holds any more. Returns how many.
    pub fn remove_unheld_queued(&mut self) -> Result<usize, CatalogError> {
        let n = self.execute(
            "DELETE FROM images i WHERE i.classified_at = 0
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.hash = i.hash)",
            &[],
        )?;
        Ok(n as usize)
    }

    /// Records where a content is on this host and forgets any earlier failure of that
    /// path. The image must already be stored (foreign key).
    pub fn put_file(&mut self, f: &NewFile) -> Result<(), CatalogError> {
        let path = path_bytes(&f.path);
        let host = self.host;
        self.execute(
            "INSERT INTO files (host, path, root_id, hash, size, mtime_ns, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (host, path) DO UPDATE SET
                 root_id = excluded.root_id, hash = excluded.hash, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, last_seen = excluded.last_seen",
            &[
                &host,
                &path,
                &f.root_id,
                &&f.hash[..],
                &size_to_sql(f.size),
                &f.mtime_ns,
                &f.seen,
            ],
        )?;
        self.execute(
            "DELETE FROM failures WHERE host = $1 AND path = $2",
            &[&host, &path],
        )?;
        Ok(())
    }

    /// Records that a file could not be tagged (counting attempts), and forgets its file
    /// row.
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
        let host = self.host;
        self.execute(
            "INSERT INTO failures (host, path, root_id, size, mtime_ns, error, attempts, last_attempt)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
             ON CONFLICT (host, path) DO UPDATE SET
                 root_id = excluded.root_id, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, error = excluded.error,
                 attempts = failures.attempts + 1, last_attempt = excluded.last_attempt",
            &[
                &host,
                &bytes,
                &root_id,
                &size_to_sql(size),
                &mtime_ns,
                &error,
                &now,
            ],
        )?;
        self.execute(
            "DELETE FROM files WHERE host = $1 AND path = $2",
            &[&host, &bytes],
        )?;
        Ok(())
    }

    /// Forgets paths of this host (and their failures). Returns how many file rows went.
    pub fn remove_files(&mut self, paths: &[&Path]) -> Result<usize, CatalogError> {
        let host = self.host;
        let mut removed = 0;
        for chunk in paths.chunks(CHUNK) {
            let bytes: Vec<&[u8]> = chunk.iter().map(|p| path_bytes(p)).collect();
            removed += self.execute(
                "DELETE FROM files WHERE host = $1 AND path = ANY ($2)",
                &[&host, &bytes],
            )? as usize;
            self.execute(
                "DELETE FROM failures WHERE host = $1 AND path = ANY ($2)",
                &[&host, &bytes],
            )?;
        }
        Ok(removed)
    }

    /// Deletes images no file of any host points at, with their tags. Returns how many.
    pub fn remove_orphan_images(&mut self) -> Result<usize, CatalogError> {
        let n = self.execute(
            "DELETE FROM images i
             WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.hash = i.hash)",
            &[],
        )?;
        Ok(n as usize)
    }

    /// Makes everything written through this writer visible at once.
    pub fn commit(self) -> Result<(), CatalogError> {
        let shown = self.shown.clone();
        self.tx
            .commit()
            .map_err(|e| super::to_catalog_error(&shown, e))
    }
}
