//! Tags taught by example, speed: a catalog of N images (default 1,000,000;
//! `TAUGHT_BENCH_IMAGES`) with generated embeddings of 1,280 dimensions (EfficientNet-Lite0's;
//! `TAUGHT_BENCH_DIM`) drawn around 2,000 subjects (a shared part plus a sparse own part,
//! like pooled ReLU features). A tag is taught from 50 examples (25 of subjects 0-19, 25 of
//! others) and applied to every stored embedding through `taught::apply::fit_and_apply`,
//! the code `phototag teach` runs: fit and cross-validation, then scoring every embedding
//! (parallel row ranges) and writing the matches. Prints each part's time, the precision
//! and recall of the matches against the subjects, and a search for the tag.
//! `TAUGHT_BENCH_DB=path` keeps the catalog there and reuses it.
//!
//! Here, in the light crate, so that it builds without libtorch. The accuracy on real
//! photos is the root package's `benches/taught.rs` (it needs the model).
//!
//! Run: `cargo bench -p phototag-light --bench taught_speed`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use phototag_light::catalog::{Catalog, ExampleRow};
use phototag_light::taught::apply::fit_and_apply;
use phototag_light::taught::teach;
use phototag_light::vectors::Embedding;

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SUBJECTS: usize = 2000;
/// Subjects 0..TAUGHT are the tag's.
const TAUGHT: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn features(centres: &[Vec<f32>], subject: usize, rng: &mut Rng) -> Vec<f32> {
    centres[subject]
        .iter()
        .map(|c| (c + 1.5 * (rng.unit() - 0.3)).max(0.0))
        .collect()
}

