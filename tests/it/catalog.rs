//! The catalog on both backends (SQLite, and PostgreSQL on the test server): migrations
//! and versions, paths as bytes, shared content, retag, failures, removal, search, reader
//! isolation, stats, size on disk, and taught tags. The behaviour tests run on each
//! backend with the same data and the same expectations.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use phototag_light::catalog::fixtures::{self, Place};
use phototag_light::catalog::{
    Catalog, CatalogError, Hash, Location, NewFile, NewImage, NewTag, SearchQuery, SCHEMA_VERSION,
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

/// A fresh catalog at `place`, with one model and one root registered.
fn fresh(place: &Place) -> (Catalog, i64, i64) {
    let mut cat = Catalog::open(&place.location).unwrap();
    let model = cat
        .register_model("resnet18", "f37072fd00", "resnet18")
        .unwrap();
    let mut w = cat.begin().unwrap();
    let root = w.root_id(Path::new("/p")).unwrap();
    w.commit().unwrap();
    (cat, model, root)
}

/// Runs `f` on a fresh catalog (see [`fresh`]) in each backend.
fn each(test: &str, f: impl Fn(&Place, &mut Catalog, i64, i64)) {
    for place in fixtures::places(test) {
        eprintln!("{test}: {}", place.name());
        let (mut cat, model, root) = fresh(&place);
        f(&place, &mut cat, model, root);
    }
}

/// A SQLite place and a fresh catalog in it.
fn fresh_sqlite() -> (Place, Catalog, i64, i64) {
    let place = Place::sqlite();
    let (cat, model, root) = fresh(&place);
    (place, cat, model, root)
}

/// The SQLite file of a place.
fn file_of(place: &Place) -> PathBuf {
    place.location.sqlite_path().unwrap().to_path_buf()
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
    let pg = Place::postgres("migrations_apply_once_and_record_the_version");
    let mut places = vec![Location::Sqlite(path.clone())];
    places.extend(pg.as_ref().map(|p| p.location.clone()));
    for at in &places {
        let mut cat = Catalog::open(at).unwrap();
        assert_eq!(&cat.location(), at);
        assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
        let m = cat.register_model("m", "aa", "resnet18").unwrap();
        let mut w = cat.begin().unwrap();
        let r = w.root_id(Path::new("/p")).unwrap();
        w.put_image(&image(h(1), m, &[(1, "goldfish", 0.9)]))
            .unwrap();
        w.put_file(&file(Path::new("/p/a.jpg"), r, h(1))).unwrap();
        w.commit().unwrap();
        drop(cat);

        // Reopening applies nothing again and keeps the rows.
        let cat = Catalog::open(at).unwrap();
        assert_eq!(cat.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(cat.file(Path::new("/p/a.jpg")).unwrap().is_some());
        let ro = Catalog::open_readonly(at).unwrap();
        assert_eq!(ro.schema_version().unwrap(), SCHEMA_VERSION);
    }
    assert_eq!(user_version(&path), SCHEMA_VERSION);
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
            "tags",
            "taught_examples",
            "taught_tags"
        ]
    );
    // PostgreSQL: the same tables, plus the changes that make a class list stale (schema
    // 7), the claims of workers and the version.
    if let Some(db) = pg.as_ref().and_then(Place::db) {
        let tables: Vec<String> = db
            .client()
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = 'public' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            tables,
            [
                "album_links",
                "albums",
                "claims",
                "class_changes",
                "class_lists",
                "embeddings",
                "failures",
                "files",
                "images",
                "models",
                "phototag_schema",
                "roots",
                "sketches",
                "tags",
                "taught_examples",
                "taught_tags"
            ]
        );
        let v: i32 = db
            .client()
            .query_one("SELECT version FROM phototag_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(v as u32, SCHEMA_VERSION);
    }
}

