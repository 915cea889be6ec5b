//! The real daemon (`phototag watch`) on temporary folders: READY=1 on a stand-in notify
//! socket, new files, a slow copy, renames, moves between roots, deletes, a root removed
//! and restored, SIGHUP reload, polling, SIGTERM and kill -9 mid-batch.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use phototag_light::catalog::Catalog;

use crate::common::daemon::Daemon;
use crate::common::{hms, photo, utc_time_of_day, wait_for};

/// The daemon's root `n` (root0 and root1 are made by `start`).
fn root(d: &Daemon, n: usize) -> PathBuf {
    d.dir().join(format!("root{n}"))
}

fn config_text(roots: &[PathBuf], extra: &str) -> String {
    let list: Vec<String> = roots
        .iter()
        .map(|r| format!("{:?}", r.display().to_string()))
        .collect();
    format!(
        "[watch]\nroots = [{}]\nsettle_seconds = 0.6\ndelete_grace_seconds = 1.0\npoll_interval_seconds = 1.0\n{extra}\n",
        list.join(", ")
    )
}

/// Starts a daemon on root0 (and root1 when `two`), with `extra` config lines.
fn start(two: bool, extra: &str) -> Daemon {
    let tmp = tempfile::tempdir().unwrap();
    for n in 0..2 {
        std::fs::create_dir_all(tmp.path().join(format!("root{n}"))).unwrap();
    }
    let mut roots = vec![tmp.path().join("root0")];
    if two {
        roots.push(tmp.path().join("root1"));
    }
    std::fs::write(tmp.path().join("phototag.toml"), config_text(&roots, extra)).unwrap();
    spawn(tmp)
}

fn spawn(tmp: tempfile::TempDir) -> Daemon {
    Daemon::start(tmp, &common::models(3), 4)
}

/// Catalog counts: (files, images).
fn counts(db: &Path) -> (u64, u64) {
    Catalog::open_readonly(db)
        .ok()
        .and_then(|c| c.stats().ok())
        .map(|s| (s.files, s.images))
        .unwrap_or((0, 0))
}

fn has_file(db: &Path, p: &Path) -> bool {
    Catalog::open_readonly(db)
        .ok()
        .and_then(|c| c.file(p).ok().flatten())
        .is_some()
}

// Generous: five daemons load their models at once on a 2-core machine.
const T: Duration = Duration::from_secs(90);

