//! "More like this" and near copies over the catalog's stored embeddings.
//!
//! [`most_similar`] on a small catalog (or under folders, or when asked for `exact`) reads
//! every stored embedding of one model once, front to back, in as many parts as there are
//! cores (each part its own read-only connection and row-id range), scores each against
//! the query on its bytes, and keeps the best in a bounded heap: memory stays that of a
//! few rows whatever the size of the catalog.
//!
//! On a large catalog it reads the embeddings' 256-bit sketches instead (~40 bytes a row
//! against ~1.3 KB: a million in a tenth of a second), keeps the few thousand closest in
//! Hamming distance, and compares those exactly. Then it checks its answer: a photo as
//! similar as the last one listed (or as `min_score`) would have a sketch within
//! `expected + 3.5 standard deviations` of the query's ([`sketch::expected_distance`]);
//! when that reaches past the candidates, every row that close (counted while scanning)
//! is compared too, or, when that is too many, every embedding. So the answer is the exact
//! one except with a probability of the order of 1 in 4,000 per listed photo, and the
//! work is a sketch scan plus a few thousand row reads when the best matches are clear.
//! `dupes` groups near copies.
//!
//! May not: write to the catalog, or hold all embeddings in memory (`dupes` holds those
//! it groups, ~1.3 KB each, and says so).

pub mod dupes;

use std::path::PathBuf;

use crate::catalog::readers::{in_parts, parts};
use crate::catalog::{Catalog, CatalogError, EmbeddingScan, Hash, Location};
use crate::vectors::sketch::{self, Sketch};
use crate::vectors::top::TopK;
use crate::vectors::{Embedding, EmbeddingRef};

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
    /// Compare every stored embedding (no sketches).
    pub exact: bool,
}

/// What [`most_similar`] found, and what it read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The most similar images, best first (score, then hash).
    pub best: Vec<(f32, Hash)>,
    /// Embeddings read, per model id (only the query's model's were compared).
    pub read: Vec<(i64, u64)>,
    /// Embeddings compared exactly.
    pub compared: u64,
    /// Whether sketches chose what to compare (false: every embedding was).
    pub sketched: bool,
}

/// Up to this many stored embeddings, every one is compared (quick enough: ~0.1 s).
pub const EXACT_UP_TO: i64 = 50_000;

/// Candidates the sketches propose at least.
const CANDIDATES: usize = 4096;

/// Standard deviations of sketch distance a true match may lie beyond the expected one.
const MARGIN_SD: f64 = 3.5;

/// Past this many rows within the distance bound, comparing every embedding is as quick.
const MOST_RECHECKED: u64 = 200_000;

/// One reader's best, and what it read per model.
type Part = (TopK<Hash>, Vec<(i64, u64)>);

/// Adds `n` rows of `model` to per-model counts.
fn count(read: &mut Vec<(i64, u64)>, model: i64, n: u64) {
    match read.iter_mut().find(|(m, _)| *m == model) {
        Some((_, total)) => *total += n,
        None => read.push((model, n)),
    }
}

/// Scores stored embeddings against the query, keeping the best `limit` at or above
/// `min_score`, leaving out other models' and the excluded content.
struct Scorer<'a> {
    q: &'a Query,
    floor: f32,
    top: TopK<Hash>,
    compared: u64,
}

impl<'a> Scorer<'a> {
    fn new(q: &'a Query, o: &Options) -> Self {
        Scorer {
            q,
            floor: o.min_score.unwrap_or(f32::NEG_INFINITY),
            top: TopK::new(o.limit),
            compared: 0,
        }
    }

    fn score(&mut self, hash: &[u8], e: EmbeddingRef<'_>) {
        let query = &self.q.embedding.values;
        if e.values.len() != query.len() {
            return;
        }
        self.compared += 1;
        let score = self.q.embedding.as_ref().cosine(&e);
        if score < self.floor || !self.top.admits(score) {
            return;
        }
        let Ok(hash) = Hash::try_from(hash) else {
            return;
        };
        if self.q.exclude != Some(hash) {
            self.top.push(score, hash);
        }
    }
}

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
    if o.exact || !o.under.is_empty() || end - start <= EXACT_UP_TO || o.limit == 0 {
        return every(catalog, db, q, o, (start, end));
    }
    let wanted = CANDIDATES.max(o.limit.saturating_mul(64));
    sketched(catalog, db, q, o, (start, end), wanted)
}