/// A PostgreSQL catalog of a newer phototag is refused, by writers and readers, and left
/// as it was; a database without a catalog is no catalog to read.
#[test]
fn postgres_newer_or_missing_catalogs_are_refused_untouched() {
    let Some(place) = Place::postgres("postgres_newer_or_missing_catalogs_are_refused_untouched")
    else {
        return;
    };
    let err = Catalog::open_readonly(&place.location).unwrap_err();
    assert!(matches!(err, CatalogError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("phototag index"), "{err}");
    let db = place.db().unwrap();
    let count_tables = || -> i64 {
        db.client()
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(count_tables(), 0, "reading created nothing");

    drop(fresh(&place));
    let newer = SCHEMA_VERSION + 1;
    db.client()
        .execute(
            "UPDATE phototag_schema SET version = $1",
            &[&(newer as i32)],
        )
        .unwrap();
    let tables = count_tables();
    for result in [
        Catalog::open(&place.location),
        Catalog::open_readonly(&place.location),
    ] {
        let err = result.unwrap_err();
        match &err {
            CatalogError::TooNew {
                found, supported, ..
            } => assert_eq!((*found, *supported), (newer, SCHEMA_VERSION)),
            other => panic!("expected TooNew, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("newer phototag") && msg.contains("postgresql://"),
            "{msg}"
        );
    }
    let v: i32 = db
        .client()
        .query_one("SELECT version FROM phototag_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        (v as u32, count_tables()),
        (newer, tables),
        "left as it was"
    );
}

#[test]
fn wal_mode_is_on() {
    let (place, _cat, _, _) = fresh_sqlite();
    let mode: String = raw(&file_of(&place))
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_catalog_is_refused_and_left_alone() {
    let (place, cat, _, _) = fresh_sqlite();
    drop(cat);
    let path = file_of(&place);
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
    each("non_utf8_paths_round_trip", |_, cat, model, root| {
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
    });
}

#[test]
fn the_same_content_under_two_paths_is_one_image() {
    each(
        "the_same_content_under_two_paths_is_one_image",
        |_, cat, model, root| {
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
        },
    );
}

#[test]
fn a_file_needs_its_image_and_a_dropped_writer_rolls_back() {
    each(
        "a_file_needs_its_image_and_a_dropped_writer_rolls_back",
        |_, cat, model, root| {
            let mut w = cat.begin().unwrap();
            let err = w
                .put_file(&file(Path::new("/p/a.jpg"), root, h(9)))
                .unwrap_err();
            let msg = err.to_string().to_ascii_lowercase();
            assert!(msg.contains("foreign key"), "{err}");
            // A failed statement ends PostgreSQL's transaction (SQLite's goes on): a writer
            // that met an error is dropped, as the indexer's `?` drops it.
            drop(w);
            let mut w = cat.begin().unwrap();
            w.put_image(&image(h(1), model, &[(1, "goldfish", 0.9)]))
                .unwrap();
            w.put_file(&file(Path::new("/p/b.jpg"), root, h(1)))
                .unwrap();
            drop(w);
            assert!(cat.image(&h(1)).unwrap().is_none());
            assert!(cat.file(Path::new("/p/b.jpg")).unwrap().is_none());
        },
    );
}

#[test]
fn retag_replaces_tags_and_model() {
    each("retag_replaces_tags_and_model", |_, cat, old, root| {
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
    });
}

#[test]
fn failures_count_attempts_and_clear_on_success() {
    each(
        "failures_count_attempts_and_clear_on_success",
        |_, cat, model, root| {
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
        },
    );
}

#[test]
fn removing_files_then_orphans() {
    each("removing_files_then_orphans", |_, cat, model, root| {
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
    });
}

#[test]
fn files_under_does_not_match_sibling_prefixes() {
    each(
        "files_under_does_not_match_sibling_prefixes",
        |_, cat, model, root| {
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
        },
    );
}

#[test]
fn touch_files_updates_last_seen_only() {
    each(
        "touch_files_updates_last_seen_only",
        |_, cat, model, root| {
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
        },
    );
}

#[test]
fn search_orders_filters_and_matches_any_class() {
    each(
        "search_orders_filters_and_matches_any_class",
        |_, cat, model, root| {
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
        },
    );
}

#[test]
fn stats_counts() {
    each("stats_counts", |_, cat, model, root| {
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
    });
}

/// A reader sees an uncommitted writer's work not at all, then all of it, and opening and
/// reading never wait for the writer's lock.
#[test]
fn readers_see_whole_transactions_and_are_not_blocked() {
    each(
        "readers_see_whole_transactions_and_are_not_blocked",
        |place, cat, model, root| {
            let path = place.location.clone();
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
        },
    );
}

/// Under a writer committing one photo per transaction, a concurrent reader never finds a
/// file whose image lacks any of its tags.
#[test]
fn concurrent_reader_never_sees_half_a_photo() {
    each(
        "concurrent_reader_never_sees_half_a_photo",
        |place, cat, model, root| {
            let path = place.location.clone();
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
        },
    );
}

/// Prints the catalog size per 1,000 photos (3 tags and 1 file each).
#[test]
fn size_per_thousand_images() {
    let (place, mut cat, model, root) = fresh_sqlite();
    let dir = place.dir().unwrap();
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
    let db = dir.join("catalog.db");
    let bytes = std::fs::metadata(&db).unwrap().len();
    let wal = std::fs::metadata(dir.join("catalog.db-wal")).map_or(0, |m| m.len());
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

/// Taught tags on each backend, through the catalog API alone (no fit): stored with their
/// examples (a hash given twice counts once, as the last), found by name whatever its
/// case, searched like any tag (`rex>0.8`, `rex AND NOT goldfish`), given to a new image
/// of their model when it is stored (not to another model's), fitted again under the same
/// number, and removed with their scores; a removed tag's number is used again.
#[test]
fn taught_tags_are_stored_searched_applied_and_removed() {
    use phototag_light::catalog::{taught_class, ExampleRow, NewTaught};
    use phototag_light::search::{Query, Request};
    use phototag_light::vectors::Embedding;

    let test = "taught_tags_are_stored_searched_applied_and_removed";
    each(test, |_, cat, model, root| {
        let e = |x: f32| Embedding::quantize(&[x, 1.0 - x, 0.5, 0.25]).unwrap();
        let mut w = cat.begin().unwrap();
        for n in 1..=4u32 {
            let t = if n <= 2 {
                (1, "goldfish", 0.9)
            } else {
                (2, "great white shark", 0.9)
            };
            let mut img = image(h(n), model, &[t]);
            img.embedding = Some(e(n as f32 / 8.0));
            w.put_image(&img).unwrap();
            let path = PathBuf::from(format!("/p/{n}.jpg"));
            w.put_file(&file(&path, root, h(n))).unwrap();
        }
        w.commit().unwrap();
        let example = |n: u32, positive: bool| ExampleRow {
            hash: h(n),
            positive,
            model_id: model,
            embedding: e(n as f32 / 8.0),
        };
        // Zero weights: every image of the model scores sigmoid(bias) = 0.88.
        const WEIGHTS: [f32; 4] = [0.0; 4];
        let weights = WEIGHTS;
        fn tagged<'a>(name: &'a str, model: i64, examples: &'a [ExampleRow]) -> NewTaught<'a> {
            NewTaught {
                name,
                model_id: model,
                weights: &WEIGHTS,
                bias: 2.0,
                threshold: 0.5,
                figures: "{}",
                examples,
                now: 1_700_000_000,
            }
        }
        let taught = |name, examples| tagged(name, model, examples);
        let found = |cat: &Catalog, q: &str| -> Vec<Hash> {
            let q = Query::compile_with(q, 0.0, &cat.taught_names().unwrap()).unwrap();
            assert_eq!(q.unknown().count(), 0, "{q}");
            let mut hits: Vec<Hash> = cat
                .find(&Request::new(q.compiled))
                .unwrap()
                .iter()
                .map(|h| h.hash)
                .collect();
            hits.sort();
            hits
        };
        let sorted = |mut v: Vec<Hash>| {
            v.sort();
            v
        };

        let examples = [example(1, true), example(2, false), example(1, false)];
        let mut w = cat.begin().unwrap();
        let id = w.put_taught(&taught("rex", &examples)).unwrap();
        w.set_taught_scores(id, "rex", &[(h(1), 0.95), (h(3), 0.6), (h(99), 0.9)])
            .unwrap();
        w.commit().unwrap();
        assert_eq!(id, 1);
        let row = cat.taught_tag("REX").unwrap().unwrap();
        assert_eq!((row.id, row.name.as_str(), row.bias), (1, "rex", 2.0));
        assert_eq!(row.weights, weights);
        let stored = cat.taught_examples(id).unwrap();
        assert_eq!(stored.len(), 2);
        let one = stored.iter().find(|x| x.hash == h(1)).unwrap();
        assert!(!one.positive, "the last answer for a hash wins");
        assert_eq!(one.embedding, e(1.0 / 8.0));
        assert_eq!(
            cat.taught_names().unwrap(),
            [("rex".to_string(), taught_class(1))]
        );
        assert_eq!(cat.taught_match_count(id).unwrap(), 2);
        assert_eq!(found(cat, "rex"), sorted(vec![h(1), h(3)]));
        assert_eq!(found(cat, "Rex>0.8"), [h(1)]);
        assert_eq!(found(cat, "rex AND NOT goldfish"), [h(3)]);
        assert_eq!(found(cat, "NOT rex"), sorted(vec![h(2), h(4)]));
        let tag = cat.tags(&h(1)).unwrap().pop().unwrap();
        assert_eq!(
            (tag.class_index, tag.rank as usize, tag.label.as_str()),
            (taught_class(1), taught_class(1), "rex")
        );

        // A new image of the model gets the tag when stored; another model's does not.
        let other = cat.register_model("other", "0b0b", "resnet18").unwrap();
        let mut w = cat.begin().unwrap();
        for (n, m) in [(5, model), (6, other)] {
            let mut img = image(h(n), m, &[(1, "goldfish", 0.7)]);
            img.embedding = Some(e(0.5));
            w.put_image(&img).unwrap();
            let path = PathBuf::from(format!("/p/{n}.jpg"));
            w.put_file(&file(&path, root, h(n))).unwrap();
        }
        w.commit().unwrap();
        let p = cat.tags(&h(5)).unwrap().pop().unwrap();
        assert_eq!(p.label, "rex");
        assert!(
            (p.probability - 0.880_797).abs() < 1e-5,
            "{}",
            p.probability
        );
        assert!(cat.tags(&h(6)).unwrap().iter().all(|t| t.label != "rex"));
        assert_eq!(found(cat, "rex"), sorted(vec![h(1), h(3), h(5)]));

        // Fitted again under another case: the same number; a second tag the next one.
        let mut w = cat.begin().unwrap();
        assert_eq!(w.put_taught(&taught("Rex", &examples[..1])).unwrap(), 1);
        assert_eq!(w.put_taught(&taught("fido", &examples[..1])).unwrap(), 2);
        w.commit().unwrap();
        assert_eq!(cat.taught_tags().unwrap().len(), 2);
        assert_eq!(cat.taught_examples(1).unwrap().len(), 1);

        // Removed with its scores; its number is used again.
        let mut w = cat.begin().unwrap();
        assert!(w.remove_taught("REX").unwrap());
        assert!(!w.remove_taught("rex").unwrap());
        w.commit().unwrap();
        assert_eq!(cat.taught_match_count(1).unwrap(), 0);
        assert!(cat.taught_tag("rex").unwrap().is_none());
        assert!(cat.taught_examples(1).unwrap().is_empty());
        assert!(cat
            .tags(&h(1))
            .unwrap()
            .iter()
            .all(|t| t.class_index != taught_class(1)));
        let mut w = cat.begin().unwrap();
        assert_eq!(w.put_taught(&taught("lassie", &[])).unwrap(), 1);
        w.commit().unwrap();
        assert_eq!(
            cat.taught_names().unwrap(),
            [
                ("fido".to_string(), taught_class(2)),
                ("lassie".to_string(), taught_class(1))
            ]
        );
    });
}
