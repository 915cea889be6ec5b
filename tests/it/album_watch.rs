//! The real daemon keeps an album folder (inside its watched root) and XMP sidecars up to
//! date: photos added, moved, deleted and retagged (by another process), a foreign file
//! left alone, and no feedback loop (nothing under the album folder is catalogued).

use std::path::{Path, PathBuf};
use std::time::Duration;

use phototag_light::catalog::{fixtures, Catalog};

use crate::common::daemon::Daemon;
use crate::common::{photo, wait_for};

// Generous: several daemons may load their models at once on a 2-core machine.
const T: Duration = Duration::from_secs(90);

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

#[test]
fn album_and_sidecars_follow_adds_moves_deletes_and_retags() {
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
    let mut daemon = Daemon::start(tmp, &crate::common::models(3), 2);
    let db = daemon.db();

    let (p1, p2) = (root.join("2024/p1.png"), root.join("p2.png"));
    photo(&p1, 1);
    photo(&p2, 2);
    let took = wait_for("two links in the album", T, || links(&album).len() == 2);
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
    wait_for("sidecars", T, || {
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
    wait_for("the link follows the move", T, || {
        links(&album).iter().any(|(_, t)| t == &moved)
            && !links(&album).iter().any(|(_, t)| t == &p1)
    });

    // Deleted: the link goes.
    std::fs::remove_file(&p2).unwrap();
    wait_for("the link of the deleted photo goes", T, || {
        !links(&album).iter().any(|(_, t)| t == &p2)
    });

    // Retagged by another process (as `phototag retag` would): the album drops it.
    {
        let mut c = Catalog::open(&db).unwrap();
        let row = c.file(&moved).unwrap().expect("moved photo catalogued");
        let model = c.register_model("other", "cd34", "resnet18").unwrap();
        let mut w = c.begin().unwrap();
        let tags = fixtures::ranked(&[(281, "tabby", 0.9995)]);
        w.put_image(&fixtures::image_tagged(row.hash, model, tags))
            .unwrap();
        w.commit().unwrap();
    }
    let took = wait_for("the retagged photo leaves the album", T, || {
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

    assert!(daemon.stop().success());
    let status =
        std::fs::read_to_string(phototag_light::status::path_for(&db.clone().into())).unwrap();
    assert!(status.contains("\"albums\""), "{status}");
}
