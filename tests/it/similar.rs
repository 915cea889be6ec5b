//! Visual memory through the binaries: embeddings stored by `index`, `retag --embeddings`
//! for images catalogued without one, `similar` (light from the catalog, the engine for a
//! new photo) and `dupes --near`, a model prepared before embeddings, and bad input. The
//! tests of what is stored and found run on both backends (a SQLite file and the
//! PostgreSQL test server) with the same expectations.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phototag_engine::classify::{prepare_path, Batch, Scale, Settings};
use phototag_engine::model::{resnet, Classifier, ClassifierOptions};
use phototag_light::catalog::fixtures::{self, Place};
use phototag_light::catalog::{hash_bytes, hex, Catalog, Location};
use phototag_light::config::Config;
use phototag_light::model_files::manifest::{self, LabelSet, Manifest, MANIFEST_FILE, MODEL_FILE};
use phototag_light::vectors::Embedding;

/// The random model these tests classify with (the web tests' too: prepared once).
const SEED: i64 = 7;

/// Half the size, re-encoded: a near copy.
fn smaller(path: &Path, factor: u32) -> Vec<u8> {
    let img = image::open(path).unwrap().to_rgb8();
    let small = image::imageops::resize(
        &img,
        img.width() / factor,
        img.height() / factor,
        image::imageops::FilterType::Triangle,
    );
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .unwrap();
    out.into_inner()
}

struct Lib {
    tmp: tempfile::TempDir,
    root: PathBuf,
    db: Location,
    models: PathBuf,
    /// Keeps the catalog's folder or database.
    _place: Place,
}

impl Lib {
    /// orange, its exact copy and a half-size near copy, squirrel, hopper; not indexed;
    /// a SQLite catalog.
    fn new() -> Lib {
        Lib::new_at(Place::sqlite())
    }

