//! A catalog on PostgreSQL shared by several workers (separate `phototag` processes, each
//! as its own host): each content classified once whichever worker sees it first, no
//! duplicate rows, nothing lost, a worker killed with SIGKILL mid-batch; the daemon
//! waiting out a server that stops and starts again; passwords (environment, a private
//! file, ~/.pgpass) never shown; TLS modes; `catalog copy` both ways, resumed.
//!
//! Every test needs the PostgreSQL test server (`catalog::test_server`) and says
//! `SKIPPED` without one.

use crate::common::{self, photo, wait_for};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use phototag_light::catalog::fixtures::{self, Place};
use phototag_light::catalog::test_server::{self, Server};
use phototag_light::catalog::{Catalog, Location, PgTarget};

/// `phototag` with the test models and this catalog (a URL), `config` as the
/// configuration file.
fn phototag(url: &str, config: &Path) -> Command {
    let mut c = Command::new(common::bin());
    c.env("PHOTOTAG_CONFIG", config)
        .env("PHOTOTAG_DB", url)
        .env("PHOTOTAG_MODEL_DIR", common::models(3))
        .env_remove("RUST_LOG")
        .env_remove("PGPASSWORD");
    c
}

/// A configuration file naming this worker's host and a short claim lease.
fn worker_config(dir: &Path, host: &str, claim_seconds: f64) -> PathBuf {
    let p = dir.join(format!("{host}.toml"));
    std::fs::write(
        &p,
        format!("[postgresql]\nhost_name = \"{host}\"\nclaim_seconds = {claim_seconds}\n"),
    )
    .unwrap();
    p
}

