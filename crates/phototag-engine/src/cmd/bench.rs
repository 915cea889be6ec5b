//! `phototag bench`: model load and warm-up time, ms/image at each batch size on random
//! input, and for a folder: end-to-end images/s (decode, preprocess, inference, as
//! `classify` and `index` run them), inference-only images/s for the same model, threads and
//! batch size on the folder's preprocessed images, their ratio, where the resident memory
//! goes (libtorch, the model, warm-up, inference, decoding, each peak on its own), and with
//! `--library-size N` how long N photos like these take (inside the schedule windows too).
//! Figures go to stdout, as text or one JSON object.
//!
//! May not: assert anything; it prints figures.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;
use tch::{Kind, Tensor};

use super::ModelContext;
use crate::classify::ModelChoice;
use crate::classify::{self, prepare_path, Scale};
use crate::index::walk::walk;
use crate::memory;
use crate::model::Classifier;
use phototag_light::cli::BenchArgs;
use phototag_light::cmd::{Context, Outcome};
use phototag_light::exclude::Excluder;
use phototag_light::schedule::human_duration;

fn mib(v: Option<f64>) -> String {
    v.map(|m| format!("{m:.0} MiB"))
        .unwrap_or_else(|| "n/a".into())
}

/// `b - a` in MiB, signed, or `n/a`.
fn plus(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.0} MiB", b - a),
        _ => "n/a".into(),
    }
}

/// CPU seconds (user + system) the process has used so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The files under `dir` that `index` would read (the configuration's exclusions), sorted.
fn files_under(ctx: &Context, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let excluder = Excluder::new(&ctx.config.index.exclude_config())?;
    let stop = AtomicBool::new(false);
    let walk = walk(dir, &excluder, ctx.config.index.follow_symlinks, &stop)?;
    Ok(walk.files.into_iter().map(|e| e.path).collect())
}

#[derive(Debug, Serialize)]
struct RandomInput {
    batch: usize,
    ms_per_image: f64,
    passes: usize,
}

/// Where the resident memory goes, phase by phase (each peak measured on its own).
#[derive(Debug, Default, Serialize)]
struct Memory {
    /// Before the model: phototag and libtorch (code pages of the libraries, and what
    /// their static initialisers allocate, e.g. libtorch's operator registry).
    start_mib: Option<f64>,
    /// Of which mapped from files (the libraries' code and data).
    start_file_mib: Option<f64>,
    /// With the model loaded (weights, frozen and optimised), and the peak while loading.
    loaded_mib: Option<f64>,
    load_peak_mib: Option<f64>,
    /// After warm-up (oneDNN's kernels and primitive caches for the batch sizes).
    warm_mib: Option<f64>,
    /// Peak of the timed passes on random input (activations and scratch of a batch).
    inference_peak_mib: Option<f64>,
    /// Peak of the end-to-end run over the folder.
    end_to_end_peak_mib: Option<f64>,
    /// Peak decoding the folder alone, with the same decoders and queues, no model run.
    decode_only_peak_mib: Option<f64>,
    /// After the folder runs, and after handing free heap back to the system (the
    /// difference is what the allocator kept).
    after_mib: Option<f64>,
    after_trim_mib: Option<f64>,
}

/// The peak of the whole run: the highest of the phases' peaks (each was measured after
/// resetting the kernel's high-water mark) and of what is resident now.
fn whole_run_peak(m: &Memory) -> Option<f64> {
    [
        m.start_mib,
        m.loaded_mib,
        m.load_peak_mib,
        m.warm_mib,
        m.inference_peak_mib,
        m.end_to_end_peak_mib,
        m.decode_only_peak_mib,
        m.after_mib,
        memory::peak_mib(),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max)
}

/// How long a library of `photos` photos like the folder's takes.
#[derive(Debug, Serialize)]
struct Library {
    photos: u64,
    /// Classifying at the end-to-end rate, plus one model load and warm-up.
    seconds: f64,
    /// The same counting only time inside the `[schedule] windows` (from now).
    #[serde(skip_serializing_if = "Option::is_none")]
    with_windows_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows: Option<String>,
}

