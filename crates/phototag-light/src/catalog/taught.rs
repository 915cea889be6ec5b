//! Taught tags in the catalog (tables `taught_tags`, `taught_examples`, migration 0006):
//! a tag's definition (a linear classifier over one model's embeddings, its threshold and
//! figures), its examples (hash, yes or no, and the embedding they had), and its scores,
//! which are ordinary `tags` rows (class index and rank [`taught_class`]) so that search,
//! the class lists, albums, sidecars and export treat a taught tag as any other. The API is
//! narrow so that another backend can give the same: read definitions and examples, write
//! a definition with its examples, replace its scores, remove it; and
//! [`Writer::put_image`] scores each new image against the definitions of its model. The
//! PostgreSQL catalog has the same functions in `pg/taught.rs`.
//!
//! May not: fit anything (see `taught`), or score embeddings beyond one new image's.

use rusqlite::{params, OptionalExtension};

use super::copy::{CopiedTaught, Row as CopyRow};
use super::rows::{blob, Hash};
use super::write::Writer;
use super::{CatalogError, Sqlite};
use crate::labels::IMAGENET_CLASSES;
use crate::vectors::{Embedding, EmbeddingRef};

/// At most this many taught tags (ids 1..=MAX_TAUGHT): with the ImageNet classes they fill
/// the class numbers a compiled query holds ([`crate::search::ClassSet::CAPACITY`]).
pub const MAX_TAUGHT: i64 = 1047;

/// The class index (and rank) of taught tag `id` in `tags`: after the ImageNet classes.
pub fn taught_class(id: i64) -> usize {
    IMAGENET_CLASSES + id as usize
}

/// Whether a class index is a taught tag's.
pub fn is_taught_class(class_index: usize) -> bool {
    class_index > IMAGENET_CLASSES
}

/// The taught tags of `model_id` whose threshold an embedding by that model reaches:
/// class index, name and probability of each (what `put_image` stores on either backend).
pub(super) fn taught_hits(
    taught: &[TaughtRow],
    model_id: i64,
    e: EmbeddingRef<'_>,
) -> Vec<(usize, String, f32)> {
    taught
        .iter()
        .filter(|t| t.model_id == model_id)
        .map(|t| (t, t.score(e)))
        .filter(|(t, p)| *p >= t.threshold)
        .map(|(t, p)| (taught_class(t.id), t.name.clone(), p))
        .collect()
}

/// A taught tag as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaughtRow {
    pub id: i64,
    pub name: String,
    /// The model whose embeddings the weights apply to.
    pub model_id: i64,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// A photo has the tag from this probability.
    pub threshold: f32,
    /// The fit's figures, as JSON (see `taught::Figures`).
    pub figures: String,
    pub created_at: i64,
    pub fitted_at: i64,
}

impl TaughtRow {
    /// The probability this tag gives an embedding (0 for another model's width).
    pub fn score(&self, e: EmbeddingRef<'_>) -> f32 {
        e.logistic(&self.weights, self.bias)
    }
}

/// One example of a taught tag.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleRow {
    pub hash: Hash,
    pub positive: bool,
    /// The model of `embedding`.
    pub model_id: i64,
    pub embedding: Embedding,
}

