//! Indexing throughput on a shared PostgreSQL catalog: one worker against two, on the same
//! photos. Each run starts from an empty database on a server the bench starts itself
//! (`catalog::test_server`); every worker is a `phototag-engine index --json` process of its
//! own, with a host name of its own, indexing the same folder; the run lasts until the last
//! worker exits. Printed: wall time, photos classified per second (all workers together),
//! how many each classified (their sum must be the number of photos: each content once).
//!
//! Two layouts: every worker free to use every core (two workers on one machine compete
//! for it), and each worker pinned to one core of its own (`taskset`), as workers on two
//! hosts would be, against one worker on one core.
//!
//! Photos: `WORKERS_BENCH_DIR=DIR` (e.g. made by `cargo run --release --example photos_12mp
//! -- --count 200 DIR`); the model: `WORKERS_BENCH_MODEL` (default `efficientnet-lite0`)
//! in the usual models folder. Without them the bench says `SKIPPED` and how to get them.
//!
//! Run: `cargo build --release && cargo bench --bench workers`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use phototag_light::catalog::test_server::Server;

fn engine() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/phototag-engine")
}

fn skip(why: &str) {
    println!("SKIPPED workers benchmark: {why}");
}

/// One worker: `index --json DIR` as `host`, pinned to `core` when given.
fn spawn(
    url: &str,
    config_dir: &Path,
    host: &str,
    core: Option<usize>,
    model: &str,
    dir: &Path,
) -> Child {
    let config = config_dir.join(format!("{host}.toml"));
    std::fs::write(&config, format!("[postgresql]\nhost_name = \"{host}\"\n")).unwrap();
    let mut c = match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string()]).arg(engine());
            c
        }
        None => Command::new(engine()),
    };
    c.args(["index", "--json", "--model", model])
        .arg(dir)
        .env("PHOTOTAG_CONFIG", &config)
        .env("PHOTOTAG_DB", url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c.spawn().unwrap()
}

/// One run of `cores.len()` workers on an empty database: (seconds, classified by each).
fn run(server: &Server, cores: &[Option<usize>], model: &str, dir: &Path) -> (f64, Vec<u64>) {
    let db = server.database("workers_bench").unwrap();
    // The schema first, so that the workers start together.
    phototag_light::catalog::Catalog::open(phototag_light::catalog::PgTarget::new(&db.url))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let children: Vec<Child> = cores
        .iter()
        .enumerate()
        .map(|(i, core)| {
            spawn(
                &db.url,
                tmp.path(),
                &format!("worker-{i}"),
                *core,
                model,
                dir,
            )
        })
        .collect();
    let news: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["new"].as_u64().unwrap()
        })
        .collect();
    (t.elapsed().as_secs_f64(), news)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED workers benchmark: run it with `cargo build --release && cargo bench --bench workers`");
        return;
    }
    let Some(dir) = std::env::var_os("WORKERS_BENCH_DIR").map(PathBuf::from) else {
        return skip("set WORKERS_BENCH_DIR to a folder of photos (`cargo run --release --example photos_12mp -- --count 200 DIR` makes one)");
    };
    let photos = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    if photos == 0 {
        return skip(&format!("{} holds no photos", dir.display()));
    }
    if !engine().exists() {
        return skip(&format!(
            "{} is missing: run `cargo build --release`",
            engine().display()
        ));
    }
    let model =
        std::env::var("WORKERS_BENCH_MODEL").unwrap_or_else(|_| "efficientnet-lite0".into());
    let server = match Server::start() {
        Ok(s) => s,
        Err(e) => return skip(&format!("no PostgreSQL server: {e}")),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{photos} photos in {}, model {model}, {cores} cores",
        dir.display()
    );
    let mut layouts: Vec<(&str, Vec<Option<usize>>)> = vec![
        ("1 worker, every core", vec![None]),
        ("2 workers, every core", vec![None, None]),
    ];
    if cores >= 2 {
        layouts.push(("1 worker on 1 core", vec![Some(0)]));
        layouts.push(("2 workers, 1 core each", vec![Some(0), Some(1)]));
    }
    for (label, layout) in layouts {
        let (secs, news) = run(&server, &layout, &model, &dir);
        let total: u64 = news.iter().sum();
        println!(
            "  {label:<24} {secs:>7.1} s  {:>6.2} photos/s  classified {news:?} (sum {total})",
            total as f64 / secs
        );
        assert_eq!(total as usize, photos, "each content classified once");
    }
}
