//! `phototag index DIR...` and `phototag retag`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ModelContext;
use crate::classify::{prepare_bytes, read_and_hash, Batch, LazyClassifier, Scale};
use crate::index::execute::image_row;
use crate::index::run::{self, IndexOptions};
use crate::index::{Progress, Summary};
use phototag_light::cli::{IndexArgs, RetagArgs};
use phototag_light::cmd::{Context, Outcome};

/// A flag set by SIGINT or SIGTERM; a second SIGINT/SIGTERM ends the process at once.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// A progress bar on a terminal, periodic log lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    start: Instant,
    last_log: Instant,
}

impl Reporter {
    fn new() -> Self {
        Self {
            bar: None,
            total: 0,
            done: 0,
            start: Instant::now(),
            last_log: Instant::now(),
        }
    }

    fn event(&mut self, p: Progress) {
        match p {
            Progress::Planned { total, unchanged } => {
                tracing::info!("{total} file(s) to read, {unchanged} unchanged");
                self.total = total;
                self.start = Instant::now();
                if std::io::stderr().is_terminal() && total > 0 {
                    let bar = indicatif::ProgressBar::new(total as u64);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} files  {per_sec}  ETA {eta}  {msg}",
                    ) {
                        bar.set_style(style);
                    }
                    self.bar = Some(bar);
                }
            }
            Progress::Done => {
                self.done += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                } else if self.last_log.elapsed() >= Duration::from_secs(10) {
                    self.last_log = Instant::now();
                    let rate = self.done as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
                    let eta = (self.total - self.done.min(self.total)) as f64 / rate.max(1e-9);
                    tracing::info!(
                        "{}/{} files, {rate:.1} files/s, ETA {eta:.0} s",
                        self.done,
                        self.total
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(s: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(s).unwrap_or_default());
        return;
    }
    println!("seen\t{}", s.seen);
    println!("new\t{}", s.new);
    println!("unchanged\t{}", s.unchanged);
    println!("duplicates\t{}", s.duplicates);
    println!("failed\t{}", s.failed);
    println!("known failures\t{}", s.known_failures);
    println!("gone\t{}", s.gone);
    println!("removed\t{}", s.removed);
    println!("excluded\t{}", s.excluded);
    println!("problems\t{}", s.problems);
    for r in &s.offline_roots {
        println!("offline root\t{}", r.display());
    }
    println!("seconds\t{:.1}", s.seconds);
    println!("images/s\t{:.1}", s.images_per_second);
    if s.interrupted {
        println!("interrupted\ttrue");
    }
}

pub fn run(ctx: &Context, args: &IndexArgs) -> anyhow::Result<Outcome> {
    let stop = stop_flag()?;
    // A missing root is kept: it is reported offline, not an error.
    let roots: Vec<_> = args
        .dirs
        .iter()
        .map(|d| phototag_light::cmd::stored_path(d))
        .collect();
    let mut catalog = ctx.open_catalog()?;
    // Resolve the model now (a missing model is an error even for an unchanged library),
    // but load it only when something needs classifying.
    let choice = ctx.model(&args.run)?;
    let mut model = LazyClassifier::new(|| {
        let c = choice.load()?;
        c.warm_up(&[choice.batch_size])?;
        Ok(c)
    });
    let opts = IndexOptions {
        roots,
        prune: args.prune,
        follow_symlinks: ctx.config.index.follow_symlinks,
        exclude: {
            // Album folders are phototag's own links: never indexed.
            let mut e = ctx.config.index.exclude_config();
            // Nor is the catalog, when it is kept inside a root.
            e.own_files = ctx.own_files();
            e.prune_dirs = phototag_light::album::folders(&phototag_light::album::load(
                &ctx.config,
                Some(&catalog),
            )?);
            e
        },
        settings: choice.settings(&ctx.config),
    };
    let mut reporter = Reporter::new();
    let summary = run::run(&mut catalog, &mut model, &opts, &stop, &mut |p| {
        reporter.event(p)
    })?;
    reporter.finish();
    run::refresh_search_lists(&mut catalog, &stop)?;
    if summary.gone > 0 && !args.prune {
        tracing::warn!(
            "{} file(s) in the catalog are gone from disk; `--prune` removes them",
            summary.gone
        );
    }
    print_summary(&summary, args.json);
    if summary.interrupted {
        tracing::warn!(
            "interrupted: everything done so far is saved; run the same command to continue"
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(if summary.failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

pub fn retag(ctx: &Context, args: &RetagArgs) -> anyhow::Result<Outcome> {
    let stop = stop_flag()?;
    let choice = ctx.model(&args.run)?;
    let classifier = choice.load()?;
    let mut catalog = ctx.open_catalog()?;
    let m = classifier.manifest();
    let model_id = catalog.register_model(classifier.name(), &m.sha256, &m.architecture)?;
    let settings = choice.settings(&ctx.config);
    let todo = catalog.images_not_by(model_id)?;
    tracing::info!("{} image(s) were tagged by another model", todo.len());
    let (mut done, mut failed) = (0usize, 0usize);
    for chunk in todo.chunks(settings.batch_size.max(1)) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // For each image, the first path that still holds the same content.
        let mut batch = Batch::new(chunk.len());
        for (hash, paths) in chunk {
            let found = paths.iter().find_map(|p| {
                let (bytes, h) = read_and_hash(p, settings.limits.max_file_bytes).ok()?;
                (h == *hash).then_some((p.clone(), bytes))
            });
            let Some((path, bytes)) = found else {
                tracing::warn!(hash = %phototag_light::catalog::hex(hash), "no file holds this content any more; skipped");
                failed += 1;
                continue;
            };
            match prepare_bytes(&bytes, &settings, Scale::Reduced) {
                Ok(r) => {
                    batch.push(*hash, Ok(r));
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "{e}");
                    failed += 1;
                }
            }
        }
        let results = batch.run(&classifier, settings.top_k);
        let now = phototag_light::catalog::unix_now();
        let mut w = catalog.begin()?;
        for (hash, result) in results {
            w.put_image(&image_row(hash, model_id, now, &result?))?;
            done += 1;
        }
        w.commit()?;
    }
    run::refresh_search_lists(&mut catalog, &stop)?;
    println!("retagged\t{done}");
    println!("failed\t{failed}");
    if stop.load(Ordering::Relaxed) {
        return Ok(Outcome::Interrupted);
    }
    Ok(if failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}