#[test]
fn files_created_copied_renamed_moved_and_deleted() {
    let mut d = start(true, "");
    let db = d.db();
    let (r0, r1) = (
        root(&d, 0).canonicalize().unwrap(),
        root(&d, 1).canonicalize().unwrap(),
    );

    let a = r0.join("a.png");
    let a_bytes = photo(&a, 1);
    let took = wait_for("a.png tagged", T, || has_file(&db, &a));
    // Its embedding came with its tags (one transaction).
    let c = Catalog::open_readonly(&db).unwrap();
    let e = c
        .embedding(&phototag_light::catalog::hash_bytes(&a_bytes))
        .unwrap();
    assert_eq!(e.map(|e| e.embedding.values.len()), Some(512));
    drop(c);
    eprintln!("notify: first photo landed → searchable in {:.2} s (settle 0.6 s, includes loading the model)", took.as_secs_f64());
    let b = r0.join("b.png");
    photo(&b, 11);
    let took = wait_for("b.png tagged", T, || has_file(&db, &b));
    eprintln!(
        "notify: next photo landed → searchable in {:.2} s (settle 0.6 s)",
        took.as_secs_f64()
    );
    std::fs::remove_file(&b).unwrap();
    wait_for("b.png removed", T, || !has_file(&db, &b));

    // A slow copy: three chunks, 400 ms apart. Classified once, complete.
    let slow = r0.join("slow.png");
    let bytes = photo(&r0.join("../template.png"), 2);
    let mut f = std::fs::File::create(&slow).unwrap();
    for chunk in bytes.chunks(bytes.len() / 3 + 1) {
        use std::io::Write;
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            !has_file(&db, &slow),
            "classified while still being written"
        );
    }
    drop(f);
    wait_for("slow.png tagged", T, || has_file(&db, &slow));
    let row = Catalog::open_readonly(&db)
        .unwrap()
        .file(&slow)
        .unwrap()
        .unwrap();
    assert_eq!(
        row.hash,
        *blake3::hash(&bytes).as_bytes(),
        "the complete file was hashed"
    );
    assert_eq!(counts(&db).0, 2);

    // Rename inside a root, and move to the other root: tags follow, nothing reclassified.
    let renamed = r0.join("sub/renamed.png");
    std::fs::create_dir_all(r0.join("sub")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&a, &renamed).unwrap();
    let moved = r1.join("moved.png");
    std::fs::rename(&slow, &moved).unwrap();
    wait_for("paths updated", T, || {
        has_file(&db, &renamed)
            && has_file(&db, &moved)
            && !has_file(&db, &a)
            && !has_file(&db, &slow)
    });
    let images = counts(&db).1;
    assert_eq!(counts(&db).0, 2, "same two files");
    // Once idle, the daemon rebuilds the search lists the moves removed.
    wait_for("search lists rebuilt", T, || {
        Catalog::open_readonly(&db)
            .and_then(|c| c.missing_class_lists())
            .is_ok_and(|n| n == 0)
    });

    // Delete: removed after the grace period.
    // Classified so far: a, b and slow; the moves were duplicates of known content.
    let log = std::fs::read_to_string(d.dir().join("daemon.log")).unwrap();
    let sum = |key: &str| -> usize {
        log.lines()
            .filter_map(|l| l.split(key).nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
            .sum()
    };
    assert_eq!(sum(" new="), 3, "moves must not reclassify:\n{log}");
    assert_eq!(sum(" duplicates="), 2, "{log}");
    assert_eq!(counts(&db).1, images);
    std::fs::remove_file(&renamed).unwrap();
    wait_for("deleted file removed", T, || !has_file(&db, &renamed));
    assert_eq!(counts(&db).0, 1);

    // Excluded folders are not watched.
    photo(&r0.join("@eaDir/thumb.png"), 9);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!has_file(&db, &r0.join("@eaDir/thumb.png")));

    let st = d.stop();
    assert!(st.success(), "{st:?}");
}

/// The daemon loads its model the way every command does: a model with random weights is
/// said to be one when it loads (its tags mean nothing).
#[test]
fn the_daemon_warns_when_it_loads_a_random_weight_model() {
    let mut d = start(false, "");
    let db = d.db();
    let log = d.dir().join("daemon.log");
    let p = root(&d, 0).canonicalize().unwrap().join("first.png");
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(
        !before.contains("random weights"),
        "nothing is loaded before a photo needs the model: {before}"
    );
    photo(&p, 21);
    wait_for("first.png tagged", T, || has_file(&db, &p));
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(
        after.contains("this model has random weights: its tags mean nothing"),
        "{after}"
    );
    assert!(d.stop().success());
}

#[test]
fn a_removed_root_is_offline_and_comes_back() {
    let mut d = start(false, "");
    let db = d.db();
    let r0 = root(&d, 0).canonicalize().unwrap();
    photo(&r0.join("x.png"), 3);
    photo(&r0.join("y.png"), 4);
    wait_for("both tagged", T, || counts(&db).0 == 2);
    let aside = d.dir().join("aside");
    std::fs::rename(&r0, &aside).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(counts(&db).0, 2, "an unmounted root deletes nothing");
    let out = Command::new(common::bin())
        .args(["status", "--json"])
        .env("PHOTOTAG_DB", &db)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["daemon"]["roots"][0]["state"], "offline", "{v}");
    std::fs::rename(&aside, &r0).unwrap();
    photo(&r0.join("z.png"), 5);
    wait_for("root back, new file tagged", T, || counts(&db).0 == 3);
    assert!(d.stop().success());
}

#[test]
fn sighup_reloads_roots() {
    let mut d = start(false, "");
    let db = d.db();
    let r1 = root(&d, 1).canonicalize().unwrap();
    std::fs::write(d.config(), config_text(&[root(&d, 0), root(&d, 1)], "")).unwrap();
    d.signal(1);
    d.expect_notify("READY=1", T);
    photo(&r1.join("new-root.png"), 6);
    wait_for("file in the added root tagged", T, || {
        has_file(&db, &r1.join("new-root.png"))
    });
    assert!(d.stop().success());
}

