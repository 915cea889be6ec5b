//! The `phototag` binary end to end, with a seeded random ResNet-18 prepared by the binary
//! itself into a temporary model folder: model preparation and listing, classify's text and
//! JSON output, per-file errors, exit codes, and configuration errors.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// A model folder with `resnet18-random` (seed 7) prepared once for all tests here.
fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::run_dir().join("cli-models");
        let out = phototag(
            &dir,
            &["model", "prepare", "resnet18-random", "--seed", "7"],
        );
        assert!(
            out.status.success(),
            "prepare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn phototag(model_dir: &Path, args: &[&str]) -> Output {
    common::phototag()
        .args(args)
        .env("PHOTOTAG_MODEL_DIR", model_dir)
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Writes a few generated images of different formats, sizes and colour types.
fn generated_images(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let grad = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let p = dir.join("gradient.png");
    grad.save(&p).unwrap();
    files.push(p);
    let p = dir.join("gradient.jpg");
    grad.save(&p).unwrap();
    files.push(p);
    let gray = image::GrayImage::from_fn(300, 500, |x, y| image::Luma([((x * y) % 256) as u8]));
    let p = dir.join("gray.bmp");
    gray.save(&p).unwrap();
    files.push(p);
    // A PNG with a misleading extension: phototag recognises content, not names.
    let p = dir.join("actually-a-png.jpg");
    grad.save_with_format(&p, image::ImageFormat::Png).unwrap();
    files.push(p);
    files
}

fn check_result(v: &Value, k: usize) {
    let results = v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {v}"));
    assert_eq!(results.len(), k, "{v}");
    let mut last = f64::INFINITY;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["rank"].as_u64().unwrap() as usize, i + 1);
        let index = r["index"].as_u64().unwrap() as usize;
        assert!(index < 1000);
        assert_eq!(
            r["class"].as_str().unwrap(),
            phototag_light::labels::class(index).unwrap().name
        );
        let p = r["probability"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&p), "{p}");
        assert_eq!((p * 100.0).round() / 100.0, p, "two decimals: {p}");
        assert!(p <= last, "probabilities must not increase with rank");
        last = p;
    }
    // Fixed key order, as documented.
    let keys: Vec<&String> = results[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["rank", "class", "index", "probability"]);
}

#[test]
fn model_list_shows_the_prepared_model() {
    let out = phototag(model_dir(), &["model", "list", "--json"]);
    assert!(out.status.success());
    let v = json_lines(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["name"], "resnet18-random");
    assert_eq!(v[0]["pretrained"], false);
    // auto picks only resnet18 or efficientnet-lite0, never a test model.
    assert_eq!(v[0]["auto"], false);
}

#[test]
fn classify_json_for_generated_images_and_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = generated_images(tmp.path());
    let fixtures = common::fixture("photos");
    files.push(fixtures.join("orange.jpg"));
    files.push(fixtures.join("squirrel_cls.jpg"));
    let mut args = vec![
        "classify",
        "--model",
        "resnet18-random",
        "--json",
        "--top",
        "5",
    ];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = phototag(model_dir(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len());
    for (v, f) in lines.iter().zip(&files) {
        assert_eq!(
            v["file"].as_str().unwrap(),
            f.display().to_string(),
            "order is input order"
        );
        assert_eq!(v["model"], "resnet18-random");
        check_result(v, 5);
    }
}

