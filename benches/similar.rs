//! `similar` and `dupes --near` on large catalogs, timed through the release binary
//! (process start included, like a person or a script runs them) with the peak RSS of each
//! run, and `similar` through the library too.
//!
//! - `similar`: N images (default 1,000,000; `SIMILAR_BENCH_IMAGES`) with generated
//!   embeddings of `SIMILAR_BENCH_DIM` dimensions (default 1280, EfficientNet-Lite0's; 512
//!   is ResNet-18's), one file each; one image is a real file, so `similar FILE` is timed
//!   as well as `similar HASH`.
//! - `dupes --near`: M images (default 100,000; `DUPES_BENCH_IMAGES`), one in fifty with a
//!   near copy (the same embedding plus noise, cosine ~0.97), the rest unrelated.
//!
//! Embeddings are drawn around 2,000 "subjects" (non-negative, sparse-ish, like pooled
//! ReLU features), so neighbours are neither all equal nor all orthogonal. Prints figures;
//! asserts only that the commands run and that the planted near copies are found.
//! `SIMILAR_BENCH_DB=path` (and `DUPES_BENCH_DB=path`) keeps the large catalog there and
//! reuses it.
//!
//! Run: `cargo build --release && cargo bench --bench similar`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phototag_light::catalog::{hex, Catalog};
use phototag_light::similar::{most_similar, Options, Query};
use phototag_light::vectors::{sketch, Embedding};

/// xorshift64*: a small deterministic generator (no dependency).
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
}

const SUBJECTS: usize = 2000;

