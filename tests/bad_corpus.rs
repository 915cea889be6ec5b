//! Every file under ../shared/corpus/bad (bombs, crashers, fuzz inputs, truncated files)
//! through the real binary: one clean JSON line per file, a result or an error, and the
//! process ends normally (no crash, no hang). Skips, saying why, without the corpus.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_bad_file_gives_a_clean_result_or_error() {
    let Some(bad) = common::shared("corpus/bad", "bad_corpus") else {
        return;
    };
    let mut files = Vec::new();
    files_under(&bad, &mut files);
    files.sort();
    assert!(files.len() > 2000, "{} files", files.len());

    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let st = Command::new(common::bin())
        .args(["-q", "model", "prepare", "resnet18-random"])
        .env("PHOTOTAG_MODEL_DIR", &models)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .status()
        .unwrap();
    assert!(st.success());

    let (mut ok, mut errors) = (0, 0);
    for chunk in files.chunks(600) {
        let out = Command::new(common::bin())
            .args(["-q", "classify", "--json", "--model", "resnet18-random"])
            .args(chunk)
            .env("PHOTOTAG_MODEL_DIR", &models)
            .env("PHOTOTAG_CONFIG", "/dev/null")
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "crashed or failed: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), chunk.len(), "one line per file");
        for (v, f) in lines.iter().zip(chunk) {
            assert_eq!(v["file"].as_str().unwrap(), f.to_string_lossy());
            if v["results"].is_array() {
                ok += 1;
            } else {
                let e = v["error"].as_str().unwrap();
                assert!(!e.is_empty());
                errors += 1;
            }
        }
    }
    eprintln!(
        "bad corpus: {} files, {ok} classified, {errors} refused with an error",
        files.len()
    );
}
