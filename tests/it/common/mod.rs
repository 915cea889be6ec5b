//! Helpers every theme of the integration tests shares: the binaries and a `phototag`
//! command, waiting for a condition, generated photos, seeded random models (prepared once
//! per seed and test run), skips, image comparisons; `daemon` runs the real daemon.
#![allow(dead_code)]

pub mod daemon;


use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use phototag_light::model_files::ModelStore;

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

/// The engine binary, beside `phototag`.
pub fn engine() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_phototag-engine"))
}

/// `phototag` with no configuration file (`PHOTOTAG_CONFIG=/dev/null`: defaults) and no
/// `RUST_LOG`; callers add the catalog, the models folder and the arguments.
pub fn phototag() -> Command {
    let mut c = Command::new(bin());
    c.env("PHOTOTAG_CONFIG", "/dev/null").env_remove("RUST_LOG");
    c
}

/// Polls `f` every 50 ms until it holds; panics after `timeout` naming `what`. Returns how
/// long it took.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// A distinct 96×64 PNG per seed, written at `path` (folders made); returns its bytes.
pub fn photo(path: &Path, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        let v = x
            .wrapping_mul(31)
            .wrapping_add(y.wrapping_mul(17))
            .wrapping_add(seed.wrapping_mul(97));
        image::Rgb([
            (v % 251) as u8,
            (seed * 13 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
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

/// A folder for what lives as long as the test run (prepared models, shared servers):
/// removed when the test process exits.
pub fn run_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        extern "C" fn remove() {
            if let Some(d) = DIR.get() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("phototag-tests-")
            .tempdir()
            .unwrap()
            .keep();
        // SAFETY: registers a plain function to run at exit; it only removes a folder.
        unsafe { libc::atexit(remove) };
        dir
    })
}

/// A models folder holding `resnet18-random` prepared with `seed`: made once per seed for
/// the whole test run (it is only read), under the temporary folder.
pub fn random_model_store(seed: i64) -> ModelStore {
    use phototag_engine::model::prepare::{self, Recipe};
    static STORES: Mutex<Option<HashMap<i64, ModelStore>>> = Mutex::new(None);
    let mut stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
    let stores = stores.get_or_insert_with(HashMap::new);
    if let Some(s) = stores.get(&seed) {
        return s.clone();
    }
    let dir = run_dir().join(format!("random-model-{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = ModelStore::new(dir.join("models"));
    prepare::prepare(&store, &dir, &Recipe::Resnet18Random { seed, name: None }).unwrap();
    stores.insert(seed, store.clone());
    store
}

/// The folder of [`random_model_store`]`(seed)`.
pub fn models(seed: i64) -> PathBuf {
    random_model_store(seed).dir().to_path_buf()
}
