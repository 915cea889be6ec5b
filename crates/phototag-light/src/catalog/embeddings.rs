//! Image embeddings in the catalog (table `embeddings`, migration 0004). The API is narrow
//! on purpose, so that another backend can give the same: an embedding is written with its
//! image ([`super::Writer::put_image`]), read one at a time ([`Catalog::embedding`]), or
//! streamed, all of a model's or those under some folders, in parts by row id so that
//! several readers can share a scan ([`Catalog::scan_embeddings`]); their sketches
//! (table `sketches`, migration 0005) streamed the same way ([`Catalog::scan_sketches`])
//! and embeddings fetched by row id ([`Catalog::embeddings_by_id`]); plus the counts that
//! tell a person what is missing.
//!
//! May not: hold embeddings in memory beyond the row being read, or compare them (see
//! `vectors`).

use std::path::PathBuf;

use rusqlite::types::Value;
use rusqlite::OptionalExtension;

use super::rows::{blob, get_u64, under_range, Hash};
use super::{CatalogError, Sqlite};
use crate::vectors::sketch::Sketch;
use crate::vectors::{Embedding, EmbeddingRef};

/// An image's stored embedding and the model that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    pub model_id: i64,
    pub embedding: Embedding,
}

/// Which stored embeddings a scan reads.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingScan {
    /// Only this model's (embeddings of two models are not comparable); all when None.
    pub model_id: Option<i64>,
    /// Only images with a file strictly under one of these folders (all when empty).
    pub under: Vec<PathBuf>,
    /// Only rows whose id is in `[start, end)` (see [`Catalog::embedding_ids`]).
    pub ids: Option<(i64, i64)>,
}

/// How many images have an embedding, by model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmbeddingCounts {
    pub images: u64,
    /// (model id, model name, images with an embedding by it), most first.
    pub by_model: Vec<(i64, String, u64)>,
}

impl EmbeddingCounts {
    /// Images with an embedding of any model.
    pub fn with_embedding(&self) -> u64 {
        self.by_model.iter().map(|m| m.2).sum()
    }

    /// Images with none.
    pub fn without(&self) -> u64 {
        self.images.saturating_sub(self.with_embedding())
    }

    /// Images with an embedding by `model_id`.
    pub fn of(&self, model_id: i64) -> u64 {
        self.by_model
            .iter()
            .find(|m| m.0 == model_id)
            .map_or(0, |m| m.2)
    }
}

impl Sqlite {
    /// One image's embedding, if it has one.
    pub fn embedding(&self, hash: &Hash) -> Result<Option<StoredEmbedding>, CatalogError> {
        let row = self
            .conn
            .prepare_cached("SELECT model_id, vector, scale FROM embeddings WHERE hash = ?1")?
            .query_row([hash], |r| {
                Ok(StoredEmbedding {
                    model_id: r.get(0)?,
                    embedding: Embedding {
                        values: r.get(1)?,
                        scale: r.get::<_, f64>(2)? as f32,
                    },
                })
            })
            .optional()?;
        Ok(row)
    }

