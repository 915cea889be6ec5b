//! `phototag index`, `search`, `show` and `stats` through the binary: output formats for
//! people and scripts (`--json`, `-0`), exit codes, and a catalog from a newer phototag;
//! each on both backends (a SQLite file, a PostgreSQL database), with the same
//! expectations.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phototag_light::catalog::fixtures::{self, Place};
use phototag_light::catalog::Location;

struct Env {
    tmp: tempfile::TempDir,
    models: PathBuf,
    /// `PHOTOTAG_DB`: the file or the URL.
    db: String,
    place: Place,
    root: PathBuf,
}

fn phototag(e: &Env, args: &[&str]) -> Output {
    run(&common::bin(), e, args)
}

/// `program` (`phototag`, a copy of it, or the engine) on this catalog and models folder.
fn run(program: &Path, e: &Env, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("PHOTOTAG_MODEL_DIR", &e.models)
        .env("PHOTOTAG_DB", &e.db)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// A library (and a random model) for each backend.
fn setups(test: &str) -> Vec<Env> {
    fixtures::places(test).into_iter().map(setup).collect()
}

/// Marks the catalog as written by a newer phototag (schema 999).
fn make_newer(e: &Env) {
    match &e.place.location {
        Location::Sqlite(p) => {
            let conn = rusqlite::Connection::open(p).unwrap();
            conn.pragma_update(None, "user_version", 999).unwrap();
        }
        Location::Postgres(_) => {
            e.place
                .db()
                .unwrap()
                .client()
                .execute("UPDATE phototag_schema SET version = 999", &[])
                .unwrap();
        }
    }
}

fn setup(place: Place) -> Env {
    eprintln!("catalog: {}", place.name());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(root.join("@eaDir")).unwrap();
    let fixtures = common::fixture("photos");
    for f in ["orange.jpg", "squirrel_cls.jpg"] {
        std::fs::copy(fixtures.join(f), root.join(f)).unwrap();
    }
    std::fs::copy(fixtures.join("orange.jpg"), root.join("orange copy.jpg")).unwrap();
    std::fs::copy(fixtures.join("orange.jpg"), root.join("@eaDir/orange.jpg")).unwrap();
    std::fs::write(root.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    let db = match &place.location {
        Location::Sqlite(p) => p.display().to_string(),
        Location::Postgres(t) => t.url.clone(),
    };
    let e = Env {
        models: tmp.path().join("models"),
        db,
        place,
        root: root.canonicalize().unwrap(),
        tmp,
    };
    let out = phototag(
        &e,
        &["-q", "model", "prepare", "resnet18-random", "--seed", "11"],
    );
    assert!(out.status.success());
    e
}

#[test]
fn index_then_search_show_and_stats() {
    for e in setups("index_then_search_show_and_stats") {
        let root = e.root.display().to_string();
        let out = phototag(
            &e,
            &["index", "--json", "--model", "resnet18-random", &root],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "a broken file → exit 1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                s["seen"].as_u64(),
                s["new"].as_u64(),
                s["duplicates"].as_u64(),
                s["failed"].as_u64()
            ),
            (Some(4), Some(2), Some(1), Some(1)),
            "{s}"
        );
        assert_eq!(s["excluded"], 1, "@eaDir is skipped");

        // What did the random model call the orange? Search for exactly that.
        let orange = e.root.join("orange.jpg").display().to_string();
        let out = phototag(&e, &["show", "--json", &orange]);
        assert!(out.status.success());
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["tags"].as_array().unwrap().len(), 3);
        assert_eq!(shown["model"], "resnet18-random");
        let class = shown["tags"][0]["class"].as_str().unwrap().to_uppercase();

        let out = phototag(&e, &["search", "--json", &class]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hits: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let paths: Vec<&str> = hits.iter().map(|h| h["path"].as_str().unwrap()).collect();
        assert!(paths.contains(&orange.as_str()), "{paths:?}");

        // The run left every class's search list built, and plain listings (which read them)
        // give the paths the JSON search gives, in its order.
        assert_eq!(
            phototag_light::catalog::Catalog::open_readonly(&e.place.location)
                .unwrap()
                .missing_class_lists()
                .unwrap(),
            0
        );
        let out = phototag(&e, &["search", "--paths", &class]);
        assert_eq!(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .collect::<Vec<_>>(),
            paths
        );
        assert!(
            paths.iter().any(|p| p.ends_with("orange copy.jpg")),
            "both copies are found: {paths:?}"
        );
        assert_eq!(hits[0]["hash"].as_str().unwrap().len(), 64);
        let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "best first: {scores:?}"
        );

        let out = phototag(&e, &["search", "-0", &class]);
        assert!(out.status.success());
        let parts: Vec<&[u8]> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(parts.len(), hits.len());
        assert!(parts.contains(&orange.as_bytes()));
        assert_eq!(*out.stdout.last().unwrap(), 0);

        // Nothing above 100%: no match, exit 1 like grep.
        let out = phototag(&e, &["search", "--min-prob", "100", &class]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let out = phototag(&e, &["search", "no-such-class-anywhere"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no ImageNet class"));

        let out = phototag(&e, &["stats", "--json"]);
        assert!(out.status.success());
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                st["files"].as_u64(),
                st["images"].as_u64(),
                st["failures"].as_u64()
            ),
            (Some(3), Some(2), Some(1)),
            "{st}"
        );

        // Unchanged library: nothing read, model not even loaded.
        let out = phototag(
            &e,
            &["index", "--json", "--model", "resnet18-random", &root],
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                s["unchanged"].as_u64(),
                s["new"].as_u64(),
                s["known_failures"].as_u64()
            ),
            (Some(3), Some(0), Some(1)),
            "{s}"
        );
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn search_without_a_catalog_says_how_to_make_one() {
    for e in setups("search_without_a_catalog_says_how_to_make_one") {
        let out = phototag(&e, &["search", "tabby"]);
        assert_eq!(out.status.code(), Some(4));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("phototag index"), "{err}");
    }
}

#[test]
fn a_catalog_from_a_newer_phototag_is_refused() {
    for e in setups("a_catalog_from_a_newer_phototag_is_refused") {
        let root = e.root.display().to_string();
        phototag(&e, &["-q", "index", "--model", "resnet18-random", &root]);
        make_newer(&e);
        for args in [
            vec!["stats"],
            vec!["-q", "index", "--model", "resnet18-random", &root],
        ] {
            let out = phototag(&e, &args);
            assert_ne!(out.status.code(), Some(0));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("newer phototag"), "{err}");
        }
    }
}

