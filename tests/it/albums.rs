//! `phototag album` and `phototag export` on catalogs written directly (chosen tags, no
//! model): sync and dry run, collision names, foreign files left alone, retags, hard
//! links, a missing parent, and export round trips with XMP sidecars merged.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phototag_light::catalog::{fixtures, hash_bytes, Catalog, Hash, NewFile};

struct Lib {
    tmp: tempfile::TempDir,
    /// Canonical.
    dir: PathBuf,
}

impl Lib {
    fn new() -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(dir.join("photos")).unwrap();
        Lib { tmp, dir }
    }
    fn db(&self) -> PathBuf {
        self.dir.join("catalog.db")
    }
    fn photos(&self) -> PathBuf {
        self.dir.join("photos")
    }
    fn config(&self, text: &str) -> PathBuf {
        let p = self.dir.join("phototag.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a file with `content` at photos/`rel` and catalogs it with `tags`.
    fn add(&self, rel: &str, content: &str, tags: &[(usize, &str, f32)]) -> (PathBuf, Hash) {
        let path = self.photos().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let hash = hash_bytes(content.as_bytes());
        self.tag(&hash, tags);
        let mut c = Catalog::open(self.db()).unwrap();
        let mut w = c.begin().unwrap();
        let root = w.root_id(&self.photos()).unwrap();
        w.put_file(&NewFile {
            path: path.clone(),
            root_id: root,
            hash,
            size: content.len() as u64,
            mtime_ns: 0,
            seen: 0,
        })
        .unwrap();
        w.commit().unwrap();
        (path, hash)
    }

    /// Stores (or replaces: a retag) the tags of a content.
    fn tag(&self, hash: &Hash, tags: &[(usize, &str, f32)]) {
        let mut c = Catalog::open(self.db()).unwrap();
        let model = c.register_model("test-model", "ab12", "resnet18").unwrap();
        let mut w = c.begin().unwrap();
        w.put_image(&fixtures::image_tagged(
            *hash,
            model,
            fixtures::ranked(tags),
        ))
        .unwrap();
        w.commit().unwrap();
    }

    fn run(&self, config: &Path, args: &[&str]) -> Output {
        let out = Command::new(common::bin())
            .arg("--config")
            .arg(config)
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "$ phototag {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

const GOLDEN: (usize, &str, f32) = (207, "golden retriever", 0.9);
const TABBY: (usize, &str, f32) = (281, "tabby", 0.8);

/// Names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn hex8(h: &Hash) -> String {
    phototag_light::catalog::hex(h)[..8].to_string()
}

#[test]
fn sync_dry_run_collisions_foreign_files_and_retags() {
    let lib = Lib::new();
    let (a, ha) = lib.add("2023/a.jpg", "A", &[GOLDEN]);
    let (a2, ha2) = lib.add("2024/a.jpg", "A2", &[(207, "golden retriever", 0.7)]);
    let (b, _) = lib.add("b.jpg", "B", &[(208, "Labrador retriever", 0.6)]);
    lib.add("cat.jpg", "C", &[TABBY]);
    // A dog under 50%, and a dog with a cat: neither matches.
    lib.add("weak.jpg", "W", &[(207, "golden retriever", 0.3)]);
    lib.add(
        "both.jpg",
        "D",
        &[(207, "golden retriever", 0.6), (281, "tabby", 0.3)],
    );
    let album = lib.dir.join("albums/Dogs");
    std::fs::create_dir_all(&album).unwrap();
    std::fs::write(album.join("readme.txt"), "mine").unwrap();
    let cfg = lib.config(&format!(
        "[[album]]\nname = \"Dogs\"\nquery = \"dog>0.5 AND NOT cat\"\nfolder = {:?}\n",
        album.display().to_string()
    ));

    let out = lib.run(&cfg, &["album", "sync", "Dogs", "--dry-run"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("create\t")).count(),
        3,
        "{stdout}"
    );
    assert_eq!(names(&album), ["readme.txt"], "a dry run changes nothing");

    let out = lib.run(&cfg, &["album", "sync", "Dogs"]);
    assert!(out.status.success());
    let n_a = format!("a-{}.jpg", hex8(&ha));
    let n_a2 = format!("a-{}.jpg", hex8(&ha2));
    let mut want = vec![
        n_a.clone(),
        n_a2.clone(),
        "b.jpg".into(),
        "readme.txt".into(),
    ];
    want.sort();
    assert_eq!(
        names(&album),
        want,
        "a colliding name gets the hash suffix, others not"
    );
    assert_eq!(std::fs::read_link(album.join(&n_a)).unwrap(), a);
    assert_eq!(std::fs::read_link(album.join(&n_a2)).unwrap(), a2);
    assert_eq!(std::fs::read_link(album.join("b.jpg")).unwrap(), b);
    assert_eq!(
        std::fs::read_to_string(album.join("readme.txt")).unwrap(),
        "mine"
    );

    // Synced again: nothing to do.
    let out = lib.run(&cfg, &["album", "sync", "Dogs", "--dry-run"]);
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());

    // Retag the first a.jpg as a cat: its link goes; the other a.jpg no longer collides.
    // Someone replaced the b.jpg link with their own file: it is left alone.
    lib.tag(&ha, &[TABBY]);
    std::fs::remove_file(album.join("b.jpg")).unwrap();
    std::fs::write(album.join("b.jpg"), "their own").unwrap();
    lib.tag(&hash_bytes(b"B"), &[TABBY]);
    let out = lib.run(&cfg, &["album", "sync", "Dogs"]);
    assert!(out.status.success());
    assert_eq!(names(&album), ["a.jpg", "b.jpg", "readme.txt"]);
    assert_eq!(std::fs::read_link(album.join("a.jpg")).unwrap(), a2);
    assert_eq!(
        std::fs::read_to_string(album.join("b.jpg")).unwrap(),
        "their own"
    );

    // A foreign file with a wanted name: the link takes the suffixed name instead.
    lib.tag(&hash_bytes(b"B"), &[GOLDEN]);
    let out = lib.run(&cfg, &["album", "sync", "Dogs"]);
    assert!(out.status.success());
    let n_b = format!("b-{}.jpg", hex8(&hash_bytes(b"B")));
    assert_eq!(
        names(&album),
        ["a.jpg", n_b.as_str(), "b.jpg", "readme.txt"]
    );
    assert_eq!(std::fs::read_link(album.join(&n_b)).unwrap(), b);

    let out = lib.run(&cfg, &["album", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("Dogs\tconfig\tsymlink\t"), "{stdout}");
    assert!(stdout.contains("2 links"), "{stdout}");
    let out = lib.run(&cfg, &["album", "remove", "Dogs"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a config album is removed in the config"
    );
}

#[test]
fn cli_albums_hard_links_and_errors() {
    let lib = Lib::new();
    let (c, _) = lib.add("cat.jpg", "C", &[TABBY]);
    lib.add("dog.jpg", "D", &[GOLDEN]);
    let cfg = lib.config("");
    let album = lib.dir.join("Cats");

    let out = lib.run(
        &cfg,
        &[
            "album",
            "add",
            "Cats",
            "cat",
            album.to_str().unwrap(),
            "--hardlinks",
        ],
    );
    assert!(out.status.success());
    assert_eq!(names(&album), ["cat.jpg"]);
    let link = std::fs::symlink_metadata(album.join("cat.jpg")).unwrap();
    assert!(link.is_file());
    assert_eq!(
        link.ino(),
        std::fs::metadata(&c).unwrap().ino(),
        "a hard link"
    );

    for (args, why) in [
        (vec!["album", "add", "Cats", "dog", "/tmp/x"], "name taken"),
        (vec!["album", "add", "Bad", "(dog", "/tmp/x"], "syntax"),
        (vec!["album", "add", "Bad", "dgo", "/tmp/x"], "unknown word"),
        (vec!["album", "add", "../x", "dog", "/tmp/x"], "bad name"),
        (vec!["album", "sync", "Nope"], "no such album"),
    ] {
        let out = lib.run(&cfg, &args);
        assert_eq!(out.status.code(), Some(2), "{why}");
    }

    let out = lib.run(&cfg, &["album", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "catalog");
    assert_eq!(v["links"], "hardlink");
    assert_eq!(v["linked"], 1);

    std::fs::write(album.join("notes.txt"), "mine").unwrap();
    let out = lib.run(&cfg, &["album", "remove", "Cats"]);
    assert!(out.status.success());
    assert_eq!(names(&album), ["notes.txt"], "only phototag's links go");
    assert!(c.exists(), "the photo stays");
    let out = lib.run(&cfg, &["album", "list"]);
    assert_eq!(out.status.code(), Some(1), "no albums left");
}

#[test]
fn an_album_on_a_missing_mount_is_reported_not_created() {
    let lib = Lib::new();
    lib.add("dog.jpg", "D", &[GOLDEN]);
    let album = lib.dir.join("mnt/nas/Dogs");
    let cfg = lib.config(&format!(
        "[[album]]\nname = \"Dogs\"\nquery = \"dog\"\nfolder = {:?}\n",
        album.display().to_string()
    ));
    let out = lib.run(&cfg, &["album", "sync", "Dogs"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unavailable") && stderr.contains("mnt/nas"),
        "{stderr}"
    );
    assert!(!lib.dir.join("mnt").exists(), "nothing created");
}

#[test]
fn export_round_trips_and_sidecars_merge() {
    let lib = Lib::new();
    let (dog, hd) = lib.add("dog.jpg", "D", &[GOLDEN, (208, "Labrador retriever", 0.05)]);
    let (cat, _) = lib.add("odd, \"name\".jpg", "C", &[TABBY]);
    let cfg = lib.config("");
    let catalog = Catalog::open_readonly(lib.db()).unwrap();

    let out = lib.run(&cfg, &["export", "--format", "json"]);
    assert!(out.status.success());
    let recs = phototag_light::export::read_json(&out.stdout[..]).unwrap();
    assert_eq!(recs.len(), 2);
    let d = recs.iter().find(|r| r.path == dog).unwrap();
    assert_eq!(d.hash, phototag_light::catalog::hex(&hd));
    assert_eq!(d.model, "test-model");
    assert_eq!(d.tags, catalog.tags(&hd).unwrap());

    let out = lib.run(&cfg, &["export", "--format", "csv"]);
    assert!(out.status.success());
    let csv = phototag_light::export::read_csv(&out.stdout[..]).unwrap();
    assert_eq!(csv.len(), 2);
    assert!(csv.iter().any(|r| r.path == cat));
    for r in &csv {
        let json = recs.iter().find(|j| j.path == r.path).unwrap();
        assert_eq!((&r.hash, &r.model), (&json.hash, &json.model));
        assert_eq!(r.tags.len(), json.tags.len());
    }

    // XMP for a query: only the dog. An existing sidecar (a real one, if the shared
    // corpus is here; else a small digiKam-style one) is merged into.
    let existing = common::shared(
        "corpus/formats/photoprism/assets/examples/iphone_7.xmp",
        "export_round_trips_and_sidecars_merge (real sidecar)",
    )
    .map(|p| std::fs::read_to_string(p).unwrap())
    .unwrap_or_else(|| {
        "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"><exif:DateTimeOriginal>2018-09-10T12:16:13</exif:DateTimeOriginal></rdf:Description></rdf:RDF></x:xmpmeta>".into()
    });
    let sidecar = phototag_light::sidecar::path_for(&dog);
    std::fs::write(&sidecar, &existing).unwrap();
    let photo_before = std::fs::read(&dog).unwrap();
    let out = lib.run(&cfg, &["export", "--format", "xmp", "dog"]);
    assert!(out.status.success());
    assert!(
        !phototag_light::sidecar::path_for(&cat).exists(),
        "not matched"
    );
    assert_eq!(
        std::fs::read(&dog).unwrap(),
        photo_before,
        "the photo is never modified"
    );
    let merged = std::fs::read_to_string(&sidecar).unwrap();
    let s = phototag_light::sidecar::xmp::read(&merged).unwrap();
    assert_eq!(s.keywords, ["golden retriever"], "the 5% tag is no keyword");
    assert_eq!(s.model.as_deref(), Some("test-model"));
    assert_eq!(s.tags.len(), 2);
    assert!(merged.contains("<exif:DateTimeOriginal>2018-09-10T12:16:13</exif:DateTimeOriginal>"));
    // Every element of the original is still there.
    for line in existing
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("<exif:"))
    {
        assert!(merged.contains(line), "lost {line}");
    }

    // To a folder instead: a tree mirroring the photos' paths.
    let out_dir = lib.dir.join("out");
    let out = lib.run(
        &cfg,
        &["export", "--format", "xmp", "-o", out_dir.to_str().unwrap()],
    );
    assert!(out.status.success());
    let mirrored = phototag_light::sidecar::path_for(&out_dir.join(cat.strip_prefix("/").unwrap()));
    let s =
        phototag_light::sidecar::xmp::read(&std::fs::read_to_string(mirrored).unwrap()).unwrap();
    assert_eq!(s.keywords, ["tabby"]);
    drop(lib.tmp);
}

#[test]
fn real_sidecars_merge_into_valid_xmp_and_keep_their_content() {
    let Some(dir) = common::shared(
        "corpus/formats/photoprism/assets/examples",
        "real_sidecars_merge_into_valid_xmp_and_keep_their_content",
    ) else {
        return;
    };
    let tags = vec![
        phototag_light::catalog::TagRow {
            rank: 1,
            class_index: 281,
            label: "tabby".into(),
            probability: 0.6,
        },
        phototag_light::catalog::TagRow {
            rank: 2,
            class_index: 285,
            label: "Egyptian cat".into(),
            probability: 0.2,
        },
    ];
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "xmp") {
            continue;
        }
        n += 1;
        let original = std::fs::read_to_string(&p).unwrap();
        let merged = phototag_light::sidecar::merge::merge(&original, "resnet18", &tags).unwrap();
        // Well-formed (end names checked) and reads back with our keywords.
        let s = phototag_light::sidecar::xmp::read(&merged).unwrap();
        assert_eq!(s.keywords, ["tabby", "Egyptian cat"], "{}", p.display());
        assert_eq!(s.model.as_deref(), Some("resnet18"));
        // Every element line of the original (ExifTool writes one per line) is kept.
        for line in original.lines().map(str::trim) {
            if line.starts_with('<')
                && !line.starts_with("<rdf:Description")
                && !line.starts_with("<?xpacket")
            {
                assert!(merged.contains(line), "{}: lost {line}", p.display());
            }
        }
        assert!(
            merged.starts_with("<?xpacket begin="),
            "the packet wrapper stays"
        );
        // Merging again changes nothing.
        assert_eq!(
            phototag_light::sidecar::merge::merge(&merged, "resnet18", &tags).unwrap(),
            merged
        );
    }
    assert!(n >= 1, "no .xmp examples found");
}
