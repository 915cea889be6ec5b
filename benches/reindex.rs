//! Re-indexing an unchanged library: N files (default 100,000; `REINDEX_FILES` overrides)
//! already in the catalog, walked and compared again. Prints the walk+compare time; the
//! model is never loaded (the run would fail if it tried). Run: `cargo bench --bench reindex`.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use phototag_engine::classify::{LazyClassifier, Settings};
use phototag_engine::imaging::Preprocess;
use phototag_engine::index::run::{self, IndexOptions};
use phototag_engine::index::walk;
use phototag_light::catalog::{Catalog, NewFile, NewImage, NewTag};
use phototag_light::exclude::ExcludeConfig;

fn main() {
    // `cargo test --all-targets` runs benches too, without `--bench`: figures come from
    // `cargo bench` (release) only.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED reindex benchmark: run it with `cargo bench --bench reindex`");
        return;
    }
    let n: usize = std::env::var("REINDEX_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp
        .path()
        .join("library")
        .canonicalize()
        .unwrap_or_else(|_| {
            std::fs::create_dir_all(tmp.path().join("library")).unwrap();
            tmp.path().join("library").canonicalize().unwrap()
        });
    let t = Instant::now();
    for i in 0..n {
        let dir = root.join(format!("{:04}/{:02}", i / 1000, (i / 50) % 20));
        if i % 50 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("IMG_{i:06}.jpg")), i.to_le_bytes()).unwrap();
    }
    eprintln!("created {n} files in {:.1} s", t.elapsed().as_secs_f64());

    // Fill the catalog as a first run would have.
    let db = tmp.path().join("catalog.db");
    let mut catalog = Catalog::open(&db).unwrap();
    let model_id = catalog
        .register_model("bench", &"0".repeat(64), "resnet18")
        .unwrap();
    let excluder = phototag_light::exclude::Excluder::new(&ExcludeConfig::default()).unwrap();
    let walked = walk::walk(&root, &excluder, false, &AtomicBool::new(false)).unwrap();
    assert_eq!(walked.files.len(), n);
    let t = Instant::now();
    let mut w = catalog.begin().unwrap();
    let root_id = w.root_id(&root).unwrap();
    for (i, e) in walked.files.iter().enumerate() {
        let hash = *blake3::hash(&i.to_le_bytes()).as_bytes();
        w.put_image(&NewImage {
            hash,
            width: 4000,
            height: 3000,
            format: "jpeg".into(),
            model_id,
            classified_at: 0,
            tags: (1..=3)
                .map(|r| NewTag {
                    rank: r,
                    class_index: (i * 7 + r as usize) % 1000,
                    label: "x".into(),
                    probability: 0.5,
                })
                .collect(),
            embedding: None,
        })
        .unwrap();
        w.put_file(&NewFile {
            path: e.path.clone(),
            root_id,
            hash,
            size: e.size,
            mtime_ns: e.mtime_ns,
            seen: 0,
        })
        .unwrap();
    }
    w.commit().unwrap();
    catalog.checkpoint().unwrap();
    let db_size = std::fs::metadata(&db).unwrap().len();
    eprintln!("catalog filled in {:.1} s", t.elapsed().as_secs_f64());

    let opts = IndexOptions {
        roots: vec![root.clone()],
        prune: false,
        follow_symlinks: false,
        exclude: ExcludeConfig::default(),
        settings: Settings {
            limits: Default::default(),
            preprocess: Preprocess::imagenet(),
            batch_size: 8,
            top_k: 3,
            decode_threads: 0,
        },
    };
    for pass in 1..=2 {
        let mut model = LazyClassifier::new(|| {
            Err(anyhow::anyhow!(
                "the model must not be needed for an unchanged library"
            ))
        });
        let t = Instant::now();
        let s = run::run(
            &mut catalog,
            &mut model,
            &opts,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!((s.unchanged, s.new), (n, 0));
        println!(
            "reindex unchanged, pass {pass}: {n} files in {secs:.2} s ({:.0} files/s)",
            n as f64 / secs
        );
    }
    println!(
        "catalog size: {:.1} MiB for {n} images ({:.0} KiB per 1,000)",
        db_size as f64 / 1048576.0,
        db_size as f64 / 1024.0 / (n as f64 / 1000.0)
    );
}
