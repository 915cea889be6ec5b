//! Integration tests of `phototag_engine::index::walk` and `exclude`: default and custom exclusion,
//! hidden names, symbolic links (loops, files, dangling), unreadable folders, root errors,
//! non-UTF-8 names, the stop flag, metadata, and the walk time of 20,000 files (printed).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use phototag_engine::index::walk::{walk, Problem, Walk, WalkError};
use phototag_light::exclude::{ExcludeConfig, Excluder};

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    File::create(path).unwrap();
}

fn excluder(cfg: &ExcludeConfig) -> Excluder {
    Excluder::new(cfg).unwrap()
}

fn run(root: &Path, ex: &Excluder, follow: bool) -> Walk {
    walk(root, ex, follow, &AtomicBool::new(false)).unwrap()
}

/// Listed paths relative to the root, as strings.
fn rel(walk: &Walk, root: &Path) -> Vec<String> {
    walk.files
        .iter()
        .map(|e| {
            e.path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn default_patterns_exclude_nas_housekeeping_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for kept in ["a.jpg", "2024/b.jpg", "2024/trip/c.JPG", "eaDir/d.jpg"] {
        touch(&root.join(kept));
    }
    for gone in [
        "2024/@eaDir/b.jpg/SYNOPHOTO_THUMB_XL.jpg",
        "2024/@eaDir/b.jpg/SYNOPHOTO_THUMB_M.jpg",
        "#recycle/old.jpg",
        ".Trash-1000/files/x.jpg",
        ".hidden.jpg",
        "2024/.hiddendir/y.jpg",
        "2024/trip/Thumbs.db",
        "upload.jpg.part",
    ] {
        touch(&root.join(gone));
    }
    let w = run(root, &excluder(&ExcludeConfig::default()), false);
    assert_eq!(
        rel(&w, root),
        ["2024/b.jpg", "2024/trip/c.JPG", "a.jpg", "eaDir/d.jpg"]
    );
    // @eaDir, #recycle, .Trash-1000, .hidden.jpg, .hiddendir, Thumbs.db, .part: each once.
    assert_eq!(w.excluded, 7);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    assert!(!w.stopped);
}

#[test]
fn custom_patterns_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for f in [
        "keep.jpg",
        "@eaDir/thumb.jpg",
        "private/secret.jpg",
        "x.RAW",
        "x.raw",
    ] {
        touch(&root.join(f));
    }
    let cfg = ExcludeConfig {
        skip_hidden: true,
        patterns: vec!["private".into(), "*.RAW".into()],
        ..ExcludeConfig::default()
    };
    let w = run(root, &excluder(&cfg), false);
    assert_eq!(rel(&w, root), ["@eaDir/thumb.jpg", "keep.jpg", "x.raw"]);
    assert_eq!(w.excluded, 2);

    // Missing keys take their defaults (serde_json stands in for the TOML config here).
    let cfg: ExcludeConfig = serde_json::from_str(r#"{"patterns": ["*.tmp"]}"#).unwrap();
    assert!(cfg.skip_hidden);
    assert_eq!(cfg.patterns, ["*.tmp"]);

    let bad = ExcludeConfig {
        skip_hidden: true,
        patterns: vec!["ok".into(), "{unclosed".into()],
        ..ExcludeConfig::default()
    };
    let err = Excluder::new(&bad).unwrap_err().to_string();
    assert!(err.contains("\"{unclosed\""), "{err}");
}

#[test]
fn unknown_exclude_keys_are_rejected() {
    let err = serde_json::from_str::<ExcludeConfig>(r#"{"skip_hiden": false}"#).unwrap_err();
    assert!(err.to_string().contains("skip_hiden"), "{err}");
}

#[test]
fn skip_hidden_false_includes_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for f in [".hidden.jpg", ".album/a.jpg", "b.jpg", ".DS_Store"] {
        touch(&root.join(f));
    }
    let cfg = ExcludeConfig {
        skip_hidden: false,
        patterns: vec![],
        ..ExcludeConfig::default()
    };
    let w = run(root, &excluder(&cfg), false);
    assert_eq!(
        rel(&w, root),
        [".DS_Store", ".album/a.jpg", ".hidden.jpg", "b.jpg"]
    );
    assert_eq!(w.excluded, 0);

    // The defaults with skip_hidden off still drop .DS_Store by its pattern.
    let cfg = ExcludeConfig {
        skip_hidden: false,
        ..ExcludeConfig::default()
    };
    let w = run(root, &excluder(&cfg), false);
    assert_eq!(rel(&w, root), [".album/a.jpg", ".hidden.jpg", "b.jpg"]);
}

#[test]
fn symlink_loop_is_reported_and_walk_terminates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(&root.join("dir/a.jpg"));
    touch(&root.join("b.jpg"));
    symlink("..", root.join("dir/link")).unwrap();
    symlink(".", root.join("dir/self")).unwrap();
    let ex = excluder(&ExcludeConfig::default());

    let w = run(root, &ex, true);
    assert_eq!(rel(&w, root), ["b.jpg", "dir/a.jpg"]);
    let mut loops: Vec<_> = w
        .problems
        .iter()
        .map(|p| match p {
            Problem::SymlinkLoop { path, target } => {
                assert!(p.to_string().contains("symbolic link loop"), "{p}");
                (path.clone(), target.clone())
            }
            other => panic!("unexpected problem {other}"),
        })
        .collect();
    loops.sort();
    assert_eq!(
        loops,
        [
            (root.join("dir/link"), root.to_path_buf()),
            (root.join("dir/self"), root.join("dir")),
        ]
    );

    // Not following: links are neither listed nor problems.
    let w = run(root, &ex, false);
    assert_eq!(rel(&w, root), ["b.jpg", "dir/a.jpg"]);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn excluded_symlink_loop_is_not_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(&root.join("a.jpg"));
    symlink(".", root.join(".loop")).unwrap();
    symlink(".", root.join("@eaDir")).unwrap();
    let w = run(root, &excluder(&ExcludeConfig::default()), true);
    assert_eq!(rel(&w, root), ["a.jpg"]);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
    assert_eq!(w.excluded, 2);
}

#[test]
fn symlinked_files_follow_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    let target = outside.path().join("t.jpg");
    fs::write(&target, b"12345").unwrap();
    symlink(&target, root.join("link.jpg")).unwrap();
    symlink(outside.path(), root.join("linkdir")).unwrap();
    symlink(root.join("nowhere.jpg"), root.join("dangling.jpg")).unwrap();
    let ex = excluder(&ExcludeConfig::default());

    let w = run(root, &ex, true);
    assert_eq!(rel(&w, root), ["link.jpg", "linkdir/t.jpg"]);
    let meta = fs::metadata(&target).unwrap();
    for e in &w.files {
        assert_eq!((e.size, e.dev, e.ino), (5, meta.dev(), meta.ino()));
    }
    // A dangling link is a problem when following, and says so.
    assert_eq!(w.problems.len(), 1, "{:?}", w.problems);
    let p = &w.problems[0];
    assert!(matches!(p, Problem::Other { path, .. } if path == &root.join("dangling.jpg")));
    assert!(p.to_string().contains("dangling symbolic link"), "{p}");

    let w = run(root, &ex, false);
    assert!(w.files.is_empty(), "{:?}", w.files);
    assert!(w.problems.is_empty(), "{:?}", w.problems);
}

