//! "More like this" and near copies over the catalog's stored embeddings.
//!
//! [`most_similar`] reads every stored embedding of one model once, front to back, in as
//! many parts as there are cores (each part its own read-only connection and row-id range),
//! scores each against the query on its bytes, and keeps the best in a bounded heap: memory
//! stays that of a few rows whatever the size of the catalog. `dupes` groups near copies.
//!
//! May not: write to the catalog, or hold all embeddings in memory (`dupes` holds those
//! it groups, ~1.3 KB each, and says so).

pub mod dupes;

use std::path::PathBuf;

use crate::catalog::{Catalog, CatalogError, EmbeddingScan, Hash, Location};
use crate::vectors::top::TopK;
use crate::vectors::{dot, Embedding};

/// What to compare with: an embedding, its model, and the content to leave out (the photo
/// itself and its copies).
#[derive(Debug, Clone)]
pub struct Query {
    pub model_id: i64,
    pub embedding: Embedding,
    pub exclude: Option<Hash>,
}

/// How many and which.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// At most this many images.
    pub limit: usize,
    /// Only images at least this similar.
    pub min_score: Option<f32>,
    /// Only images with a file under one of these folders (all when empty).
    pub under: Vec<PathBuf>,
    /// Readers at once; 0 means one per core for a large catalog (one per 20,000 rows).
    pub threads: usize,
}

/// What [`most_similar`] found, and what it read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The most similar images, best first (score, then hash).
    pub best: Vec<(f32, Hash)>,
    /// Embeddings read, per model id (only the query's model's were compared).
    pub read: Vec<(i64, u64)>,
}

/// Below this many rows one reader is as quick as several.
const ROWS_PER_READER: i64 = 20_000;

/// One reader's best, and what it read per model.
type Part = (TopK<Hash>, Vec<(i64, u64)>);

/// The images most similar to `q` from the catalog at `db`. `catalog` is an open
/// read-only connection to it (it reads the first part).
pub fn most_similar(
    catalog: &Catalog,
    db: &Location,
    q: &Query,
    o: &Options,
) -> Result<Found, CatalogError> {
    let Some((start, end)) = catalog.embedding_ids()? else {
        return Ok(Found::default());
    };
    let readers = if o.threads > 0 {
        o.threads as i64
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores as i64).min((end - start) / ROWS_PER_READER)
    };
    let readers = readers.min(end - start).clamp(1, 16);
    let step = (end - start + readers - 1) / readers;
    let parts: Vec<(i64, i64)> = (0..readers)
        .map(|i| (start + i * step, (start + (i + 1) * step).min(end)))
        .collect();
    let scan_part = |c: &Catalog, ids: (i64, i64)| -> Result<Part, CatalogError> {
        let mut top = TopK::new(o.limit);
        let mut read: Vec<(i64, u64)> = Vec::new();
        let scan = EmbeddingScan {
            model_id: None,
            under: o.under.clone(),
            ids: Some(ids),
        };
        let query = &q.embedding.values;
        let floor = o.min_score.unwrap_or(f32::NEG_INFINITY);
        c.scan_embeddings(&scan, |hash, model_id, e| {
            match read.iter_mut().find(|(m, _)| *m == model_id) {
                Some((_, n)) => *n += 1,
                None => read.push((model_id, 1)),
            }
            if model_id != q.model_id || e.values.len() != query.len() {
                return;
            }
            let score =
                (dot(query, e.values) as f32 * q.embedding.scale * e.scale).clamp(-1.0, 1.0);
            if score < floor || !top.admits(score) {
                return;
            }
            let Ok(hash) = Hash::try_from(hash) else {
                return;
            };
            if q.exclude != Some(hash) {
                top.push(score, hash);
            }
        })?;
        Ok((top, read))
    };
    let (top, read) = std::thread::scope(|s| -> Result<Part, CatalogError> {
        let others: Vec<_> = parts[1..]
            .iter()
            .map(|&ids| {
                s.spawn(move || {
                    let c = Catalog::open_readonly(db)?;
                    scan_part(&c, ids)
                })
            })
            .collect();
        let (mut top, mut read) = scan_part(catalog, parts[0])?;
        for h in others {
            let (t, r) = h.join().expect("a reader thread panicked")?;
            top.merge(t);
            for (m, n) in r {
                match read.iter_mut().find(|(k, _)| *k == m) {
                    Some((_, total)) => *total += n,
                    None => read.push((m, n)),
                }
            }
        }
        Ok((top, read))
    })?;
    Ok(Found {
        best: top.into_sorted(),
        read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{file, image};
    use std::path::Path;

    /// `n` images with embeddings along a fan of directions, image i at angle i degrees
    /// from image 0, under /p/{even,odd}.
    fn fan(dir: &Path, n: usize) -> (Catalog, i64) {
        let db = dir.join("c.db");
        let mut cat = Catalog::open(&db).unwrap();
        let m = cat
            .register_model("m", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        for i in 0..n {
            let a = (i as f32).to_radians();
            let mut img = image([i as u8; 32], m, &[(1, 0.5)]);
            img.embedding = Embedding::quantize(&[a.cos(), a.sin(), 0.0, 0.0]);
            w.put_image(&img).unwrap();
            let side = if i % 2 == 0 { "even" } else { "odd" };
            w.put_file(&file(
                &format!("/p/{side}/{i}.jpg"),
                root,
                [i as u8; 32],
                1,
                1,
            ))
            .unwrap();
        }
        w.commit().unwrap();
        (Catalog::open_readonly(&db).unwrap(), m)
    }

    #[test]
    fn best_first_without_itself_in_any_number_of_parts() {
        let dir = tempfile::tempdir().unwrap();
        let (cat, m) = fan(dir.path(), 90);
        let q = Query {
            model_id: m,
            embedding: Embedding::quantize(&[1.0, 0.0, 0.0, 0.0]).unwrap(),
            exclude: Some([0; 32]),
        };
        let db = dir.path().join("c.db");
        let mut o = Options {
            limit: 3,
            ..Default::default()
        };
        let found = most_similar(&cat, &db.clone().into(), &q, &o).unwrap();
        assert_eq!(found.read, [(m, 90)]);
        let one = found.best;
        let firsts: Vec<u8> = one.iter().map(|(_, h)| h[0]).collect();
        assert_eq!(firsts, [1, 2, 3]);
        assert!(one[0].0 > one[1].0 && one[1].0 > one[2].0);
        assert!((one[0].0 - 1f32.to_radians().cos()).abs() < 0.01);
        o.threads = 4;
        assert_eq!(
            most_similar(&cat, &db.clone().into(), &q, &o).unwrap().best,
            one
        );

        o.under = vec![PathBuf::from("/p/odd")];
        let odd: Vec<u8> = most_similar(&cat, &db.clone().into(), &q, &o)
            .unwrap()
            .best
            .iter()
            .map(|(_, h)| h[0])
            .collect();
        assert_eq!(odd, [1, 3, 5]);

        o.under.clear();
        o.limit = 100;
        o.min_score = Some(60f32.to_radians().cos());
        let near = most_similar(&cat, &db.clone().into(), &q, &o).unwrap().best;
        assert!((59..=60).contains(&near.len()), "{}", near.len());

        let other = Query {
            model_id: m + 1,
            ..q
        };
        let none = most_similar(&cat, &db.clone().into(), &other, &o).unwrap();
        assert!(none.best.is_empty());
        assert_eq!(none.read, [(m, 90)], "read, not compared");
    }
}