#[derive(Debug, Serialize)]
struct Folder {
    files: usize,
    classified: usize,
    refused: usize,
    seconds: f64,
    end_to_end_images_per_second: f64,
    /// CPU time (all threads) per classified image, end to end: less sensitive than images/s
    /// to other programs sharing the cores.
    end_to_end_cpu_ms_per_image: f64,
    /// Peak RSS of the process up to the end of the end-to-end run.
    end_to_end_peak_rss_mib: Option<f64>,
    /// Preprocessed images from the folder that inference alone ran on (cycled).
    inference_only_inputs: usize,
    inference_only_images: usize,
    inference_only_images_per_second: f64,
    inference_only_cpu_ms_per_image: f64,
    /// End-to-end rate over inference-only rate.
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    optimized: bool,
    threads: i32,
    decode_threads: usize,
    batch_size: usize,
    load_ms: f64,
    warm_up_ms: f64,
    rss_start_mib: Option<f64>,
    rss_loaded_mib: Option<f64>,
    random_input: Vec<RandomInput>,
    folder: Option<Folder>,
    peak_rss_mib: Option<f64>,
    memory: Memory,
    #[serde(skip_serializing_if = "Option::is_none")]
    library: Option<Library>,
}

/// Most preprocessed images held for the inference-only figure (each is 600 KB at 224x224).
const INFERENCE_INPUTS: usize = 32;

/// Times `images` images through the model in batches of `batch`, cycling over `inputs`.
fn inference_only(
    classifier: &Classifier,
    inputs: &[Vec<f32>],
    images: usize,
    batch: usize,
    top_k: usize,
) -> anyhow::Result<f64> {
    let mut done = 0;
    let mut next = 0;
    let t = Instant::now();
    while done < images {
        let n = batch.min(images - done);
        let refs: Vec<&[f32]> = (0..n)
            .map(|i| inputs[(next + i) % inputs.len()].as_slice())
            .collect();
        next = (next + n) % inputs.len();
        let _ = classifier.classify(&refs, top_k)?;
        done += n;
    }
    Ok(images as f64 / t.elapsed().as_secs_f64().max(1e-9))
}

/// Decodes and preprocesses `files` as the end-to-end run does (same decoders, same queue
/// depth), without running the model; returns how many decoded.
fn decode_only(files: Vec<PathBuf>, settings: &classify::Settings) -> usize {
    let (workers, depth) = settings.decoders();
    crate::ordered::map(
        files,
        workers,
        depth,
        |p| prepare_path(&p, settings, Scale::Reduced).is_ok(),
        |results| results.filter(|ok| *ok).count(),
    )
}

fn folder(
    ctx: &Context,
    choice: &ModelChoice,
    classifier: &Classifier,
    dir: &Path,
    mem: &mut Memory,
) -> anyhow::Result<Folder> {
    let files = files_under(ctx, dir)?;
    let settings = choice.settings(&ctx.config);
    let batch_size = settings.batch_size;
    // Both runs below meet the same shapes: a full batch, and the last, partial one.
    classifier.warm_up(&[batch_size, files.len() % batch_size])?;
    let (mut ok, mut refused) = (0usize, 0usize);
    let count = files.len();
    let sample: Vec<PathBuf> = files.iter().take(INFERENCE_INPUTS * 4).cloned().collect();
    let all = files.clone();
    memory::reset_peak();
    let cpu = cpu_seconds();
    let t = Instant::now();
    classify::classify_files(classifier, files, &settings, |_, r| match r {
        Ok(_) => ok += 1,
        Err(_) => refused += 1,
    });
    let seconds = t.elapsed().as_secs_f64();
    let e2e_cpu = (cpu_seconds() - cpu) * 1e3 / ok.max(1) as f64;
    let e2e_peak = memory::peak_mib();
    mem.end_to_end_peak_mib = e2e_peak;
    memory::reset_peak();
    decode_only(all, &settings);
    mem.decode_only_peak_mib = memory::peak_mib();
    let end_to_end = ok as f64 / seconds.max(1e-9);
    let inputs: Vec<Vec<f32>> = sample
        .iter()
        .filter_map(|p| prepare_path(p, &settings, Scale::Reduced).ok())
        .map(|p| p.data)
        .take(INFERENCE_INPUTS)
        .collect();
    let (images, rate, inf_cpu) = if inputs.is_empty() {
        (0, 0.0, 0.0)
    } else {
        let images = ok.max(4 * batch_size);
        classifier.warm_up(&[images % batch_size])?;
        let cpu = cpu_seconds();
        let rate = inference_only(classifier, &inputs, images, batch_size, settings.top_k)?;
        (images, rate, (cpu_seconds() - cpu) * 1e3 / images as f64)
    };
    Ok(Folder {
        files: count,
        classified: ok,
        refused,
        seconds,
        end_to_end_images_per_second: end_to_end,
        end_to_end_cpu_ms_per_image: e2e_cpu,
        end_to_end_peak_rss_mib: e2e_peak,
        inference_only_inputs: inputs.len(),
        inference_only_images: images,
        inference_only_images_per_second: rate,
        inference_only_cpu_ms_per_image: inf_cpu,
        ratio: if rate > 0.0 { end_to_end / rate } else { 0.0 },
    })
}