/// `phototag index --json` of `roots` as one worker, started (not waited for).
fn spawn_index(url: &str, config: &Path, roots: &[&Path]) -> Child {
    let mut c = phototag(url, config);
    c.args([
        "index",
        "--json",
        "--model",
        "resnet18-random",
        "--batch-size",
        "4",
    ])
    .args(roots)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// The summary of a finished `index --json`.
fn summary(out: Output) -> serde_json::Value {
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn count(db: &test_server::Db<'_>, sql: &str) -> i64 {
    db.client().query_one(sql, &[]).unwrap().get(0)
}

/// Writes `n` distinct photos (seeds from `first`) into `dir`; returns their paths.
fn photos(dir: &Path, first: u32, n: u32) -> Vec<PathBuf> {
    (first..first + n)
        .map(|seed| {
            let p = dir.join(format!("p{seed:04}.png"));
            photo(&p, seed);
            p
        })
        .collect()
}

/// Three workers, each its own host with a root of its own, all indexing one shared folder
/// at once: every distinct content is classified by exactly one of them (their `new`
/// counts add up to the number of contents), the catalog has one image per content, one
/// file row per file and host, and nothing is missing.
#[test]
fn three_workers_classify_each_content_once() {
    let test = "three_workers_classify_each_content_once";
    let Some(db) = test_server::database(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    let own: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("own{i}"))).collect();
    // 48 contents in the shared folder, 8 of them also in each worker's own root, and 6
    // contents only in each own root.
    photos(&shared, 1, 48);
    for (i, dir) in own.iter().enumerate() {
        photos(dir, 1 + 8 * i as u32, 8);
        photos(dir, 100 + 10 * i as u32, 6);
    }
    let distinct = 48 + 3 * 6;
    // One process prepares the schema; the three start together.
    Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let config = worker_config(tmp.path(), &format!("host-{i}"), 5.0);
            spawn_index(&db.url, &config, &[&own[i], &shared])
        })
        .collect();
    let summaries: Vec<serde_json::Value> = children
        .into_iter()
        .map(|c| summary(c.wait_with_output().unwrap()))
        .collect();
    let new: u64 = summaries.iter().map(|s| s["new"].as_u64().unwrap()).sum();
    assert_eq!(new, distinct, "each content classified once: {summaries:?}");
    for s in &summaries {
        assert_eq!(s["seen"], 48 + 14);
        assert_eq!(s["failed"], 0);
        assert_eq!(
            s["new"].as_u64().unwrap() + s["duplicates"].as_u64().unwrap(),
            62,
            "{s}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM images"), distinct as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM tags"), 3 * distinct as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM files"), 3 * 62);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT hash) FROM files"),
        distinct as i64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM roots"),
        6,
        "own + shared, per host"
    );
    // Every file of every worker's roots is there, under its host.
    let mut c = db.client();
    for (i, mine) in own.iter().enumerate() {
        let host = format!("host-{i}");
        for dir in [mine, &shared] {
            for f in std::fs::read_dir(dir).unwrap() {
                let p = f.unwrap().path().canonicalize().unwrap();
                let bytes = p.as_os_str().as_encoded_bytes();
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM files WHERE host = $1 AND path = $2",
                        &[&host, &bytes],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(n, 1, "{host} {}", p.display());
            }
        }
    }
    // A search from one host shows another host's files as host:path.
    let out = phototag(&db.url, &worker_config(tmp.path(), "host-0", 5.0))
        .args(["search", "--count", "entity"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "186");
    let out = phototag(&db.url, &worker_config(tmp.path(), "host-0", 5.0))
        .args(["dupes", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("host-1:/") && text.contains("host-2:/"),
        "{text}"
    );
}

/// Two hosts holding the same photos, recorded outside a schedule window (queued), then
/// both told to classify their queues at once (`index --now`): each queued content is
/// claimed before it is read, so the two classify it once between them, and nothing stays
/// queued.
#[test]
fn queued_content_held_by_two_hosts_is_classified_once() {
    let test = "queued_content_held_by_two_hosts_is_classified_once";
    let Some(db) = test_server::database(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("host{i}")))
        .collect();
    for d in &dirs {
        photos(d, 300, 32);
    }
    Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
    // A window hours away (UTC): `index` records, `index --now` classifies.
    let start = common::utc_time_of_day() + 6 * 3600;
    let config = |host: &str| {
        let p = worker_config(tmp.path(), host, 5.0);
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(&format!(
            "\n[schedule]\nwindows = [\"{}-{}\"]\n",
            common::hms(start),
            common::hms(start + 3600)
        ));
        std::fs::write(&p, text).unwrap();
        p
    };
    let configs = [config("host-0"), config("host-1")];
    let index = |i: usize, now: bool| {
        let mut c = phototag(&db.url, &configs[i]);
        c.args([
            "index",
            "--json",
            "--model",
            "resnet18-random",
            "--batch-size",
            "4",
        ])
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if now {
            c.arg("--now");
        }
        c.arg(&dirs[i]).spawn().unwrap()
    };
    for i in 0..2 {
        let s = summary(index(i, false).wait_with_output().unwrap());
        assert_eq!(s["new"], 0, "{s}");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM images WHERE classified_at = 0"),
        32,
        "recorded, not classified"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM tags"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM files"), 64);
    let children: Vec<Child> = (0..2).map(|i| index(i, true)).collect();
    let summaries: Vec<serde_json::Value> = children
        .into_iter()
        .map(|c| summary(c.wait_with_output().unwrap()))
        .collect();
    let classified: u64 = summaries
        .iter()
        .map(|s| s["from_queue"].as_u64().unwrap())
        .sum();
    assert_eq!(
        classified, 32,
        "each content classified once: {summaries:?}"
    );
    for s in &summaries {
        assert_eq!(s["queued"], 0, "{s}");
        assert_eq!(s["failed"], 0, "{s}");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM images WHERE classified_at = 0"),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM images"), 32);
    assert_eq!(count(&db, "SELECT count(*) FROM tags"), 3 * 32);
    // Claims on queued content are given back once it is written.
    assert_eq!(count(&db, "SELECT count(*) FROM claims"), 0);
}

