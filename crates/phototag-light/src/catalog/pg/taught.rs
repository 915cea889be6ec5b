//! Taught tags on PostgreSQL, as `catalog/taught.rs` has them for SQLite (the same
//! functions, the same SQL but for the dialect): definitions and examples (tables
//! `taught_tags`, `taught_examples`, migration 0006), scores as ordinary `tags` rows (class
//! index and rank [`taught_class`]), removal, the scoring of each new image by
//! [`Writer::put_image`], and the pages of `catalog copy`. Taught tags belong to the whole
//! catalog, not to a host: every machine sharing it sees and applies the same tags.
//!
//! Names are unique whatever their case: SQLite compares them `COLLATE NOCASE`, here
//! `lower(name)` (its unique index `taught_tags_by_name`).
//!
//! May not: fit anything (see `taught`), or score embeddings beyond one new image's.

use postgres::GenericClient;

use super::write::Writer;
use super::{hash_of, PgCatalog};
use crate::catalog::copy::{CopiedExample, CopiedTaught, Row as CopyRow};
use crate::catalog::rows::Hash;
use crate::catalog::taught::{
    taught_class, taught_hits, weights_from_blob, weights_to_blob, ExampleRow, NewTaught,
    TaughtRow, MAX_TAUGHT,
};
use crate::catalog::CatalogError;
use crate::vectors::{Embedding, EmbeddingRef};

const SELECT_TAUGHT: &str = "SELECT id, name, model_id, weights, bias, threshold, figures,
    created_at, fitted_at FROM taught_tags";

/// Scores written per statement by [`Writer::set_taught_scores`].
const CHUNK: usize = 10_000;

fn taught_row(r: &postgres::Row) -> TaughtRow {
    TaughtRow {
        id: r.get(0),
        name: r.get(1),
        model_id: r.get(2),
        weights: weights_from_blob(r.get(3)),
        bias: r.get(4),
        threshold: r.get(5),
        figures: r.get(6),
        created_at: r.get(7),
        fitted_at: r.get(8),
    }
}

fn all_taught(c: &mut impl GenericClient) -> Result<Vec<TaughtRow>, postgres::Error> {
    let rows = c.query(&format!("{SELECT_TAUGHT} ORDER BY lower(name), name"), &[])?;
    Ok(rows.iter().map(taught_row).collect())
}

impl PgCatalog {
    /// Every taught tag, by name.
    pub fn taught_tags(&self) -> Result<Vec<TaughtRow>, CatalogError> {
        let mut c = self.conn()?;
        all_taught(&mut *c).map_err(|e| self.error(e))
    }

    /// The taught tag of this name (case-insensitive), if any.
    pub fn taught_tag(&self, name: &str) -> Result<Option<TaughtRow>, CatalogError> {
        let rows = self.rows(
            "SELECT id, name, model_id, weights, bias, threshold, figures, created_at,
             fitted_at FROM taught_tags WHERE lower(name) = lower($1)",
            &[&name],
        )?;
        Ok(rows.first().map(taught_row))
    }

    /// The names of the taught tags and their class indexes: what a query resolves.
    pub fn taught_names(&self) -> Result<Vec<(String, usize)>, CatalogError> {
        let rows = self.rows(
            "SELECT name, id FROM taught_tags ORDER BY lower(name), name",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), taught_class(r.get(1))))
            .collect())
    }

    /// A taught tag's examples, by hash.
    pub fn taught_examples(&self, id: i64) -> Result<Vec<ExampleRow>, CatalogError> {
        let rows = self.rows(
            "SELECT hash, positive, model_id, vector, scale FROM taught_examples
             WHERE tag_id = $1 ORDER BY hash",
            &[&id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ExampleRow {
                    hash: hash_of(r, 0)?,
                    positive: r.get(1),
                    model_id: r.get(2),
                    embedding: Embedding {
                        values: r.get(3),
                        scale: r.get(4),
                    },
                })
            })
            .collect()
    }

    /// How many images have the taught tag `id` (a probability at its threshold or more).
    pub fn taught_match_count(&self, id: i64) -> Result<u64, CatalogError> {
        let rows = self.rows(
            "SELECT count(*) FROM tags WHERE class_index = $1",
            &[&(taught_class(id) as i32)],
        )?;
        let n: i64 = rows[0].get(0);
        u64::try_from(n).map_err(|_| CatalogError::Corrupt(format!("a negative count: {n}")))
    }

    /// A page of taught tags for `catalog copy`: those named after `after` (bytewise), each
    /// with all its examples, in name order.
    pub(crate) fn read_taught_page(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<CopyRow>, CatalogError> {
        let tags = self.rows(
            "SELECT t.name, t.id, m.sha256, t.weights, t.bias, t.threshold, t.figures,
                    t.created_at, t.fitted_at
             FROM taught_tags t JOIN models m ON m.id = t.model_id
             WHERE t.name COLLATE \"C\" > $1 ORDER BY t.name COLLATE \"C\" LIMIT $2",
            &[&after, &limit],
        )?;
        let mut out = Vec::with_capacity(tags.len());
        for t in &tags {
            let id: i64 = t.get(1);
            let examples = self
                .rows(
                    "SELECT e.hash, e.positive, m.sha256, e.vector, e.scale
                     FROM taught_examples e JOIN models m ON m.id = e.model_id
                     WHERE e.tag_id = $1 ORDER BY e.hash",
                    &[&id],
                )?
                .iter()
                .map(|r| Ok((hash_of(r, 0)?, r.get(1), r.get(2), r.get(3), r.get(4))))
                .collect::<Result<Vec<CopiedExample>, CatalogError>>()?;
            out.push(CopyRow::Taught(CopiedTaught {
                name: t.get(0),
                id,
                model_sha256: t.get(2),
                weights: t.get(3),
                bias: t.get(4),
                threshold: t.get(5),
                figures: t.get(6),
                created_at: t.get(7),
                fitted_at: t.get(8),
                examples,
            }));
        }
        Ok(out)
    }
}