fn hash_of(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

/// The catalog of `n` images; image i's subject is in its path.
fn generate(db: &Path, n: usize, centres: &[Vec<f32>], rng: &mut Rng) -> i64 {
    let t = Instant::now();
    let mut catalog = Catalog::open(db).unwrap();
    let model = catalog
        .register_model("efficientnet-lite0", &"0".repeat(64), "efficientnet-lite0")
        .unwrap();
    let mut w = catalog.begin().unwrap();
    let root = w.root_id(Path::new("/photos")).unwrap();
    w.commit().unwrap();
    drop(catalog);
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut img = tx
            .prepare(
                "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (?1, 4000, 3000, 'jpeg', ?2, 0)",
            )
            .unwrap();
        let mut file = tx
            .prepare(
                "INSERT INTO files (path, root_id, hash, size, mtime_ns, last_seen)
                 VALUES (?1, ?2, ?3, 3000000, ?4, 0)",
            )
            .unwrap();
        let mut emb = tx
            .prepare(
                "INSERT INTO embeddings (hash, model_id, vector, scale) VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap();
        for i in 0..n as u64 {
            let subject = rng.below(SUBJECTS);
            let e = Embedding::quantize(&features(centres, subject, rng)).unwrap();
            let hash = hash_of(i);
            let path = format!("/photos/s{subject:04}/IMG_{i:07}.jpg");
            img.execute(rusqlite::params![hash, model]).unwrap();
            file.execute(rusqlite::params![path.as_bytes(), root, hash, i as i64])
                .unwrap();
            emb.execute(rusqlite::params![hash, model, e.values, f64::from(e.scale)])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    eprintln!("generated {n} images in {:.1} s", t.elapsed().as_secs_f64());
    model
}

/// Fit from 50 examples and apply to every stored embedding.
fn speed() {
    let n = env_usize("TAUGHT_BENCH_IMAGES", 1_000_000);
    let dim = env_usize("TAUGHT_BENCH_DIM", 1280);
    let keep = std::env::var_os("TAUGHT_BENCH_DB").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let db = keep.clone().unwrap_or_else(|| tmp.path().join("taught.db"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let common: Vec<f32> = (0..dim).map(|_| rng.unit() * 0.5).collect();
    let centres: Vec<Vec<f32>> = (0..SUBJECTS)
        .map(|_| {
            common
                .iter()
                .map(|c| {
                    let own = rng.unit();
                    c + if own > 0.85 { own * 3.0 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let reuse = keep.is_some()
        && db.exists()
        && Catalog::open_readonly(&db).is_ok_and(|c| c.image_count().unwrap_or(0) == n as u64);
    let model = if reuse {
        eprintln!("reusing {}", db.display());
        Catalog::open_readonly(&db)
            .unwrap()
            .model_id(&"0".repeat(64))
            .unwrap()
            .unwrap()
    } else {
        let _ = std::fs::remove_file(&db);
        generate(&db, n, &centres, &mut rng)
    };
    let mut catalog = Catalog::open(&db).unwrap();
    // 50 examples: new images of the subjects (as `teach` would get from files).
    let mut ex_rng = Rng(42);
    let examples: Vec<ExampleRow> = (0..50u64)
        .map(|i| {
            let positive = i < 25;
            let subject = if positive {
                ex_rng.below(TAUGHT)
            } else {
                TAUGHT + ex_rng.below(SUBJECTS - TAUGHT)
            };
            ExampleRow {
                hash: hash_of(u64::MAX - i),
                positive,
                model_id: model,
                embedding: Embedding::quantize(&features(&centres, subject, &mut ex_rng)).unwrap(),
            }
        })
        .collect();
    let of = |p: bool| -> Vec<Vec<f32>> {
        examples
            .iter()
            .filter(|e| e.positive == p)
            .map(|e| e.embedding.to_f32())
            .collect()
    };
    let t = Instant::now();
    let fitted = teach("bench", "efficientnet-lite0", &of(true), &of(false)).unwrap();
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let applied = fit_and_apply(&mut catalog, "bench", model, &examples).unwrap();
    let total_s = t.elapsed().as_secs_f64();
    // Right or wrong, by subject.
    let mut right = 0usize;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT f.path FROM tags t JOIN files f ON f.hash = t.hash WHERE t.class_index = ?1",
            )
            .unwrap();
        let mut rows = stmt
            .query([phototag_light::catalog::taught_class(applied.id) as i64])
            .unwrap();
        while let Some(r) = rows.next().unwrap() {
            let p: Vec<u8> = r.get(0).unwrap();
            let s: usize = std::str::from_utf8(&p[9..13]).unwrap().parse().unwrap();
            right += usize::from(s < TAUGHT);
        }
    }
    let truth: usize = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT count(*) FROM files WHERE path < ?1",
            [format!("/photos/s{TAUGHT:04}/").as_bytes()],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize
    };
    let v = fitted.figures.validation.unwrap();
    println!("taught tag, {n} stored embeddings of {dim} dimensions, 50 examples (25 yes, 25 no):");
    println!(
        "  fit + {}-fold cross-validation: {:.3} s (CV precision {:.0}%, recall {:.0}%, threshold {:.2})",
        v.folds,
        fit_s,
        v.precision * 100.0,
        v.recall * 100.0,
        v.threshold
    );
    println!(
        "  fit_and_apply (fit, store, score {} embeddings, write {} matches): {:.2} s",
        applied.scored, applied.matches, total_s
    );
    println!(
        "  matches: precision {:.1}%, recall {:.1}% against the {truth} images of the tag's subjects",
        100.0 * right as f64 / applied.matches.max(1) as f64,
        100.0 * right as f64 / truth.max(1) as f64
    );
    let t = Instant::now();
    let q =
        phototag_light::search::Query::compile_with("bench", 0.0, &catalog.taught_names().unwrap())
            .unwrap();
    let found = catalog
        .list(&phototag_light::search::Request::new(q.compiled))
        .unwrap();
    println!(
        "  search 'bench' (every match, paths): {} files in {:.0} ms",
        found.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED taught_speed benchmark: run it with `cargo bench -p phototag-light --bench taught_speed`");
        return;
    }
    speed();
}
