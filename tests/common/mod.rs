//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/<rel>` beside the project, or None after printing why the test skips.
pub fn shared(rel: &str, test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        skip(
            test,
            &format!(
                "{} is absent (the shared test material is not on this machine)",
                p.display()
            ),
        );
        None
    }
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Both images shrunk to 64x64 (ignoring aspect), then the mean absolute difference per
/// channel value, 0..255. Tells "same picture" from "rotated or flipped picture".
pub fn mean_abs_diff_64(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let shrink =
        |i: &image::RgbImage| image::imageops::resize(i, 64, 64, image::imageops::Triangle);
    let (a, b) = (shrink(a), shrink(b));
    let sum: u64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / (64.0 * 64.0 * 3.0)
}

/// The phototag binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_phototag"))
}

/// Max absolute difference of two tensors of the same shape.
pub fn max_abs_diff(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Says, past the test harness's output capture, that a test skips and why.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    // Written to the stderr handle directly: the harness captures only print!/eprint!, and a
    // skip must be seen in a normal `cargo test` run.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A model folder (kept for the test run) holding `resnet18-random` prepared with `seed`.
pub fn random_model_store(seed: i64) -> phototag_light::model_files::ModelStore {
    use phototag_engine::model::prepare::{self, Recipe};
    let dir = tempfile::tempdir().unwrap().keep();
    let store = phototag_light::model_files::ModelStore::new(dir.join("models"));
    prepare::prepare(&store, &dir, &Recipe::Resnet18Random { seed, name: None }).unwrap();
    store
}