/// Writes a taught tag of `catalog copy` with its examples, unless the catalog has a tag of
/// that name or that id (it is kept; the comparison says so). Returns 1 when written.
pub(super) fn copy_taught(
    tx: &mut postgres::Transaction<'_>,
    t: &CopiedTaught,
) -> Result<u64, postgres::Error> {
    let n = tx.execute(
        "INSERT INTO taught_tags (id, name, model_id, weights, bias, threshold, figures,
         created_at, fitted_at)
         SELECT $1, $2, m.id, $4, $5, $6, $7, $8, $9 FROM models m WHERE m.sha256 = $3
         ON CONFLICT DO NOTHING",
        &[
            &t.id,
            &t.name,
            &t.model_sha256,
            &t.weights,
            &t.bias,
            &t.threshold,
            &t.figures,
            &t.created_at,
            &t.fitted_at,
        ],
    )?;
    if n == 1 {
        let examples = &t.examples;
        let hashes: Vec<&[u8]> = examples.iter().map(|e| &e.0[..]).collect();
        let positive: Vec<bool> = examples.iter().map(|e| e.1).collect();
        let models: Vec<&str> = examples.iter().map(|e| e.2.as_str()).collect();
        let vectors: Vec<&[u8]> = examples.iter().map(|e| e.3.as_slice()).collect();
        let scales: Vec<f32> = examples.iter().map(|e| e.4).collect();
        tx.execute(
            "INSERT INTO taught_examples (tag_id, hash, positive, model_id, vector, scale)
             SELECT $1, u.h, u.p, m.id, u.v, u.s
             FROM unnest($2::bytea[], $3::boolean[], $4::text[], $5::bytea[], $6::real[])
                  AS u (h, p, sha, v, s)
             JOIN models m ON m.sha256 = u.sha
             ON CONFLICT DO NOTHING",
            &[&t.id, &hashes, &positive, &models, &vectors, &scales],
        )?;
    }
    Ok(n)
}

/// The last item of each hash, in their order: a hash given twice counts once, as the
/// last (what SQLite's `INSERT OR REPLACE` keeps; one PostgreSQL statement may not insert
/// a key twice).
fn last_of_each<T>(items: &[T], hash: impl Fn(&T) -> &Hash) -> Vec<&T> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&T> = items
        .iter()
        .rev()
        .filter(|i| seen.insert(*hash(i)))
        .collect();
    out.reverse();
    out
}