fn log(d: &Daemon) -> String {
    std::fs::read_to_string(d.dir().join("daemon.log")).unwrap_or_default()
}

fn failures(db: &Path) -> u64 {
    Catalog::open_readonly(db)
        .ok()
        .and_then(|c| c.stats().ok())
        .map_or(0, |s| s.failures)
}

#[test]
fn a_reload_says_what_changed_and_never_drops_every_root() {
    let mut d = start(false, "");
    let db = d.db();
    let r0 = root(&d, 0).canonicalize().unwrap();
    let changed = config_text(&[root(&d, 0), root(&d, 1)], "").replace("1.0\n", "2.0\n");
    std::fs::write(d.config(), changed).unwrap();
    d.signal(libc::SIGHUP);
    d.expect_notify("READY=1", T);
    wait_for("the reload logged with what changed", T, || {
        let l = log(&d);
        l.contains("configuration reloaded: roots added:")
            && l.contains("watch.delete_grace_seconds 1 → 2")
    });
    // An emptied file would drop every root: refused, said, and the roots kept.
    std::fs::write(d.config(), "").unwrap();
    d.signal(libc::SIGHUP);
    d.expect_notify("READY=1", T);
    wait_for("the refusal logged", T, || {
        let l = log(&d);
        l.contains("configuration not reloaded") && l.contains("nothing to watch")
    });
    photo(&r0.join("still-watched.png"), 11);
    wait_for("a new file in the kept root tagged", T, || {
        has_file(&db, &r0.join("still-watched.png"))
    });
    assert!(d.stop().success());
}

#[test]
fn the_failure_of_a_deleted_file_is_forgotten() {
    let mut d = start(false, "");
    let db = d.db();
    let r0 = root(&d, 0).canonicalize().unwrap();
    photo(&r0.join("good.png"), 12);
    std::fs::write(r0.join("broken.jpg"), b"\xff\xd8\xff not a photo").unwrap();
    wait_for("the photo tagged and the failure recorded", T, || {
        counts(&db).0 == 1 && failures(&db) == 1
    });
    std::fs::remove_file(r0.join("broken.jpg")).unwrap();
    wait_for("its failure removed after the delete grace", T, || {
        failures(&db) == 0
    });
    assert_eq!(counts(&db).0, 1);
    assert!(d.stop().success());
}

#[test]
fn a_catalog_inside_the_root_is_left_alone() {
    // The daemon's folder holds its catalog (and its -wal, -shm, status record): watch it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let config = config_text(
        std::slice::from_ref(&dir),
        "[index]\nexclude = [\"*.log\", \"*.toml\", \"root*\"]\n",
    );
    std::fs::write(dir.join("phototag.toml"), config).unwrap();
    let mut d = spawn(tmp);
    let db = d.db();
    photo(&dir.join("p.png"), 13);
    wait_for("the photo tagged", T, || counts(&db).0 == 1);
    // Long enough for the catalog's files to settle and be picked up, were they watched.
    std::thread::sleep(Duration::from_secs(4));
    let s = Catalog::open_readonly(&db).unwrap().stats().unwrap();
    assert_eq!((s.files, s.failures), (1, 0), "{s:?}\n{}", log(&d));
    assert!(d.stop().success());
}

#[test]
fn poll_mode_finds_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let r0 = tmp.path().join("root0");
    std::fs::create_dir_all(&r0).unwrap();
    let r0 = r0.canonicalize().unwrap();
    let modes = format!("modes = {{ {:?} = \"poll\" }}", r0.display().to_string());
    std::fs::write(
        tmp.path().join("phototag.toml"),
        config_text(std::slice::from_ref(&r0), &modes),
    )
    .unwrap();
    let mut d = spawn(tmp);
    let db = d.db();
    let out = Command::new(common::bin())
        .args(["status", "--json"])
        .env("PHOTOTAG_DB", &db)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["daemon"]["roots"][0]["state"], "polling", "{v}");
    let p = r0.join("polled.png");
    photo(&p, 8);
    let took = wait_for("polled file tagged", T, || has_file(&db, &p));
    eprintln!(
        "poll (interval 1 s, settle 0.6 s): photo landed → searchable in {:.2} s",
        took.as_secs_f64()
    );
    assert!(d.stop().success());
}