/// Compares every stored embedding.
fn every(
    catalog: &Catalog,
    db: &Location,
    q: &Query,
    o: &Options,
    (start, end): (i64, i64),
) -> Result<Found, CatalogError> {
    let scan_part = |c: &Catalog, ids: (i64, i64)| -> Result<(Part, u64), CatalogError> {
        let mut scorer = Scorer::new(q, o);
        let mut read: Vec<(i64, u64)> = Vec::new();
        let scan = EmbeddingScan {
            model_id: None,
            under: o.under.clone(),
            ids: Some(ids),
        };
        c.scan_embeddings(&scan, |hash, model_id, e| {
            count(&mut read, model_id, 1);
            if model_id == q.model_id {
                scorer.score(hash, e);
            }
        })?;
        Ok(((scorer.top, read), scorer.compared))
    };
    let mut top = TopK::new(o.limit);
    let mut read = Vec::new();
    let mut compared = 0;
    for ((t, r), n) in in_parts(catalog, db, &parts(start, end, o.threads), scan_part)? {
        top.merge(t);
        r.into_iter().for_each(|(m, n)| count(&mut read, m, n));
        compared += n;
    }
    Ok(Found {
        best: top.into_sorted(),
        read,
        compared,
        sketched: false,
    })
}

/// What one reader of sketches found: the closest rows (score = minus the distance,
/// key = row id), how many rows lie at each distance, rows read per model.
type SketchPart = (TopK<i64>, [u64; sketch::BITS + 1], Vec<(i64, u64)>);

