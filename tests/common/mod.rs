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
pub fn random_model_store(seed: i64) -> phototag::model::ModelStore {
    use phototag::model::prepare::{self, Recipe};
    let dir = tempfile::tempdir().unwrap().keep();
    let store = phototag::model::ModelStore::new(dir.join("models"));
    prepare::prepare(&store, &dir, &Recipe::Resnet18Random { seed, name: None }).unwrap();
    store
}
