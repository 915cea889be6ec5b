//! Helpers every theme of the integration tests shares: the binaries and a `phototag`
//! command, waiting for a condition, generated photos, seeded random models (prepared once
//! per seed and test run), skips, image comparisons; `daemon` runs the real daemon.
//!
//! Nothing the tests start outlives them: long-lived children (servers, daemons) are
//! started with [`spawn`], which makes the kernel kill them when the test process ends,
//! however it ends; what lives as long as the run (prepared models, shared libraries and
//! servers' folders) goes under [`run_dir`], removed at exit.
#![allow(dead_code)]

pub mod daemon;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{mpsc, Mutex, OnceLock};
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

/// A variant of a photo: scaled by `num/den`, cropped to `crop` percent around the centre,
/// brightened by `light`, re-encoded at JPEG `quality`.
pub fn variant(path: &Path, num: u32, den: u32, crop: u32, light: i32, quality: u8) -> Vec<u8> {
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = (img.width() * crop / 100, img.height() * crop / 100);
    let img = image::imageops::crop_imm(&img, (img.width() - w) / 2, (img.height() - h) / 2, w, h)
        .to_image();
    let mut img = image::imageops::resize(
        &img,
        (w * num / den).max(8),
        (h * num / den).max(8),
        image::imageops::FilterType::Triangle,
    );
    image::imageops::colorops::brighten_in_place(&mut img, light);
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img)
        .unwrap();
    out.into_inner()
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

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts a long-lived child (a server, a daemon) that the kernel kills (SIGKILL) when the
/// test process ends, whether it exits, panics or is killed itself: a test never leaves a
/// process behind, not even one held in a static that is never dropped.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, and test
/// threads end with their test; so every child is forked by one thread that lives as long
/// as the process.
pub fn spawn(cmd: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("test-child-spawner".into())
            .spawn(move || {
                use std::os::unix::process::CommandExt;
                // SAFETY: getpid has no preconditions.
                let parent = unsafe { libc::getpid() };
                for (mut cmd, reply) in rx {
                    // SAFETY: only async-signal-safe calls between fork and exec.
                    unsafe {
                        cmd.pre_exec(move || {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            // The parent died before the line above: do not outlive it.
                            if libc::getppid() != parent {
                                libc::_exit(1);
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .unwrap();
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .unwrap();
    answer.recv().unwrap().unwrap()
}

/// A temporary folder under [`run_dir`]: removed when dropped, and at the latest when the
/// test process exits (for one held in a static).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(run_dir()).unwrap()
}

/// The start of a run folder's name; the test process's id follows.
const RUN_DIR_PREFIX: &str = "phototag-tests-";

/// Removes the run folders of test processes that are gone without removing their own
/// (killed: nothing runs at exit then). Each is named with its process's id; one whose
/// process still runs is left alone.
pub fn sweep_run_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        // `phototag-tests-PID-XXXXXX` only (older names, without an id, are left alone).
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(pid, _)| pid.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A folder for what lives as long as the test run (prepared models, shared servers):
/// removed when the test process exits, or by the next run's [`sweep_run_dirs`] when it
/// was killed.
pub fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        extern "C" fn remove() {
            if let Some(d) = DIR.get() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        sweep_run_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .unwrap()
            .keep();
        // SAFETY: registers a plain function to run at exit; it only removes a folder.
        unsafe { libc::atexit(remove) };
        dir
    })
}

/// The reference input as the classifier takes it: one CHW slice per image.
pub fn chw_inputs(input: &tch::Tensor) -> Vec<Vec<f32>> {
    let per = (input.numel() / input.size()[0] as usize).max(1);
    let flat = Vec::<f32>::try_from(input.contiguous().flatten(0, -1)).unwrap();
    flat.chunks(per).map(<[f32]>::to_vec).collect()
}

/// Largest difference relative to the largest reference value (at least 1).
pub fn relative_diff(a: &tch::Tensor, expected: &tch::Tensor) -> f64 {
    let scale = expected.abs().max().double_value(&[]).max(1.0);
    max_abs_diff(a, expected) / scale
}

/// A prepared model against PyTorch's reference vectors: loaded plain and (where this build
/// has the libtorch shim) optimised, each gives `logits` and `features` for the reference
/// `input` within `tolerance` (relative). Returns each loaded classifier with whether it was
/// asked to optimise, for the caller's further checks.
pub fn assert_outputs_match(
    test: &str,
    model: &phototag_light::model_files::StoredModel,
    input: &tch::Tensor,
    logits: &tch::Tensor,
    features: &tch::Tensor,
    tolerance: f64,
) -> Vec<(bool, phototag_engine::model::Classifier)> {
    use phototag_engine::model::{optimized, Classifier, ClassifierOptions};
    let chw = chw_inputs(input);
    let slices: Vec<&[f32]> = chw.iter().map(Vec::as_slice).collect();
    let mut loaded = Vec::new();
    for optimize in [false, true] {
        if optimize && !optimized::AVAILABLE {
            skip(
                test,
                "this build has no libtorch shim: the optimised path is not checked",
            );
            continue;
        }
        let c = Classifier::load(
            model,
            &ClassifierOptions {
                optimize,
                ..Default::default()
            },
        )
        .unwrap();
        let (l, f) = c.raw_outputs(&slices).unwrap();
        let f = f.expect("a prepared model gives features");
        let (dl, df) = (relative_diff(&l, logits), relative_diff(&f, features));
        eprintln!(
            "{} (optimised: {optimize}) vs PyTorch: logits {dl:.2e}, features {df:.2e} (relative)",
            model.name
        );
        assert!(
            dl <= tolerance && df <= tolerance,
            "logits {dl}, features {df}"
        );
        loaded.push((optimize, c));
    }
    loaded
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

/// A 16-bit RGB PNG of `w`×`h` black pixels, written row by row (small: it compresses).
pub fn png16(w: u32, h: u32) -> Vec<u8> {
    // The stream writer wants an owned writer: a temporary file.
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut e = png::Encoder::new(file.reopen().unwrap(), w, h);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Sixteen);
    let mut rows = e.write_header().unwrap().into_stream_writer().unwrap();
    let row = vec![0u8; w as usize * 6];
    for _ in 0..h {
        std::io::Write::write_all(&mut rows, &row).unwrap();
    }
    rows.finish().unwrap();
    std::fs::read(file.path()).unwrap()
}

/// Seconds since midnight UTC now (for schedule windows; run the daemon with `TZ=UTC`).
pub fn utc_time_of_day() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now % 86_400) as u32
}

/// `t` seconds after midnight as `HH:MM:SS` (a schedule window's ends).
pub fn hms(t: u32) -> String {
    let t = t % 86_400;
    format!("{:02}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}
