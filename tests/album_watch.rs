//! The real daemon keeps an album folder (inside its watched root) and XMP sidecars up to
//! date: photos added, moved, deleted and retagged (by another process), a foreign file
//! left alone, and no feedback loop (nothing under the album folder is catalogued).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use phototag_light::catalog::{Catalog, NewImage, NewTag};

// Generous: several daemons may load their models at once on a 2-core machine.
const T: Duration = Duration::from_secs(90);

fn photo(path: &Path, seed: u32) {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([
            (x * 3 + seed) as u8,
            (y * 5 + seed * 7) as u8,
            (seed * 11) as u8,
        ])
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Written under a hidden name and renamed in: the daemon sees it whole.
    let tmp = path.with_file_name(format!(".{}.part", seed));
    img.save_with_format(&tmp, image::ImageFormat::Png).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < T {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

/// Link name → target, for the symbolic links in `dir`.
fn links(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let t = std::fs::read_link(e.path()).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), t))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn album_and_sidecars_follow_adds_moves_deletes_and_retags() {
    let models = common::random_model_store(3).dir().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("photos");
    let album = root.join("Albums/All");
    std::fs::create_dir_all(&album).unwrap();
    std::fs::write(album.join("notes.txt"), "mine").unwrap();
    // Matches every photo unless it is tagged a tabby at 99.9% or more (random weights
    // never are; the retag below makes one so).
    let config = base.join("phototag.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nroots = [{root:?}]\nsettle_seconds = 0.6\ndelete_grace_seconds = 1.0\nalbum_delay_seconds = 0.5\nsidecars = {{ {root:?} = true }}\n\n[[album]]\nname = \"All\"\nquery = \"NOT tabby>0.999\"\nfolder = {album:?}\n",
            root = root.display().to_string(),
            album = album.display().to_string()
        ),
    )
    .unwrap();
    let db = base.join("catalog.db");
    let sock_path = base.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let child = Command::new(common::bin())
        .arg("--config")
        .arg(&config)
        .args(["watch", "--model", "resnet18-random", "--batch-size", "2"])
        .env("PHOTOTAG_MODEL_DIR", &models)
        .env("PHOTOTAG_DB", &db)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Guard(child);
    let mut buf = [0u8; 4096];
    wait_for("READY=1", || {
        sock.recv(&mut buf)
            .is_ok_and(|n| String::from_utf8_lossy(&buf[..n]).contains("READY=1"))
    });

    let (p1, p2) = (root.join("2024/p1.png"), root.join("p2.png"));
    photo(&p1, 1);
    photo(&p2, 2);
    let took = wait_for("two links in the album", || links(&album).len() == 2);
    eprintln!(
        "two photos landed → in the album in {:.1} s",
        took.as_secs_f64()
    );
    assert_eq!(
        links(&album),
        [
            ("p1.png".to_string(), p1.clone()),
            ("p2.png".to_string(), p2.clone())
        ]
    );
    // Sidecars beside both, valid XMP with the stored tags.
    wait_for("sidecars", || {
        phototag_light::sidecar::path_for(&p1).exists()
            && phototag_light::sidecar::path_for(&p2).exists()
    });
    let s = phototag_light::sidecar::xmp::read(
        &std::fs::read_to_string(phototag_light::sidecar::path_for(&p1)).unwrap(),
    )
    .unwrap();
    assert_eq!(s.model.as_deref(), Some("resnet18-random"));
    assert_eq!(s.tags.len(), 3);
    assert!(!s.keywords.is_empty());

    // Moved: the link follows (no reclassification needed).
    let moved = root.join("2025/p1.png");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&p1, &moved).unwrap();
    wait_for("the link follows the move", || {
        links(&album).iter().any(|(_, t)| t == &moved)
            && !links(&album).iter().any(|(_, t)| t == &p1)
    });

    // Deleted: the link goes.
    std::fs::remove_file(&p2).unwrap();
    wait_for("the link of the deleted photo goes", || {
        !links(&album).iter().any(|(_, t)| t == &p2)
    });

    // Retagged by another process (as `phototag retag` would): the album drops it.
    {
        let mut c = Catalog::open(&db).unwrap();
        let row = c.file(&moved).unwrap().expect("moved photo catalogued");
        let model = c.register_model("other", "cd34", "resnet18").unwrap();
        let mut w = c.begin().unwrap();
        w.put_image(&NewImage {
            hash: row.hash,
            width: 64,
            height: 48,
            format: "png".into(),
            model_id: model,
            classified_at: 0,
            tags: vec![NewTag {
                rank: 1,
                class_index: 281,
                label: "tabby".into(),
                probability: 0.9995,
            }],
        })
        .unwrap();
        w.commit().unwrap();
    }
    let took = wait_for("the retagged photo leaves the album", || {
        links(&album).is_empty()
    });
    eprintln!(
        "retag by another process → album updated in {:.1} s",
        took.as_secs_f64()
    );

    // No feedback loop: nothing under the album folder (or any sidecar) was catalogued.
    let c = Catalog::open_readonly(&db).unwrap();
    assert!(c.files_under(&album).unwrap().is_empty());
    assert!(
        c.failures_under(&root).unwrap().is_empty(),
        "sidecars are not photos"
    );
    assert_eq!(
        std::fs::read_to_string(album.join("notes.txt")).unwrap(),
        "mine"
    );

    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(15);
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(phototag_light::status::path_for(&db)).unwrap();
    assert!(status.contains("\"albums\""), "{status}");
}
