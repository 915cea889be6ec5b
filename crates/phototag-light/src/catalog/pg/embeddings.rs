//! Image embeddings on PostgreSQL, as `catalog/embeddings.rs` has them for SQLite (the
//! same narrow API): one read by hash, a stream (all, one model's, under folders of this
//! host, a row-id range), and the counts. A stream is read as the server sends it
//! (`query_raw`): rows are handed to the caller one at a time, never collected, so memory
//! stays bounded whatever the number of embeddings.
//!
//! May not: hold embeddings in memory beyond the row being read, or compare them.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;

use super::PgCatalog;
use crate::catalog::embeddings::{EmbeddingCounts, EmbeddingScan, StoredEmbedding};
use crate::catalog::rows::{under_range, Hash};
use crate::catalog::CatalogError;
use crate::vectors::sketch::Sketch;
use crate::vectors::{Embedding, EmbeddingRef};

fn count(v: i64) -> Result<u64, CatalogError> {
    u64::try_from(v).map_err(|_| CatalogError::Corrupt(format!("a negative count: {v}")))
}

impl PgCatalog {
    /// One image's embedding, if it has one.
    pub fn embedding(&self, hash: &Hash) -> Result<Option<StoredEmbedding>, CatalogError> {
        let rows = self.rows(
            "SELECT model_id, vector, scale FROM embeddings WHERE hash = $1",
            &[&&hash[..]],
        )?;
        Ok(rows.first().map(|r| StoredEmbedding {
            model_id: r.get(0),
            embedding: Embedding {
                values: r.get(1),
                scale: r.get(2),
            },
        }))
    }

    /// The smallest and one past the largest id of the stored embeddings.
    pub fn embedding_ids(&self) -> Result<Option<(i64, i64)>, CatalogError> {
        let rows = self.rows("SELECT min(id), max(id) FROM embeddings", &[])?;
        let (lo, hi): (Option<i64>, Option<i64>) = (rows[0].get(0), rows[0].get(1));
        Ok(lo.zip(hi).map(|(lo, hi)| (lo, hi.saturating_add(1))))
    }

    /// Calls `f` with the hash, model and embedding of every stored embedding `scan`
    /// selects, in id order, one row at a time as the server sends them. Returns how many.
    pub fn scan_embeddings(
        &self,
        scan: &EmbeddingScan,
        mut f: impl FnMut(&[u8], i64, EmbeddingRef<'_>),
    ) -> Result<u64, CatalogError> {
        let (start, end) = scan.ids.unwrap_or((i64::MIN, i64::MAX));
        let (mut los, mut his): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        for dir in &scan.under {
            let (lo, hi) = under_range(dir);
            los.push(lo);
            his.push(hi);
        }
        let params: [&(dyn ToSql + Sync); 6] =
            [&start, &end, &scan.model_id, &self.host, &los, &his];
        let mut c = self.conn()?;
        let mut rows = c
            .query_raw(
                "SELECT e.hash, e.model_id, e.vector, e.scale FROM embeddings e
                 WHERE e.id >= $1 AND e.id < $2 AND ($3::bigint IS NULL OR e.model_id = $3)
                   AND (cardinality($5::bytea[]) = 0 OR EXISTS (
                        SELECT 1 FROM files f, unnest($5::bytea[], $6::bytea[]) AS u (lo, hi)
                        WHERE f.hash = e.hash AND f.host = $4
                          AND f.path >= u.lo AND f.path < u.hi))
                 ORDER BY e.id",
                params,
            )
            .map_err(|e| self.error(e))?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(|e| self.error(e))? {
            let hash: &[u8] = r.get(0);
            let model_id: i64 = r.get(1);
            let values: &[u8] = r.get(2);
            let scale: f32 = r.get(3);
            f(hash, model_id, EmbeddingRef { values, scale });
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with the row id, model and sketch of every stored embedding whose id is
    /// in `[start, end)`, in id order, as the server sends them. Returns how many it read.
    pub fn scan_sketches(
        &self,
        (start, end): (i64, i64),
        mut f: impl FnMut(i64, i64, &Sketch),
    ) -> Result<u64, CatalogError> {
        let mut c = self.conn()?;
        let params: [&(dyn ToSql + Sync); 2] = [&start, &end];
        let mut rows = c
            .query_raw(
                "SELECT id, model_id, bits FROM sketches WHERE id >= $1 AND id < $2 ORDER BY id",
                params,
            )
            .map_err(|e| self.error(e))?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(|e| self.error(e))? {
            let bits: &[u8] = r.get(2);
            if let Ok(bits) = <&Sketch>::try_from(bits) {
                f(r.get(0), r.get(1), bits);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with the hash and embedding of each row id in `ids` that holds one (ids
    /// with none are passed over), in the order given; one statement for all.
    pub fn embeddings_by_id(
        &self,
        ids: &[i64],
        mut f: impl FnMut(i64, &[u8], EmbeddingRef<'_>),
    ) -> Result<(), CatalogError> {
        let rows = self.rows(
            "SELECT u.id, e.hash, e.vector, e.scale
             FROM unnest($1::bigint[]) WITH ORDINALITY AS u (id, n)
             JOIN embeddings e ON e.id = u.id ORDER BY u.n",
            &[&ids],
        )?;
        for r in &rows {
            let values: &[u8] = r.get(2);
            f(
                r.get(0),
                r.get(1),
                EmbeddingRef {
                    values,
                    scale: r.get(3),
                },
            );
        }
        Ok(())
    }

    /// How many images there are, and how many have an embedding by each model (one
    /// snapshot).
    pub fn embedding_counts(&self) -> Result<EmbeddingCounts, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let e = |e| self.error(e);
        let images = count(
            tx.query_one("SELECT count(*) FROM images", &[])
                .map_err(e)?
                .get(0),
        )?;
        let rows = tx
            .query(
                "SELECT e.model_id, m.name, count(*) AS n FROM embeddings e
                 JOIN models m ON m.id = e.model_id
                 GROUP BY e.model_id, m.name ORDER BY n DESC, e.model_id",
                &[],
            )
            .map_err(e)?;
        let mut by_model = Vec::with_capacity(rows.len());
        for r in &rows {
            by_model.push((r.get(0), r.get(1), count(r.get(2))?));
        }
        tx.commit().map_err(e)?;
        Ok(EmbeddingCounts { images, by_model })
    }

    /// Every model that ever tagged anything here: id and name.
    pub fn model_names(&self) -> Result<Vec<(i64, String)>, CatalogError> {
        let rows = self.rows("SELECT id, name FROM models ORDER BY id", &[])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// How many images the catalog holds.
    pub fn image_count(&self) -> Result<u64, CatalogError> {
        let rows = self.rows("SELECT count(*) FROM images", &[])?;
        count(rows[0].get(0))
    }

    /// The id of the model with this TorchScript SHA-256, if it ever tagged anything here.
    pub fn model_id(&self, sha256: &str) -> Result<Option<i64>, CatalogError> {
        let rows = self.rows(
            "SELECT id FROM models WHERE sha256 = $1",
            &[&sha256.to_ascii_lowercase()],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}
