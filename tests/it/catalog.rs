//! The SQLite catalog: migrations and versions, paths as bytes, shared content, retag,
//! failures, removal, search, reader isolation under WAL, stats, and size on disk.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use phototag_light::catalog::fixtures;
use phototag_light::catalog::{
    Catalog, CatalogError, Hash, NewFile, NewImage, NewTag, SearchQuery, SCHEMA_VERSION,
};

fn h(n: u32) -> Hash {
    phototag_light::catalog::hash_bytes(&n.to_le_bytes())
}

fn tags(t: &[(usize, &str, f32)]) -> Vec<NewTag> {
    fixtures::ranked(t)
}

fn image(hash: Hash, model_id: i64, t: &[(usize, &str, f32)]) -> NewImage {
    NewImage {
        width: 640,
        height: 480,
        format: "jpeg".into(),
        classified_at: 1_700_000_000,
        ..fixtures::image_tagged(hash, model_id, tags(t))
    }
}

fn file(path: &Path, root_id: i64, hash: Hash) -> NewFile {
    NewFile {
        path: path.to_path_buf(),
        root_id,
        hash,
        size: 12345,
        mtime_ns: 1_600_000_000_000_000_000,
        seen: 1_700_000_000,
    }
}

/// A fresh catalog in a temporary folder, with one model and one root registered.
fn fresh() -> (tempfile::TempDir, Catalog, i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("catalog.db")).unwrap();
    let model = cat
        .register_model("resnet18", "f37072fd00", "resnet18")
        .unwrap();
    let mut w = cat.begin().unwrap();
    let root = w.root_id(Path::new("/p")).unwrap();
    w.commit().unwrap();
    (dir, cat, model, root)
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn user_version(path: &Path) -> u32 {
    raw(path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn migrations_apply_once_and_record_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/catalog.db");
    let mut cat = Catalog::open(&path).unwrap();
    assert_eq!(cat.path(), path);
    assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let m = cat.register_model("m", "aa", "resnet18").unwrap();
    let mut w = cat.begin().unwrap();
    let r = w.root_id(Path::new("/p")).unwrap();
    w.put_image(&image(h(1), m, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_file(&file(Path::new("/p/a.jpg"), r, h(1))).unwrap();
    w.commit().unwrap();
    drop(cat);

    // Reopening applies nothing again and keeps the rows.
    let cat = Catalog::open(&path).unwrap();
    assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(cat.file(Path::new("/p/a.jpg")).unwrap().is_some());
    let tables: Vec<String> = raw(&path)
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "album_links",
            "albums",
            "class_lists",
            "embeddings",
            "failures",
            "files",
            "images",
            "models",
            "roots",
            "sketches",
            "tags"
        ]
    );
    let ro = Catalog::open_readonly(&path).unwrap();
    assert_eq!(ro.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn wal_mode_is_on() {
    let (dir, _cat, _, _) = fresh();
    let mode: String = raw(&dir.path().join("catalog.db"))
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_catalog_is_refused_and_left_alone() {
    let (dir, cat, _, _) = fresh();
    drop(cat);
    let path = dir.path().join("catalog.db");
    let newer = SCHEMA_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();
    for result in [Catalog::open(&path), Catalog::open_readonly(&path)] {
        let err = result.unwrap_err();
        match &err {
            CatalogError::TooNew {
                found, supported, ..
            } => assert_eq!((*found, *supported), (newer, SCHEMA_VERSION)),
            other => panic!("expected TooNew, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("newer phototag"), "{msg}");
        assert!(msg.contains("upgrade phototag"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
    assert_eq!(user_version(&path), newer);
}

#[test]
fn readonly_needs_an_indexed_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let err = Catalog::open_readonly(&path).unwrap_err();
    assert!(matches!(err, CatalogError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("phototag index"), "{err}");
    assert!(!path.exists(), "open_readonly created the file");

    // An empty SQLite file (never migrated) is no catalog either.
    std::fs::write(&path, b"").unwrap();
    let err = Catalog::open_readonly(&path).unwrap_err();
    assert!(matches!(err, CatalogError::Missing { .. }), "{err:?}");

    // Not SQLite at all: a clear error naming the file, from both opens.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    for result in [Catalog::open_readonly(&junk), Catalog::open(&junk)] {
        let err = result.unwrap_err();
        assert!(matches!(err, CatalogError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("junk.db"), "{err}");
    }
}

#[test]
fn non_utf8_paths_round_trip() {
    let (_dir, mut cat, model, root) = fresh();
    let path = Path::new(OsStr::from_bytes(b"/p/caf\xe9.jpg"));
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(207, "golden retriever", 0.8)]))
        .unwrap();
    w.put_file(&file(path, root, h(1))).unwrap();
    w.commit().unwrap();

    let row = cat.file(path).unwrap().unwrap();
    assert_eq!(row.path, path);
    assert_eq!(row.hash, h(1));
    assert_eq!((row.size, row.root_id), (12345, root));
    let under = cat.files_under(Path::new("/p")).unwrap();
    assert_eq!(under.len(), 1);
    assert_eq!(under[path].path.as_os_str().as_bytes(), b"/p/caf\xe9.jpg");
    let hits = cat
        .search(&SearchQuery {
            classes: vec![207],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, path);
    // JSON never fails on such a name.
    let json = serde_json::to_string(&hits[0]).unwrap();
    assert!(
        json.contains(&phototag_light::catalog::hex(&h(1))),
        "{json}"
    );
}

#[test]
fn the_same_content_under_two_paths_is_one_image() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_file(&file(Path::new("/p/a.jpg"), root, h(1)))
        .unwrap();
    w.put_file(&file(Path::new("/p/copy/a.jpg"), root, h(1)))
        .unwrap();
    w.commit().unwrap();
    assert_eq!(cat.image_hashes().unwrap().len(), 1);
    let s = cat.stats().unwrap();
    assert_eq!((s.files, s.images), (2, 1));
    let hits = cat
        .search(&SearchQuery {
            classes: vec![1],
            ..Default::default()
        })
        .unwrap();
    let paths: Vec<_> = hits.iter().map(|h| h.path.clone()).collect();
    assert_eq!(
        paths,
        [PathBuf::from("/p/a.jpg"), PathBuf::from("/p/copy/a.jpg")]
    );
    assert!(hits.iter().all(|h| h.hash == hits[0].hash));
}

#[test]
fn a_file_needs_its_image_and_a_dropped_writer_rolls_back() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    let err = w
        .put_file(&file(Path::new("/p/a.jpg"), root, h(9)))
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_file(&file(Path::new("/p/b.jpg"), root, h(1)))
        .unwrap();
    drop(w);
    assert!(cat.image(&h(1)).unwrap().is_none());
    assert!(cat.file(Path::new("/p/b.jpg")).unwrap().is_none());
}

#[test]
fn retag_replaces_tags_and_model() {
    let (_dir, mut cat, old, root) = fresh();
    let new = cat
        .register_model("efficientnet-lite0", "5793", "efficientnet-lite0")
        .unwrap();
    let mut w = cat.begin().unwrap();
    for (n, name) in [(1, "a"), (2, "b")] {
        w.put_image(&image(
            h(n),
            old,
            &[
                (281, "tabby", 0.5),
                (282, "tiger cat", 0.3),
                (285, "Egyptian cat", 0.1),
            ],
        ))
        .unwrap();
        w.put_file(&file(Path::new(&format!("/p/{name}.jpg")), root, h(n)))
            .unwrap();
    }
    w.put_file(&file(Path::new("/p/a-copy.jpg"), root, h(1)))
        .unwrap();
    w.commit().unwrap();

    let stale = cat.images_to_retag(new, false).unwrap();
    assert_eq!(stale.len(), 2);
    let a = stale.iter().find(|(hash, _)| *hash == h(1)).unwrap();
    assert_eq!(
        a.1,
        [PathBuf::from("/p/a-copy.jpg"), PathBuf::from("/p/a.jpg")]
    );

    let mut w = cat.begin().unwrap();
    w.put_image(&image(
        h(1),
        new,
        &[(285, "Egyptian cat", 0.7), (281, "tabby", 0.2)],
    ))
    .unwrap();
    w.commit().unwrap();
    let t = cat.tags(&h(1)).unwrap();
    assert_eq!(t.len(), 2, "the old third tag is gone");
    assert_eq!((t[0].rank, t[0].class_index), (1, 285));
    assert_eq!(t[0].probability, 0.7);
    let img = cat.image(&h(1)).unwrap().unwrap();
    assert_eq!(
        (img.model_id, img.model_name.as_str()),
        (new, "efficientnet-lite0")
    );
    let stale = cat.images_to_retag(new, false).unwrap();
    assert_eq!(stale, [(h(2), vec![PathBuf::from("/p/b.jpg")])]);
    assert_eq!(cat.images_to_retag(old, false).unwrap().len(), 1);
    let s = cat.stats().unwrap();
    let per_model: Vec<(String, u64)> = s
        .models
        .iter()
        .map(|m| (m.name.clone(), m.images))
        .collect();
    assert_eq!(
        per_model,
        [
            ("resnet18".to_string(), 1),
            ("efficientnet-lite0".to_string(), 1)
        ]
    );
}

#[test]
fn failures_count_attempts_and_clear_on_success() {
    let (_dir, mut cat, model, root) = fresh();
    let bad = Path::new("/p/bad.jpg");
    for now in [100, 200] {
        let mut w = cat.begin().unwrap();
        w.put_failure(bad, root, 10, 5, &format!("truncated at {now}"), now)
            .unwrap();
        w.commit().unwrap();
    }
    let f = cat.failures_under(Path::new("/p")).unwrap();
    let row = &f[bad];
    assert_eq!((row.attempts, row.last_attempt), (2, 200));
    assert_eq!(row.error, "truncated at 200");
    assert_eq!((row.size, row.mtime_ns), (10, 5));
    assert_eq!(cat.stats().unwrap().failures, 1);

    // Fixed: tagged, and the failure is forgotten.
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_file(&file(bad, root, h(1))).unwrap();
    w.commit().unwrap();
    assert!(cat.failures_under(Path::new("/p")).unwrap().is_empty());

    // Changed into garbage: the failure replaces the file row.
    let mut w = cat.begin().unwrap();
    w.put_failure(bad, root, 11, 6, "not an image", 300)
        .unwrap();
    w.commit().unwrap();
    assert!(cat.file(bad).unwrap().is_none());
    assert_eq!(
        cat.failures_under(Path::new("/p")).unwrap()[bad].attempts,
        1
    );
}

#[test]
fn removing_files_then_orphans() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_image(&image(h(2), model, &[(2, "great white shark", 0.9)]))
        .unwrap();
    w.put_file(&file(Path::new("/p/a.jpg"), root, h(1)))
        .unwrap();
    w.put_file(&file(Path::new("/p/a2.jpg"), root, h(1)))
        .unwrap();
    w.put_file(&file(Path::new("/p/b.jpg"), root, h(2)))
        .unwrap();
    w.put_failure(Path::new("/p/c.jpg"), root, 1, 1, "bad", 1)
        .unwrap();
    w.commit().unwrap();

    let mut w = cat.begin().unwrap();
    let gone = [
        Path::new("/p/a.jpg"),
        Path::new("/p/b.jpg"),
        Path::new("/p/c.jpg"),
        Path::new("/p/never.jpg"),
    ];
    assert_eq!(w.remove_files(&gone).unwrap(), 2);
    assert_eq!(w.remove_orphan_images().unwrap(), 1);
    w.commit().unwrap();
    assert!(cat.image(&h(2)).unwrap().is_none());
    assert!(cat.tags(&h(2)).unwrap().is_empty(), "tags cascade");
    assert!(cat.image(&h(1)).unwrap().is_some(), "a2.jpg still holds it");
    assert!(cat.failures_under(Path::new("/p")).unwrap().is_empty());
    let s = cat.stats().unwrap();
    assert_eq!((s.files, s.images, s.failures), (1, 1, 0));
}

#[test]
fn files_under_does_not_match_sibling_prefixes() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    for p in [
        "/a/b/x.jpg",
        "/a/b/c/y.jpg",
        "/a/bc/z.jpg",
        "/a/b.jpg",
        "/a/b0.jpg",
        "/a/x.jpg",
    ] {
        w.put_file(&file(Path::new(p), root, h(1))).unwrap();
        w.put_failure(&PathBuf::from(format!("{p}.bad")), root, 1, 1, "bad", 1)
            .unwrap();
    }
    w.commit().unwrap();
    let mut under: Vec<PathBuf> = cat
        .files_under(Path::new("/a/b"))
        .unwrap()
        .into_keys()
        .collect();
    under.sort();
    assert_eq!(
        under,
        [PathBuf::from("/a/b/c/y.jpg"), PathBuf::from("/a/b/x.jpg")]
    );
    assert_eq!(cat.files_under(Path::new("/a/b/")).unwrap().len(), 2);
    assert_eq!(cat.failures_under(Path::new("/a/b")).unwrap().len(), 2);
    assert_eq!(cat.files_under(Path::new("/a")).unwrap().len(), 6);
    assert_eq!(cat.files_under(Path::new("/")).unwrap().len(), 6);
}

#[test]
fn touch_files_updates_last_seen_only() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
        .unwrap();
    w.put_file(&file(Path::new("/p/a.jpg"), root, h(1)))
        .unwrap();
    w.put_file(&file(Path::new("/p/b.jpg"), root, h(1)))
        .unwrap();
    w.commit().unwrap();
    let mut w = cat.begin().unwrap();
    w.touch_files(&[Path::new("/p/a.jpg"), Path::new("/p/unknown.jpg")], 42)
        .unwrap();
    w.set_root_state(root, "offline", 43).unwrap();
    w.commit().unwrap();
    let a = cat.file(Path::new("/p/a.jpg")).unwrap().unwrap();
    let b = cat.file(Path::new("/p/b.jpg")).unwrap().unwrap();
    assert_eq!((a.last_seen, b.last_seen), (42, 1_700_000_000));
    assert_eq!(a.size, 12345);
    let roots = cat.stats().unwrap().roots;
    assert_eq!(roots.len(), 1);
    assert_eq!(
        (roots[0].state.as_str(), roots[0].last_scan),
        ("offline", Some(43))
    );
}

#[test]
fn search_orders_filters_and_matches_any_class() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    let images = [
        // (n, path, tags)
        (
            1,
            "/p/dog-weak.jpg",
            vec![(999, "toilet tissue", 0.6), (207, "golden retriever", 0.3)],
        ),
        (
            2,
            "/p/dog-strong.jpg",
            vec![
                (207, "golden retriever", 0.9),
                (208, "Labrador retriever", 0.05),
            ],
        ),
        (
            3,
            "/p/lab.jpg",
            vec![
                (208, "Labrador retriever", 0.7),
                (207, "golden retriever", 0.2),
            ],
        ),
        (4, "/p/cat.jpg", vec![(281, "tabby", 0.8)]),
    ];
    for (n, p, t) in &images {
        w.put_image(&image(h(*n), model, t)).unwrap();
        w.put_file(&file(Path::new(p), root, h(*n))).unwrap();
    }
    // Same content, sorts before dog-strong by path at the same score.
    w.put_file(&file(Path::new("/p/a-dog.jpg"), root, h(2)))
        .unwrap();
    w.commit().unwrap();

    let search = |classes: Vec<usize>, min: f32, limit: Option<usize>| {
        cat.search(&SearchQuery {
            classes,
            min_probability: min,
            limit,
        })
        .unwrap()
        .into_iter()
        .map(|h| (h.path.to_string_lossy().into_owned(), h.score))
        .collect::<Vec<_>>()
    };
    let s = |p: &str, score: f32| (p.to_string(), score);
    assert_eq!(
        search(vec![207], 0.0, None),
        [
            s("/p/a-dog.jpg", 0.9),
            s("/p/dog-strong.jpg", 0.9),
            s("/p/dog-weak.jpg", 0.3),
            s("/p/lab.jpg", 0.2)
        ]
    );
    assert_eq!(
        search(vec![207], 0.3, None),
        [
            s("/p/a-dog.jpg", 0.9),
            s("/p/dog-strong.jpg", 0.9),
            s("/p/dog-weak.jpg", 0.3)
        ],
        "min_probability is inclusive"
    );
    // Any of several classes; the score is the best matching tag, one hit per file.
    assert_eq!(
        search(vec![207, 208], 0.0, None),
        [
            s("/p/a-dog.jpg", 0.9),
            s("/p/dog-strong.jpg", 0.9),
            s("/p/lab.jpg", 0.7),
            s("/p/dog-weak.jpg", 0.3)
        ]
    );
    assert_eq!(search(vec![207, 208], 0.0, Some(3)).len(), 3);
    assert_eq!(
        search(vec![207, 208], 0.0, Some(3))[2],
        s("/p/lab.jpg", 0.7)
    );
    assert!(search(vec![], 0.0, None).is_empty());
    assert!(search(vec![1], 0.0, None).is_empty());

    // Every hit carries all its image's tags, by rank.
    let hits = cat
        .search(&SearchQuery {
            classes: vec![207],
            min_probability: 0.25,
            limit: Some(10),
        })
        .unwrap();
    let weak = hits
        .iter()
        .find(|h| h.path == Path::new("/p/dog-weak.jpg"))
        .unwrap();
    let labels: Vec<_> = weak.tags.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["toilet tissue", "golden retriever"]);
}