pub fn run(ctx: &Context, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let mut mem = Memory {
        start_mib: memory::rss_mib(),
        start_file_mib: memory::status_mib("RssFile:"),
        ..Default::default()
    };
    let rss_start = mem.start_mib;
    memory::reset_peak();
    let t = Instant::now();
    let choice = ctx.model(&args.run)?;
    let classifier = choice.load()?;
    let load = t.elapsed();
    let rss_loaded = memory::rss_mib();
    mem.loaded_mib = rss_loaded;
    mem.load_peak_mib = memory::peak_mib();
    let sizes: Vec<usize> = args
        .batch_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    let warm = classifier.warm_up(&sizes)?;
    mem.warm_mib = memory::rss_mib();
    memory::reset_peak();
    let size = classifier.manifest().input_size as usize;
    let iterations = args.iterations.max(1);
    let mut random_input = Vec::new();
    for &n in &sizes {
        let x = Tensor::rand(
            [(n * 3 * size * size) as i64],
            (Kind::Float, tch::Device::Cpu),
        );
        let data: Vec<f32> = Vec::try_from(&x)?;
        let per = 3 * size * size;
        let inputs: Vec<&[f32]> = data.chunks(per).collect();
        let t = Instant::now();
        for _ in 0..iterations {
            let _ = classifier.probabilities(&inputs)?;
        }
        random_input.push(RandomInput {
            batch: n,
            ms_per_image: t.elapsed().as_secs_f64() * 1e3 / (iterations * n) as f64,
            passes: iterations,
        });
    }
    mem.inference_peak_mib = memory::peak_mib();
    let folder = match &args.dir {
        Some(dir) => Some(folder(ctx, &choice, &classifier, dir, &mut mem)?),
        None => None,
    };
    mem.after_mib = memory::rss_mib();
    crate::model::optimized::release_free_heap();
    mem.after_trim_mib = memory::rss_mib();
    let library = match (args.library_size, &folder) {
        (Some(n), Some(f)) if f.end_to_end_images_per_second > 0.0 => {
            let seconds = n as f64 / f.end_to_end_images_per_second + (load + warm).as_secs_f64();
            let schedule = ctx.config.schedule.schedule();
            let windowed = (!schedule.is_always())
                .then(|| schedule.finish_in(phototag_light::schedule::local_now(), seconds));
            Some(Library {
                photos: n,
                seconds,
                with_windows_seconds: windowed,
                windows: windowed.map(|_| schedule.to_string()),
            })
        }
        _ => None,
    };
    let report = Report {
        model: classifier.name().to_string(),
        optimized: classifier.is_optimized(),
        threads: tch::get_num_threads(),
        decode_threads: crate::ordered::auto_workers(ctx.config.classify.decode_threads),
        batch_size: choice.batch_size,
        load_ms: load.as_secs_f64() * 1e3,
        warm_up_ms: warm.as_secs_f64() * 1e3,
        rss_start_mib: rss_start,
        rss_loaded_mib: rss_loaded,
        random_input,
        folder,
        peak_rss_mib: whole_run_peak(&mem),
        memory: mem,
        library,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report, &sizes);
    }
    Ok(Outcome::Success)
}

