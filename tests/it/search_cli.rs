//! `phototag search`, `labels` and `dupes` through the binary, on a catalog written with
//! the library (known tags, no model needed): the query language over the WordNet
//! hierarchy, every output format, filters, and grep's exit codes (0 found, 1 nothing,
//! 2 a bad query).

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phototag_light::catalog::fixtures::{self, Place};
use phototag_light::catalog::{hash_bytes, Catalog, NewFile};

/// A catalog of [`images`] in one backend, and how `PHOTOTAG_DB` names it.
struct Env {
    _place: Place,
    db: String,
}

/// Unix seconds of 2024-06-15T12:00:00Z and 2023-01-10T00:00:00Z.
const JUNE_2024: i64 = 1_718_452_800;
const JAN_2023: i64 = 1_673_308_800;

/// An image: its name (hashed), tags as (class, probability), paths, and their mtime.
type Image = (&'static str, Vec<(usize, f32)>, Vec<&'static [u8]>, i64);

/// 207 golden retriever, 208 Labrador retriever, 254 pug, 281 tabby, 291 lion,
/// 934 hotdog, 484 catamaran.
fn images() -> Vec<Image> {
    vec![
        (
            "golden",
            vec![(207, 0.80), (281, 0.10), (208, 0.05)],
            vec![b"/lib/a/golden.jpg", b"/lib/b/golden copy.jpg"],
            JUNE_2024,
        ),
        (
            "pug",
            vec![(254, 0.60), (934, 0.20)],
            vec![b"/lib/a/pug.jpg"],
            JAN_2023,
        ),
        (
            "tabby",
            vec![(281, 0.90)],
            vec![b"/lib/b/tabby.jpg"],
            JUNE_2024,
        ),
        (
            "hotdog",
            vec![(934, 0.70)],
            vec![b"/lib/a/hotdog.jpg"],
            JAN_2023,
        ),
        (
            "boat",
            vec![(484, 0.50)],
            vec![b"/lib/b/boat.jpg"],
            JUNE_2024,
        ),
        (
            "lion",
            vec![(291, 0.40), (207, 0.30)],
            vec![b"/lib/b/caf\xe9 lion.jpg"],
            JUNE_2024,
        ),
    ]
}

/// The catalog of [`images`] in each backend: every test runs on each and expects the
/// same output.
fn setups(test: &str) -> Vec<Env> {
    fixtures::places(test).into_iter().map(setup).collect()
}

fn setup(place: Place) -> Env {
    let mut cat = Catalog::open(&place.location).unwrap();
    let model = cat.register_model("resnet18", "ab", "resnet18").unwrap();
    let mut w = cat.begin().unwrap();
    let root = w.root_id(Path::new("/lib")).unwrap();
    for (name, tags, paths, mtime) in images() {
        let hash = hash_bytes(name.as_bytes());
        w.put_image(&fixtures::image_tagged(hash, model, fixtures::named(&tags)))
            .unwrap();
        for p in paths {
            w.put_file(&NewFile {
                path: PathBuf::from(OsStr::from_bytes(p)),
                root_id: root,
                hash,
                size: 1000,
                mtime_ns: mtime * 1_000_000_000,
                seen: 0,
            })
            .unwrap();
        }
    }
    w.commit().unwrap();
    let db = match &place.location {
        phototag_light::catalog::Location::Sqlite(p) => p.display().to_string(),
        phototag_light::catalog::Location::Postgres(t) => t.url.clone(),
    };
    eprintln!("catalog: {}", place.name());
    Env { _place: place, db }
}