#[test]
fn stats_counts() {
    let (_dir, mut cat, model, root) = fresh();
    let mut w = cat.begin().unwrap();
    for n in 0..5u32 {
        let top = if n < 3 {
            (281, "tabby", 0.8)
        } else {
            (207, "golden retriever", 0.8)
        };
        w.put_image(&image(h(n), model, &[top, (1, "goldfish", 0.1)]))
            .unwrap();
        w.put_file(&file(Path::new(&format!("/p/{n}.jpg")), root, h(n)))
            .unwrap();
    }
    w.put_file(&file(Path::new("/p/dup.jpg"), root, h(0)))
        .unwrap();
    w.put_failure(Path::new("/p/bad.jpg"), root, 1, 1, "bad", 1)
        .unwrap();
    w.set_root_state(root, "online", 99).unwrap();
    w.commit().unwrap();
    let s = cat.stats().unwrap();
    assert_eq!((s.files, s.images, s.failures), (6, 5, 1));
    assert_eq!(s.models.len(), 1);
    assert_eq!(s.models[0].images, 5);
    assert_eq!(s.models[0].sha256_prefix, "f37072fd00");
    let top: Vec<(&str, u64)> = s
        .top_labels
        .iter()
        .map(|l| (l.label.as_str(), l.images))
        .collect();
    assert_eq!(top, [("tabby", 3), ("golden retriever", 2)]);
    assert_eq!(s.roots[0].path, Path::new("/p"));
    let text = s.to_string();
    assert!(text.contains("tabby"), "{text}");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["files"], 6);
}