/// A worker killed with SIGKILL mid-batch: the contents it had claimed and not written
/// wait until its leases expire, then another worker classifies them; at the end every
/// content is there once and that worker classified exactly what was missing.
#[test]
fn a_killed_worker_loses_its_claims_when_they_expire() {
    let test = "a_killed_worker_loses_its_claims_when_they_expire";
    let Some(db) = test_server::database(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    photos(&shared, 1, 120);
    let lease = 3.0;
    let killed = worker_config(tmp.path(), "doomed", lease);
    let survivor = worker_config(tmp.path(), "survivor", lease);
    Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
    let orphans = |db: &test_server::Db<'_>| {
        count(
            db,
            "SELECT count(*) FROM claims c
             WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.hash = c.hash)",
        )
    };
    let mut child = spawn_index(&db.url, &killed, &[&shared]);
    // Kill it once it has written something and holds claims on contents not yet written.
    wait_for(
        "the first worker to write and hold claims",
        Duration::from_secs(60),
        || count(&db, "SELECT count(*) FROM images") > 4 && orphans(&db) > 0,
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // Its sessions end (their open transactions roll back) before anything is counted.
    wait_for(
        "the killed worker's sessions to end",
        Duration::from_secs(30),
        || {
            count(
                &db,
                "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'phototag' AND datname = current_database()",
            ) == 0
        },
    );
    let written = count(&db, "SELECT count(*) FROM images");
    let held = orphans(&db);
    assert!(
        held > 0,
        "the killed worker held no claim on unwritten content"
    );
    assert!(written < 120, "killed too late: everything was written");

    let out = spawn_index(&db.url, &survivor, &[&shared])
        .wait_with_output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let s = summary(out);
    assert_eq!(s["new"].as_i64().unwrap(), 120 - written, "{s}");
    assert_eq!(s["duplicates"].as_i64().unwrap(), written, "{s}");
    assert!(
        log.contains("another worker is classifying the same content"),
        "the survivor waited for the killed worker's leases: {log}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM images"), 120);
    assert_eq!(count(&db, "SELECT count(*) FROM tags"), 360);
    assert_eq!(
        count(&db, "SELECT count(*) FROM files WHERE host = 'survivor'"),
        120
    );
    assert_eq!(orphans(&db), 0);
}

