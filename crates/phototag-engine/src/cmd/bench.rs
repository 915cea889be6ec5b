//! `phototag bench`: model load and warm-up time, ms/image at each batch size on random
//! input, and for a folder: end-to-end images/s (decode, preprocess, inference, as
//! `classify` and `index` run them), inference-only images/s for the same model, threads and
//! batch size on the folder's preprocessed images, their ratio, and peak RSS. Figures go to
//! stdout, as text or one JSON object.
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
use crate::model::Classifier;
use phototag_light::cli::BenchArgs;
use phototag_light::cmd::{Context, Outcome};
use phototag_light::exclude::Excluder;

/// A line of /proc/self/status in MiB (VmRSS, VmHWM), when available.
fn proc_status_mib(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn mib(v: Option<f64>) -> String {
    v.map(|m| format!("{m:.0} MiB"))
        .unwrap_or_else(|| "n/a".into())
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

fn folder(
    ctx: &Context,
    choice: &ModelChoice,
    classifier: &Classifier,
    dir: &Path,
) -> anyhow::Result<Folder> {
    let files = files_under(ctx, dir)?;
    let settings = choice.settings(&ctx.config);
    let batch_size = settings.batch_size;
    // Both runs below meet the same shapes: a full batch, and the last, partial one.
    classifier.warm_up(&[batch_size, files.len() % batch_size])?;
    let (mut ok, mut refused) = (0usize, 0usize);
    let count = files.len();
    let sample: Vec<PathBuf> = files.iter().take(INFERENCE_INPUTS * 4).cloned().collect();
    let cpu = cpu_seconds();
    let t = Instant::now();
    classify::classify_files(classifier, files, &settings, |_, r| match r {
        Ok(_) => ok += 1,
        Err(_) => refused += 1,
    });
    let seconds = t.elapsed().as_secs_f64();
    let e2e_cpu = (cpu_seconds() - cpu) * 1e3 / ok.max(1) as f64;
    let e2e_peak = proc_status_mib("VmHWM:");
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
    let rss_start = proc_status_mib("VmRSS:");
    let t = Instant::now();
    let choice = ctx.model(&args.run)?;
    let classifier = choice.load()?;
    let load = t.elapsed();
    let rss_loaded = proc_status_mib("VmRSS:");
    let sizes: Vec<usize> = args
        .batch_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    let warm = classifier.warm_up(&sizes)?;
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
    let folder = match &args.dir {
        Some(dir) => Some(folder(ctx, &choice, &classifier, dir)?),
        None => None,
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
        peak_rss_mib: proc_status_mib("VmHWM:"),
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
    println!("peak rss\t{}", mib(r.peak_rss_mib));
}
