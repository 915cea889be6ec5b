//! Search on a large catalog: generates N images (default 1,000,000; `SEARCH_BENCH_IMAGES`
//! overrides), 3 tags each, one file each plus a copy of every 50th, then times typical
//! queries through the release binary (process start included, output to a pipe that is
//! read and dropped) and through the library (the query alone). Prints figures; asserts
//! only that the queries run. `SEARCH_BENCH_DB=path` keeps the generated catalog there and
//! reuses it on the next run.
//!
//! Then the same on PostgreSQL: the SQLite catalog is copied with `phototag catalog copy`
//! (timed) into a server the bench starts itself (`catalog::test_server`, Debian's
//! PostgreSQL with its default settings), or into `SEARCH_BENCH_PG=postgresql://...` (kept:
//! a database that already holds the images is reused), and the queries are timed again
//! through the binary with `PHOTOTAG_DB` set to the URL. `SEARCH_BENCH_PG=off` skips it.
//!
//! Run: `cargo build --release && cargo bench --bench search`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phototag_light::catalog::{redact, test_server, Catalog, PgTarget};
use phototag_light::search::{Query, Request};

/// A content hash, and its three tags (class, probability).
type Hash = [u8; 32];
type Tags = [(usize, f32); 3];

const QUERIES: [&str; 3] = ["dog", "dog AND NOT cat", "animal>0.3"];

/// splitmix64: a small deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// Fills an empty catalog with `n` images: a "true" class uniform over the 1000, ranks 2
/// and 3 from neighbouring classes (ImageNet's order keeps kinds together, as a classifier's
/// runners-up do), probabilities decreasing; paths by month over 15 years.
fn generate(db: &Path, n: usize) {
    let t = Instant::now();
    let mut catalog = Catalog::open(db).unwrap();
    let model = catalog
        .register_model("resnet18", &"0".repeat(64), "resnet18")
        .unwrap();
    let mut w = catalog.begin().unwrap();
    let root = w.root_id(Path::new("/photos")).unwrap();
    w.commit().unwrap();
    drop(catalog);

    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .unwrap();
    // Bulk load without the secondary indexes, then build them as the migration defines them.
    let indexes: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
    let classes = phototag_light::labels::imagenet();
    let mut rng = Rng(42);
    let mut images: Vec<(Hash, Tags)> = (0..n)
        .map(|i| {
            let hash = *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
            let c1 = (rng.next() % 1000) as usize;
            let near = |rng: &mut Rng, not: &[usize]| loop {
                let d = (rng.next() % 41) as i64 - 20;
                let c = (c1 as i64 + d).clamp(0, 999) as usize;
                if !not.contains(&c) {
                    return c;
                }
            };
            let c2 = near(&mut rng, &[c1]);
            let c3 = near(&mut rng, &[c1, c2]);
            let p1 = rng.f32(0.2, 0.98);
            let p2 = (1.0 - p1) * rng.f32(0.3, 0.7);
            let p3 = (1.0 - p1 - p2) * rng.f32(0.3, 0.7);
            (hash, [(c1, p1), (c2, p2), (c3, p3)])
        })
        .collect();
    let paths: Vec<(String, [u8; 32], i64)> = {
        let month_of = |i: usize| i * 180 / n.max(1);
        let mut v: Vec<(String, [u8; 32], i64)> = images
            .iter()
            .enumerate()
            .map(|(i, (hash, _))| {
                let m = month_of(i);
                let (year, month) = (2010 + m / 12, m % 12 + 1);
                // Unix time of the 1st of that month, roughly, plus a few days.
                let mtime = ((year as i64 - 1970) * 365 + (year as i64 - 1969) / 4) * 86_400
                    + (month as i64 - 1) * 30 * 86_400
                    + (i % 25) as i64 * 86_400;
                let path = format!("/photos/{year}/{month:02}/IMG_{i:07}.jpg");
                (path, *hash, mtime * 1_000_000_000)
            })
            .collect();
        for i in (0..n).step_by(50) {
            v.push((format!("/photos/backup/IMG_{i:07}.jpg"), v[i].1, v[i].2));
        }
        v
    };
    images.sort_unstable_by_key(|a| a.0);

    let tx = conn.transaction().unwrap();
    {
        let mut img = tx
            .prepare(
                "INSERT INTO images (hash, width, height, format, model_id, classified_at)
                 VALUES (?1, 4000, 3000, 'jpeg', ?2, 0)",
            )
            .unwrap();
        let mut tag = tx
            .prepare(
                "INSERT INTO tags (hash, rank, class_index, label, probability)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for (hash, tags) in &images {
            img.execute(rusqlite::params![hash, model]).unwrap();
            for (r, &(c, p)) in tags.iter().enumerate() {
                tag.execute(rusqlite::params![
                    hash,
                    r as i64 + 1,
                    c as i64,
                    classes[c].name,
                    f64::from(p)
                ])
                .unwrap();
            }
        }
        let mut file = tx
            .prepare(
                "INSERT INTO files (path, root_id, hash, size, mtime_ns, last_seen)
                 VALUES (?1, ?2, ?3, 3000000, ?4, 0)",
            )
            .unwrap();
        for (path, hash, mtime) in &paths {
            file.execute(rusqlite::params![path.as_bytes(), root, hash, mtime])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    for (_, sql) in &indexes {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    drop(conn);
    eprintln!(
        "generated {n} images, {} files in {:.1} s: {:.0} MiB",
        paths.len(),
        t.elapsed().as_secs_f64(),
        std::fs::metadata(db).unwrap().len() as f64 / 1_048_576.0
    );
}

fn binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_phototag") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/phototag"),
    }
}