/// Proposes candidates by sketch, compares them, and widens as the check requires.
fn sketched(
    catalog: &Catalog,
    db: &Location,
    q: &Query,
    o: &Options,
    (start, end): (i64, i64),
    wanted: usize,
) -> Result<Found, CatalogError> {
    let mine: Sketch = sketch::sketch(&q.embedding.values);
    let ranges = parts(start, end, o.threads);
    let scan_part = |c: &Catalog, ids: (i64, i64)| -> Result<SketchPart, CatalogError> {
        let mut near = TopK::new(wanted);
        let mut histogram = [0u64; sketch::BITS + 1];
        let mut read = Vec::new();
        c.scan_sketches(ids, |id, model_id, bits| {
            count(&mut read, model_id, 1);
            if model_id != q.model_id {
                return;
            }
            let d = sketch::distance(&mine, bits);
            histogram[d as usize] += 1;
            let score = -(d as f32);
            if near.admits(score) {
                near.push(score, id);
            }
        })?;
        Ok((near, histogram, read))
    };
    let mut near = TopK::new(wanted);
    let mut histogram = [0u64; sketch::BITS + 1];
    let mut read = Vec::new();
    for (t, h, r) in in_parts(catalog, db, &ranges, scan_part)? {
        near.merge(t);
        histogram.iter_mut().zip(h).for_each(|(a, b)| *a += b);
        r.into_iter().for_each(|(m, n)| count(&mut read, m, n));
    }
    let of_model: u64 = histogram.iter().sum();
    let candidates = near.into_sorted();
    // Every row of the model at a distance below `reach` is among the candidates.
    let reach = if (candidates.len() as u64) < of_model {
        candidates.last().map_or(0, |(s, _)| (-s) as usize)
    } else {
        sketch::BITS + 1
    };
    let mut ids: Vec<i64> = candidates.into_iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    let mut scorer = Scorer::new(q, o);
    catalog.embeddings_by_id(&ids, |_, hash, e| scorer.score(hash, e))?;

    // The least score a listed photo may have, and the distance within which a photo that
    // similar lies (but for a chance of ~1 in 4,000).
    let least = match scorer.top.floor() {
        Some(f) => f.max(scorer.floor),
        None => scorer.floor,
    };
    let bound = if least.is_finite() {
        let (mean, sd) = sketch::expected_distance(least);
        ((mean + MARGIN_SD * sd).ceil() as usize).min(sketch::BITS)
    } else {
        sketch::BITS
    };
    if bound < reach {
        return Ok(Found {
            best: scorer.top.into_sorted(),
            read,
            compared: scorer.compared,
            sketched: true,
        });
    }
    let within: u64 = histogram[..=bound].iter().sum();
    if within > MOST_RECHECKED {
        tracing::debug!(
            bound,
            within,
            "similar: matches not clear; comparing every embedding"
        );
        return every(catalog, db, q, o, (start, end));
    }
    // Read the sketches again for the rows within the bound not yet compared.
    tracing::debug!(
        bound,
        within,
        "similar: comparing every row within the bound"
    );
    let done: std::collections::HashSet<i64> = ids.into_iter().collect();
    let more = in_parts(catalog, db, &ranges, |c, r| {
        let mut out = Vec::new();
        c.scan_sketches(r, |id, model_id, bits| {
            if model_id == q.model_id
                && sketch::distance(&mine, bits) as usize <= bound
                && !done.contains(&id)
            {
                out.push(id);
            }
        })?;
        Ok(out)
    })?;
    let more: Vec<i64> = more.into_iter().flatten().collect();
    catalog.embeddings_by_id(&more, |_, hash, e| scorer.score(hash, e))?;
    Ok(Found {
        best: scorer.top.into_sorted(),
        read,
        compared: scorer.compared,
        sketched: true,
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

    /// `clusters` groups of `per` images of 64 dimensions around random non-negative
    /// centres (like pooled features), images hashed by index.
    fn clustered(dir: &Path, clusters: usize, per: usize) -> (Catalog, i64, Vec<Embedding>) {
        let db = dir.join("c.db");
        let mut cat = Catalog::open(&db).unwrap();
        let m = cat
            .register_model("m", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        let mut all = Vec::new();
        for c in 0..clusters {
            let centre: Vec<f32> = (0..64).map(|_| unit().powi(3) * 4.0 + 0.3).collect();
            for k in 0..per {
                let i = c * per + k;
                let x: Vec<f32> = centre.iter().map(|v| (v + unit() - 0.4).max(0.0)).collect();
                let hash = crate::catalog::hash_bytes(&(i as u64).to_le_bytes());
                let mut img = image(hash, m, &[(1, 0.5)]);
                img.embedding = Embedding::quantize(&x);
                all.push(img.embedding.clone().unwrap());
                w.put_image(&img).unwrap();
                w.put_file(&file(&format!("/p/{i}.jpg"), root, hash, 1, 1))
                    .unwrap();
            }
        }
        w.commit().unwrap();
        (Catalog::open_readonly(&db).unwrap(), m, all)
    }

    #[test]
    fn sketches_give_the_answer_comparing_every_embedding_gives() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let (cat, m, all) = clustered(dir.path(), 40, 25);
        let range = cat.embedding_ids().unwrap().unwrap();
        let mut clear = 0;
        for (qi, limit, min_score) in [
            (0, 5, None),
            (333, 10, None),
            (999, 3, Some(0.9)),
            (500, 20, Some(0.5)),
            (7, 60, None),
        ] {
            let q = Query {
                model_id: m,
                embedding: all[qi].clone(),
                exclude: Some(crate::catalog::hash_bytes(&(qi as u64).to_le_bytes())),
            };
            let o = Options {
                limit,
                min_score,
                ..Default::default()
            };
            let exact = every(&cat, &db.clone().into(), &q, &o, range).unwrap();
            assert_eq!(exact.compared, 1000);
            assert!(!exact.sketched);
            // Few candidates, so that the check must widen now and then.
            for wanted in [40, 200] {
                let found = sketched(&cat, &db.clone().into(), &q, &o, range, wanted).unwrap();
                assert!(found.sketched);
                assert_eq!(
                    found.best, exact.best,
                    "query {qi}, limit {limit}, {wanted}"
                );
                assert_eq!(found.read, exact.read);
                if found.compared < 1000 {
                    clear += 1;
                }
            }
        }
        assert!(
            clear >= 5,
            "clear matches need not compare everything: {clear}"
        );
        // Through the entry point: a small catalog is compared exactly.
        let q = Query {
            model_id: m,
            embedding: all[0].clone(),
            exclude: None,
        };
        let o = Options {
            limit: 5,
            ..Default::default()
        };
        assert!(
            !most_similar(&cat, &db.clone().into(), &q, &o)
                .unwrap()
                .sketched
        );
    }
}
