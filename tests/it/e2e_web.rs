//! The page in a real browser: headless Chromium (Debian's `chromium`) driven by Python
//! Playwright (`tests/e2e/web.py`) against `phototag serve` over a small indexed catalog
//! with a near copy of one photo. It opens on the library (newest first, a page at a
//! time), shows the tag cloud, uploads a photo (its first answer a 503 with `Retry-After`,
//! which the page waits out and retries) and sees the top-3, searches the top class,
//! opens a result and reads its tags and "more like this", and lists the near-duplicate
//! groups; then selects two photos in the library, marks one yes and one no, teaches a tag,
//! opens its page and corrects it with one click (✓ on a borderline match). Screenshots go
//! to `target/e2e/web.png` (the photo view) and `web-library.png`, `web-upload.png`,
//! `web-search.png`, `web-dupes.png`, `web-select.png`, `web-teach.png` beside it, in a
//! phone-sized window.
//!
//! `scripts/e2e-setup.sh` installs Chromium (apt) and Playwright (PyPI) when missing; where
//! that cannot be done the test prints `SKIPPED` and why. Set `PHOTOTAG_E2E_NO_INSTALL=1`
//! to never install.

use crate::common;
use crate::web;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const TEST: &str = "e2e_web::upload_search_and_view_in_chromium";