/// A reader sees an uncommitted writer's work not at all, then all of it, and opening and
/// reading never wait for the writer's lock.
#[test]
fn readers_see_whole_transactions_and_are_not_blocked() {
    let (dir, mut cat, model, root) = fresh();
    let path = dir.path().join("catalog.db");
    let dog = SearchQuery {
        classes: vec![207],
        ..Default::default()
    };
    let mut w = cat.begin().unwrap();
    w.put_image(&image(
        h(1),
        model,
        &[
            (207, "golden retriever", 0.9),
            (208, "Labrador retriever", 0.05),
            (1, "goldfish", 0.01),
        ],
    ))
    .unwrap();
    w.put_file(&file(Path::new("/p/dog.jpg"), root, h(1)))
        .unwrap();

    let started = Instant::now();
    let reader = Catalog::open_readonly(&path).unwrap();
    assert!(reader.search(&dog).unwrap().is_empty());
    assert!(reader.image(&h(1)).unwrap().is_none());
    assert!(reader.tags(&h(1)).unwrap().is_empty());
    assert!(reader.file(Path::new("/p/dog.jpg")).unwrap().is_none());
    assert_eq!(reader.stats().unwrap().images, 0);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "reader waited {waited:?} for the writer"
    );

    w.commit().unwrap();
    let hits = reader.search(&dog).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].tags.len(), 3);
    assert!(reader.image(&h(1)).unwrap().is_some());
}

