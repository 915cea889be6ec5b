//! `index::run` on temporary photo folders with a seeded random ResNet-18: dedupe,
//! unchanged skip, changed files, failures, prune semantics, offline roots, resuming an
//! interrupted run, non-UTF-8 names; and a kill -9 of the real binary mid-run.

use crate::common::{self, photo};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use phototag_engine::classify::{LazyClassifier, Settings};
use phototag_engine::index::run::{self, IndexOptions};
use phototag_engine::index::{Progress, Summary, Turn};
use phototag_engine::model::{Classifier, ClassifierOptions};
use phototag_light::catalog::Catalog;
use phototag_light::exclude::ExcludeConfig;
use phototag_light::model_files::ModelStore;

fn store() -> ModelStore {
    common::random_model_store(5)
}

fn classifier() -> Classifier {
    let m = store().get("resnet18-random").unwrap();
    Classifier::load(
        &m,
        &ClassifierOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap()
}

struct Lib {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
}

fn lib() -> Lib {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let db = tmp.path().join("catalog.db");
    Lib {
        _tmp: tmp,
        root,
        db,
    }
}

fn options(roots: &[&Path], prune: bool) -> IndexOptions {
    let m = store().get("resnet18-random").unwrap();
    IndexOptions {
        roots: roots.iter().map(|r| r.to_path_buf()).collect(),
        prune,
        follow_symlinks: false,
        exclude: ExcludeConfig::default(),
        settings: Settings {
            limits: Default::default(),
            preprocess: phototag_engine::imaging::Preprocess::for_model(&m.manifest),
            batch_size: 4,
            top_k: 3,
            decode_threads: 2,
        },
    }
}

fn index_with(
    l: &Lib,
    prune: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Summary {
    let mut catalog = Catalog::open(&l.db).unwrap();
    let mut model = LazyClassifier::ready(classifier());
    run::run(
        &mut catalog,
        &mut model,
        &options(&[&l.root], prune),
        stop,
        progress,
    )
    .unwrap()
}

fn index(l: &Lib, prune: bool) -> Summary {
    index_with(l, prune, &AtomicBool::new(false), &mut |_| {})
}

fn counts(l: &Lib) -> (u64, u64, u64) {
    let s = Catalog::open_readonly(&l.db).unwrap().stats().unwrap();
    (s.files, s.images, s.failures)
}

#[test]
fn identical_copies_are_classified_once() {
    let l = lib();
    photo(&l.root.join("a.png"), 1);
    std::fs::create_dir_all(l.root.join("copies")).unwrap();
    std::fs::copy(l.root.join("a.png"), l.root.join("copies/a-copy.png")).unwrap();
    std::fs::copy(l.root.join("a.png"), l.root.join("copies/a-again.png")).unwrap();
    photo(&l.root.join("b.png"), 2);
    let s = index(&l, false);
    assert_eq!(
        (s.seen, s.new, s.duplicates, s.failed),
        (4, 2, 2, 0),
        "{s:?}"
    );
    assert_eq!(counts(&l), (4, 2, 0));
    let c = Catalog::open_readonly(&l.db).unwrap();
    let a = c.file(&l.root.join("a.png")).unwrap().unwrap();
    let copy = c.file(&l.root.join("copies/a-copy.png")).unwrap().unwrap();
    assert_eq!(a.hash, copy.hash);
    assert_eq!(c.tags(&a.hash).unwrap().len(), 3);
}

/// With two decoders, which copy of a content is claimed (and decoded) first varies; every
/// interleaving must give one image per content, a file row per copy, and copies of a
/// broken file failing with it.
#[test]
fn copies_spread_over_decoders_are_classified_once_and_fail_together() {
    for round in 0..4u32 {
        let l = lib();
        for content in 0..3u32 {
            photo(
                &l.root.join(format!("p{content}-0.png")),
                10 + content + 10 * round,
            );
        }
        let broken = b"\xff\xd8\xff\xe0 not a jpeg at all";
        for copy in 0..3 {
            std::fs::write(l.root.join(format!("x{copy}.jpg")), broken).unwrap();
        }
        // Copies sort before, between and after their originals.
        for content in 0..3u32 {
            for copy in ["a", "q", "z"] {
                std::fs::copy(
                    l.root.join(format!("p{content}-0.png")),
                    l.root.join(format!("{copy}{content}.png")),
                )
                .unwrap();
            }
        }
        let s = index(&l, false);
        assert_eq!(
            (s.seen, s.new, s.duplicates, s.failed),
            (15, 3, 9, 3),
            "round {round}: {s:?}"
        );
        assert_eq!(counts(&l), (12, 3, 3), "round {round}");
        let c = Catalog::open_readonly(&l.db).unwrap();
        for content in 0..3u32 {
            let a = c
                .file(&l.root.join(format!("a{content}.png")))
                .unwrap()
                .unwrap();
            let z = c
                .file(&l.root.join(format!("z{content}.png")))
                .unwrap()
                .unwrap();
            assert_eq!(a.hash, z.hash);
            assert_eq!(c.tags(&a.hash).unwrap().len(), 3);
        }
    }
}

#[test]
fn unchanged_files_are_skipped_and_changed_ones_rehashed() {
    let l = lib();
    for i in 0..5 {
        photo(&l.root.join(format!("p{i}.png")), 10 + i);
    }
    assert_eq!(index(&l, false).new, 5);
    let s = index(&l, false);
    assert_eq!((s.unchanged, s.new, s.duplicates), (5, 0, 0), "{s:?}");

    // New content under an old name: re-hashed and classified.
    let p = l.root.join("p0.png");
    let before = Catalog::open_readonly(&l.db)
        .unwrap()
        .file(&p)
        .unwrap()
        .unwrap();
    photo(&p, 99);
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let s = index(&l, false);
    assert_eq!((s.unchanged, s.new), (4, 1), "{s:?}");
    let after = Catalog::open_readonly(&l.db)
        .unwrap()
        .file(&p)
        .unwrap()
        .unwrap();
    assert_ne!(before.hash, after.hash);
}

#[test]
fn failures_are_recorded_and_not_retried_until_the_file_changes() {
    let l = lib();
    photo(&l.root.join("good.png"), 3);
    let bad = l.root.join("bad.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not really a jpeg").unwrap();
    let s = index(&l, false);
    assert_eq!((s.new, s.failed), (1, 1), "{s:?}");
    assert_eq!(counts(&l).2, 1);
    let s = index(&l, false);
    assert_eq!(
        (s.failed, s.known_failures, s.unchanged),
        (0, 1, 1),
        "{s:?}"
    );
    // The file is fixed: tried again, and its failure is cleared.
    photo(&bad, 4);
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&bad)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let s = index(&l, false);
    assert_eq!((s.new, s.failed, s.known_failures), (1, 0, 0), "{s:?}");
    assert_eq!(counts(&l), (2, 2, 0));
}

#[test]
fn failures_of_deleted_files_go_like_their_file_rows() {
    let l = lib();
    photo(&l.root.join("good.png"), 3);
    for i in 0..3 {
        std::fs::write(
            l.root.join(format!("bad{i}.jpg")),
            b"\xff\xd8\xff not a jpeg",
        )
        .unwrap();
    }
    index(&l, false);
    assert_eq!(counts(&l), (1, 1, 3));
    for i in 0..2 {
        std::fs::remove_file(l.root.join(format!("bad{i}.jpg"))).unwrap();
    }
    let s = index(&l, false);
    assert_eq!(s.gone, 2, "{s:?}");
    assert_eq!(counts(&l).2, 3, "without --prune nothing is removed");
    index(&l, true);
    assert_eq!(
        counts(&l),
        (1, 1, 1),
        "the failures of deleted files went with --prune"
    );
}

#[test]
fn a_file_deleted_before_it_is_read_leaves_no_failure() {
    use phototag_engine::index::execute::execute;
    use phototag_engine::index::walk::Entry;
    let l = lib();
    photo(&l.root.join("here.png"), 7);
    let entry = |name: &str| Entry {
        path: l.root.join(name),
        size: 100,
        mtime_ns: 1,
        dev: 0,
        ino: 0,
    };
    // Listed by a walk (or queued by the daemon), then deleted before it was read.
    let todo = vec![entry("here.png"), entry("deleted.png")];
    let mut catalog = Catalog::open(&l.db).unwrap();
    let mut w = catalog.begin().unwrap();
    let root_id = w.root_id(&l.root).unwrap();
    w.commit().unwrap();
    let mut model = LazyClassifier::ready(classifier());
    let roots = std::collections::HashMap::from([(l.root.clone(), root_id)]);
    let settings = options(&[&l.root], false).settings;
    let stop = AtomicBool::new(false);
    let mut progress = 0;
    let e = execute(
        &mut catalog,
        &mut model,
        todo,
        &roots,
        &settings,
        &stop,
        &mut || Turn::Classify,
        &mut |p| {
            if let Progress::Done = p {
                progress += 1;
            }
        },
    )
    .unwrap();
    assert_eq!((e.new, e.failed, progress), (1, 0, 2), "{e:?}");
    assert_eq!(counts(&l), (1, 1, 0), "no failure for a file that is gone");
}

#[test]
fn a_catalog_inside_a_root_is_not_indexed() {
    let l = lib();
    photo(&l.root.join("a.png"), 8);
    photo(&l.root.join("sub/b.png"), 9);
    let db = l.root.join("catalog.db");
    // The daemon's status record beside it, as a running daemon leaves it.
    std::fs::write(l.root.join("catalog.db.status.json"), b"{}").unwrap();
    let run = || {
        let out = std::process::Command::new(common::bin())
            .args(["-q", "index", "--model", "resnet18-random"])
            .arg(&l.root)
            .env("PHOTOTAG_MODEL_DIR", store().dir())
            .env("PHOTOTAG_DB", &db)
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run();
    // Again, with the catalog (and its -wal and -shm while it is open) in the walk's way.
    photo(&l.root.join("c.png"), 10);
    run();
    let s = Catalog::open_readonly(&db).unwrap().stats().unwrap();
    assert_eq!((s.files, s.failures), (3, 0), "{s:?}");
}

#[test]
fn gone_files_are_reported_and_removed_only_with_prune() {
    let l = lib();
    photo(&l.root.join("keep.png"), 5);
    photo(&l.root.join("drop.png"), 6);
    index(&l, false);
    std::fs::remove_file(l.root.join("drop.png")).unwrap();
    let s = index(&l, false);
    assert_eq!((s.gone, s.removed), (1, 0), "{s:?}");
    assert_eq!(counts(&l).0, 2, "without --prune nothing is removed");
    let s = index(&l, true);
    assert_eq!((s.gone, s.removed), (1, 1), "{s:?}");
    assert_eq!(counts(&l), (1, 1, 0), "the orphaned image goes too");
}

#[test]
fn a_vanished_or_emptied_root_is_offline_and_never_pruned() {
    let l = lib();
    photo(&l.root.join("x/1.png"), 7);
    photo(&l.root.join("x/2.png"), 8);
    index(&l, false);
    // Unmounted: the folder is empty (the mount point stays).
    let aside = l.root.with_file_name("aside");
    std::fs::rename(l.root.join("x"), &aside).unwrap();
    let s = index(&l, true);
    assert_eq!(s.offline_roots, vec![l.root.clone()], "{s:?}");
    assert_eq!(s.removed, 0);
    assert_eq!(counts(&l).0, 2);
    // Gone altogether.
    std::fs::remove_dir(&l.root).unwrap();
    let s = index(&l, true);
    assert_eq!(s.offline_roots, vec![l.root.clone()], "{s:?}");
    assert_eq!(counts(&l).0, 2);
    let stats = Catalog::open_readonly(&l.db).unwrap().stats().unwrap();
    assert_eq!(stats.roots[0].state, "offline");
    // Back again: everything unchanged, root online.
    std::fs::create_dir(&l.root).unwrap();
    std::fs::rename(&aside, l.root.join("x")).unwrap();
    let s = index(&l, true);
    assert_eq!(
        (s.unchanged, s.removed, s.offline_roots.len()),
        (2, 0, 0),
        "{s:?}"
    );
}

#[test]
fn an_interrupted_run_keeps_its_work_and_the_next_one_finishes() {
    let l = lib();
    for i in 0..24 {
        photo(&l.root.join(format!("{i:02}.png")), 100 + i);
    }
    let stop = AtomicBool::new(false);
    let mut done = 0;
    let s = index_with(&l, false, &stop, &mut |p| {
        if let Progress::Done = p {
            done += 1;
            if done == 6 {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    assert!(s.interrupted);
    assert!(s.new >= 6 && s.new < 24, "{s:?}");
    let first = s.new;
    assert_eq!(counts(&l).0 as usize, first, "what was done is committed");
    let s = index(&l, false);
    assert!(!s.interrupted);
    assert_eq!((s.unchanged, s.new), (first, 24 - first), "{s:?}");
    assert_eq!(counts(&l), (24, 24, 0));
}

#[test]
fn non_utf8_names_survive() {
    let l = lib();
    let name = OsStr::from_bytes(b"caf\xe9 \xff.png");
    let p = l.root.join(name);
    photo(&p, 42);
    let s = index(&l, false);
    assert_eq!(s.new, 1);
    let c = Catalog::open_readonly(&l.db).unwrap();
    let files = c.files_under(&l.root).unwrap();
    assert!(files.contains_key(&p), "{files:?}");
    let row = c.file(&p).unwrap().unwrap();
    let tags = c.tags(&row.hash).unwrap();
    let hits = c
        .search(&phototag_light::catalog::SearchQuery {
            classes: vec![tags[0].class_index],
            min_probability: 0.0,
            limit: None,
        })
        .unwrap();
    assert_eq!(
        hits[0].path.as_os_str().as_bytes(),
        p.as_os_str().as_bytes()
    );
}

#[test]
fn kill_9_mid_run_leaves_a_consistent_catalog() {
    let l = lib();
    for i in 0..120 {
        photo(&l.root.join(format!("k{i:03}.png")), 1000 + i);
    }
    let models = store().dir().to_path_buf();
    let cmd = || {
        let mut c = std::process::Command::new(common::bin());
        c.args([
            "-q",
            "index",
            "--model",
            "resnet18-random",
            "--batch-size",
            "4",
        ])
        .arg(&l.root)
        .env("PHOTOTAG_MODEL_DIR", &models)
        .env("PHOTOTAG_DB", &l.db)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .stdout(std::process::Stdio::null());
        c
    };
    let mut child = cmd().spawn().unwrap();
    // Kill once some images are committed (the writer commits about every second).
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let n = Catalog::open_readonly(&l.db)
            .ok()
            .and_then(|c| c.stats().ok())
            .map(|s| s.files)
            .unwrap_or(0);
        if n > 0 || start.elapsed().as_secs() > 60 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let conn = rusqlite::Connection::open(&l.db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let orphans: i64 = conn
        .query_row("SELECT count(*) FROM files f LEFT JOIN images i ON i.hash = f.hash WHERE i.hash IS NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0, "no file row without its image");
    let half: i64 = conn
        .query_row("SELECT count(*) FROM images i WHERE (SELECT count(*) FROM tags t WHERE t.hash = i.hash) <> 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(half, 0, "no image without all its tags");
    drop(conn);
    let before = counts(&l).0;
    assert!(
        before < 120,
        "the run was killed before it finished ({before} files)"
    );
    let st = cmd().status().unwrap();
    assert!(st.success());
    assert_eq!(
        counts(&l),
        (120, 120, 0),
        "the next run finished the work, each file once"
    );
}