#[test]
fn retag_reclassifies_images_of_another_model() {
    for e in setups("retag_reclassifies_images_of_another_model") {
        let root = e.root.display().to_string();
        phototag(&e, &["-q", "index", "--model", "resnet18-random", &root]);
        let out = phototag(
            &e,
            &[
                "-q",
                "model",
                "prepare",
                "resnet18-random",
                "--seed",
                "12",
                "--name",
                "other-random",
            ],
        );
        assert!(out.status.success());
        let out = phototag(&e, &["retag", "--model", "other-random"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("retagged\t2"));
        assert_eq!(
            phototag_light::catalog::Catalog::open_readonly(&e.place.location)
                .unwrap()
                .missing_class_lists()
                .unwrap(),
            0,
            "retag rebuilt the lists its new tags removed"
        );
        let orange = e.root.join("orange copy.jpg").display().to_string();
        let shown: serde_json::Value =
            serde_json::from_slice(&phototag(&e, &["show", "--json", &orange]).stdout).unwrap();
        assert_eq!(shown["model"], "other-random");
        // Nothing left to retag.
        let out = phototag(&e, &["retag", "--model", "other-random"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("retagged\t0"));
    }
}

/// `album`, `export` and `model list` need no model: a lone copy of `phototag` (no engine
/// beside it) runs them, with the same output as the engine.
#[test]
fn a_lone_phototag_runs_album_export_and_model_list() {
    for e in setups("a_lone_phototag_runs_album_export_and_model_list") {
        let root = e.root.display().to_string();
        let out = phototag(&e, &["index", "--model", "resnet18-random", &root]);
        assert_eq!(out.status.code(), Some(1), "broken.png fails: {out:?}");
        let albums = e.tmp.path().join("albums");
        std::fs::create_dir_all(&albums).unwrap();
        let folder = albums.join("everything");
        let out = phototag(
            &e,
            &[
                "album",
                "add",
                "everything",
                "entity",
                folder.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{out:?}");

        let tmp = tempfile::tempdir().unwrap();
        let lone = tmp.path().join("phototag");
        std::fs::copy(common::bin(), &lone).unwrap();
        let engine = common::engine();
        for args in [
            &["album", "list", "--json"][..],
            &["album", "list"],
            &["export", "--format", "json"],
            &["export", "--format", "csv"],
            &["model", "list"],
            &["model", "list", "--json"],
        ] {
            let alone = run(&lone, &e, args);
            assert!(alone.status.success(), "{args:?}: {alone:?}");
            assert!(!alone.stdout.is_empty(), "{args:?}");
            let direct = run(&engine, &e, args);
            assert_eq!(alone.stdout, direct.stdout, "{args:?}");
            assert_eq!(alone.status.code(), direct.status.code(), "{args:?}");
        }
        // What still needs the model says so.
        let out = run(&lone, &e, &["model", "prepare", "resnet18-random"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("phototag-engine is missing"));
    }
}