#[test]
fn batch_size_does_not_change_results() {
    let fixtures = common::fixture("photos");
    let a = fixtures.join("orange.jpg").display().to_string();
    let b = fixtures.join("squirrel_cls.jpg").display().to_string();
    let run = |bs: &str| {
        let out = phototag(
            model_dir(),
            &[
                "classify",
                "--model",
                "resnet18-random",
                "--json",
                "--batch-size",
                bs,
                &a,
                &b,
                &a,
            ],
        );
        assert!(out.status.success());
        json_lines(&out)
    };
    let one = run("1");
    let three = run("3");
    for (x, y) in one.iter().zip(&three) {
        let ix: Vec<&Value> = x["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["index"])
            .collect();
        let iy: Vec<&Value> = y["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["index"])
            .collect();
        assert_eq!(ix, iy);
    }
    assert_eq!(
        one[0]["results"], one[2]["results"],
        "same file, same result"
    );
}

#[test]
fn bad_files_get_an_error_entry_and_the_rest_are_classified() {
    let tmp = tempfile::tempdir().unwrap();
    let good = generated_images(tmp.path()).remove(0);
    let text = tmp.path().join("notes.jpg");
    std::fs::write(&text, "not a photo\n").unwrap();
    let truncated = tmp.path().join("truncated.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let missing = tmp.path().join("missing.png");
    let files = [&text, &good, &truncated, &missing];
    let mut args = vec![
        "classify".to_string(),
        "--model".into(),
        "resnet18-random".into(),
        "--json".into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = phototag(model_dir(), &args);
    assert_eq!(out.status.code(), Some(1), "some inputs failed → exit 1");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a supported image"),
        "{}",
        lines[0]
    );
    check_result(&lines[1], 3);
    assert!(lines[2]["error"].is_string(), "{}", lines[2]);
    assert!(lines[3]["error"].is_string(), "{}", lines[3]);

    // Text mode: errors on stderr, results on stdout.
    let out = phototag(
        model_dir(),
        &[
            "classify",
            "--model",
            "resnet18-random",
            &text.display().to_string(),
            &good.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("gradient.png") && stdout.contains("  1. "),
        "{stdout}"
    );
    assert!(!stdout.contains("notes.jpg"), "{stdout}");
    assert!(stderr.contains("notes.jpg"), "{stderr}");
}

#[test]
fn small_images_classify_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("tiny.png");
    image::RgbImage::from_pixel(100, 80, image::Rgb([10, 200, 30]))
        .save(&p)
        .unwrap();
    let out = phototag(
        model_dir(),
        &[
            "classify",
            "--model",
            "resnet18-random",
            "--json",
            &p.display().to_string(),
        ],
    );
    assert!(out.status.success());
    let v = &json_lines(&out)[0];
    check_result(v, 3);
    let w = v["warnings"][0].as_str().unwrap();
    assert!(w.contains("100x80"), "{w}");
}

#[test]
fn missing_model_says_how_to_prepare_it_and_exits_3() {
    let empty = tempfile::tempdir().unwrap();
    let out = phototag(empty.path(), &["classify", "--model", "resnet18", "x.jpg"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("phototag model prepare resnet18"), "{err}");
    let out = phototag(empty.path(), &["classify", "x.jpg"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no model is prepared") && err.contains("efficientnet-lite0"),
        "{err}"
    );
}

#[test]
fn a_changed_model_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");
    let src = model_dir().join("resnet18-random");
    std::fs::create_dir_all(dir.join("resnet18-random")).unwrap();
    for f in ["model.pt", "manifest.toml"] {
        std::fs::copy(src.join(f), dir.join("resnet18-random").join(f)).unwrap();
    }
    let pt = dir.join("resnet18-random/model.pt");
    let mut bytes = std::fs::read(&pt).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff;
    std::fs::write(&pt, bytes).unwrap();
    let fixture = common::fixture("photos/orange.jpg");
    let out = phototag(
        &dir,
        &[
            "classify",
            "--model",
            "resnet18-random",
            &fixture.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SHA-256") && err.contains("prepare the model again"),
        "{err}"
    );
}

#[test]
fn bad_config_names_file_line_and_key_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("phototag.toml");
    std::fs::write(&cfg, "model = \"auto\"\n[classify]\ntop_k = \"three\"\n").unwrap();
    let out = Command::new(common::bin())
        .args(["--config", &cfg.display().to_string(), "model", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", cfg.display())), "{err}");
    assert!(err.contains("classify.top_k"), "{err}");

    let out = Command::new(common::bin())
        .args(["--config", "/nonexistent/phototag.toml", "model", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/phototag.toml"));
}

#[test]
fn resnet18_download_failure_is_quick_and_helpful() {
    let tmp = tempfile::tempdir().unwrap();
    // A closed local port: the download fails at once, as on a machine without internet.
    let out = Command::new(common::bin())
        .args([
            "model",
            "prepare",
            "resnet18",
            "--url",
            "http://127.0.0.1:9/resnet18-f37072fd.pth",
        ])
        .env("PHOTOTAG_MODEL_DIR", tmp.path().join("models"))
        .env("PHOTOTAG_CACHE_DIR", tmp.path().join("cache"))
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--from") && err.contains("efficientnet-lite0"),
        "{err}"
    );
    assert!(!tmp.path().join("models/resnet18").exists());
}

/// `phototag` must not load libtorch (its start-up alone is ~0.3 s): the read-only commands
/// run in it, and the model-side ones are handed to `phototag-engine`.
#[test]
fn the_phototag_binary_does_not_link_libtorch() {
    let bytes = std::fs::read(common::bin()).unwrap();
    for lib in [&b"libtorch_cpu.so"[..], b"libc10.so", b"libtorch.so"] {
        assert!(
            !bytes.windows(lib.len()).any(|w| w == lib),
            "{} names {}",
            common::bin().display(),
            String::from_utf8_lossy(lib)
        );
    }
    let engine = common::engine();
    let engine_bytes = std::fs::read(&engine).unwrap();
    assert!(engine_bytes.windows(15).any(|w| w == b"libtorch_cpu.so"));
}

#[test]
fn model_commands_go_through_the_engine_and_a_missing_engine_is_named() {
    // Through the engine: same arguments, same output as the engine run directly.
    let dir = model_dir();
    let via = phototag(dir, &["model", "list"]);
    assert!(via.status.success(), "{via:?}");
    let direct = Command::new(common::engine())
        .args(["model", "list"])
        .env("PHOTOTAG_MODEL_DIR", dir)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(via.stdout, direct.stdout);

    // A lone copy of `phototag`: search still works, `classify` says what is missing.
    let tmp = tempfile::tempdir().unwrap();
    let lone = tmp.path().join("phototag");
    std::fs::copy(common::bin(), &lone).unwrap();
    let labels = Command::new(&lone)
        .args(["labels", "pug"])
        .output()
        .unwrap();
    assert!(labels.status.success(), "{labels:?}");
    let out = Command::new(&lone)
        .args(["classify", "x.jpg"])
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("phototag-engine is missing"), "{err}");
}

#[test]
fn threads_have_one_bound_on_the_command_line_and_in_the_config() {
    let photo = common::fixture("photos/orange.jpg");
    let photo = photo.to_str().unwrap();
    // Beyond it: refused as bad usage before anything runs (was a stack overflow, exit 134).
    for args in [
        &["classify", "--threads", "100000", "--json", photo][..],
        &["classify", "--threads", "20000", "--json", photo],
        &["serve", "--threads", "100000", "--listen", "127.0.0.1:0"],
        &["index", "--threads", "1025", "/nonexistent"],
    ] {
        let out = phototag(model_dir(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("0..=1024"), "{args:?}: {err}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("phototag.toml");
    std::fs::write(&cfg, "[classify]\nthreads = 1025\n").unwrap();
    let out = Command::new(common::bin())
        .args(["--config", cfg.to_str().unwrap(), "model", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 1024"));
    // Within it: as before.
    let out = phototag(
        model_dir(),
        &[
            "classify",
            "--threads",
            "2",
            "--json",
            "--model",
            "resnet18-random",
            photo,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn watch_roots_must_be_absolute_existing_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file.jpg");
    std::fs::write(&file, b"not a folder").unwrap();
    let missing = tmp.path().join("missing");
    let run = |config: &str, extra: &[&str]| {
        let cfg = tmp.path().join("phototag.toml");
        std::fs::write(&cfg, config).unwrap();
        let out = Command::new(common::bin())
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "watch",
                "--model",
                "resnet18-random",
            ])
            .args(extra)
            .env("PHOTOTAG_MODEL_DIR", model_dir())
            .env("PHOTOTAG_DB", tmp.path().join("catalog.db"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // In the file: the form is checked with file, line and key.
    for (root, words) in [("", "empty path"), ("photos", "relative")] {
        let (code, err) = run(&format!("[watch]\nroots = [\"{root}\"]\n"), &[]);
        assert_eq!(code, Some(2), "{root:?}: {err}");
        assert!(
            err.contains(":2:") && err.contains("watch.roots") && err.contains(words),
            "{err}"
        );
    }
    // At start: each root is an existing folder.
    let (code, err) = run(&format!("[watch]\nroots = [\"{}\"]\n", file.display()), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a-file.jpg") && err.contains("not a folder"),
        "{err}"
    );
    let (code, err) = run("", &["--root", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing"), "{err}");
    // Nothing to watch at all: bad usage too (was exit 4).
    let (code, err) = run("", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing to watch"), "{err}");
}