/// Under a writer committing one photo per transaction, a concurrent reader never finds a
/// file whose image lacks any of its tags.
#[test]
fn concurrent_reader_never_sees_half_a_photo() {
    let (dir, mut cat, model, root) = fresh();
    let path = dir.path().join("catalog.db");
    const N: u32 = 150;
    let reader = std::thread::spawn(move || {
        let reader = Catalog::open_readonly(&path).unwrap();
        let q = SearchQuery {
            classes: vec![5],
            ..Default::default()
        };
        let mut seen = 0;
        let mut rounds = 0;
        while seen < N as usize {
            let hits = reader.search(&q).unwrap();
            for hit in &hits {
                assert_eq!(hit.tags.len(), 3, "half-written photo seen: {hit:?}");
            }
            assert!(hits.len() >= seen, "a reader went back in time");
            seen = hits.len();
            rounds += 1;
        }
        rounds
    });
    for n in 0..N {
        let mut w = cat.begin().unwrap();
        w.put_image(&image(
            h(n),
            model,
            &[
                (5, "electric ray", 0.5),
                (6, "stingray", 0.3),
                (7, "cock", 0.1),
            ],
        ))
        .unwrap();
        w.put_file(&file(Path::new(&format!("/p/{n:04}.jpg")), root, h(n)))
            .unwrap();
        w.commit().unwrap();
    }
    let rounds = reader.join().unwrap();
    assert!(rounds >= 1);
}