#[test]
fn unreadable_folder_is_a_problem_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(&root.join("ok.jpg"));
    touch(&root.join("locked/secret.jpg"));
    let locked = root.join("locked");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let privileged = fs::read_dir(&locked).is_ok();
    let w = run(root, &excluder(&ExcludeConfig::default()), false);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();

    assert!(w.files.iter().any(|e| e.path == root.join("ok.jpg")));
    if privileged {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED unreadable_folder_is_a_problem_not_an_error (Unreadable assertion): \
             this process can read a chmod 000 folder (root / CAP_DAC_READ_SEARCH), so no \
             permission error can be provoked (the dangling-link and loop tests cover other problems; \
             to run it as root: capsh --drop=cap_dac_override,cap_dac_read_search -- -c \
             'cargo test --test it walk::')"
        );
        assert_eq!(w.files.len(), 2);
        return;
    }
    assert_eq!(rel(&w, root), ["ok.jpg"]);
    assert_eq!(w.problems.len(), 1, "{:?}", w.problems);
    assert!(
        matches!(&w.problems[0], Problem::Unreadable { path, .. } if path == &locked),
        "{:?}",
        w.problems
    );
    assert!(w.problems[0].to_string().starts_with("cannot read "));
}

#[test]
fn root_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ex = excluder(&ExcludeConfig::default());
    let stop = AtomicBool::new(false);
    let missing = dir.path().join("unmounted");
    match walk(&missing, &ex, false, &stop) {
        Err(e @ WalkError::RootMissing { .. }) => {
            assert!(e.to_string().contains("unmounted"), "{e}")
        }
        other => panic!("expected RootMissing, got {other:?}"),
    }
    let file = dir.path().join("f.jpg");
    touch(&file);
    assert!(matches!(
        walk(&file, &ex, false, &stop),
        Err(WalkError::RootNotDir { .. })
    ));
    // A dangling link as root is missing; a link to a folder as root is walked.
    symlink(dir.path().join("gone"), dir.path().join("deadroot")).unwrap();
    assert!(matches!(
        walk(&dir.path().join("deadroot"), &ex, false, &stop),
        Err(WalkError::RootMissing { .. })
    ));
    touch(&dir.path().join("real/x.jpg"));
    symlink(dir.path().join("real"), dir.path().join("rootlink")).unwrap();
    let w = run(&dir.path().join("rootlink"), &ex, false);
    assert_eq!(w.files.len(), 1);
    assert_eq!(w.files[0].path, dir.path().join("rootlink/x.jpg"));
}