/// Runs the binary `runs` times; the fastest and the median wall time, and stdout's size.
fn time_binary(db: &std::ffi::OsStr, args: &[&str], runs: usize) -> (Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(binary())
            .args(args)
            .env("PHOTOTAG_DB", db)
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        times.push(t.elapsed());
        assert!(
            out.status.code().unwrap_or(99) <= 1,
            "{args:?}: {:?}",
            out.status
        );
        bytes = out.stdout.len();
    }
    times.sort();
    (times[0], times[times.len() / 2], bytes)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo test --all-targets` runs benches too, without `--bench`: figures come from
    // `cargo bench` (release) only.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED search benchmark: run it with `cargo build --release && cargo bench --bench search`");
        return;
    }
    let n: usize = std::env::var("SEARCH_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("SEARCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let tmp = tempfile::tempdir().unwrap();
    let db = match std::env::var_os("SEARCH_BENCH_DB") {
        Some(p) => PathBuf::from(p),
        None => tmp.path().join("catalog.db"),
    };
    if db.exists() {
        eprintln!("reusing {}", db.display());
    } else {
        generate(&db, n);
    }
    // Opening for writing applies migrations; the writer keeps the class lists up to date,
    // as `phototag index` and the daemon do.
    let t = Instant::now();
    let r = Catalog::open(&db)
        .unwrap()
        .refresh_class_lists(None)
        .unwrap();
    eprintln!(
        "search lists: {} rebuilt in {:.1} s",
        r.rebuilt,
        t.elapsed().as_secs_f64()
    );
    // Warm the page cache as a catalog in daily use is.
    let _ = std::fs::read(&db);

    println!("in-process (library: parse, open, search; no output), best of {runs}:");
    for q in QUERIES {
        for (label, limit) in [("all", None), ("--limit 20", Some(20))] {
            let mut best = Duration::MAX;
            let mut count = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let query = Query::compile(q, 0.0).unwrap();
                let catalog = Catalog::open_readonly(&db).unwrap();
                let mut r = Request::new(query.compiled);
                r.limit = limit;
                count = catalog.find(&r).unwrap().len();
                best = best.min(t.elapsed());
            }
            println!(
                "  {q:<18} {label:<11} {:>8.1} ms  {count:>8} files",
                ms(best)
            );
        }
    }

    let bin = binary();
    if !bin.exists() {
        println!(
            "{} is missing: run `cargo build --release` for the process timings",
            bin.display()
        );
        return;
    }
    println!(
        "{} (process start included), best / median of {runs}:",
        bin.display()
    );
    time_queries(db.as_os_str(), runs, true);
    match std::env::var("SEARCH_BENCH_PG").ok().as_deref() {
        Some("off") => {}
        Some(url) => postgres(&db, url, n, runs),
        None => match test_server::Server::start() {
            Ok(server) => {
                let pg = server.database("search_bench").unwrap();
                postgres(&db, &pg.url, n, runs);
            }
            Err(e) => println!("SKIPPED search benchmark on PostgreSQL: no server: {e}"),
        },
    }
}

/// The typical queries through the binary on catalog `db` (a path or a URL).
fn time_queries(db: &std::ffi::OsStr, runs: usize, start_alone: bool) {
    if start_alone {
        let (best, median, _) = time_binary(db, &["--version"], runs);
        println!(
            "  {:<30} {:>8.1} / {:>6.1} ms   (process start alone)",
            "phototag --version",
            ms(best),
            ms(median)
        );
    }
    for q in QUERIES {
        for extra in [&[][..], &["--count"], &["--limit", "20"]] {
            let mut args = vec!["search"];
            args.extend_from_slice(extra);
            args.push(q);
            let (best, median, bytes) = time_binary(db, &args, runs);
            println!(
                "  {:<30} {:>8.1} / {:>6.1} ms   {bytes:>9} bytes out",
                format!(
                    "search {}{q}",
                    extra.iter().map(|a| format!("{a} ")).collect::<String>()
                ),
                ms(best),
                ms(median)
            );
        }
    }
}

/// The SQLite catalog `db` copied to the PostgreSQL database `url` (unless it holds `n`
/// images already), and the queries timed there.
fn postgres(db: &Path, url: &str, n: usize, runs: usize) {
    let images = Catalog::open_readonly(PgTarget::new(url))
        .and_then(|c| c.image_count())
        .unwrap_or(0);
    if images as usize != n {
        let t = Instant::now();
        let out = Command::new(binary())
            .args(["catalog", "copy", "--from"])
            .arg(db)
            .args(["--to", url])
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "catalog copy: {out:?}");
        println!(
            "PostgreSQL: `phototag catalog copy` of {n} images in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("PostgreSQL: reusing the {n} images at {}", redact(url));
    }
    println!(
        "PostgreSQL {} (process start included), best / median of {runs}:",
        redact(url)
    );
    time_queries(std::ffi::OsStr::new(url), runs, false);
}