/// Subject centres: a common part (pooled features all share one) plus a sparse own part.
fn subjects(dim: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let common: Vec<f32> = (0..dim).map(|_| rng.unit() * 0.5).collect();
    (0..SUBJECTS)
        .map(|_| {
            common
                .iter()
                .map(|c| {
                    let own = rng.unit();
                    c + if own > 0.85 { own * 3.0 } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

/// An image of a subject: its centre plus noise of `spread`.
fn around(centre: &[f32], spread: f32, rng: &mut Rng) -> Vec<f32> {
    centre
        .iter()
        .map(|c| (c + spread * (rng.unit() - 0.3)).max(0.0))
        .collect()
}

fn hash_of(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

/// A catalog of `n` images with embeddings; every `near_every`-th has a near copy (0:
/// none). Image 0 is `real_file` (its content hash), at its own path.
fn generate(db: &Path, n: usize, dim: usize, near_every: usize, real_file: Option<&Path>) {
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
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let centres = subjects(dim, &mut rng);
    let tx = conn.transaction().unwrap();
    {
        let mut img = tx
            .prepare(
                "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (?1, ?2, 3000, 'jpeg', ?3, 0)",
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
        let mut sketch = tx
            .prepare(
                "INSERT INTO sketches (id, model_id, bits) VALUES (last_insert_rowid(), ?1, ?2)",
            )
            .unwrap();
        let mut put = |i: u64, hash: [u8; 32], path: String, width: i64, e: &Embedding| {
            img.execute(rusqlite::params![hash, width, model]).unwrap();
            file.execute(rusqlite::params![path.as_bytes(), root, hash, i as i64])
                .unwrap();
            emb.execute(rusqlite::params![hash, model, e.values, f64::from(e.scale)])
                .unwrap();
            sketch
                .execute(rusqlite::params![
                    model,
                    sketch::sketch(&e.values).as_slice()
                ])
                .unwrap();
        };
        for i in 0..n as u64 {
            let subject = (rng.next() % SUBJECTS as u64) as usize;
            let features = around(&centres[subject], 1.5, &mut rng);
            let e = Embedding::quantize(&features).unwrap();
            let (hash, path) = match (i, real_file) {
                (0, Some(f)) => (
                    *blake3::hash(&std::fs::read(f).unwrap()).as_bytes(),
                    f.display().to_string(),
                ),
                _ => (
                    hash_of(i),
                    format!("/photos/{:04}/IMG_{i:07}.jpg", i / 1000),
                ),
            };
            put(i, hash, path, 4000, &e);
            if near_every > 0 && i % near_every as u64 == 0 {
                let copy = around(&features, 0.25, &mut rng);
                let e = Embedding::quantize(&copy).unwrap();
                let j = i + (1 << 40);
                put(
                    j,
                    hash_of(j),
                    format!("/photos/copies/IMG_{i:07}-small.jpg"),
                    2000,
                    &e,
                );
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    drop(conn);
    eprintln!(
        "generated {n} images ({dim} dimensions{}) in {:.1} s: {:.0} MiB, {:.2} KiB per image",
        if near_every > 0 {
            format!(", a near copy of one in {near_every}")
        } else {
            String::new()
        },
        t.elapsed().as_secs_f64(),
        std::fs::metadata(db).unwrap().len() as f64 / 1_048_576.0,
        std::fs::metadata(db).unwrap().len() as f64 / 1024.0 / n as f64,
    );
}

fn binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_phototag") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/phototag"),
    }
}

/// One run of the binary: wall time, peak RSS (MiB), stdout, exit code.
// The child is reaped by `wait4` (which also gives its peak RSS), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_once(db: &Path, args: &[&str]) -> (Duration, f64, Vec<u8>, i32) {
    let t = Instant::now();
    let mut child = Command::new(binary())
        .args(args)
        .env("PHOTOTAG_DB", db)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps our own child and fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = t.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (took, usage.ru_maxrss as f64 / 1024.0, out, code)
}

/// `runs` runs: the best and median time, the largest peak RSS, the last stdout.
fn time_binary(db: &Path, args: &[&str], runs: usize) -> (Duration, Duration, f64, Vec<u8>) {
    let mut times = Vec::new();
    let (mut rss, mut out) = (0f64, Vec::new());
    for _ in 0..runs {
        let (t, r, o, code) = run_once(db, args);
        assert!(code == 0, "{args:?} exited {code}");
        times.push(t);
        rss = rss.max(r);
        out = o;
    }
    times.sort();
    (times[0], times[times.len() / 2], rss, out)
}

/// Reads a file through the page cache without holding it.
fn warm(path: &Path) {
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = std::io::copy(&mut f, &mut std::io::sink());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED similar benchmark: run it with `cargo build --release && cargo bench --bench similar`");
        return;
    }
    let bin = binary();
    if !bin.exists() {
        eprintln!(
            "SKIPPED similar benchmark: {} is missing: run `cargo build --release`",
            bin.display()
        );
        return;
    }
    let n = env_usize("SIMILAR_BENCH_IMAGES", 1_000_000);
    let dim = env_usize("SIMILAR_BENCH_DIM", 1280);
    let m = env_usize("DUPES_BENCH_IMAGES", 100_000);
    let runs = env_usize("SIMILAR_BENCH_RUNS", 5).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("photo.jpg");
    std::fs::write(&photo, b"the one real file of the benchmark catalog").unwrap();

    if n > 0 {
        let db = match std::env::var_os("SIMILAR_BENCH_DB") {
            Some(p) => PathBuf::from(p),
            None => tmp.path().join("similar.db"),
        };
        if db.exists() {
            eprintln!("reusing {}", db.display());
        } else {
            generate(&db, n, dim, 0, Some(&photo));
        }
        // Warm the page cache as a catalog in daily use is (streamed: a child's peak RSS
        // starts from this process's, so this process must stay small).
        warm(&db);
        let query = hex(&hash_of(n as u64 / 2));
        let catalog = Catalog::open_readonly(&db).unwrap();
        // Queries: images spread over the catalog. The sketched answer is checked against
        // comparing every embedding.
        let queries: Vec<u64> = (0..20)
            .map(|k| (n as u64 / 2 + k * 49_999) % n as u64)
            .collect();
        let (mut sketched, mut exact) = (Vec::new(), Vec::new());
        let (mut same, mut found_all, mut compared) = (0, 0, 0u64);
        for (k, &i) in queries.iter().enumerate() {
            let stored = catalog.embedding(&hash_of(i)).unwrap().unwrap();
            let query = Query {
                model_id: stored.model_id,
                embedding: stored.embedding,
                exclude: Some(hash_of(i)),
            };
            let timed = |exact: bool| {
                let t = Instant::now();
                let found = most_similar(
                    &catalog,
                    &db.clone().into(),
                    &query,
                    &Options {
                        limit: 20,
                        exact,
                        ..Default::default()
                    },
                )
                .unwrap();
                (t.elapsed(), found)
            };
            let (ts, fs) = timed(false);
            sketched.push(ts);
            compared += fs.compared;
            if k < 5 {
                let (te, fe) = timed(true);
                exact.push(te);
                assert_eq!(fe.best.len(), 20);
                if fs.best == fe.best {
                    same += 1;
                }
                let wanted: std::collections::HashSet<_> = fe.best.iter().map(|b| b.1).collect();
                found_all += fs.best.iter().filter(|b| wanted.contains(&b.1)).count();
            }
        }
        sketched.sort();
        exact.sort();
        println!("similar on {n} images of {dim} dimensions:");
        println!(
            "  library, sketches then exact (20 queries)  {:>7.1} ms median, {:>7.1} max, {} compared exactly on average",
            ms(sketched[sketched.len() / 2]),
            ms(sketched[sketched.len() - 1]),
            compared / queries.len() as u64
        );
        println!(
            "  library, every embedding (5 queries)       {:>7.1} ms median",
            ms(exact[exact.len() / 2])
        );
        println!("  same 20 as every embedding: {same} of 5 queries; {found_all} of 100 photos");
        let (b, _, _, _) = time_binary(&db, &["--version"], runs);
        println!("  phototag --version (process start)    {:>7.1} ms", ms(b));
        for args in [
            vec!["similar", query.as_str()],
            vec!["similar", photo.to_str().unwrap()],
            vec!["similar", "--json", query.as_str()],
            vec!["similar", "--limit", "200", query.as_str()],
            vec!["similar", "--exact", query.as_str()],
        ] {
            let (best, median, rss, out) = time_binary(&db, &args, runs);
            let lines = out.iter().filter(|&&b| b == b'\n').count();
            println!(
                "  {:<38} {:>7.1} ms best, {:>7.1} median, peak RSS {rss:>5.1} MiB, {lines} lines",
                format!(
                    "phototag {}",
                    args.join(" ")
                        .replace(&query, "HASH")
                        .replace(photo.to_str().unwrap(), "FILE")
                ),
                ms(best),
                ms(median)
            );
        }
    }

    if m > 0 {
        let db = match std::env::var_os("DUPES_BENCH_DB") {
            Some(p) => PathBuf::from(p),
            None => tmp.path().join("dupes.db"),
        };
        if db.exists() {
            eprintln!("reusing {}", db.display());
        } else {
            generate(&db, m, dim, 50, None);
        }
        warm(&db);
        let (best, median, rss, out) =
            time_binary(&db, &["dupes", "--near", "--json"], runs.min(3));
        let groups = String::from_utf8_lossy(&out).lines().count();
        let planted = m.div_ceil(50);
        println!("dupes --near on {m} images of {dim} dimensions ({planted} planted near copies):");
        println!(
            "  phototag dupes --near --json           {:>7.1} ms best, {:>7.1} median, peak RSS {rss:>5.1} MiB, {groups} groups",
            ms(best),
            ms(median)
        );
        assert!(
            groups >= planted * 95 / 100,
            "{groups} groups for {planted} planted"
        );
    }
}