/// What `scripts/e2e-setup.sh` printed, or None after printing why the test skips.
fn browser() -> Option<HashMap<String, String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/e2e-setup.sh");
    let out = match Command::new("sh").arg(&script).output() {
        Ok(o) => o,
        Err(e) => {
            common::skip(TEST, &format!("cannot run {}: {e}", script.display()));
            return None;
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err
            .lines()
            .rfind(|l| l.starts_with("e2e-setup:"))
            .unwrap_or(err.trim());
        common::skip(
            TEST,
            &format!("Chromium or Playwright is not available: {why}"),
        );
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn screenshot_path() -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("web.png")
}

#[test]
fn upload_search_and_view_in_chromium() {
    let Some(env) = browser() else { return };
    // A near copy of the orange: half its size, re-encoded.
    let orange = image::open(web::fixtures().join("orange.jpg"))
        .unwrap()
        .to_rgb8();
    let small = image::imageops::resize(
        &orange,
        orange.width() / 2,
        orange.height() / 2,
        image::imageops::FilterType::Triangle,
    );
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .unwrap();
    let lib = web::Library::with(&[("orange small.jpg", jpeg.into_inner())]);
    // The seeded random model finds every photo alike (the squirrel scores ~0.97 against
    // the orange), its near copy ~0.9999: a threshold between the two (the default is
    // measured on the real EfficientNet-Lite0).
    let server = lib.serve("[similar]\nnear_threshold = 0.995\n", &[], "127.0.0.1:0");
    server.wait_for_model();

    let photo = web::fixtures().join("orange.jpg");
    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/web.py");
    let url = format!("http://{}/", server.addr);
    let hash_of = |p: &Path| {
        blake3::hash(&std::fs::read(p).unwrap())
            .to_hex()
            .to_string()
    };
    // Taught in the browser: the orange is a tangerine, the squirrel is not.
    let yes = hash_of(&photo);
    let no = hash_of(&web::fixtures().join("squirrel_cls.jpg"));
    let out = Command::new(&env["PYTHON"])
        .arg(&script)
        .args([
            &url,
            photo.to_str().unwrap(),
            shot.to_str().unwrap(),
            &env["CHROMIUM"],
            &yes,
            &no,
        ])
        .env("PYTHONPATH", &env["PYTHONPATH"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser script failed:\n{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    eprintln!("browser saw: {seen}");
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "no script errors in the page"
    );

    // A 503 with Retry-After: the page said so, waited as told, and tried again.
    assert_eq!(seen["classify_calls"], 2, "one 503, then the retry: {seen}");
    assert!(seen["busy_logged"].as_u64() <= Some(1), "{seen}");
    let waited = seen["retry_wait"].as_f64().unwrap();
    assert!(waited >= 0.9, "retried after {waited} s, not the 1 s asked");
    assert!(
        seen["busy_status"]
            .as_str()
            .unwrap()
            .contains("again in 1 s"),
        "{seen}"
    );

    // The bars show what the API answers for the same upload.
    let api = server
        .upload("orange.jpg", &std::fs::read(&photo).unwrap(), &[])
        .json();
    let top3 = seen["top3"].as_array().unwrap();
    assert_eq!(top3.len(), 3);
    for (bar, want) in top3.iter().zip(api["results"].as_array().unwrap()) {
        assert_eq!(bar["class"], want["class"]);
        let p = want["probability"].as_f64().unwrap();
        let shown: f64 = bar["probability"]
            .as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!((shown - p).abs() < 0.051, "{bar} vs {want}");
        let width: f64 = bar["width"]
            .as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!((width - p).abs() < 1e-6, "bar width {width}% for {p}%");
    }

    // The search for the top class found the photo; the view shows its stored tags.
    let hash = blake3::hash(&std::fs::read(&photo).unwrap())
        .to_hex()
        .to_string();
    let grid: Vec<&str> = seen["grid"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(
        grid.contains(&hash.as_str()),
        "the orange is in the grid: {grid:?}"
    );
    assert_eq!(
        grid.iter().filter(|h| **h == hash).count(),
        1,
        "one tile per content"
    );
    let opened = seen["hash"].as_str().unwrap();
    let info = server.get(&format!("/api/photos/{opened}")).json();
    let tags: Vec<_> = info["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["class"].clone())
        .collect();
    assert_eq!(seen["view_tags"].as_array().unwrap(), &tags);
    assert_eq!(seen["view_paths"], info["paths"]);
    assert_eq!(seen["grid_after_back"].as_u64(), Some(grid.len() as u64));
    assert!(!seen["cloud"].as_array().unwrap().is_empty());
    for key in ["overflow_x", "overflow_x_library", "overflow_x_dupes"] {
        assert!(
            seen[key].as_i64().unwrap() <= 0,
            "no sideways scrolling on a phone ({key}): {seen}"
        );
    }

    // It opened on the library: every content once, newest first, as the API pages it,
    // fetched a page (of two) at a time.
    assert_eq!(seen["first_view"], serde_json::json!(["library"]));
    let mut newest: Vec<String> = Vec::new();
    for r in server.get("/api/library?limit=100").json()["results"]
        .as_array()
        .unwrap()
    {
        let h = r["hash"].as_str().unwrap().to_string();
        if !newest.contains(&h) {
            newest.push(h);
        }
    }
    assert_eq!(
        newest.len(),
        3,
        "orange (and its copy), its near copy, squirrel"
    );
    assert_eq!(seen["library"], serde_json::json!(newest));
    assert!(
        seen["library_requests"].as_u64().unwrap() >= 2,
        "paged: {seen}"
    );
    assert_eq!(seen["library_note"], "3 photos");

    // No broken image before an upload; the preview after.
    assert_eq!(seen["preview_hidden_before"], true);

    // "More like this" shows what the API ranks, best first, and opens a photo in place.
    let api_similar = server
        .get(&format!("/api/similar/{opened}?limit=12"))
        .json();
    let want: Vec<serde_json::Value> = api_similar["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!({"hash": r["hash"], "score": r["score"]}))
        .collect();
    assert_eq!(want.len(), 2, "every other photo: {api_similar}");
    assert_eq!(seen["similar"], serde_json::json!(want));
    assert_eq!(seen["opened_similar"], want[0]["hash"]);

    // The near-duplicates view: the orange's group, the full-size orange first.
    let api_dupes = server.get("/api/dupes").json();
    let groups: Vec<Vec<(serde_json::Value, f64)>> = api_dupes["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["hash"].clone(), m["similarity"].as_f64().unwrap()))
                .collect()
        })
        .collect();
    // JavaScript prints 1.0 as 1: compare the numbers, not their JSON spelling.
    let seen_groups: Vec<Vec<(serde_json::Value, f64)>> = seen["dupes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g.as_array()
                .unwrap()
                .iter()
                .map(|m| (m["hash"].clone(), m["similarity"].as_f64().unwrap()))
                .collect()
        })
        .collect();
    assert_eq!(seen_groups, groups);
    let small_path = api_dupes["groups"][0]["members"][1]["paths"][0]
        .as_str()
        .unwrap();
    assert!(small_path.ends_with("orange small.jpg"), "{api_dupes}");
    assert_eq!(
        groups[0][0].0.as_str(),
        Some(hash.as_str()),
        "the larger first"
    );
    assert_eq!(groups.len(), 1, "the squirrel is like nothing: {api_dupes}");

    check_teaching(&server, &seen, &yes, &no);

    for suffix in [
        "", "-library", "-upload", "-search", "-dupes", "-select", "-teach",
    ] {
        let path = shot.with_file_name(format!("web{suffix}.png"));
        let png = std::fs::read(&path).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    }
    eprintln!("screenshots: {}", shot.parent().unwrap().display());
}

/// What the browser saw while teaching `tangerine` (the orange yes, the squirrel no) and
/// correcting it with one ✓, against the API.
fn check_teaching(server: &web::Server, seen: &serde_json::Value, yes: &str, no: &str) {
    use serde_json::json;
    let hashes = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["hash"].as_str().unwrap().to_string())
            .collect()
    };
    let mut marked = seen["marked"].as_array().unwrap().clone();
    marked.sort_by_key(|m| m["mark"].as_str().unwrap().to_string());
    assert_eq!(
        json!(marked),
        json!([{"hash": no, "mark": "no"}, {"hash": yes, "mark": "yes"}]),
        "one tile each, marked as tapped"
    );
    assert_eq!(seen["teach_count"], "1 yes · 1 no");
    assert_eq!(
        seen["hash_while_selecting"], "",
        "a tap in select mode marks, it does not open the photo"
    );
    assert_eq!(seen["taught_list"], json!(["tangerine"]));
    // The page it showed after the ✓ is what the API answers now; the photo judged is a
    // yes example, no longer borderline, and has the tag.
    let page = server.get("/api/taught/tangerine").json();
    let judged = seen["judged"].as_str().unwrap();
    assert!(
        seen["tag_borderline"]
            .as_array()
            .unwrap()
            .contains(&json!(judged)),
        "{seen}"
    );
    let examples: Vec<serde_json::Value> = page["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"hash": e["hash"], "yes": e["yes"]}))
        .collect();
    assert_eq!(seen["tag_examples_after"], json!(examples));
    assert_eq!(examples.len(), 3, "{page}");
    assert!(examples.contains(&json!({"hash": judged, "yes": true})));
    assert!(examples.contains(&json!({"hash": yes, "yes": true})));
    assert!(examples.contains(&json!({"hash": no, "yes": false})));
    assert_eq!(
        seen["tag_borderline_after"],
        json!(hashes(&page["borderline"]))
    );
    assert_eq!(seen["tag_best_after"], json!(hashes(&page["best"])));
    assert!(hashes(&page["best"]).contains(&judged.to_string()));
    assert!(seen["tag_status"]
        .as_str()
        .unwrap()
        .contains("Added as yes and refitted"));
    assert!(seen["tag_title"].as_str().unwrap().starts_with("tangerine"));
    for key in ["overflow_x_teach", "overflow_x_tag"] {
        assert!(
            seen[key].as_i64().unwrap() <= 0,
            "no sideways scrolling ({key}): {seen}"
        );
    }
}