pub(super) fn weights_to_blob(w: &[f32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn weights_from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

const SELECT_TAUGHT: &str = "SELECT id, name, model_id, weights, bias, threshold, figures,
    created_at, fitted_at FROM taught_tags";

fn taught_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaughtRow> {
    Ok(TaughtRow {
        id: r.get(0)?,
        name: r.get(1)?,
        model_id: r.get(2)?,
        weights: weights_from_blob(blob(r, 3)?),
        bias: r.get::<_, f64>(4)? as f32,
        threshold: r.get::<_, f64>(5)? as f32,
        figures: r.get(6)?,
        created_at: r.get(7)?,
        fitted_at: r.get(8)?,
    })
}

pub(super) fn all_taught(conn: &rusqlite::Connection) -> Result<Vec<TaughtRow>, CatalogError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_TAUGHT} ORDER BY name"))?;
    let rows = stmt.query_map([], taught_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Sqlite {
    /// Every taught tag, by name.
    pub fn taught_tags(&self) -> Result<Vec<TaughtRow>, CatalogError> {
        all_taught(&self.conn)
    }

    /// The taught tag of this name (case-insensitive), if any.
    pub fn taught_tag(&self, name: &str) -> Result<Option<TaughtRow>, CatalogError> {
        Ok(self
            .conn
            .prepare_cached(&format!("{SELECT_TAUGHT} WHERE name = ?1"))?
            .query_row([name], taught_row)
            .optional()?)
    }

    /// The names of the taught tags and their class indexes: what a query resolves.
    pub fn taught_names(&self) -> Result<Vec<(String, usize)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, id FROM taught_tags ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, taught_class(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A taught tag's examples, by hash.
    pub fn taught_examples(&self, id: i64) -> Result<Vec<ExampleRow>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash, positive, model_id, vector, scale FROM taught_examples
             WHERE tag_id = ?1 ORDER BY hash",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(ExampleRow {
                hash: r.get(0)?,
                positive: r.get(1)?,
                model_id: r.get(2)?,
                embedding: Embedding {
                    values: r.get(3)?,
                    scale: r.get::<_, f64>(4)? as f32,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many images have the taught tag `id` (a probability at its threshold or more).
    pub fn taught_match_count(&self, id: i64) -> Result<u64, CatalogError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM tags WHERE class_index = ?1",
            [taught_class(id) as i64],
            |r| super::rows::get_u64(r, 0),
        )?)
    }
}

/// A page of taught tags for `catalog copy`: those named after `after` (bytewise), each
/// with all its examples, in name order.
pub(super) fn read_taught_page(
    conn: &rusqlite::Connection,
    after: &str,
    limit: i64,
) -> Result<Vec<CopyRow>, CatalogError> {
    let mut tags = conn
        .prepare_cached(
            "SELECT t.name, t.id, m.sha256, t.weights, t.bias, t.threshold, t.figures,
                    t.created_at, t.fitted_at
             FROM taught_tags t JOIN models m ON m.id = t.model_id
             WHERE t.name COLLATE BINARY > ?1 ORDER BY t.name COLLATE BINARY LIMIT ?2",
        )?
        .query_map(params![after, limit], |r| {
            Ok(CopyRow::Taught(CopiedTaught {
                name: r.get(0)?,
                id: r.get(1)?,
                model_sha256: r.get(2)?,
                weights: r.get(3)?,
                bias: r.get::<_, f64>(4)? as f32,
                threshold: r.get::<_, f64>(5)? as f32,
                figures: r.get(6)?,
                created_at: r.get(7)?,
                fitted_at: r.get(8)?,
                examples: Vec::new(),
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT e.hash, e.positive, m.sha256, e.vector, e.scale
         FROM taught_examples e JOIN models m ON m.id = e.model_id
         WHERE e.tag_id = ?1 ORDER BY e.hash",
    )?;
    for t in &mut tags {
        if let CopyRow::Taught(t) = t {
            t.examples = stmt
                .query_map([t.id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get::<_, f64>(4)? as f32,
                    ))
                })?
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(tags)
}

/// Writes a taught tag of `catalog copy` with its examples, unless the catalog has a tag of
/// that name or that id (it is kept; the comparison says so). Returns 1 when written.
pub(super) fn copy_taught(
    tx: &rusqlite::Transaction<'_>,
    t: &CopiedTaught,
) -> Result<u64, CatalogError> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO taught_tags (id, name, model_id, weights, bias, threshold,
             figures, created_at, fitted_at)
             SELECT ?1, ?2, m.id, ?4, ?5, ?6, ?7, ?8, ?9 FROM models m WHERE m.sha256 = ?3",
        )?
        .execute(params![
            t.id,
            t.name,
            t.model_sha256,
            t.weights,
            f64::from(t.bias),
            f64::from(t.threshold),
            t.figures,
            t.created_at,
            t.fitted_at
        ])?;
    if n == 1 {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO taught_examples (tag_id, hash, positive, model_id, vector, scale)
             SELECT ?1, ?2, ?3, m.id, ?5, ?6 FROM models m WHERE m.sha256 = ?4",
        )?;
        for (hash, positive, model, vector, scale) in &t.examples {
            insert.execute(params![
                t.id,
                &hash[..],
                positive,
                model,
                vector,
                f64::from(*scale)
            ])?;
        }
    }
    Ok(n as u64)
}

/// What [`Writer::put_taught`] stores: a definition and all its examples.
#[derive(Debug, Clone)]
pub struct NewTaught<'a> {
    pub name: &'a str,
    pub model_id: i64,
    pub weights: &'a [f32],
    pub bias: f32,
    pub threshold: f32,
    pub figures: &'a str,
    pub examples: &'a [ExampleRow],
    pub now: i64,
}

impl Writer<'_> {
    /// Stores a taught tag (a new one, or the same name fitted again: its id stays) and
    /// replaces its examples. Returns its id. Its scores are written by
    /// [`Writer::set_taught_scores`].
    pub fn put_taught(&mut self, t: &NewTaught<'_>) -> Result<i64, CatalogError> {
        let existing: Option<i64> = self
            .tx()
            .prepare_cached("SELECT id FROM taught_tags WHERE name = ?1")?
            .query_row([t.name], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                // The lowest free id: a removed tag's class number is used again.
                let used: Vec<i64> = self
                    .tx()
                    .prepare_cached("SELECT id FROM taught_tags ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let id = (1..).find(|i| used.binary_search(i).is_err()).unwrap_or(1);
                if id > MAX_TAUGHT {
                    return Err(CatalogError::TooManyTaught(MAX_TAUGHT));
                }
                id
            }
        };
        // A tag fitted again keeps its id (its class number) and its creation time.
        self.tx()
            .prepare_cached(
                "INSERT INTO taught_tags (id, name, model_id, weights, bias, threshold,
                 figures, created_at, fitted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                     model_id = excluded.model_id, weights = excluded.weights,
                     bias = excluded.bias, threshold = excluded.threshold,
                     figures = excluded.figures, fitted_at = excluded.fitted_at",
            )?
            .execute(params![
                id,
                t.name,
                t.model_id,
                weights_to_blob(t.weights),
                f64::from(t.bias),
                f64::from(t.threshold),
                t.figures,
                t.now
            ])?;
        self.tx()
            .prepare_cached("DELETE FROM taught_examples WHERE tag_id = ?1")?
            .execute([id])?;
        let mut insert = self.tx().prepare_cached(
            "INSERT OR REPLACE INTO taught_examples (tag_id, hash, positive, model_id, vector, scale)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in t.examples {
            insert.execute(params![
                id,
                e.hash,
                e.positive,
                e.model_id,
                e.embedding.values,
                f64::from(e.embedding.scale)
            ])?;
        }
        drop(insert);
        self.forget_taught_cache();
        Ok(id)
    }

    /// Replaces the scores of taught tag `id` by `scores` (hash, probability): the images
    /// that have the tag. Hashes without an image row are skipped.
    pub fn set_taught_scores(
        &mut self,
        id: i64,
        name: &str,
        scores: &[(Hash, f32)],
    ) -> Result<(), CatalogError> {
        let class = taught_class(id) as i64;
        self.tx()
            .prepare_cached("DELETE FROM tags WHERE class_index = ?1")?
            .execute([class])?;
        let mut insert = self.tx().prepare_cached(
            "INSERT OR REPLACE INTO tags (hash, rank, class_index, label, probability)
             SELECT ?1, ?2, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM images WHERE hash = ?1)",
        )?;
        for (hash, p) in scores {
            insert.execute(params![hash, class, name, f64::from(*p)])?;
        }
        Ok(())
    }

    /// Removes a taught tag, its examples and its scores. False when there is none.
    pub fn remove_taught(&mut self, name: &str) -> Result<bool, CatalogError> {
        let id: Option<i64> = self
            .tx()
            .prepare_cached("SELECT id FROM taught_tags WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        self.tx()
            .prepare_cached("DELETE FROM tags WHERE class_index = ?1")?
            .execute([taught_class(id) as i64])?;
        self.tx()
            .prepare_cached("DELETE FROM class_lists WHERE class_index = ?1")?
            .execute([taught_class(id) as i64])?;
        self.tx()
            .prepare_cached("DELETE FROM taught_tags WHERE id = ?1")?
            .execute([id])?;
        self.forget_taught_cache();
        Ok(true)
    }

    /// Scores one newly stored image against every taught tag of its model (the tags of
    /// [`Writer::put_image`]).
    pub(super) fn score_taught(
        &mut self,
        hash: &Hash,
        model_id: i64,
        e: EmbeddingRef<'_>,
    ) -> Result<(), CatalogError> {
        let hits = taught_hits(self.taught_cache()?, model_id, e);
        let mut insert = self.tx().prepare_cached(
            "INSERT OR REPLACE INTO tags (hash, rank, class_index, label, probability)
             VALUES (?1, ?2, ?2, ?3, ?4)",
        )?;
        for (class, name, p) in hits {
            insert.execute(params![hash, class as i64, name, f64::from(p)])?;
        }
        Ok(())
    }
}