fn print_text(r: &Report, sizes: &[usize]) {
    println!("model\t{}", r.model);
    println!(
        "optimized\t{}",
        if r.optimized {
            "yes (frozen, optimize_for_inference)"
        } else {
            "no"
        }
    );
    println!(
        "threads\t{} inference, {} decode",
        r.threads, r.decode_threads
    );
    println!("batch size\t{}", r.batch_size);
    println!(
        "load\t{:.0} ms (hash check + TorchScript load{})",
        r.load_ms,
        if r.optimized { " + optimisation" } else { "" }
    );
    println!("warm-up\t{:.0} ms (batch sizes {sizes:?})", r.warm_up_ms);
    println!(
        "rss\t{} at start, {} with the model loaded",
        mib(r.rss_start_mib),
        mib(r.rss_loaded_mib)
    );
    for b in &r.random_input {
        println!(
            "batch {}\t{:.1} ms/image ({} passes, random input)",
            b.batch, b.ms_per_image, b.passes
        );
    }
    if let Some(f) = &r.folder {
        println!(
            "folder\t{} files: {} images classified, {} refused, in {:.1} s",
            f.files, f.classified, f.refused, f.seconds
        );
        println!(
            "end to end\t{:.1} images/s (read, decode, preprocess, batch {} inference; {:.0} CPU ms/image)",
            f.end_to_end_images_per_second, r.batch_size, f.end_to_end_cpu_ms_per_image
        );
        println!(
            "inference only\t{:.1} images/s (batch {}, {:.0} CPU ms/image; {} images cycling over {} preprocessed from the folder)",
            f.inference_only_images_per_second,
            r.batch_size,
            f.inference_only_cpu_ms_per_image,
            f.inference_only_images,
            f.inference_only_inputs
        );
        println!(
            "ratio\t{:.0}% (end to end / inference only)",
            f.ratio * 100.0
        );
        println!("peak rss end to end\t{}", mib(f.end_to_end_peak_rss_mib));
    }
    print_memory(&r.memory, r.batch_size);
    if let Some(l) = &r.library {
        let windows = match (l.with_windows_seconds, &l.windows) {
            (Some(w), Some(ws)) => format!(
                "; inside the schedule windows ({ws}) from now: done in {}",
                human_duration(w)
            ),
            _ => String::new(),
        };
        println!(
            "library\t{} photos like these: about {} of classification{windows}",
            l.photos,
            human_duration(l.seconds)
        );
    }
}

/// Where the resident memory goes (each step's peak measured on its own).
fn print_memory(m: &Memory, batch: usize) {
    let file = m
        .start_file_mib
        .map(|f| format!(", {f:.0} MiB of it mapped from the libraries' files"))
        .unwrap_or_default();
    println!(
        "memory\t{} phototag and libtorch before the model{file}",
        mib(m.start_mib)
    );
    println!(
        "memory\t{} the model loaded, frozen and optimised ({} at the peak of loading)",
        plus(m.start_mib, m.loaded_mib),
        plus(m.start_mib, m.load_peak_mib)
    );
    println!(
        "memory\t{} warm-up (oneDNN kernels and caches)",
        plus(m.loaded_mib, m.warm_mib)
    );
    println!(
        "memory\t{} at the peak of inference alone (activations and scratch; batch sizes timed above)",
        plus(m.warm_mib, m.inference_peak_mib)
    );
    if m.end_to_end_peak_mib.is_some() {
        println!(
            "memory\t{} at the peak of decoding alone (decoders and their queues)",
            plus(m.warm_mib, m.decode_only_peak_mib)
        );
        println!(
            "memory\t{} peak end to end (batch {batch}, decoding and inference together)",
            mib(m.end_to_end_peak_mib)
        );
    }
    println!(
        "memory\t{} after the runs, {} once free heap is handed back",
        mib(m.after_mib),
        mib(m.after_trim_mib)
    );
}