#[test]
fn sigterm_and_kill_9_mid_batch_leave_a_consistent_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root0");
    for i in 0..80 {
        photo(&root.join(format!("p{i:03}.png")), 100 + i);
    }
    std::fs::create_dir_all(tmp.path().join("root1")).unwrap();
    std::fs::write(
        tmp.path().join("phototag.toml"),
        config_text(std::slice::from_ref(&root), ""),
    )
    .unwrap();
    let mut d = spawn(tmp);
    let db = d.db();
    wait_for("some files tagged", T, || counts(&db).0 > 0);
    let t = Instant::now();
    let st = d.stop();
    assert!(st.success(), "{st:?}");
    eprintln!(
        "SIGTERM mid-batch: exited in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let after_term = counts(&db).0;

    let mut d = spawn_again(&root);
    let db2 = d.db();
    std::fs::copy(&db, &db2).ok();
    wait_for("more files tagged", T, || counts(&db2).0 > 0);
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    let conn = rusqlite::Connection::open(&db2).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    d.restart();
    wait_for(
        "all 80 files tagged after restart",
        Duration::from_secs(90),
        || counts(&db2) == (80, 80),
    );
    assert!(d.stop().success());
    assert!(after_term <= 80);
}

/// A fresh daemon home watching `root`.
fn spawn_again(root: &Path) -> Daemon {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("phototag.toml"),
        config_text(&[root.to_path_buf()], ""),
    )
    .unwrap();
    spawn(tmp)
}

/// The tags stored for the content at `p` (empty while it waits to be classified).
fn tags_of(db: &Path, p: &Path) -> Vec<(usize, f32)> {
    let Ok(c) = Catalog::open_readonly(db) else {
        return Vec::new();
    };
    let Some(row) = c.file(p).ok().flatten() else {
        return Vec::new();
    };
    c.tags(&row.hash)
        .unwrap_or_default()
        .iter()
        .map(|t| (t.class_index, t.probability))
        .collect()
}

/// A daemon on root0 with `extra` lines after `[watch]`, and more environment.
fn start_env(extra: &str, env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("root0")).unwrap();
    let roots = [tmp.path().join("root0")];
    std::fs::write(tmp.path().join("phototag.toml"), config_text(&roots, extra)).unwrap();
    Daemon::start_with_env(tmp, &common::models(3), 4, env)
}

/// A daemon (time zone UTC) whose one schedule window opens `secs` from now, for an hour.
fn start_with_window_in(secs: u32) -> Daemon {
    let start = utc_time_of_day() + secs;
    let extra = format!(
        "\n[schedule]\nwindows = [\"{}-{}\"]",
        hms(start),
        hms(start + 3600)
    );
    start_env(&extra, &[("TZ", std::ffi::OsStr::new("UTC"))])
}

/// What `phototag classify` says of `p` with the daemons' model: (class, probability).
fn classify_cli(p: &Path) -> Vec<(usize, f32)> {
    let out = Command::new(common::bin())
        .args(["classify", "--json", "--model", "resnet18-random"])
        .arg(p)
        .env("PHOTOTAG_MODEL_DIR", common::models(3))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["index"].as_u64().unwrap() as usize,
                t["probability"].as_f64().unwrap() as f32 / 100.0,
            )
        })
        .collect()
}

#[test]
fn the_model_is_unloaded_when_idle_and_loaded_again_for_the_next_photo() {
    let mut d = start_env("unload_after_seconds = 2", &[]);
    let db = d.db();
    let r0 = root(&d, 0).canonicalize().unwrap();
    let a = r0.join("a.png");
    photo(&a, 31);
    wait_for("a.png tagged", T, || !tags_of(&db, &a).is_empty());
    wait_for("model unloaded (log and status)", T, || {
        d.log().contains("model unloaded after 2 s")
            && d.status()["daemon"]["model_loaded"] == false
    });
    assert_eq!(d.status()["daemon"]["model"], "resnet18-random");
    let b = r0.join("b.png");
    photo(&b, 32);
    wait_for("b.png tagged by the model loaded again", T, || {
        !tags_of(&db, &b).is_empty()
    });
    let log = d.log();
    assert_eq!(log.matches("model loaded in").count(), 2, "{log}");
    // Loaded again, it classifies as the model does anywhere else.
    let stored = tags_of(&db, &b);
    let fresh = classify_cli(&b);
    assert_eq!(stored.len(), fresh.len());
    for ((c1, p1), (c2, p2)) in stored.iter().zip(&fresh) {
        assert_eq!(c1, c2, "stored {stored:?} vs classify {fresh:?}");
        assert!(
            (p1 - p2).abs() < 1e-3,
            "stored {stored:?} vs classify {fresh:?}"
        );
    }
    assert!(d.stop().success());
}

