//! `phototag index DIR...` and `phototag retag`.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ModelContext;
use crate::classify::{prepare_bytes, read_and_hash, Batch, LazyClassifier, Scale};
use crate::gate::{Gate, Verdict};
use crate::index::execute::image_row;
use crate::index::run::{self, IndexOptions};
use crate::index::{Progress, Summary, Turn};
use phototag_light::cli::{IndexArgs, RetagArgs};
use phototag_light::cmd::{Context, Outcome};
use phototag_light::rate::Rate;
use phototag_light::schedule::human_duration;

/// A flag set by SIGINT or SIGTERM; a second SIGINT/SIGTERM ends the process at once.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// A progress bar on a terminal, periodic log lines otherwise; both with the rate measured
/// over the last two minutes and the time left at that rate.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    rate: Rate,
    last_log: Instant,
    last_message: Instant,
    /// Why classification waits, while it does.
    paused: Option<String>,
}

impl Reporter {
    fn new() -> Self {
        Self {
            bar: None,
            total: 0,
            done: 0,
            rate: Rate::new(Duration::from_secs(120)),
            last_log: Instant::now(),
            last_message: Instant::now(),
            paused: None,
        }
    }

    /// "4.2 files/s, 1,200 left: about 5 min", or that it is still measuring.
    fn pace(&mut self) -> String {
        let left = self.total.saturating_sub(self.done);
        match self.rate.per_second(Instant::now()) {
            Some(r) if r > 0.0 => format!(
                "{r:.1} files/s, {left} left: about {}",
                human_duration(left as f64 / r)
            ),
            _ => format!("{left} left: measuring the rate"),
        }
    }

    fn event(&mut self, p: Progress) {
        match p {
            Progress::Planned { total, unchanged } => {
                tracing::info!("{total} file(s) to read, {unchanged} unchanged");
                self.total = total;
                self.rate.start(Instant::now());
                if std::io::stderr().is_terminal() && total > 0 {
                    let bar = indicatif::ProgressBar::new(total as u64);
                    if let Ok(style) =
                        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
                    {
                        bar.set_style(style);
                    }
                    self.bar = Some(bar);
                }
            }
            Progress::More(n) => {
                tracing::info!("{n} photo(s) waiting in the queue to classify");
                self.total += n;
                if let Some(bar) = &self.bar {
                    bar.set_length(self.total as u64);
                } else if std::io::stderr().is_terminal() {
                    let bar = indicatif::ProgressBar::new(self.total as u64);
                    if let Ok(style) =
                        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
                    {
                        bar.set_style(style);
                    }
                    bar.set_position(self.done as u64);
                    self.bar = Some(bar);
                }
            }
            Progress::Done => {
                self.done += 1;
                self.rate.add(Instant::now(), 1);
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    if self.paused.is_none()
                        && self.last_message.elapsed() >= Duration::from_millis(500)
                    {
                        self.last_message = Instant::now();
                        let m = self.pace();
                        if let Some(bar) = &self.bar {
                            bar.set_message(m);
                        }
                    }
                } else if self.last_log.elapsed() >= Duration::from_secs(10) {
                    self.last_log = Instant::now();
                    let m = self.pace();
                    tracing::info!("{}/{} files, {m}", self.done, self.total);
                }
            }
        }
    }

    /// Classification waits (`Some(why)`) or goes on (`None`); said once per change.
    fn pause(&mut self, why: Option<String>) {
        if why == self.paused {
            return;
        }
        let now = Instant::now();
        match &why {
            Some(w) => {
                tracing::info!("paused: {w}");
                self.rate.stop(now);
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("paused: {w}"));
                }
            }
            None => {
                tracing::info!("resumed");
                self.rate.start(now);
            }
        }
        self.paused = why;
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
    println!("queued\t{}", s.queued);
    println!("from queue\t{}", s.from_queue);
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
    // Loaded when the first photo needs it, while the decoders start on the next ones.
    let mut model = LazyClassifier::for_model(&choice.stored, || {
        let c = choice.load()?;
        c.warm_up(&[choice.batch_size])?;
        Ok(c)
    });
    let gate = Gate::new(&ctx.config.schedule, Arc::new(AtomicBool::new(args.now)));
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
    let reporter = RefCell::new(Reporter::new());
    let mut closed_said = false;
    // Outside the windows: record, classify later. Busy: wait for the load to fall.
    let mut turn = || match gate.check() {
        Verdict::Go => {
            reporter.borrow_mut().pause(None);
            Turn::Classify
        }
        Verdict::Closed(why) => {
            if !closed_said {
                closed_said = true;
                tracing::info!("{why}: new photos are recorded and wait in the queue (`--now` classifies them now)");
            }
            Turn::Record
        }
        Verdict::Busy(why) => {
            reporter.borrow_mut().pause(Some(why));
            Turn::Wait
        }
    };
    let summary = run::run_with_turns(
        &mut catalog,
        &mut model,
        &opts,
        &stop,
        &mut turn,
        &mut |p| reporter.borrow_mut().event(p),
    )?;
    reporter.borrow().finish();
    if summary.queued > 0 {
        let when = match gate.opens_in() {
            0 => String::new(),
            secs => format!(" from the next window (in {})", human_duration(secs as f64)),
        };
        tracing::info!(
            "{} photo(s) wait in the queue: the daemon classifies them{when}, or `phototag index --now` at once",
            summary.queued
        );
    }
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