fn phototag(e: &Env, args: &[&str]) -> Output {
    common::phototag()
        .args(args)
        .env("PHOTOTAG_DB", &e.db)
        .output()
        .unwrap()
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn dog_finds_every_breed_best_first_and_not_hot_dogs() {
    for e in setups("dog_finds_every_breed_best_first_and_not_hot_dogs") {
        let out = phototag(&e, &["search", "dog"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/a/pug.jpg",
                "/lib/b/caf\u{fffd} lion.jpg"
            ],
            "by probability (80%, 60%, 30%), then path; all copies"
        );
        assert_eq!(out.stdout.last(), Some(&b'\n'));
        // Plurals and case.
        assert_eq!(lines(&phototag(&e, &["search", "DOGS"])), lines(&out));
        assert_eq!(
            lines(&phototag(&e, &["search", "hot dog"])),
            ["/lib/a/hotdog.jpg", "/lib/a/pug.jpg"],
            "the pug photo's second tag is a hot dog"
        );
    }
}

#[test]
fn cat_finds_tabbies_and_lions_not_catamarans() {
    for e in setups("cat_finds_tabbies_and_lions_not_catamarans") {
        let out = phototag(&e, &["search", "cat"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/b/tabby.jpg",
                "/lib/b/caf\u{fffd} lion.jpg",
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg"
            ]
        );
    }
}

#[test]
fn boolean_queries_as_one_argument_or_several() {
    for e in setups("boolean_queries_as_one_argument_or_several") {
        let pug_and_lion = ["/lib/a/pug.jpg", "/lib/b/caf\u{fffd} lion.jpg"];
        for args in [
            &["search", "dog AND NOT cat"][..],
            &["search", "dog", "AND", "NOT", "cat"],
            &["search", "dog -cat>0.05"],
            &["search", "--", "dog", "-cat"],
        ] {
            let out = phototag(&e, args);
            assert_eq!(
                lines(&out),
                ["/lib/a/pug.jpg"],
                "{args:?}: {}",
                stderr(&out)
            );
        }
        // The golden retriever's tabby tag is 10% and the lion 40%: with cat>0.5 neither is a cat.
        let out = phototag(&e, &["search", "dog -cat>0.5"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/a/pug.jpg",
                "/lib/b/caf\u{fffd} lion.jpg"
            ]
        );
        // AND takes the weaker part's probability: the lion photo's retriever (30%) ranks it.
        let out = phototag(&e, &["search", "(lion OR pug) AND dog"]);
        assert_eq!(lines(&out), pug_and_lion);
        let out = phototag(&e, &["search", "\"golden retriever\" OR catamaran"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/b/boat.jpg",
                "/lib/b/caf\u{fffd} lion.jpg"
            ]
        );
        let out = phototag(&e, &["search", "golden retriever"]);
        assert_eq!(
            lines(&out)[0],
            "/lib/a/golden.jpg",
            "an argument with a space is a phrase"
        );
        let out = phototag(&e, &["search", "dog>0.5"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/a/pug.jpg"
            ]
        );
        let out = phototag(&e, &["search", "NOT (dog OR cat OR food)"]);
        assert_eq!(
            lines(&out),
            ["/lib/b/boat.jpg"],
            "a bare NOT reads every image"
        );
    }
}

#[test]
fn min_prob_under_since_until_and_limit() {
    for e in setups("min_prob_under_since_until_and_limit") {
        let out = phototag(&e, &["search", "--min-prob", "50", "dog"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/a/pug.jpg"
            ]
        );
        let out = phototag(&e, &["search", "--under", "/lib/b", "dog"]);
        assert_eq!(
            lines(&out),
            ["/lib/b/golden copy.jpg", "/lib/b/caf\u{fffd} lion.jpg"]
        );
        let out = phototag(
            &e,
            &[
                "search",
                "--under",
                "/lib/a/",
                "--under",
                "/lib/none",
                "dog",
            ],
        );
        assert_eq!(lines(&out), ["/lib/a/golden.jpg", "/lib/a/pug.jpg"]);
        let out = phototag(&e, &["search", "--since", "2024-06-15", "dog"]);
        assert_eq!(
            lines(&out),
            [
                "/lib/a/golden.jpg",
                "/lib/b/golden copy.jpg",
                "/lib/b/caf\u{fffd} lion.jpg"
            ]
        );
        let out = phototag(&e, &["search", "--since", "2024-06-15T12:00:01Z", "dog"]);
        assert_eq!(out.status.code(), Some(1));
        let out = phototag(&e, &["search", "--until", "2023-01-10", "dog"]);
        assert_eq!(
            lines(&out),
            ["/lib/a/pug.jpg"],
            "--until takes the whole day"
        );
        let out = phototag(&e, &["search", "--until", "2023-01-09", "dog"]);
        assert_eq!(out.status.code(), Some(1));
        let out = phototag(&e, &["search", "--limit", "2", "dog"]);
        assert_eq!(lines(&out), ["/lib/a/golden.jpg", "/lib/b/golden copy.jpg"]);
        let out = phototag(&e, &["search", "--since", "2024-02-30", "dog"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let out = phototag(&e, &["search", "--min-prob", "150", "dog"]);
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn json_null_count_and_table_outputs() {
    for e in setups("json_null_count_and_table_outputs") {
        let out = phototag(&e, &["search", "--json", "dog OR lion"]);
        assert_eq!(out.status.code(), Some(0));
        let hits: Vec<serde_json::Value> = lines(&out)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(hits.len(), 4);
        let golden = &hits[0];
        assert_eq!(golden["path"], "/lib/a/golden.jpg");
        assert_eq!(
            golden["hash"],
            phototag_light::catalog::hex(&hash_bytes(b"golden"))
        );
        assert_eq!(golden["score"], 80.0);
        assert_eq!(golden["tags"].as_array().unwrap().len(), 3);
        assert_eq!(
            golden["tags"][1],
            serde_json::json!({"rank": 2, "class": "tabby", "index": 281, "probability": 10.0})
        );
        // Both retrievers are dogs; the tabby is not what was asked.
        let matched: Vec<&str> = golden["matched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["class"].as_str().unwrap())
            .collect();
        assert_eq!(matched, ["golden retriever", "Labrador retriever"]);
        let lion = &hits[3];
        assert_eq!(lion["score"], 40.0);
        assert_eq!(lion["matched"][0]["class"], "lion");
        assert_eq!(lion["matched"][1]["class"], "golden retriever");

        let out = phototag(&e, &["search", "-0", "lion"]);
        assert_eq!(
            out.stdout, b"/lib/b/caf\xe9 lion.jpg\0",
            "exact bytes of a non-UTF-8 name"
        );

        let out = phototag(&e, &["search", "--count", "dog"]);
        assert_eq!(out.stdout, b"4\n");
        let out = phototag(
            &e,
            &["search", "--count", "catamaran", "--under", "/nowhere"],
        );
        assert_eq!(out.status.code(), Some(1));

        let out = phototag(&e, &["search", "--table", "dog"]);
        let t = lines(&out);
        assert_eq!(t.len(), 5, "{t:?}");
        assert!(t[0].starts_with("PATH") && t[0].contains("TAG") && t[0].ends_with("PROB"));
        assert!(t[1].starts_with("/lib/a/golden.jpg"));
        assert!(
            t[1].contains("golden retriever") && t[1].ends_with(" 80.0%"),
            "{}",
            t[1]
        );
        assert!(
            t[4].contains("golden retriever") && t[4].ends_with(" 30.0%"),
            "{}",
            t[4]
        );

        let out = phototag(&e, &["search", "--json", "--count", "dog"]);
        assert_eq!(out.status.code(), Some(2), "one output format at a time");
    }
}

#[test]
fn exit_codes_like_grep() {
    for e in setups("exit_codes_like_grep") {
        let out = phototag(&e, &["search", "(dog OR cat"]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(
            err.lines().next(),
            Some("phototag: syntax error at 12: expected ')'"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        let out = phototag(&e, &["search", "dog AND"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("syntax error at 8: expected a term"));

        let out = phototag(&e, &["search", "dgo"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("no ImageNet class") && err.contains("dog"),
            "{err}"
        );

        let out = phototag(&e, &["search", "catamaran", "--under", "/lib/a"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());

        let out = phototag(&e, &["search", "dog"]);
        assert_eq!(out.status.code(), Some(0));
        // A closed pipe is not an error.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} search dog | head -1", common::bin().display()))
            .env("PHOTOTAG_DB", &e.db)
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/lib/a/golden.jpg\n");
    }
}

#[test]
fn labels_lists_what_a_word_covers() {
    for e in setups("labels_lists_what_a_word_covers") {
        let out = phototag(&e, &["labels", "dog"]);
        assert_eq!(out.status.code(), Some(0));
        let l = lines(&out);
        assert_eq!(l.len(), 118);
        assert!(l.iter().any(|x| x.starts_with("254\tn02110958\tpug")));
        assert!(l.iter().any(|x| x.contains("Pembroke")));
        assert!(!l.iter().any(|x| x.contains("hotdog")));
        assert!(stderr(&out).contains("n02084071 dog, domestic dog, Canis familiaris"));
        let l = lines(&phototag(&e, &["labels", "cats"]));
        assert!(l.iter().any(|x| x.contains("\ttabby")) && l.len() < 20);
        assert_eq!(lines(&phototag(&e, &["labels"])).len(), 1000);
        let out = phototag(&e, &["labels", "--json", "golden", "retriever"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["index"], 207);
        let hypernyms: Vec<&str> = v["hypernyms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert_eq!(hypernyms[0], "retriever");
        assert!(hypernyms.contains(&"dog") && hypernyms.contains(&"domestic animal"));
        let out = phototag(&e, &["labels", "shepherd"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("German shepherd"), "{}", stderr(&out));
    }
}

#[test]
fn dupes_groups_paths_of_one_content() {
    for e in setups("dupes_groups_paths_of_one_content") {
        let out = phototag(&e, &["dupes"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(lines(&out), ["/lib/a/golden.jpg", "/lib/b/golden copy.jpg"]);
        let out = phototag(&e, &["dupes", "--json"]);
        let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(g["size"], 1000);
        assert_eq!(g["paths"].as_array().unwrap().len(), 2);
        assert_eq!(
            g["hash"],
            phototag_light::catalog::hex(&hash_bytes(b"golden"))
        );
        let out = phototag(&e, &["dupes", "--under", "/lib/a"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
    }
}