/// The daemon on a PostgreSQL catalog while its server stops and starts again: photos
/// added meanwhile are settled and kept (status says the server is unreachable and how
/// many files wait; a search says it cannot reach the server, exit 4), then written once
/// it is back; nothing is lost or written twice.
#[test]
fn the_daemon_waits_out_a_server_restart() {
    let test = "the_daemon_waits_out_a_server_restart";
    let server = match Server::start() {
        Ok(s) => s,
        Err(e) => {
            test_server::skip(test, &format!("no PostgreSQL test server: {e}"));
            return;
        }
    };
    let db = server.database(test).unwrap();
    let url = db.url.clone();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        tmp.path().join("phototag.toml"),
        format!(
            "[watch]\nroots = [{:?}]\nsettle_seconds = 0.5\ndelete_grace_seconds = 1.0\n[postgresql]\nconnect_timeout_seconds = 2\n",
            root.display().to_string()
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let d = common::daemon::Daemon::start_on(tmp, &common::models(3), 4, url.clone().into());
    let images = |db: &test_server::Db<'_>| -> i64 {
        db.server
            .superuser(&db.name)
            .ok()
            .and_then(|mut c| c.query_one("SELECT count(*) FROM images", &[]).ok())
            .map(|r| r.get(0))
            .unwrap_or(-1)
    };
    photos(&root, 1, 6);
    wait_for("the first photos", Duration::from_secs(60), || {
        images(&db) == 6
    });

    server.stop();
    photos(&root, 7, 10);
    let status = || {
        let out = Command::new(common::bin())
            .args(["status", "--json"])
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .env("PHOTOTAG_DB", &url)
            .env("XDG_DATA_HOME", &data)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    wait_for(
        "status to say the server is away",
        Duration::from_secs(60),
        || {
            let s = status();
            s["daemon"]["catalog"]["state"] == "unreachable"
                && s["daemon"]["catalog"]["waiting_files"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
        },
    );
    let s = status();
    assert!(
        s["catalog_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the catalog server"),
        "{s}"
    );
    let out = Command::new(common::bin())
        .args(["search", "dog"])
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .env("PHOTOTAG_DB", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the catalog server postgresql://"),
        "{err}"
    );

    server.start_again().unwrap();
    wait_for(
        "the photos added while it was away",
        Duration::from_secs(90),
        || images(&db) == 16,
    );
    wait_for("status to clear", Duration::from_secs(30), || {
        status()["daemon"]["catalog"].is_null()
    });
    assert_eq!(count(&db, "SELECT count(*) FROM files"), 16);
    assert_eq!(count(&db, "SELECT count(*) FROM tags"), 48);
    let log = std::fs::read_to_string(d.dir().join("daemon.log")).unwrap();
    assert!(log.contains("the catalog server is back"), "{log}");
    drop(d);
    drop(db);
}

/// The password comes from `$PGPASSWORD`, a private password file, or `~/.pgpass`; a
/// password file others can read is refused (exit 2); no output ever shows the password.
#[test]
fn passwords_come_from_the_environment_a_file_or_pgpass() {
    let test = "passwords_come_from_the_environment_a_file_or_pgpass";
    let Some(db) = test_server::database(test) else {
        return;
    };
    let pw = test_server::SECRET_PASSWORD;
    // The catalog, made by the superuser, readable and writable by the password's role.
    Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
    db.client()
        .batch_execute(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO phototag_secret;
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO phototag_secret;",
        )
        .unwrap();
    let url = db.url_as("phototag_secret", "");
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none.toml");
    std::fs::write(&none, "").unwrap();
    let stats = |config: &Path, env: &[(&str, &str)]| {
        let mut c = phototag(&url, config);
        c.arg("stats")
            .env("HOME", tmp.path())
            .env_remove("PGPASSFILE");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(pw), "the password is shown: {all}");
        (out.status.code(), all)
    };
    // No password anywhere: refused by the server, a clear error.
    let (code, all) = stats(&none, &[]);
    assert_eq!(code, Some(4), "{all}");
    assert!(all.contains("cannot connect to the catalog"), "{all}");
    // $PGPASSWORD.
    assert_eq!(stats(&none, &[("PGPASSWORD", pw)]).0, Some(0));
    // A private password file named in the configuration.
    use std::os::unix::fs::PermissionsExt;
    let file = tmp.path().join("pw");
    std::fs::write(&file, format!("{pw}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_file = tmp.path().join("file.toml");
    std::fs::write(
        &with_file,
        format!(
            "[postgresql]\npassword_file = {:?}\n",
            file.display().to_string()
        ),
    )
    .unwrap();
    assert_eq!(stats(&with_file, &[]).0, Some(0));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, all) = stats(&with_file, &[]);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains("chmod 600") && all.contains("may be read by others"),
        "{all}"
    );
    // ~/.pgpass (HOME is the temporary folder), private.
    let pgpass = tmp.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:phototag_secret:{pw}\n", db.server.port()),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(stats(&none, &[]).0, Some(0));
    // A password in the URL works, and is shown by nothing.
    let with_pw = db.url_as(&format!("phototag_secret:{pw}"), "");
    std::fs::remove_file(&pgpass).unwrap();
    let out = phototag(&with_pw, &none)
        .args(["-v", "stats", "--json"])
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad_db = with_pw.replace(&db.name, "no_such_database");
    let out = phototag(&bad_db, &none).arg("stats").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("postgresql://phototag_secret@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(pw), "{err}");
}

/// TLS as libpq's sslmode has it: the role `phototag_tls` may only connect encrypted;
/// `require` encrypts, `verify-full` also checks the server's certificate against a CA.
#[test]
fn tls_modes() {
    let test = "tls_modes";
    let Some(db) = test_server::database(test) else {
        return;
    };
    Catalog::open(Location::Postgres(PgTarget::new(&db.url))).unwrap();
    db.client()
        .batch_execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO phototag_tls;")
        .unwrap();
    let ca = db.server.ca_file();
    let open = |query: &str| {
        Catalog::open_readonly(Location::Postgres(PgTarget::new(
            &db.url_as("phototag_tls", query),
        )))
    };
    let err = open("sslmode=disable").unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    for mode in ["sslmode=require", "sslmode=prefer", ""] {
        let c = open(mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(c.stats().unwrap().files, 0);
    }
    let c = open(&format!("sslmode=verify-full&sslrootcert={}", ca.display())).unwrap();
    assert_eq!(c.stats().unwrap().images, 0);
    // A CA that did not sign the server's certificate.
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&other, p.self_signed(&key).unwrap().pem()).unwrap();
    for mode in ["verify-full", "verify-ca"] {
        let err = open(&format!("sslmode={mode}&sslrootcert={}", other.display()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect"), "{mode}: {err}");
    }
    let err = open("sslmode=verify-everything").unwrap_err().to_string();
    assert!(err.contains("unknown sslmode"), "{err}");
}

/// `catalog copy` SQLite → PostgreSQL → SQLite: every row arrives (counts and checksums
/// equal), searches give the same hits on all three, and a copy run again (or after rows
/// went missing from the target) copies only what is missing.
#[test]
fn catalog_copy_both_ways_and_resumed() {
    let test = "catalog_copy_both_ways_and_resumed";
    let Some(pg) = Place::postgres(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first.db");
    let back = tmp.path().join("back.db");
    {
        let mut cat = fixtures::random(&first);
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/r")).unwrap();
        w.put_failure(Path::new("/r/a/bad.jpg"), root, 3, 4, "truncated", 5)
            .unwrap();
        w.commit().unwrap();
        cat.add_album(
            &phototag_light::catalog::AlbumRow {
                name: "Some".into(),
                query: "dog".into(),
                folder: "/albums/some".into(),
                links: "symlink".into(),
            },
            9,
        )
        .unwrap();
        // Embeddings for 120 of the images (the others have none, as before schema 4).
        let mut hashes: Vec<_> = cat.image_hashes().unwrap().into_iter().collect();
        hashes.sort();
        let images: Vec<_> = hashes
            .iter()
            .take(120)
            .enumerate()
            .map(|(i, h)| {
                let mut img = w_image(&cat, h);
                let x = i as f32;
                img.embedding = phototag_light::vectors::Embedding::quantize(&[
                    x.sin(),
                    x.cos(),
                    0.5,
                    -x / 120.0,
                ]);
                img
            })
            .collect();
        let mut w = cat.begin().unwrap();
        for img in &images {
            w.put_image(img).unwrap();
        }
        w.commit().unwrap();
        // A taught tag, from 4 yes and 4 no of those embeddings.
        let examples: Vec<phototag_light::catalog::ExampleRow> = images
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, img)| phototag_light::catalog::ExampleRow {
                hash: img.hash,
                positive: i % 2 == 0,
                model_id: img.model_id,
                embedding: img.embedding.clone().unwrap(),
            })
            .collect();
        let model = images[0].model_id;
        let taught =
            phototag_light::taught::apply::fit_and_apply(&mut cat, "rex", model, &examples)
                .unwrap();
        assert!(taught.matches >= 4, "{taught:?}");
        let hash = cat.image_hashes().unwrap().into_iter().next().unwrap();
        cat.record_links(&[phototag_light::catalog::LinkRow {
            path: "/albums/some/x.jpg".into(),
            album: "Some".into(),
            target: "/r/a/x.jpg".into(),
            hash,
            inode: Some(7),
        }])
        .unwrap();
    }
    let url = match &pg.location {
        Location::Postgres(t) => t.url.clone(),
        Location::Sqlite(_) => unreachable!(),
    };
    let copy = |from: &str, to: &str| {
        let out = common::phototag()
            .args(["catalog", "copy", "--json", "--from", from, "--to", to])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let table = |r: &serde_json::Value, t: &str| -> serde_json::Value {
        r["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["table"] == t)
            .unwrap()
            .clone()
    };
    let first_s = first.display().to_string();
    let back_s = back.display().to_string();
    let r = copy(&first_s, &url);
    assert_eq!(r["matches"], true, "{r}");
    let images = table(&r, "images");
    assert_eq!(
        (images["source_rows"].as_u64(), images["copied"].as_u64()),
        (Some(300), Some(300))
    );
    assert_eq!(table(&r, "files")["copied"], 343);
    for t in ["failures", "albums", "album_links", "models", "roots"] {
        assert_eq!(table(&r, t)["copied"], 1, "{t}: {r}");
    }
    assert_eq!(table(&r, "embeddings")["copied"], 120, "{r}");
    assert_eq!(table(&r, "taught_tags")["copied"], 1, "{r}");
    let r = copy(&url, &back_s);
    assert_eq!(r["matches"], true, "{r}");
    assert_eq!(table(&r, "images")["copied"], 300);
    assert_eq!(table(&r, "embeddings")["copied"], 120, "{r}");
    assert_eq!(table(&r, "taught_tags")["copied"], 1, "{r}");
    // The same searches on all three give the same hits.
    let cats = [
        Catalog::open_readonly(&first).unwrap(),
        Catalog::open_readonly(&pg.location).unwrap(),
        Catalog::open_readonly(&back).unwrap(),
    ];
    for query in fixtures::queries() {
        let mut q = phototag_light::search::Request::new(query);
        q.with_tags = true;
        let want = cats[0].find(&q).unwrap();
        assert!(!want.is_empty());
        for c in &cats[1..] {
            assert_eq!(c.find(&q).unwrap(), want);
        }
    }
    assert_eq!(cats[0].stats().unwrap(), cats[2].stats().unwrap());
    // The taught tag arrives whole (its number, definition, examples), and searches by it
    // give the same hits on all three.
    let taught = |c: &Catalog| {
        let names = c.model_names().unwrap();
        let model = |id: i64| names.iter().find(|n| n.0 == id).unwrap().1.clone();
        let t = c.taught_tag("REX").unwrap().unwrap();
        let examples: Vec<_> = c
            .taught_examples(t.id)
            .unwrap()
            .into_iter()
            .map(|e| (e.hash, e.positive, model(e.model_id), e.embedding))
            .collect();
        let mut hits = Vec::new();
        for q in ["rex", "rex>0.8", "rex AND NOT dog", "NOT rex"] {
            let q = phototag_light::search::Query::compile_with(q, 0.0, &c.taught_names().unwrap())
                .unwrap();
            assert_eq!(q.unknown().count(), 0);
            hits.push(
                c.find(&phototag_light::search::Request::new(q.compiled))
                    .unwrap(),
            );
        }
        let row = (
            t.id,
            t.name,
            model(t.model_id),
            t.weights,
            t.bias,
            t.threshold,
            t.figures,
        );
        (
            row,
            t.created_at,
            examples,
            hits,
            c.taught_match_count(t.id).unwrap(),
        )
    };
    let want = taught(&cats[0]);
    assert_eq!(want.2.len(), 8);
    assert!(!want.3[0].is_empty());
    assert_eq!(taught(&cats[1]), want);
    assert_eq!(taught(&cats[2]), want);
    // The embeddings arrive as they were, each with its model.
    let embeddings = |c: &Catalog| {
        let names = c.model_names().unwrap();
        let mut all = Vec::new();
        c.scan_embeddings(&Default::default(), |h, m, e| {
            let model = names.iter().find(|n| n.0 == m).unwrap().1.clone();
            all.push((h.to_vec(), model, e.values.to_vec(), e.scale));
        })
        .unwrap();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let want = embeddings(&cats[0]);
    assert_eq!(want.len(), 120);
    assert_eq!(embeddings(&cats[1]), want);
    assert_eq!(embeddings(&cats[2]), want);
    assert_eq!(cats[1].embedding_counts().unwrap().with_embedding(), 120);
    // And each gets its sketch (what `similar` reads first on a large catalog).
    for c in &cats {
        let n = c.scan_sketches((i64::MIN, i64::MAX), |_, _, _| {}).unwrap();
        assert_eq!(n, 120);
    }
    drop(cats);
    // Run again: nothing to copy. Rows gone from the target: only they are copied.
    let r = copy(&first_s, &url);
    assert_eq!(table(&r, "images")["copied"], 0);
    assert_eq!(table(&r, "images")["already_there"], 300);
    pg.db()
        .unwrap()
        .client()
        .batch_execute(
            "DELETE FROM files WHERE path IN (SELECT path FROM files ORDER BY path LIMIT 40)",
        )
        .unwrap();
    let r = copy(&first_s, &url);
    assert_eq!(r["matches"], true, "{r}");
    assert_eq!(table(&r, "files")["copied"], 40);
    // A target that holds a row with other contents: reported, exit 1.
    pg.db()
        .unwrap()
        .client()
        .batch_execute("UPDATE files SET size = size + 1 WHERE path = (SELECT path FROM files ORDER BY path LIMIT 1)")
        .unwrap();
    let out = common::phototag()
        .args(["catalog", "copy", "--from", &first_s, "--to", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIFFERS"), "{text}");
}

/// An image as stored, to write again (with an embedding).
fn w_image(cat: &Catalog, h: &phototag_light::catalog::Hash) -> phototag_light::catalog::NewImage {
    let img = cat.image(h).unwrap().unwrap();
    phototag_light::catalog::NewImage {
        hash: *h,
        width: img.width,
        height: img.height,
        format: img.format,
        model_id: img.model_id,
        classified_at: img.classified_at,
        tags: cat
            .tags(h)
            .unwrap()
            .into_iter()
            .map(|t| phototag_light::catalog::NewTag {
                rank: t.rank,
                class_index: t.class_index,
                label: t.label,
                probability: t.probability,
            })
            .collect(),
        embedding: None,
    }
}