    /// As [`Lib::new`], with the catalog at `place`.
    fn new_at(place: Place) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("photos");
        std::fs::create_dir_all(root.join("more")).unwrap();
        let photos = common::fixture("photos");
        std::fs::copy(photos.join("orange.jpg"), root.join("orange.jpg")).unwrap();
        std::fs::copy(photos.join("orange.jpg"), root.join("orange copy.jpg")).unwrap();
        std::fs::write(
            root.join("orange small.jpg"),
            smaller(&photos.join("orange.jpg"), 2),
        )
        .unwrap();
        std::fs::copy(
            photos.join("squirrel_cls.jpg"),
            root.join("more/squirrel.jpg"),
        )
        .unwrap();
        std::fs::copy(common::fixture("hopper.jpg"), root.join("more/hopper.jpg")).unwrap();
        Lib {
            root: root.canonicalize().unwrap(),
            db: place.location.clone(),
            models: common::models(SEED),
            tmp,
            _place: place,
        }
    }

    fn indexed() -> Lib {
        Lib::indexed_at(Place::sqlite())
    }

    fn indexed_at(place: Place) -> Lib {
        let lib = Lib::new_at(place);
        let out = lib.run(&["index", lib.root.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        lib
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("PHOTOTAG_CONFIG", "/dev/null")
            .env_remove("RUST_LOG")
            .env("PHOTOTAG_MODEL_DIR", &self.models)
            .env("PHOTOTAG_DB", self.db_arg())
            .env("PHOTOTAG_CACHE_DIR", self.tmp.path().join("cache"));
        c
    }

    /// `phototag ARGS --model resnet18-random` (for the commands that take --model).
    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(&common::bin());
        c.args(args);
        if matches!(args[0], "index" | "retag" | "similar") && !args.contains(&"--model") {
            c.args(["--model", "resnet18-random"]);
        }
        c.output().unwrap()
    }

    /// The SQLite catalog's file.
    fn sqlite_path(&self) -> &Path {
        match &self.db {
            Location::Sqlite(p) => p,
            Location::Postgres(_) => panic!("a SQLite catalog was expected"),
        }
    }

    /// `$PHOTOTAG_DB` for the catalog: the file, or the URL.
    fn db_arg(&self) -> std::ffi::OsString {
        match &self.db {
            Location::Sqlite(p) => p.clone().into_os_string(),
            Location::Postgres(t) => t.url.clone().into(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn hash(&self, name: &str) -> String {
        hex(&hash_bytes(&std::fs::read(self.path(name)).unwrap()))
    }

    fn catalog(&self) -> Catalog {
        Catalog::open_readonly(&self.db).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn index_stores_the_embedding_the_model_computes() {
    for place in fixtures::places("index_stores_the_embedding_the_model_computes") {
        index_stores_the_embedding_at(place);
    }
}

fn index_stores_the_embedding_at(place: Place) {
    let lib = Lib::indexed_at(place);
    let c = lib.catalog();
    let counts = c.embedding_counts().unwrap();
    assert_eq!(
        counts.images, 4,
        "orange (two files), near copy, squirrel, hopper"
    );
    assert_eq!(counts.with_embedding(), 4);
    // What the one classification flow computes for the file, stored: the same bytes.
    let store = common::random_model_store(SEED);
    let m = store.get("resnet18-random").unwrap();
    let classifier = Classifier::load(&m, &ClassifierOptions::default()).unwrap();
    let settings = Settings::new(&Config::default(), &m.manifest, 1);
    let mut batch = Batch::new(1);
    batch.push(
        (),
        prepare_path(&lib.path("orange.jpg"), &settings, Scale::Reduced),
    );
    let (_, r) = batch.run(&classifier, 3).pop().unwrap();
    let computed = Embedding::quantize(&r.unwrap().embedding.unwrap()).unwrap();
    let stored = c
        .embedding(&hash_bytes(&std::fs::read(lib.path("orange.jpg")).unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(stored.embedding, computed);
    assert_eq!(computed.values.len(), 512);
}

#[test]
fn similar_answers_from_the_catalog_without_the_engine() {
    for place in fixtures::places("similar_answers_from_the_catalog_without_the_engine") {
        similar_answers_at(place);
    }
}

fn similar_answers_at(place: Place) {
    let lib = Lib::indexed_at(place);
    // A lone copy of `phototag`: no engine beside it.
    let lone_dir = tempfile::tempdir().unwrap();
    let lone = lone_dir.path().join("phototag");
    std::fs::copy(common::bin(), &lone).unwrap();
    let orange = lib.hash("orange.jpg");

    let by_hash = lib
        .command(&lone)
        .args(["similar", "--json", &orange])
        .output()
        .unwrap();
    assert!(by_hash.status.success(), "{}", stderr(&by_hash));
    let hits = json_lines(&by_hash);
    assert_eq!(
        hits.len(),
        3,
        "everything but the orange and its copy: {hits:?}"
    );
    assert!(
        hits[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("orange small.jpg"),
        "{hits:?}"
    );
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    assert!(scores[0] > 0.9 && scores[0] <= 1.0, "{scores:?}");
    for h in &hits {
        assert_ne!(h["hash"], orange.as_str());
        assert_eq!(h["tags"].as_array().unwrap().len(), 3);
    }

    // A catalogued file is its content: the same answer.
    let by_file = lib
        .command(&lone)
        .args([
            "similar",
            "--json",
            lib.path("orange copy.jpg").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(json_lines(&by_file), hits, "{}", stderr(&by_file));

    // Paths on a pipe, --limit, --under, --min-score.
    let paths = lib
        .command(&lone)
        .args(["similar", "--limit", "2", &orange])
        .output()
        .unwrap();
    let listed: Vec<String> = String::from_utf8_lossy(&paths.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], hits[0]["path"].as_str().unwrap());
    let under = lib
        .command(&lone)
        .args([
            "similar",
            "--json",
            "--under",
            lib.path("more").to_str().unwrap(),
            &orange,
        ])
        .output()
        .unwrap();
    let under = json_lines(&under);
    assert_eq!(under.len(), 2, "squirrel and hopper");
    assert!(under
        .iter()
        .all(|h| h["path"].as_str().unwrap().contains("/more/")));
    let strict = lib
        .command(&lone)
        .args([
            "similar",
            "--json",
            "--min-score",
            &format!("{}", scores[0] - 1e-3),
            &orange,
        ])
        .output()
        .unwrap();
    assert_eq!(json_lines(&strict).len(), 1);
    let exact = lib
        .command(&lone)
        .args(["similar", "--json", "--exact", &orange])
        .output()
        .unwrap();
    assert_eq!(json_lines(&exact), hits, "--exact: the same answer");
    let none = lib
        .command(&lone)
        .args(["similar", "--min-score", "1", &orange])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1), "nothing that similar");

    // A photo the catalog does not know needs the engine, which this copy lacks.
    let new = lib.tmp.path().join("new.jpg");
    std::fs::write(&new, smaller(&lib.path("orange.jpg"), 3)).unwrap();
    let out = lib
        .command(&lone)
        .args(["similar", new.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("phototag-engine is missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn similar_classifies_a_new_photo_and_writes_nothing() {
    let lib = Lib::indexed();
    let before = lib.catalog().stats().unwrap();
    let new = lib.tmp.path().join("new.jpg");
    std::fs::write(&new, smaller(&lib.path("orange.jpg"), 3)).unwrap();
    let out = lib.run(&["similar", "--json", new.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits = json_lines(&out);
    assert_eq!(hits.len(), 5, "every file: {hits:?}");
    let first = hits[0]["path"].as_str().unwrap();
    assert!(first.contains("orange"), "an orange first: {hits:?}");
    assert!(
        hits[3]["path"].as_str().unwrap().contains("/more/"),
        "{hits:?}"
    );
    assert_eq!(lib.catalog().stats().unwrap(), before, "nothing written");
}

#[test]
fn similar_bad_input() {
    let lib = Lib::indexed();
    let unknown = "ab".repeat(32);
    let out = lib.run(&["similar", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no image with content hash"),
        "{}",
        stderr(&out)
    );

    let text = lib.tmp.path().join("notes.jpg");
    std::fs::write(&text, b"this is not a photo, whatever its name says").unwrap();
    let out = lib.run(&["similar", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("notes.jpg"),
        "names the file: {}",
        stderr(&out)
    );

    let missing = lib.tmp.path().join("missing.jpg");
    let out = lib.run(&["similar", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    for bad in [
        &["similar", "--min-score", "1.5", &unknown][..],
        &["dupes", "--near", "--threshold", "1.01"],
        &["dupes", "--near", "--threshold", "-0.1"],
        &["dupes", "--threshold", "0.5"],
    ] {
        let out = lib.command(&common::bin()).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn dupes_near_groups_exact_and_near_copies_best_first() {
    // The default threshold is measured on the real EfficientNet-Lite0; the seeded random
    // ResNet-18 these tests use finds every photo alike (squirrel and hopper score ~0.99),
    // while the orange's near copy scores ~0.9999: a threshold between the two.
    for place in fixtures::places("dupes_near_groups_exact_and_near_copies_best_first") {
        dupes_near_at(place);
    }
}

/// The threshold `dupes_near_groups_exact_and_near_copies_best_first` names.
const T: &str = "0.995";

fn dupes_near_at(place: Place) {
    let lib = Lib::indexed_at(place);
    let out = lib.run(&["dupes", "--near", "--json", "--threshold", T]);
    assert!(out.status.success(), "{}", stderr(&out));
    let groups = json_lines(&out);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let members = groups[0]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0]["hash"],
        lib.hash("orange.jpg").as_str(),
        "the full size first"
    );
    assert_eq!(members[0]["similarity"], 1.0);
    let paths: Vec<&str> = members[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "the orange and its exact copy");
    assert!(members[1]["paths"][0]
        .as_str()
        .unwrap()
        .ends_with("orange small.jpg"));
    let s = members[1]["similarity"].as_f64().unwrap();
    assert!((0.9..1.0).contains(&s), "{s}");

    // Text: similarity and path per line; only the photos under a folder.
    let text = lib.run(&["dupes", "--near", "--threshold", T]);
    let lines: Vec<String> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("1.0000\t") && lines[2].ends_with("orange small.jpg"),
        "{lines:?}"
    );
    let more = lib.run(&[
        "dupes",
        "--near",
        "--threshold",
        T,
        "--under",
        lib.path("more").to_str().unwrap(),
    ]);
    assert_eq!(more.status.code(), Some(1), "nothing alike there");
    // A threshold above the near copy's similarity leaves the exact copies.
    let strict = lib.run(&[
        "dupes",
        "--near",
        "--json",
        "--threshold",
        &format!("{}", (s + 1.0) / 2.0),
    ]);
    let strict = json_lines(&strict);
    assert_eq!(strict.len(), 1);
    assert_eq!(strict[0]["members"].as_array().unwrap().len(), 1);
}

/// A model as `model prepare` made them before embeddings: the traced module returns the
/// logits only, and its manifest (version 1) has no `embedding_size`.
fn old_model(models: &Path) {
    use tch::nn::ModuleT;
    let dir = models.join("old-model");
    std::fs::create_dir_all(&dir).unwrap();
    tch::manual_seed(5);
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = resnet::resnet18(&vs.root(), 1000);
    vs.freeze();
    let example = tch::Tensor::rand([1, 3, 224, 224], (tch::Kind::Float, tch::Device::Cpu));
    let traced = tch::CModule::create_by_tracing("Old", "forward", &[example], &mut |x| {
        vec![net.forward_t(&x[0], false)]
    })
    .unwrap();
    traced.save(dir.join(MODEL_FILE)).unwrap();
    let m = Manifest {
        manifest_version: 1,
        name: "old-model".into(),
        architecture: "resnet18".into(),
        pretrained: false,
        source: "random weights, seed 5, prepared the old way".into(),
        input_size: 224,
        resize: 256,
        crop: 224,
        interpolation: "bilinear".into(),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        num_classes: 1000,
        embedding_size: None,
        labels: LabelSet::Imagenet1k,
        sha256: manifest::sha256_file(&dir.join(MODEL_FILE)).unwrap(),
        created_unix: 0,
        phototag_version: "0.1.0".into(),
    };
    m.write(&dir.join(MANIFEST_FILE)).unwrap();
}

#[test]
fn a_model_prepared_before_embeddings_still_classifies_and_says_how_to_get_them() {
    let mut lib = Lib::new();
    let models = lib.tmp.path().join("models");
    old_model(&models);
    lib.models = models;
    let out = lib.run(&["index", "--model", "old-model", lib.root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("prepared before phototag kept image embeddings"),
        "{}",
        stderr(&out)
    );
    let c = lib.catalog();
    assert_eq!(c.embedding_counts().unwrap().with_embedding(), 0);
    assert_eq!(
        c.tags(&hash_bytes(&std::fs::read(lib.path("orange.jpg")).unwrap()))
            .unwrap()
            .len(),
        3
    );

    let out = lib.run(&["similar", &lib.hash("orange.jpg")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("retag --embeddings"),
        "{}",
        stderr(&out)
    );
    let out = lib.run(&["dupes", "--near"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the exact copies: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("4 of 4 image(s) have no embedding"),
        "{}",
        stderr(&out)
    );
    let out = lib.run(&["retag", "--embeddings", "--model", "old-model"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("prepare it again with `phototag model prepare"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retag_embeddings_fills_what_an_older_catalog_lacks_and_resumes() {
    let lib = Lib::indexed();
    let c = lib.catalog();
    let orange = hash_bytes(&std::fs::read(lib.path("orange.jpg")).unwrap());
    let before = c.embedding(&orange).unwrap().unwrap();
    let tags = c.tags(&orange).unwrap();
    drop(c);
    // As a catalog from before schema 4 is once migrated: images without embeddings.
    let conn = rusqlite::Connection::open(lib.sqlite_path()).unwrap();
    conn.execute("DELETE FROM embeddings", []).unwrap();
    drop(conn);
    let out = lib.run(&["retag"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retagged\t0"),
        "same model: nothing"
    );
    let out = lib.run(&["similar", &hex(&orange)]);
    assert_eq!(out.status.code(), Some(1));

    let out = lib.run(&["retag", "--embeddings"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retagged\t4"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c = lib.catalog();
    assert_eq!(
        c.embedding(&orange).unwrap().unwrap(),
        before,
        "the same embedding"
    );
    assert_eq!(c.tags(&orange).unwrap(), tags, "the same tags");
    let again = lib.run(&["retag", "--embeddings"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("retagged\t0"),
        "done: nothing left"
    );
    let out = lib.run(&["similar", &hex(&orange)]);
    assert!(out.status.success(), "{}", stderr(&out));
}