#[test]
fn outside_a_window_photos_are_recorded_and_classified_when_it_opens() {
    // A window opening 40 s from now, in the daemon's time zone (UTC).
    let open_at = Instant::now() + Duration::from_secs(40);
    let mut d = start_with_window_in(40);
    let db = d.db();
    let p = root(&d, 0).canonicalize().unwrap().join("night.png");
    photo(&p, 41);
    wait_for("night.png recorded", T, || has_file(&db, &p));
    assert!(
        Instant::now() < open_at,
        "the photo was recorded only after the window opened: the machine is too slow for this test"
    );
    assert!(tags_of(&db, &p).is_empty(), "classified outside the window");
    let out = Command::new(common::bin())
        .args(["search", "--count", "--min-prob", "0", "entity"])
        .env("PHOTOTAG_DB", &db)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "search finds nothing before the window: {out:?}"
    );
    // The status record is rewritten about once a second: wait for it to catch up.
    wait_for("status: one waiting", T, || {
        d.status()["daemon"]["waiting"] == 1
    });
    let v = d.status();
    assert!(
        v["daemon"]["paused"]
            .as_str()
            .is_some_and(|p| p.contains("outside the schedule windows")),
        "{v}"
    );
    assert!(
        v["daemon"]["next_window_in_seconds"]
            .as_u64()
            .is_some_and(|s| s <= 40),
        "{v}"
    );
    let text = Command::new(common::bin())
        .arg("status")
        .env("PHOTOTAG_DB", &db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("1 waiting to be classified"), "{text}");
    assert!(text.contains("closed, next window"), "{text}");
    assert_eq!(
        v["daemon"]["model_loaded"], false,
        "nothing needed the model yet: {v}"
    );

    wait_for("night.png classified once the window opened", T, || {
        !tags_of(&db, &p).is_empty()
    });
    assert!(
        Instant::now() + Duration::from_secs(1) >= open_at,
        "classified before the window opened"
    );
    let out = Command::new(common::bin())
        .args(["show", "--json"])
        .arg(&p)
        .env("PHOTOTAG_DB", &db)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["queued"], false, "{v}");
    wait_for("status: nothing waits", T, || {
        d.status()["daemon"]["waiting"] == 0
    });
    assert!(d.stop().success());
}

