//! `phototag bench`: model load and warm-up time, ms/image at each batch size on random
//! input, and end-to-end images/s with peak RSS for a folder. Figures go to stdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Kind, Tensor};

use super::{Context, ModelContext, Outcome};
use crate::cli::BenchArgs;
use crate::pipeline::{self, Settings};

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

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(ctx: &Context, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let rss_start = proc_status_mib("VmRSS:");
    let t = Instant::now();
    let classifier = ctx.classifier(&args.run)?;
    let load = t.elapsed();
    let rss_loaded = proc_status_mib("VmRSS:");
    let sizes: Vec<usize> = args
        .batch_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    let warm = classifier.warm_up(&sizes)?;
    let threads = tch::get_num_threads();
    println!("model\t{}", classifier.name());
    println!("threads\t{threads}");
    println!(
        "load\t{:.0} ms (hash check + TorchScript load)",
        load.as_secs_f64() * 1e3
    );
    println!(
        "warm-up\t{:.0} ms (batch sizes {:?})",
        warm.as_secs_f64() * 1e3,
        sizes
    );
    println!(
        "rss\t{} at start, {} with the model loaded",
        mib(rss_start),
        mib(rss_loaded)
    );
    let size = classifier.manifest().input_size as usize;
    let iterations = args.iterations.max(1);
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
        let ms = t.elapsed().as_secs_f64() * 1e3 / (iterations * n) as f64;
        println!("batch {n}\t{ms:.1} ms/image ({iterations} passes, random input)");
    }
    if let Some(dir) = &args.dir {
        let files = files_under(dir)?;
        let batch_size = ctx.batch_size(&args.run);
        let settings = Settings {
            limits: ctx.config.limits,
            preprocess: classifier.manifest().preprocess(),
            batch_size,
            top_k: ctx.config.classify.top_k,
        };
        classifier.warm_up(&[batch_size])?;
        let (mut ok, mut failed) = (0usize, 0usize);
        let t = Instant::now();
        pipeline::classify_files(&classifier, files, &settings, |_, r| match r {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        });
        let secs = t.elapsed().as_secs_f64();
        println!(
            "folder\t{ok} images classified, {failed} refused, in {secs:.1} s: {:.1} images/s end to end (decode + preprocess + batch {batch_size} inference)",
            ok as f64 / secs.max(1e-9)
        );
    }
    println!("peak rss\t{}", mib(proc_status_mib("VmHWM:")));
    Ok(Outcome::Success)
}