#[test]
fn non_utf8_name_is_listed_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let name = OsStr::from_bytes(b"caf\xe9.jpg");
    let sub = OsStr::from_bytes(b"\xff\xfe album");
    touch(&root.join(sub).join(name));
    touch(&root.join(name));
    let w = run(root, &excluder(&ExcludeConfig::default()), false);
    let got: Vec<PathBuf> = w.files.iter().map(|e| e.path.clone()).collect();
    assert_eq!(got, [root.join(name), root.join(sub).join(name)]);
    assert!(w.files.iter().all(|e| e.path.exists()));
}

#[test]
fn stop_flag_set_before_returns_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        touch(&dir.path().join(format!("d{}/{i}.jpg", i % 10)));
    }
    let stop = AtomicBool::new(true);
    let start = Instant::now();
    let w = walk(
        dir.path(),
        &excluder(&ExcludeConfig::default()),
        false,
        &stop,
    )
    .unwrap();
    assert!(w.stopped);
    assert!(w.files.is_empty(), "{} files", w.files.len());
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn sizes_and_mtimes_are_correct() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cases = [
        ("a.jpg", 0usize, Duration::new(1_600_000_000, 0)),
        ("b/c.jpg", 1234, Duration::new(1_700_000_000, 987_654_321)),
        ("b/d.png", 70_000, Duration::new(1, 1)),
    ];
    for (name, size, since_epoch) in cases {
        let path = root.join(name);
        touch(&path);
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(size as u64).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + since_epoch)
            .unwrap();
    }
    let old = root.join("old.jpg");
    touch(&old);
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH - Duration::new(86_400, 250_000_000))
        .unwrap();

    let w = run(root, &excluder(&ExcludeConfig::default()), false);
    assert_eq!(rel(&w, root), ["a.jpg", "b/c.jpg", "b/d.png", "old.jpg"]);
    for (name, size, since_epoch) in cases {
        let e = w.files.iter().find(|e| e.path == root.join(name)).unwrap();
        assert_eq!(e.size, size as u64, "{name}");
        assert_eq!(e.mtime_ns, since_epoch.as_nanos() as i64, "{name}");
        let meta = fs::metadata(&e.path).unwrap();
        assert_eq!((e.dev, e.ino), (meta.dev(), meta.ino()), "{name}");
    }
    let e = w.files.iter().find(|e| e.path == old).unwrap();
    assert_eq!(e.mtime_ns, -86_400_250_000_000);
}

#[test]
fn walk_time_for_20k_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let start = Instant::now();
    let mut n = 0;
    for a in 0..20 {
        for b in 0..10 {
            let d = root.join(format!("{a:02}/{b:02}"));
            fs::create_dir_all(&d).unwrap();
            for i in 0..100 {
                File::create(d.join(format!("IMG_{i:04}.jpg"))).unwrap();
                n += 1;
            }
        }
        // Thumbnails that must not be walked into.
        touch(&root.join(format!("{a:02}/@eaDir/x.jpg/SYNOPHOTO_THUMB_XL.jpg")));
    }
    let made = start.elapsed();
    let ex = excluder(&ExcludeConfig::default());
    let start = Instant::now();
    let w = run(root, &ex, false);
    let plain = start.elapsed();
    let start = Instant::now();
    let wf = run(root, &ex, true);
    let followed = start.elapsed();
    assert_eq!(w.files.len(), n);
    assert_eq!(wf.files.len(), n);
    assert_eq!(w.excluded, 20);
    let _ = writeln!(
        std::io::stderr(),
        "walk of {n} files in 220 folders: {plain:.2?} (following links {followed:.2?}; \
         creating them took {made:.2?})"
    );
}