    /// The smallest and one past the largest row id of the stored embeddings (None when
    /// there are none): split it to give each reader of a scan its part.
    pub fn embedding_ids(&self) -> Result<Option<(i64, i64)>, CatalogError> {
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .conn
            // Two subqueries: SQLite answers each from the row-id b-tree's edge, while
            // `min(id), max(id)` in one select reads the whole table.
            .query_row(
                "SELECT (SELECT min(id) FROM embeddings), (SELECT max(id) FROM embeddings)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        Ok(lo.zip(hi).map(|(lo, hi)| (lo, hi.saturating_add(1))))
    }

    /// Calls `f` with the hash, model and embedding of every stored embedding `scan`
    /// selects, in row order, reading one row at a time. Returns how many it read.
    pub fn scan_embeddings(
        &self,
        scan: &EmbeddingScan,
        mut f: impl FnMut(&[u8], i64, EmbeddingRef<'_>),
    ) -> Result<u64, CatalogError> {
        let (start, end) = scan.ids.unwrap_or((i64::MIN, i64::MAX));
        let mut sql = String::from(
            "SELECT hash, model_id, vector, scale FROM embeddings
             WHERE id >= ?1 AND id < ?2 AND (?3 IS NULL OR model_id = ?3)",
        );
        let mut params = vec![
            Value::Integer(start),
            Value::Integer(end),
            scan.model_id.map_or(Value::Null, Value::Integer),
        ];
        if !scan.under.is_empty() {
            let ranges: Vec<String> = scan
                .under
                .iter()
                .map(|dir| {
                    let (lo, hi) = under_range(dir);
                    params.push(Value::Blob(lo));
                    params.push(Value::Blob(hi));
                    let n = params.len();
                    format!("(path >= ?{} AND path < ?{n})", n - 1)
                })
                .collect();
            sql.push_str(&format!(
                " AND hash IN (SELECT hash FROM files WHERE {})",
                ranges.join(" OR ")
            ));
        }
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let hash = blob(r, 0)?;
            let model_id = r.get(1)?;
            let values = blob(r, 2)?;
            let scale = r.get::<_, f64>(3)? as f32;
            f(hash, model_id, EmbeddingRef { values, scale });
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with the row id, model and sketch (`vectors::sketch`) of every stored
    /// embedding whose id is in `[start, end)`, in row order (table `sketches`, ~40 bytes
    /// a row: a million read in a fraction of a second). Returns how many it read.
    pub fn scan_sketches(
        &self,
        (start, end): (i64, i64),
        mut f: impl FnMut(i64, i64, &Sketch),
    ) -> Result<u64, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, model_id, bits FROM sketches WHERE id >= ?1 AND id < ?2")?;
        let mut rows = stmt.query([start, end])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let bits = blob(r, 2)?;
            if let Ok(bits) = <&Sketch>::try_from(bits) {
                f(r.get(0)?, r.get(1)?, bits);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with the hash and embedding of each row id in `ids` that holds one (ids
    /// with none, removed meanwhile, are passed over), in the order given.
    pub fn embeddings_by_id(
        &self,
        ids: &[i64],
        mut f: impl FnMut(i64, &[u8], EmbeddingRef<'_>),
    ) -> Result<(), CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash, vector, scale FROM embeddings WHERE id = ?1")?;
        for &id in ids {
            let mut rows = stmt.query([id])?;
            if let Some(r) = rows.next()? {
                let hash = blob(r, 0)?;
                let values = blob(r, 1)?;
                let scale = r.get::<_, f64>(2)? as f32;
                f(id, hash, EmbeddingRef { values, scale });
            }
        }
        Ok(())
    }

    /// How many images there are, and how many have an embedding by each model.
    pub fn embedding_counts(&self) -> Result<EmbeddingCounts, CatalogError> {
        let tx = self.snapshot()?;
        let images = tx.query_row("SELECT count(*) FROM images", [], |r| get_u64(r, 0))?;
        let mut stmt = tx.prepare(
            "SELECT e.model_id, m.name, count(*) AS n FROM embeddings e
             JOIN models m ON m.id = e.model_id GROUP BY e.model_id ORDER BY n DESC, e.model_id",
        )?;
        let by_model = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, get_u64(r, 2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(EmbeddingCounts { images, by_model })
    }

    /// Every model that ever tagged anything here: id and name.
    pub fn model_names(&self) -> Result<Vec<(i64, String)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM models ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many images the catalog holds.
    pub fn image_count(&self) -> Result<u64, CatalogError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM images", [], |r| get_u64(r, 0))?)
    }

    /// The id of the model with this TorchScript SHA-256, if it ever tagged anything here.
    pub fn model_id(&self, sha256: &str) -> Result<Option<i64>, CatalogError> {
        let id = self
            .conn
            .prepare_cached("SELECT id FROM models WHERE sha256 = ?1")?
            .query_row([sha256.to_ascii_lowercase()], |r| r.get(0))
            .optional()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Catalog;
    use std::path::Path;

    use super::super::fixtures::{self, file, image};
    use super::*;

    fn emb(x: &[f32]) -> Embedding {
        Embedding::quantize(x).unwrap()
    }

    /// On both backends (a SQLite file, the PostgreSQL test server), the same answers.
    #[test]
    fn written_with_the_image_read_and_streamed() {
        for place in fixtures::places("written_with_the_image_read_and_streamed") {
            written_read_and_streamed(Catalog::open(&place.location).unwrap());
        }
    }

    fn written_read_and_streamed(mut cat: Catalog) {
        let m1 = cat
            .register_model("a", &"1".repeat(64), "resnet18")
            .unwrap();
        let m2 = cat
            .register_model("b", &"2".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        for (i, (m, v)) in [(m1, [1.0, 0.0]), (m1, [0.0, 1.0]), (m2, [1.0, 1.0])]
            .into_iter()
            .enumerate()
        {
            let mut img = image([i as u8; 32], m, &[(1, 0.5)]);
            img.embedding = Some(emb(&v));
            w.put_image(&img).unwrap();
            let path = format!("/p/{}/x{i}.jpg", ["a", "b", "a"][i]);
            w.put_file(&file(&path, root, [i as u8; 32], 1, 1)).unwrap();
        }
        // An image without an embedding.
        w.put_image(&image([9; 32], m1, &[(1, 0.5)])).unwrap();
        w.put_file(&file("/p/a/none.jpg", root, [9; 32], 1, 1))
            .unwrap();
        w.commit().unwrap();

        let got = cat.embedding(&[1; 32]).unwrap().unwrap();
        assert_eq!(got.model_id, m1);
        assert_eq!(got.embedding, emb(&[0.0, 1.0]));
        assert_eq!(cat.embedding(&[9; 32]).unwrap(), None);

        let scan = |model_id, under: &[&str], ids| {
            let mut seen = Vec::new();
            let scan = EmbeddingScan {
                model_id: Some(model_id),
                under: under.iter().map(PathBuf::from).collect(),
                ids,
            };
            let n = cat
                .scan_embeddings(&scan, |h, _, e| seen.push((h[0], e.values.to_vec())))
                .unwrap();
            assert_eq!(n as usize, seen.len());
            seen
        };
        assert_eq!(scan(m1, &[], None).len(), 2);
        assert_eq!(scan(m2, &[], None), vec![(2, emb(&[1.0, 1.0]).values)]);
        assert_eq!(
            scan(m1, &["/p/b"], None)
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(scan(m1, &["/p/b", "/p/a"], None).len(), 2);
        assert!(scan(m1, &["/p/c"], None).is_empty());
        let (lo, hi) = cat.embedding_ids().unwrap().unwrap();
        let mid = (lo + hi) / 2;
        let mut parts = scan(m1, &[], Some((lo, mid)));
        parts.extend(scan(m1, &[], Some((mid, hi))));
        assert_eq!(parts, scan(m1, &[], None), "parts cover the whole");

        let counts = cat.embedding_counts().unwrap();
        assert_eq!(counts.images, 4);
        assert_eq!(counts.with_embedding(), 3);
        assert_eq!(counts.without(), 1);
        assert_eq!(counts.of(m1), 2);
        assert_eq!(counts.by_model[0], (m1, "a".to_string(), 2));
        assert_eq!(cat.model_id(&"2".repeat(64)).unwrap(), Some(m2));
        assert_eq!(cat.model_id(&"3".repeat(64)).unwrap(), None);
        assert_eq!(cat.image_count().unwrap(), 4);
        assert_eq!(
            cat.model_names().unwrap(),
            [(m1, "a".into()), (m2, "b".into())]
        );
        let mut models = Vec::new();
        cat.scan_embeddings(&EmbeddingScan::default(), |_, m, _| models.push(m))
            .unwrap();
        assert_eq!(models, [m1, m1, m2], "every model's when none is asked");
    }

    #[test]
    fn a_retag_without_embedding_drops_it_and_removal_cascades() {
        for place in fixtures::places("a_retag_without_embedding_drops_it_and_removal_cascades") {
            retag_drops_and_removal_cascades(Catalog::open(&place.location).unwrap());
        }
    }

    fn retag_drops_and_removal_cascades(mut cat: Catalog) {
        let m = cat
            .register_model("a", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        let mut img = image([1; 32], m, &[(1, 0.5)]);
        img.embedding = Some(emb(&[1.0, 2.0]));
        w.put_image(&img).unwrap();
        w.put_file(&file("/p/x.jpg", root, [1; 32], 1, 1)).unwrap();
        img.embedding = Some(emb(&[2.0, 1.0]));
        w.put_image(&img).unwrap();
        w.commit().unwrap();
        assert_eq!(
            cat.embedding(&[1; 32]).unwrap().unwrap().embedding,
            emb(&[2.0, 1.0]),
            "replaced"
        );
        let mut w = cat.begin().unwrap();
        w.put_image(&image([1; 32], m, &[(1, 0.5)])).unwrap();
        w.commit().unwrap();
        assert_eq!(cat.embedding(&[1; 32]).unwrap(), None, "dropped");

        let mut w = cat.begin().unwrap();
        w.put_image(&img).unwrap();
        w.remove_files(&[Path::new("/p/x.jpg")]).unwrap();
        w.remove_orphan_images().unwrap();
        w.commit().unwrap();
        assert_eq!(
            cat.embedding_counts().unwrap().with_embedding(),
            0,
            "cascade"
        );
    }

    /// Every stored sketch: (row id, model, bits).
    fn sketches(cat: &Catalog) -> Vec<(i64, i64, Sketch)> {
        let mut out = Vec::new();
        cat.scan_sketches((i64::MIN, i64::MAX), |id, m, b| out.push((id, m, *b)))
            .unwrap();
        out
    }

    #[test]
    fn sketches_follow_their_embeddings() {
        for place in fixtures::places("sketches_follow_their_embeddings") {
            sketches_follow(Catalog::open(&place.location).unwrap());
        }
    }

    fn sketches_follow(mut cat: Catalog) {
        use crate::vectors::sketch::sketch;
        let m = cat
            .register_model("a", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        let mut img = image([1; 32], m, &[(1, 0.5)]);
        img.embedding = Some(emb(&[1.0, 2.0, -3.0, 0.5]));
        w.put_image(&img).unwrap();
        w.put_file(&file("/p/x.jpg", root, [1; 32], 1, 1)).unwrap();
        w.commit().unwrap();
        let (start, end) = cat.embedding_ids().unwrap().unwrap();
        let first = sketches(&cat);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, start);
        assert_eq!(end, start + 1);
        assert_eq!(first[0].2, sketch(&emb(&[1.0, 2.0, -3.0, 0.5]).values));
        let mut read = Vec::new();
        cat.embeddings_by_id(&[start + 7, start], |id, h, e| {
            read.push((id, h.to_vec(), e.values.to_vec()))
        })
        .unwrap();
        assert_eq!(
            read,
            [(start, vec![1; 32], emb(&[1.0, 2.0, -3.0, 0.5]).values)],
            "ids without a row are passed over"
        );

        // Replaced with the embedding (same row), dropped with it.
        let mut w = cat.begin().unwrap();
        img.embedding = Some(emb(&[-1.0, 0.0, 3.0, 2.0]));
        w.put_image(&img).unwrap();
        w.commit().unwrap();
        assert_eq!(
            sketches(&cat),
            [(start, m, sketch(&emb(&[-1.0, 0.0, 3.0, 2.0]).values))]
        );
        let mut w = cat.begin().unwrap();
        w.put_image(&image([1; 32], m, &[(1, 0.5)])).unwrap();
        w.commit().unwrap();
        assert!(sketches(&cat).is_empty(), "dropped with the embedding");
        let mut w = cat.begin().unwrap();
        w.put_image(&img).unwrap();
        w.remove_files(&[Path::new("/p/x.jpg")]).unwrap();
        w.remove_orphan_images().unwrap();
        w.commit().unwrap();
        assert!(sketches(&cat).is_empty(), "removed with the image");
    }

    #[test]
    fn embeddings_stored_before_sketches_get_theirs_on_migration() {
        use crate::catalog::schema::MIGRATIONS;
        use crate::vectors::sketch::sketch;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        {
            // A schema-4 catalog with two embeddings, as phototag 0004 wrote it.
            let conn = rusqlite::Connection::open(&db).unwrap();
            for m in MIGRATIONS.iter().filter(|m| m.version <= 4) {
                conn.execute_batch(m.sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute_batch(
                "INSERT INTO models (id, name, architecture, sha256) VALUES (3, 'm', 'resnet18', 'ab');",
            )
            .unwrap();
            for (i, x) in [[1.0, 2.0, 3.0], [3.0, -2.0, 1.0]].iter().enumerate() {
                let hash = [i as u8 + 1; 32];
                conn.execute(
                    "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                     VALUES (?1, 1, 1, 'png', 3, 0)",
                    [hash],
                )
                .unwrap();
                let e = emb(x);
                conn.execute(
                    "INSERT INTO embeddings (hash, model_id, vector, scale) VALUES (?1, 3, ?2, ?3)",
                    rusqlite::params![hash, e.values, f64::from(e.scale)],
                )
                .unwrap();
            }
        }
        let cat = Catalog::open(&db).unwrap();
        assert_eq!(
            cat.schema_version().unwrap(),
            MIGRATIONS.last().unwrap().version
        );
        let got: Vec<(i64, Sketch)> = sketches(&cat).into_iter().map(|(_, m, b)| (m, b)).collect();
        assert_eq!(
            got,
            [
                (3, sketch(&emb(&[1.0, 2.0, 3.0]).values)),
                (3, sketch(&emb(&[3.0, -2.0, 1.0]).values))
            ]
        );
    }
}