/// Prints the catalog size per 1,000 photos (3 tags and 1 file each).
#[test]
fn size_per_thousand_images() {
    let (dir, mut cat, model, root) = fresh();
    let classes = phototag_light::labels::imagenet();
    let mut w = cat.begin().unwrap();
    for n in 0..1000u32 {
        let c = |k: u32| {
            let cl = &classes[((n * 7 + k * 131) % 1000) as usize];
            (cl.index, cl.name, [0.71, 0.12, 0.05][k as usize])
        };
        w.put_image(&image(h(n), model, &[c(0), c(1), c(2)]))
            .unwrap();
        let p = format!(
            "/srv/photos/2023/2023-{:02}-{:02}/IMG_{n:05}.jpg",
            n % 12 + 1,
            n % 28 + 1
        );
        w.put_file(&file(Path::new(&p), root, h(n))).unwrap();
    }
    w.commit().unwrap();
    assert!(cat.checkpoint().unwrap());
    let db = dir.path().join("catalog.db");
    let bytes = std::fs::metadata(&db).unwrap().len();
    let wal = std::fs::metadata(dir.path().join("catalog.db-wal")).map_or(0, |m| m.len());
    eprintln!(
        "catalog size: {:.0} KiB per 1,000 images (3 tags, 1 file, ~45-byte paths each); WAL after checkpoint {wal} bytes",
        bytes as f64 / 1024.0
    );
    let per_table: Vec<(String, i64)> = raw(&db)
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let parts: Vec<String> = per_table
        .iter()
        .map(|(name, b)| format!("{name} {:.0}", *b as f64 / 1024.0))
        .collect();
    eprintln!("  KiB by table and index: {}", parts.join(", "));
    assert!(bytes < 2 * 1024 * 1024, "{bytes} bytes for 1,000 images");
    assert_eq!(cat.stats().unwrap().images, 1000);
}
