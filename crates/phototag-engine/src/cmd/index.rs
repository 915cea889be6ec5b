//! `phototag index DIR...` and `phototag retag`.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ModelContext;
use std::path::PathBuf;

use crate::classify::{reread, Batch, FileError, LazyClassifier, Prepared, Reread, Settings};
use crate::gate::{Gate, Verdict};
use crate::index::execute::image_row;
use crate::index::run::{self, IndexOptions};
use crate::index::{Progress, Summary, Turn};
use phototag_light::catalog::{hex, Hash};
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
    warn_without_embeddings(&choice.stored.manifest);
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

/// One image for `retag`: the first of its paths that still holds its content, decoded.
struct Retagged {
    hash: Hash,
    found: Result<(PathBuf, Result<Prepared, FileError>), String>,
}

/// Reads an image's paths until one still holds its content, and decodes that one.
fn read_for_retag(
    hash: Hash,
    paths: Vec<PathBuf>,
    settings: &Settings,
    stop: &AtomicBool,
) -> Retagged {
    if stop.load(Ordering::Relaxed) {
        return Retagged {
            hash,
            found: Err("stopped".into()),
        };
    }
    let found = match reread(&hash, paths, settings) {
        Reread::Found(path, prepared) => Ok((path, prepared)),
        Reread::Gone(_) => Err("no file holds this content any more".to_string()),
    };
    Retagged { hash, found }
}

/// What a `retag` run has done, and where it writes.
struct Retagging<'a> {
    classifier: &'a crate::model::Classifier,
    model_id: i64,
    top_k: usize,
    done: usize,
    failed: usize,
    reporter: &'a mut Reporter,
}

impl Retagging<'_> {
    /// Runs the model on the batch and writes its images in one transaction.
    fn flush(
        &mut self,
        batch: &mut Batch<Hash>,
        catalog: &mut phototag_light::catalog::Catalog,
    ) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let results = batch.run(self.classifier, self.top_k);
        let now = phototag_light::catalog::unix_now();
        let mut w = catalog.begin()?;
        for (hash, result) in results {
            match result {
                Ok(c) => {
                    w.put_image(&image_row(hash, self.model_id, now, &c))?;
                    self.done += 1;
                }
                Err(e) => {
                    tracing::warn!(hash = %hex(&hash), "{e}");
                    self.failed += 1;
                }
            }
            self.reporter.event(Progress::Done);
        }
        w.commit()?;
        Ok(())
    }

    /// An image that could not be read or decoded (its files say why).
    fn fail(&mut self, why: &str) {
        tracing::warn!("{why}");
        self.failed += 1;
        self.reporter.event(Progress::Done);
    }
}

/// `retag`: classifies again the images another model tagged (and, with `--embeddings`,
/// those of this model without an embedding), each file read and decoded once, decoders
/// overlapping the model, a batch written per transaction: an interrupted run keeps what
/// it did, and the same command continues.
pub fn retag(ctx: &Context, args: &RetagArgs) -> anyhow::Result<Outcome> {
    let stop = stop_flag()?;
    let choice = ctx.model(&args.run)?;
    if args.embeddings {
        // Asked for embeddings from a model that gives none: say how to get them.
        choice.stored.manifest.embeddings()?;
    } else {
        warn_without_embeddings(&choice.stored.manifest);
    }
    let mut catalog = ctx.open_catalog()?;
    let m = &choice.stored.manifest;
    let model_id = catalog.register_model(&choice.stored.name, &m.sha256, &m.architecture)?;
    let settings = choice.settings(&ctx.config);
    let todo = catalog.images_to_retag(model_id, args.embeddings)?;
    tracing::info!(
        "{} image(s) to classify again{}",
        todo.len(),
        if args.embeddings {
            " (tagged by another model, or without an embedding)"
        } else {
            " (tagged by another model)"
        }
    );
    let (mut done, mut failed) = (0usize, 0usize);
    if !todo.is_empty() {
        let classifier = choice.load()?;
        classifier.warm_up(&[settings.batch_size])?;
        let mut reporter = Reporter::new();
        reporter.event(Progress::Planned {
            total: todo.len(),
            unchanged: 0,
        });
        let (workers, depth) = settings.decoders();
        let mut counts = Retagging {
            classifier: &classifier,
            model_id,
            top_k: settings.top_k,
            done: 0,
            failed: 0,
            reporter: &mut reporter,
        };
        let result: anyhow::Result<()> = crate::ordered::map(
            todo,
            workers,
            depth,
            |(hash, paths)| read_for_retag(hash, paths, &settings, &stop),
            |items| {
                let mut batch: Batch<Hash> = Batch::new(settings.batch_size);
                for item in items {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match item.found {
                        Ok((_, Ok(prepared))) => {
                            if batch.push(item.hash, Ok(prepared)) {
                                counts.flush(&mut batch, &mut catalog)?;
                            }
                        }
                        Ok((path, Err(e))) => counts.fail(&format!("{}: {e}", path.display())),
                        Err(why) => counts.fail(&format!("{}: {why}; skipped", hex(&item.hash))),
                    }
                }
                counts.flush(&mut batch, &mut catalog)
            },
        );
        (done, failed) = (counts.done, counts.failed);
        reporter.finish();
        result?;
    }
    run::refresh_search_lists(&mut catalog, &stop)?;
    println!("retagged\t{done}");
    println!("failed\t{failed}");
    if stop.load(Ordering::Relaxed) {
        tracing::warn!(
            "interrupted: everything done so far is saved; run the same command to continue"
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(if failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// Says once that the model gives no embeddings, and what to do about it.
pub fn warn_without_embeddings(manifest: &phototag_light::model_files::Manifest) {
    if let Err(e) = manifest.embeddings() {
        tracing::warn!(
            "{e}; until then `phototag similar` and `dupes --near` do not see the photos it tags"
        );
    }
}
