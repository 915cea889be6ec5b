//! Tags taught by example through the binaries: `teach` from catalogued photos (the light
//! binary alone), from a file the catalog does not know (the engine), searching by the
//! tag, `--list/--show/--remove`, corrections, a retag with another model, and bad input.

use crate::common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phototag_light::catalog::fixtures::places;
use phototag_light::catalog::{hash_bytes, hex, Location};

/// The random model these tests classify with (the similar tests' too: prepared once).
const SEED: i64 = 7;

/// Six kinds of change; variant `i` of a photo uses the `i`-th.
const CHANGES: [(u32, u32, u32, i32, u8); 6] = [
    (1, 1, 100, 0, 90),
    (1, 2, 100, 0, 80),
    (2, 3, 95, 5, 85),
    (1, 1, 90, 0, 70),
    (3, 4, 100, -8, 90),
    (1, 2, 92, 10, 75),
];

struct Lib {
    tmp: tempfile::TempDir,
    root: PathBuf,
    /// A SQLite file or a PostgreSQL URL.
    db: OsString,
    models: PathBuf,
}

impl Lib {
    /// Six variants each of orange, squirrel and hopper, indexed in a SQLite catalog.
    fn indexed() -> Lib {
        Lib::indexed_in(None)
    }

    /// [`Lib::indexed`] in the catalog `db` (a SQLite file in the library's folder when
    /// `None`).
    fn indexed_in(db: Option<&Location>) -> Lib {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("photos");
        std::fs::create_dir_all(&root).unwrap();
        for (name, src) in sources() {
            for (i, &(n, d, c, l, q)) in CHANGES.iter().enumerate() {
                std::fs::write(
                    root.join(format!("{name}{i}.jpg")),
                    common::variant(&src, n, d, c, l, q),
                )
                .unwrap();
            }
        }
        let lib = Lib {
            root: root.canonicalize().unwrap(),
            db: match db {
                None => tmp.path().join("catalog.db").into_os_string(),
                Some(Location::Sqlite(p)) => p.clone().into_os_string(),
                Some(Location::Postgres(t)) => t.url.clone().into(),
            },
            models: common::models(SEED),
            tmp,
        };
        let out = lib.run(&["index", lib.root.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        lib
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("PHOTOTAG_CONFIG", "/dev/null")
            .env_remove("RUST_LOG")
            .env("PHOTOTAG_MODEL_DIR", &self.models)
            .env("PHOTOTAG_DB", &self.db)
            .env("PHOTOTAG_CACHE_DIR", self.tmp.path().join("cache"));
        c
    }

    /// `phototag ARGS` (`--model resnet18-random` for the commands that classify).
    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(&common::bin());
        c.args(args);
        if matches!(args[0], "index" | "retag" | "teach") && !args.contains(&"--model") {
            c.args(["--model", "resnet18-random"]);
        }
        c.output().unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_string()
    }

    /// The names (without folder and extension) `phototag search QUERY` lists, sorted.
    fn search(&self, query: &str) -> Vec<String> {
        let out = self.run(&["search", "--paths", query]);
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                Path::new(l)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn sources() -> [(&'static str, PathBuf); 3] {
    let photos = common::fixture("photos");
    [
        ("orange", photos.join("orange.jpg")),
        ("squirrel", photos.join("squirrel_cls.jpg")),
        ("hopper", common::fixture("hopper.jpg")),
    ]
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Taught from three orange variants against two of each other photo, by the light
/// binary alone: every orange variant has the tag (three it never saw), nothing else does;
/// the tag is a search term like any other; `index` gives it to a new orange photo; list,
/// show and remove work. On a SQLite and a PostgreSQL catalog, with the same figures and
/// matches.
#[test]
fn a_tag_taught_from_a_few_photos_matches_what_they_share() {
    let test = "a_tag_taught_from_a_few_photos_matches_what_they_share";
    let mut seen = Vec::new();
    for place in places(test) {
        eprintln!("{test}: {}", place.name());
        seen.push(taught_from_a_few_photos(&Lib::indexed_in(Some(
            &place.location,
        ))));
    }
    for other in &seen[1..] {
        assert_eq!(other, &seen[0], "PostgreSQL and SQLite differ");
    }
}

/// What [`taught_from_a_few_photos`] saw: teach's report, `--list --json` (less its
/// times), and searches.
type Seen = (String, serde_json::Value, Vec<Vec<String>>);

fn taught_from_a_few_photos(lib: &Lib) -> Seen {
    let lone_dir = tempfile::tempdir().unwrap();
    let lone = lone_dir.path().join("phototag");
    std::fs::copy(common::bin(), &lone).unwrap();
    let squirrel0 = hex(&hash_bytes(
        &std::fs::read(lib.path("squirrel0.jpg")).unwrap(),
    ));
    let out = lib
        .command(&lone)
        .args(["teach", "Tangerine", "--yes"])
        .args([
            lib.path("orange0.jpg"),
            lib.path("orange1.jpg"),
            lib.path("orange2.jpg"),
        ])
        .args(["--no", &squirrel0])
        .args([
            lib.path("squirrel1.jpg"),
            lib.path("hopper0.jpg"),
            lib.path("hopper1.jpg"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("taught from 3 yes and 4 no examples"),
        "{text}"
    );
    assert!(
        text.contains("cross-validated (3 folds): precision"),
        "{text}"
    );
    assert!(text.contains("matches 6 of 18 photos"), "{text}");
    assert!(
        stderr(&out).contains("only 3 yes example(s)"),
        "{}",
        stderr(&out)
    );

    assert_eq!(lib.search("tangerine"), names("orange", 0..6));
    assert_eq!(
        lib.search("TANGERINE>0.5").len(),
        lib.search("tangerine>0.5").len()
    );
    let not = lib.search("NOT tangerine");
    assert_eq!(not.len(), 12, "{not:?}");
    assert!(not.iter().all(|n| !n.starts_with("orange")));
    // Combined with ImageNet terms: what the random model calls these does not matter,
    // only that AND and OR treat the taught tag as any term.
    let any = lib.search("tangerine OR animal OR thing OR object");
    assert!(names("orange", 0..6).iter().all(|n| any.contains(n)));
    let searches = vec![
        lib.search("tangerine"),
        lib.search("tangerine>0.8"),
        lib.search("tangerine AND NOT cat"),
        not,
        any,
    ];

    let list = lib.run(&["teach", "--list", "--json"]);
    assert!(list.status.success());
    let mut listed: serde_json::Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    assert_eq!(listed["name"], "Tangerine");
    assert_eq!(listed["matches"], 6);
    assert_eq!(
        (listed["yes"].as_u64(), listed["no"].as_u64()),
        (Some(3), Some(4))
    );
    listed["fitted_at"].take();

    let show = lib.run(&["teach", "--show", "tangerine", "--json", "--limit", "3"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let v: serde_json::Value = serde_json::from_str(stdout(&show).trim()).unwrap();
    assert_eq!(v["examples"].as_array().unwrap().len(), 7);
    assert_eq!(v["best"].as_array().unwrap().len(), 3);
    assert!(v["best"][0]["path"].as_str().unwrap().contains("orange"));
    assert_eq!(v["borderline"].as_array().unwrap().len(), 3);
    let json = lib.run(&["search", "--json", "tangerine"]);
    let hit: serde_json::Value =
        serde_json::from_str(stdout(&json).lines().next().unwrap()).unwrap();
    assert_eq!(hit["matched"][0]["class"], "Tangerine");
    assert!(hit["matched"][0]["index"].as_u64().unwrap() > 1000);

    let unknown = lib.run(&["teach", "--show", "tangerin"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("close: Tangerine"),
        "{}",
        stderr(&unknown)
    );
    // A new orange photo gets the tag when `index` stores it.
    let fresh = lib.root.join("fresh orange.jpg");
    std::fs::write(&fresh, common::variant(&sources()[0].1, 1, 1, 97, 3, 88)).unwrap();
    let out = lib.run(&["index", lib.root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after_index = lib.search("tangerine");
    assert!(
        after_index.contains(&"fresh orange".to_string()),
        "{after_index:?}"
    );

    let removed = lib.run(&["teach", "--remove", "tangerine"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert_eq!(
        lib.run(&["teach", "--remove", "tangerine"]).status.code(),
        Some(1)
    );
    assert_eq!(lib.run(&["search", "tangerine"]).status.code(), Some(1));
    (text, listed, searches)
}

/// A correction (an orange variant given as a no) changes the matches; a file the catalog
/// does not know is classified by the engine; a retag with another model refits the tag
/// from its examples and it still finds the orange variants.
#[test]
fn corrections_new_files_and_a_retag_refit_the_tag() {
    let lib = Lib::indexed();
    let mut args = vec!["teach", "sunball", "--yes"];
    let yes = [
        lib.path("orange0.jpg"),
        lib.path("orange1.jpg"),
        lib.path("orange2.jpg"),
    ];
    let no = [
        lib.path("squirrel0.jpg"),
        lib.path("squirrel1.jpg"),
        lib.path("hopper0.jpg"),
        lib.path("hopper1.jpg"),
    ];
    args.extend(yes.iter().map(String::as_str));
    args.push("--no");
    args.extend(no.iter().map(String::as_str));
    let out = lib.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lib.search("sunball"), names("orange", 0..6));

    // Correct: orange5 is not sunball. It loses the tag.
    let out = lib.run(&[
        "teach",
        "sunball",
        "--no",
        &lib.path("orange5.jpg"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((v["yes"].as_u64(), v["no"].as_u64()), (Some(3), Some(5)));
    assert!(!lib.search("sunball").contains(&"orange5".to_string()));

    // A new file (outside the catalog) as a yes, and one that cannot be decoded.
    let outside = lib.tmp.path().join("new orange.jpg");
    std::fs::write(&outside, common::variant(&sources()[0].1, 5, 8, 97, 3, 88)).unwrap();
    let broken = lib.tmp.path().join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 not a jpeg").unwrap();
    let out = lib.run(&[
        "teach",
        "sunball",
        "--yes",
        outside.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken file: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("broken.jpg"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("taught from 4 yes and 5 no"),
        "{}",
        stdout(&out)
    );

    // Another model: every image is retagged, the tag refitted from its examples (the
    // file outside the catalog cannot be seen by the new model: left out, and said).
    let other = common::models(SEED + 1);
    let out = lib
        .command(&common::bin())
        .env("PHOTOTAG_MODEL_DIR", &other)
        .args(["retag", "--model", "resnet18-random"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("taught tag `sunball` refitted"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 example(s) not in the catalog left out"),
        "{}",
        stderr(&out)
    );
    let found = lib.search("sunball");
    assert!(
        names("orange", 0..5).iter().all(|n| found.contains(n)),
        "{found:?}"
    );
    assert!(found.iter().all(|n| n.starts_with("orange")), "{found:?}");
}

#[test]
fn bad_input_is_refused_with_its_exit_code() {
    let lib = Lib::indexed();
    let o0 = lib.path("orange0.jpg");
    let h0 = lib.path("hopper0.jpg");
    let code = |args: &[&str]| {
        let out = lib.run(args);
        (out.status.code(), stderr(&out))
    };
    let (c, e) = code(&["teach", "rex", "--no", &h0]);
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("no --yes example"), "{e}");
    let (c, e) = code(&["teach", "cat", "--yes", &o0, "--no", &h0]);
    assert_eq!(c, Some(2), "{e}");
    assert!(
        e.contains("ImageNet/WordNet") && e.contains("my-cat"),
        "{e}"
    );
    let (c, e) = code(&["teach", "rex", "--yes", &o0]);
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("no no example"), "{e}");
    let (c, e) = code(&["teach", "rex", "--yes", &o0, "--no", &o0]);
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("both as --yes and as --no"), "{e}");
    let (c, e) = code(&["teach", "a/b", "--yes", &o0, "--no", &h0]);
    assert_eq!(c, Some(2), "{e}");
    let (c, e) = code(&["teach", "--show", "rex"]);
    assert_eq!(c, Some(1), "{e}");
    // A query that matches nothing is a per-example problem; the rest are used.
    let (c, e) = code(&["teach", "rex", "--yes", &o0, "zzzqqq", "--no", &h0]);
    assert_eq!(c, Some(1), "{e}");
    assert!(e.contains("zzzqqq"), "{e}");
    let rex = lib.search("rex");
    assert!(
        rex.contains(&"orange0".to_string()) && !rex.contains(&"hopper0".to_string()),
        "{rex:?}"
    );
}

/// The real daemon applies a taught tag: a smart album on it fills when the tag is taught
/// (by another process), and a new orange photo dropped in the watched folder gets the tag
/// (search, album link, sidecar keyword) within seconds.
#[test]
fn the_daemon_applies_a_taught_tag_to_new_photos_and_its_album() {
    use crate::common::daemon::Daemon;
    use crate::common::wait_for;
    use std::time::Duration;
    const T: Duration = Duration::from_secs(90);

    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("photos");
    let album = root.join("Albums/Oranges");
    std::fs::create_dir_all(&album).unwrap();
    let srcs = sources();
    for (name, src) in &srcs {
        for (i, &(n, d, c, l, q)) in CHANGES.iter().enumerate().take(4) {
            std::fs::write(
                root.join(format!("{name}{i}.jpg")),
                common::variant(src, n, d, c, l, q),
            )
            .unwrap();
        }
    }
    std::fs::write(
        base.join("phototag.toml"),
        format!(
            "[watch]\nroots = [{root:?}]\nsettle_seconds = 0.5\nalbum_delay_seconds = 0.5\nsidecars = {{ {root:?} = true }}\n\n[[album]]\nname = \"Oranges\"\nquery = \"tangerine\"\nfolder = {album:?}\n",
            root = root.display().to_string(),
            album = album.display().to_string()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(tmp, &common::models(SEED), 4);
    let db = daemon.db();
    wait_for("12 photos catalogued", T, || {
        phototag_light::catalog::Catalog::open_readonly(&db)
            .is_ok_and(|c| c.embedding_counts().is_ok_and(|n| n.with_embedding() == 12))
    });
    let teach = |args: &[String]| {
        Command::new(common::bin())
            .env("PHOTOTAG_CONFIG", daemon.config())
            .env("PHOTOTAG_DB", &db)
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .unwrap()
    };
    let p = |n: &str| root.join(n).to_str().unwrap().to_string();
    let out = teach(&[
        "teach".into(),
        "tangerine".into(),
        "--yes".into(),
        p("orange0.jpg"),
        p("orange1.jpg"),
        "--no".into(),
        p("squirrel0.jpg"),
        p("squirrel1.jpg"),
        p("hopper0.jpg"),
        p("hopper1.jpg"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let linked = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let took = wait_for("the album holds the four oranges", T, || {
        linked(&album)
            == names("orange", 0..4)
                .iter()
                .map(|n| format!("{n}.jpg"))
                .collect::<Vec<_>>()
    });
    eprintln!("taught → album filled in {:.1} s", took.as_secs_f64());

    let new = root.join("fresh orange.jpg");
    let (n, d, c, l, q) = CHANGES[5];
    std::fs::write(&new, common::variant(&srcs[0].1, n, d, c, l, q)).unwrap();
    let took = wait_for("the new orange in the album", T, || {
        linked(&album).contains(&"fresh orange.jpg".to_string())
    });
    eprintln!(
        "new photo → tagged and in the album in {:.1} s",
        took.as_secs_f64()
    );
    let c = phototag_light::catalog::Catalog::open_readonly(&db).unwrap();
    let row = c.file(&new).unwrap().unwrap();
    assert!(c
        .tags(&row.hash)
        .unwrap()
        .iter()
        .any(|t| t.label == "tangerine"));
    wait_for("its sidecar names the tag", T, || {
        std::fs::read_to_string(phototag_light::sidecar::path_for(&new))
            .is_ok_and(|s| s.contains("tangerine"))
    });
}