#[test]
fn sigusr1_classifies_the_queue_whatever_the_schedule() {
    // A window hours away: nothing is classified without the signal.
    let mut d = start_with_window_in(6 * 3600);
    let db = d.db();
    let r0 = root(&d, 0).canonicalize().unwrap();
    let (a, b) = (r0.join("a.png"), r0.join("b.png"));
    photo(&a, 51);
    photo(&b, 52);
    wait_for("both recorded", T, || {
        has_file(&db, &a) && has_file(&db, &b)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(tags_of(&db, &a).is_empty() && tags_of(&db, &b).is_empty());
    assert_eq!(d.status()["daemon"]["waiting"], 2);
    d.signal(libc::SIGUSR1);
    wait_for("the queue classified after SIGUSR1", T, || {
        !tags_of(&db, &a).is_empty() && !tags_of(&db, &b).is_empty()
    });
    wait_for("status: nothing waits", T, || {
        d.status()["daemon"]["waiting"] == 0
    });
    assert!(d.log().contains("SIGUSR1: classifying the queue now"));
    // The queue is empty: the schedule holds again for the next photo.
    let c = r0.join("c.png");
    photo(&c, 53);
    wait_for("c.png recorded", T, || has_file(&db, &c));
    std::thread::sleep(Duration::from_secs(2));
    assert!(tags_of(&db, &c).is_empty(), "the schedule holds again");
    assert!(d.stop().success());
}

#[test]
fn a_busy_machine_pauses_classification_until_the_load_falls() {
    let tmp = tempfile::tempdir().unwrap();
    let loadavg = tmp.path().join("loadavg");
    std::fs::write(&loadavg, "99.00 50.00 20.00 9/300 12345\n").unwrap();
    let mut d = start_env(
        "\n[schedule]\nmax_load_per_core = 1.0",
        &[("PHOTOTAG_LOADAVG", loadavg.as_os_str())],
    );
    let db = d.db();
    let p = root(&d, 0).canonicalize().unwrap().join("busy.png");
    photo(&p, 61);
    wait_for("busy.png recorded", T, || has_file(&db, &p));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        tags_of(&db, &p).is_empty(),
        "classified while the load was high"
    );
    let v = d.status();
    assert!(
        v["daemon"]["paused"]
            .as_str()
            .is_some_and(|w| w.contains("above max_load_per_core 1")),
        "{v}"
    );
    std::fs::write(&loadavg, "0.10 20.00 20.00 1/300 12345\n").unwrap();
    wait_for("busy.png classified once the load fell", T, || {
        !tags_of(&db, &p).is_empty()
    });
    wait_for("status: not paused", T, || {
        d.status()["daemon"]["paused"].is_null()
    });
    assert!(d.stop().success());
    drop(tmp);
}

#[test]
fn bad_schedule_windows_are_config_errors_naming_file_line_and_key() {
    for bad in ["25:00-26:00", "abc"] {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("phototag.toml");
        std::fs::write(
            &config,
            format!("[watch]\nroots = []\n\n[schedule]\nwindows = [\"01:00-07:00\", \"{bad}\"]\n"),
        )
        .unwrap();
        let out = Command::new(common::bin())
            .arg("--config")
            .arg(&config)
            .args(["watch", "--root"])
            .arg(tmp.path())
            .env("PHOTOTAG_DB", tmp.path().join("c.db"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:5:", config.display())), "{err}");
        assert!(err.contains("schedule.windows"), "{err}");
        assert!(err.contains(bad), "{err}");
    }
}

#[test]
fn index_outside_a_window_records_and_index_now_classifies_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let paths: Vec<PathBuf> = (0..3).map(|i| root.join(format!("p{i}.png"))).collect();
    for (i, p) in paths.iter().enumerate() {
        photo(p, 70 + i as u32);
    }
    // A window hours away (UTC): `index` records, `index --now` classifies.
    let start = utc_time_of_day() + 6 * 3600;
    let config = tmp.path().join("phototag.toml");
    std::fs::write(
        &config,
        format!(
            "[schedule]\nwindows = [\"{}-{}\"]\n",
            hms(start),
            hms(start + 3600)
        ),
    )
    .unwrap();
    let db = tmp.path().join("catalog.db");
    let index = |now: bool| {
        let mut c = Command::new(common::bin());
        c.arg("--config")
            .arg(&config)
            .args(["index", "--json", "--model", "resnet18-random"]);
        if now {
            c.arg("--now");
        }
        let out = c
            .arg(&root)
            .env("PHOTOTAG_MODEL_DIR", common::models(3))
            .env("PHOTOTAG_DB", &db)
            .env("TZ", "UTC")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v
    };
    let v = index(false);
    assert_eq!(v["queued"], 3, "{v}");
    assert_eq!(v["new"], 0, "{v}");
    for p in &paths {
        assert!(has_file(&db, p), "{} recorded", p.display());
        assert!(tags_of(&db, p).is_empty(), "classified outside the window");
    }
    let v = index(true);
    assert_eq!(v["from_queue"], 3, "{v}");
    assert_eq!(v["queued"], 0, "{v}");
    for p in &paths {
        let stored = tags_of(&db, p);
        assert!(!stored.is_empty(), "{} classified by --now", p.display());
        let fresh = classify_cli(p);
        assert_eq!(stored[0].0, fresh[0].0, "same top class as `classify`");
        assert!((stored[0].1 - fresh[0].1).abs() < 1e-3);
    }
}