impl Writer<'_> {
    /// The taught tags, read once per transaction.
    fn taught_cache(&mut self) -> Result<&[TaughtRow], CatalogError> {
        if self.taught.is_none() {
            let all = all_taught(&mut self.tx).map_err(|e| self.error(e))?;
            self.taught = Some(all);
        }
        Ok(self.taught.as_deref().unwrap_or_default())
    }

    /// The id of the taught tag of this name (case-insensitive), if any.
    fn taught_id(&mut self, name: &str) -> Result<Option<i64>, CatalogError> {
        let s = self.stmt("SELECT id FROM taught_tags WHERE lower(name) = lower($1)")?;
        let row = self.tx.query_opt(&s, &[&name]).map_err(|e| self.error(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Stores a taught tag (a new one, or the same name fitted again: its id stays) and
    /// replaces its examples. Returns its id. Its scores are written by
    /// [`Writer::set_taught_scores`].
    pub fn put_taught(&mut self, t: &NewTaught<'_>) -> Result<i64, CatalogError> {
        // Two machines teaching at once take ids one after the other.
        self.execute("LOCK TABLE taught_tags IN SHARE ROW EXCLUSIVE MODE", &[])?;
        let id = match self.taught_id(t.name)? {
            Some(id) => id,
            None => {
                // The lowest free id: a removed tag's class number is used again.
                let s = self.stmt("SELECT id FROM taught_tags ORDER BY id")?;
                let used: Vec<i64> = self
                    .tx
                    .query(&s, &[])
                    .map_err(|e| self.error(e))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let id = (1..).find(|i| used.binary_search(i).is_err()).unwrap_or(1);
                if id > MAX_TAUGHT {
                    return Err(CatalogError::TooManyTaught(MAX_TAUGHT));
                }
                id
            }
        };
        // A tag fitted again keeps its id (its class number) and its creation time.
        self.execute(
            "INSERT INTO taught_tags (id, name, model_id, weights, bias, threshold,
             figures, created_at, fitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                 model_id = excluded.model_id, weights = excluded.weights,
                 bias = excluded.bias, threshold = excluded.threshold,
                 figures = excluded.figures, fitted_at = excluded.fitted_at",
            &[
                &id,
                &t.name,
                &t.model_id,
                &weights_to_blob(t.weights),
                &t.bias,
                &t.threshold,
                &t.figures,
                &t.now,
            ],
        )?;
        self.execute("DELETE FROM taught_examples WHERE tag_id = $1", &[&id])?;
        let examples = last_of_each(t.examples, |e| &e.hash);
        let hashes: Vec<&[u8]> = examples.iter().map(|e| &e.hash[..]).collect();
        let positive: Vec<bool> = examples.iter().map(|e| e.positive).collect();
        let models: Vec<i64> = examples.iter().map(|e| e.model_id).collect();
        let vectors: Vec<&[u8]> = examples
            .iter()
            .map(|e| e.embedding.values.as_slice())
            .collect();
        let scales: Vec<f32> = examples.iter().map(|e| e.embedding.scale).collect();
        self.execute(
            "INSERT INTO taught_examples (tag_id, hash, positive, model_id, vector, scale)
             SELECT $1, * FROM unnest($2::bytea[], $3::boolean[], $4::bigint[], $5::bytea[],
                                      $6::real[])",
            &[&id, &hashes, &positive, &models, &vectors, &scales],
        )?;
        self.taught = None;
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
        let class = taught_class(id) as i32;
        self.execute("DELETE FROM tags WHERE class_index = $1", &[&class])?;
        for chunk in last_of_each(scores, |s| &s.0).chunks(CHUNK) {
            let hashes: Vec<&[u8]> = chunk.iter().map(|s| &s.0[..]).collect();
            let probs: Vec<f32> = chunk.iter().map(|s| s.1).collect();
            self.execute(
                "INSERT INTO tags (hash, rank, class_index, label, probability)
                 SELECT u.h, $1, $1, $2, u.p FROM unnest($3::bytea[], $4::real[]) AS u (h, p)
                 WHERE EXISTS (SELECT 1 FROM images i WHERE i.hash = u.h)
                 ON CONFLICT (hash, rank) DO UPDATE SET class_index = excluded.class_index,
                     label = excluded.label, probability = excluded.probability",
                &[&class, &name, &hashes, &probs],
            )?;
        }
        Ok(())
    }

    /// Removes a taught tag, its examples and its scores. False when there is none.
    pub fn remove_taught(&mut self, name: &str) -> Result<bool, CatalogError> {
        let Some(id) = self.taught_id(name)? else {
            return Ok(false);
        };
        self.execute(
            "DELETE FROM tags WHERE class_index = $1",
            &[&(taught_class(id) as i32)],
        )?;
        self.execute("DELETE FROM taught_tags WHERE id = $1", &[&id])?;
        self.taught = None;
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
        for (class, name, p) in hits {
            self.execute(
                "INSERT INTO tags (hash, rank, class_index, label, probability)
                 VALUES ($1, $2, $2, $3, $4)
                 ON CONFLICT (hash, rank) DO UPDATE SET class_index = excluded.class_index,
                     label = excluded.label, probability = excluded.probability",
                &[&&hash[..], &(class as i32), &name, &p],
            )?;
        }
        Ok(())
    }
}
