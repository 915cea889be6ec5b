//! The daemon's worker thread: the only writer to the catalog and the only user of the
//! model. It takes jobs from the event loop (reconcile roots, process settled files,
//! remove rows of files that stayed gone) and keeps shared counters for the status record.
//! After committed changes it writes the XMP sidecars of processed files under roots that
//! want them, and, once changes have been quiet for `album_delay_seconds` (or every that
//! long under steady load), brings the album folders up to date (`albums.rs`). It also
//! notices other processes' commits (`phototag retag`, `index`, `album add`) through the
//! catalog's data version.
//!
//! Classification follows the [`Policy`]: before each batch the gate (`crate::gate`) is
//! asked; outside the schedule windows or while the machine is busy, new photos are only
//! hashed and recorded as queued, and when idle the worker classifies the queue while the
//! gate allows (a job arriving interrupts it between batches). After `unload_after`
//! without classifying, the model is unloaded; it is loaded again when a photo needs it.
//!
//! When the catalog's server is away (a shared PostgreSQL catalog), the worker keeps every
//! job it could not do, in order, with the jobs that keep coming, and tries the server
//! again with a growing delay (0.5 s doubling to 15 s); once it answers, the queue is done
//! in order: nothing is lost. `Shared::catalog` tells the status record meanwhile. Files
//! whose content another worker is classifying come back in a couple of seconds.
//!
//! May not: watch anything or decide when a file is settled (the event loop does).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Job, Outputs, Policy, Shared};
use crate::classify::{LazyClassifier, Settings};
use crate::gate::{Gate, Verdict};
use crate::index::execute::execute;
use crate::index::plan::{self};
use crate::index::queue::classify_queued;
use crate::index::walk::Entry;
use crate::index::IndexError;
use crate::index::{Progress, Turn};
use crate::model::Classifier;
use phototag_light::catalog::{Catalog, CatalogError};
use phototag_light::exclude::Excluder;
use phototag_light::model_files::StoredModel;
use phototag_light::status::CatalogStatus;

type Loader = Box<dyn FnMut() -> anyhow::Result<Classifier> + Send>;

/// Queued photos taken per turn of the idle loop (a job arriving stops it sooner).
const QUEUE_SLICE: usize = 256;

/// What the worker needs besides its jobs.
pub struct WorkerParams {
    pub catalog: Catalog,
    /// The model to classify with, and how to load it.
    pub model: StoredModel,
    pub loader: Loader,
    pub settings: Settings,
    pub excluder: Excluder,
    pub follow_symlinks: bool,
    pub outputs: Outputs,
    pub policy: Policy,
    pub stop: Arc<AtomicBool>,
    pub shared: Arc<Shared>,
}

/// Starts the worker; it ends when the job sender is dropped (after the job at hand).
pub fn spawn(p: WorkerParams) -> (mpsc::Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Job>();
    let handle = std::thread::Builder::new()
        .name("phototag-worker".into())
        .spawn(move || run(p, rx))
        .expect("spawning the worker thread");
    (tx, handle)
}

fn run(p: WorkerParams, rx: mpsc::Receiver<Job>) {
    let WorkerParams {
        mut catalog,
        model,
        loader,
        settings,
        excluder,
        follow_symlinks,
        outputs,
        policy,
        stop,
        shared,
    } = p;
    let mut w = Work {
        model: LazyClassifier::for_model(&model, loader),
        gate: Gate::new(&policy.schedule, Arc::clone(&shared.force)),
        unload_after: policy.unload_after,
        last_used: Instant::now(),
        backlog: VecDeque::new(),
        settings,
        stop,
        shared,
    };
    *w.shared.model.lock().unwrap_or_else(|e| e.into_inner()) = Some(model.name.clone());
    match catalog.queued_count() {
        Ok(n) => w.shared.waiting.store(n, Ordering::Relaxed),
        Err(e) => tracing::warn!("cannot count the queued photos: {e}"),
    }
    let mut root_ids: HashMap<PathBuf, i64> = HashMap::new();
    let mut albums = super::albums::Albums::new(outputs, excluder.clone());
    let mut lists = SearchLists::default();
    let mut waiting = Waiting::default();
    loop {
        let job = match w.backlog.pop_front() {
            Some(job) => Some(job),
            None => match rx.recv_timeout(waiting.timeout()) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        match job {
            Some(Job::Outputs(o)) => {
                albums.set_outputs(o);
                continue;
            }
            Some(Job::Policy(p)) => {
                w.gate.set_config(&p.schedule);
                w.unload_after = p.unload_after;
                continue;
            }
            Some(job) => waiting.push(job, &w.shared),
            None => {}
        }
        // The catalog's server away: jobs wait, in order, until it answers again.
        if waiting.is_away() && !waiting.try_again(&catalog, &w.shared) {
            if w.stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        let Some(job) = waiting.next(&w.shared) else {
            albums.tick(&mut catalog, &w.shared);
            lists.tick(&mut catalog, true);
            w.idle(&mut catalog, &rx);
            if w.stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        };
        let changes = !matches!(job, Job::RootState { .. });
        let sidecars = match &job {
            Job::Process(entries) => albums.sidecar_paths(entries),
            _ => Vec::new(),
        };
        let retry = job.retry_copy();
        match handle(
            &mut catalog,
            &mut w,
            &mut root_ids,
            job,
            &excluder,
            follow_symlinks,
        ) {
            Ok(Handled::Done) => {}
            Ok(Handled::Elsewhere(entries)) => waiting.later(entries, &w.shared),
            Ok(Handled::Away(job, e)) => {
                waiting.away(job, &e, &w.shared);
                continue;
            }
            Err(e) if is_unavailable(e.as_ref()) => {
                match retry {
                    Some(job) => waiting.away(job, &e.to_string(), &w.shared),
                    None => waiting.away_without_job(&e.to_string(), &w.shared),
                }
                continue;
            }
            Err(e) => tracing::error!("{e}"),
        }
        if w.stop.load(Ordering::Relaxed) {
            break;
        }
        super::albums::write_sidecars(&catalog, &sidecars);
        if changes {
            albums.touch();
            lists.stale = true;
        }
        albums.tick(&mut catalog, &w.shared);
        lists.tick(&mut catalog, false);
    }
    if !waiting.jobs.is_empty() {
        tracing::warn!(
            jobs = waiting.jobs.len(),
            "stopping with work the catalog server was away for: the next start finds it again"
        );
    }
    let _ = catalog.checkpoint();
}

/// The worker's classification state: the model, the gate, the idle clock, and jobs that
/// arrived while the queue was being classified.
struct Work {
    model: LazyClassifier<'static>,
    gate: Gate,
    unload_after: Option<Duration>,
    /// When the model last classified (or was loaded).
    last_used: Instant,
    backlog: VecDeque<Job>,
    settings: Settings,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Work {
    /// Asks the gate and publishes why classification waits, when it does.
    fn verdict(&self) -> Verdict {
        let v = self.gate.check();
        let why = v.reason().map(str::to_string);
        let mut paused = self.shared.paused.lock().unwrap_or_else(|e| e.into_inner());
        if *paused != why {
            match &why {
                Some(w) if self.shared.waiting.load(Ordering::Relaxed) > 0 => {
                    tracing::info!("classification waits: {w}")
                }
                None if paused.is_some() && self.shared.waiting.load(Ordering::Relaxed) > 0 => {
                    tracing::info!("classification resumes")
                }
                _ => {}
            }
            *paused = why;
        }
        v
    }

    fn note_model(&mut self) {
        let loaded = self.model.loaded().is_some();
        if loaded {
            self.last_used = Instant::now();
        }
        self.shared.model_loaded.store(loaded, Ordering::Relaxed);
    }

    /// With nothing else to do: classify the queue while the gate allows, or unload the
    /// model when it has been idle long enough.
    fn idle(&mut self, catalog: &mut Catalog, rx: &mpsc::Receiver<Job>) {
        let go = self.verdict().is_go();
        let waiting = self.shared.waiting.load(Ordering::Relaxed);
        if waiting == 0 {
            if self.gate.forced() {
                self.gate.force_flag().store(false, Ordering::Relaxed);
            }
        } else if go {
            self.classify_queue(catalog, rx);
            return;
        }
        if let Some(after) = self.unload_after {
            if self.model.loaded().is_some() && self.last_used.elapsed() >= after {
                self.model.unload();
                self.shared.model_loaded.store(false, Ordering::Relaxed);
                let rss = crate::memory::resident_summary()
                    .map(|m| format!(" (resident memory now {m})"))
                    .unwrap_or_default();
                tracing::info!(
                    "model unloaded after {:.0} s without photos to classify{rss}; it is loaded again when one needs it",
                    after.as_secs_f64()
                );
            }
        }
    }

    /// Classifies a slice of the queue, stopping between batches when a job arrives (kept
    /// for the main loop) or the gate closes.
    fn classify_queue(&mut self, catalog: &mut Catalog, rx: &mpsc::Receiver<Job>) {
        let shared = Arc::clone(&self.shared);
        shared.rate().start(Instant::now());
        let mut progress = |p: Progress| {
            if let Progress::Done = p {
                shared.rate().add(Instant::now(), 1);
            }
        };
        let Work {
            model,
            gate,
            backlog,
            settings,
            stop,
            ..
        } = self;
        let mut turn = || {
            if let Ok(job) = rx.try_recv() {
                backlog.push_back(job);
                return Turn::Record;
            }
            if gate.check().is_go() {
                Turn::Classify
            } else {
                Turn::Record
            }
        };
        let result = classify_queued(
            catalog,
            model,
            settings,
            QUEUE_SLICE,
            stop,
            &mut turn,
            &mut progress,
        );
        shared.rate().stop(Instant::now());
        match result {
            Ok(d) => {
                if d.classified + d.failed > 0 {
                    tracing::info!(
                        classified = d.classified,
                        failed = d.failed,
                        waiting = d.left,
                        "classified photos from the queue"
                    );
                }
                shared.failed.fetch_add(d.failed as u64, Ordering::Relaxed);
                shared.waiting.store(d.left, Ordering::Relaxed);
                if d.classified + d.failed == 0 && d.elsewhere > 0 {
                    // Another worker sharing the catalog holds what waits here: not again
                    // at once.
                    std::thread::sleep(Duration::from_secs(1));
                }
                if d.left == 0 && self.gate.forced() {
                    tracing::info!("the queue is empty");
                    self.gate.force_flag().store(false, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::error!("classifying the queue: {e}");
                // Not again at once: the next idle turn retries.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        self.note_model();
    }
}

/// Whether an error (or one of its causes) says the catalog's server is away.
fn is_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(ce) = c.downcast_ref::<CatalogError>() {
            return ce.is_unavailable();
        }
        if let Some(IndexError::Catalog(ce)) = c.downcast_ref::<IndexError>() {
            return ce.is_unavailable();
        }
        cause = c.source();
    }
    false
}

impl Job {
    /// The same job again, to do later if the catalog's server is away now (a reconcile
    /// is given back by `handle` itself: its reply cannot be copied).
    fn retry_copy(&self) -> Option<Job> {
        match self {
            Job::Process(e) => Some(Job::Process(e.clone())),
            Job::RemoveMissing(p) => Some(Job::RemoveMissing(p.clone())),
            Job::RootState { root, state } => Some(Job::RootState {
                root: root.clone(),
                state,
            }),
            Job::Reconcile { .. } | Job::Outputs(_) | Job::Policy(_) => None,
        }
    }

    /// How many files a job holds (for the status record).
    fn files(&self) -> usize {
        match self {
            Job::Process(e) => e.len(),
            _ => 0,
        }
    }
}

/// The jobs to do, in order, and whether (and since when) the catalog's server is away.
#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    /// Files whose content another worker was classifying, and when to look again.
    later: Vec<(Instant, Vec<Entry>)>,
    away: Option<Away>,
}

struct Away {
    since: i64,
    next_try: Instant,
    delay: Duration,
    error: String,
}

impl Waiting {
    const FIRST_DELAY: Duration = Duration::from_millis(500);
    const MAX_DELAY: Duration = Duration::from_secs(15);
    /// When to look again at content another worker was classifying.
    const LATER: Duration = Duration::from_secs(2);

    fn is_away(&self) -> bool {
        self.away.is_some()
    }

    /// How long to wait for the next job: until the next try when away, until the next
    /// deferred files are due, else the idle tick.
    fn timeout(&self) -> Duration {
        let now = Instant::now();
        let mut t = Duration::from_millis(250);
        if !self.jobs.is_empty() && self.away.is_none() {
            return Duration::ZERO;
        }
        if let Some(a) = &self.away {
            t = t.min(a.next_try.saturating_duration_since(now));
        }
        for (due, _) in &self.later {
            t = t.min(due.saturating_duration_since(now));
        }
        t
    }

    fn push(&mut self, job: Job, shared: &Shared) {
        self.jobs.push_back(job);
        self.report(shared);
    }

    /// The next job to do now: a due batch of deferred files, else the oldest job.
    fn next(&mut self, shared: &Shared) -> Option<Job> {
        let now = Instant::now();
        if let Some(i) = self.later.iter().position(|(due, _)| *due <= now) {
            let (_, entries) = self.later.swap_remove(i);
            shared.queue.fetch_add(entries.len(), Ordering::Relaxed);
            return Some(Job::Process(entries));
        }
        let job = self.jobs.pop_front();
        self.report(shared);
        job
    }

    /// Files to look at again in a moment.
    fn later(&mut self, entries: Vec<Entry>, _shared: &Shared) {
        if !entries.is_empty() {
            tracing::debug!(
                files = entries.len(),
                "another worker is classifying the same content: looking again shortly"
            );
            self.later.push((Instant::now() + Self::LATER, entries));
        }
    }

    /// The server is away: `job` goes back first in line.
    fn away(&mut self, job: Job, error: &str, shared: &Shared) {
        if let Job::Process(e) = &job {
            // Counted again when it is handed out.
            shared.queue.fetch_add(e.len(), Ordering::Relaxed);
        }
        self.jobs.push_front(job);
        self.away_without_job(error, shared);
    }

    fn away_without_job(&mut self, error: &str, shared: &Shared) {
        let now = Instant::now();
        match &mut self.away {
            Some(a) => {
                a.delay = (a.delay * 2).min(Self::MAX_DELAY);
                a.next_try = now + a.delay;
                a.error = error.to_string();
            }
            None => {
                tracing::warn!(
                    "{error}: keeping {} job(s) until it is back",
                    self.jobs.len()
                );
                self.away = Some(Away {
                    since: phototag_light::catalog::unix_now(),
                    next_try: now + Self::FIRST_DELAY,
                    delay: Self::FIRST_DELAY,
                    error: error.to_string(),
                });
            }
        }
        self.report(shared);
    }

    /// When due, asks the server again; whether it is back.
    fn try_again(&mut self, catalog: &Catalog, shared: &Shared) -> bool {
        let Some(a) = &self.away else { return true };
        if Instant::now() < a.next_try {
            return false;
        }
        match catalog.ping() {
            Ok(()) => {
                let since = a.since;
                tracing::info!(
                    jobs = self.jobs.len(),
                    "the catalog server is back (away for {} s): catching up",
                    phototag_light::catalog::unix_now() - since
                );
                self.away = None;
                self.report(shared);
                true
            }
            Err(e) => {
                self.away_without_job(&e.to_string(), shared);
                false
            }
        }
    }

    /// The catalog's state, for the status record.
    fn report(&self, shared: &Shared) {
        let st = self.away.as_ref().map(|a| CatalogStatus {
            state: "unreachable".into(),
            since_unix: a.since,
            error: a.error.clone(),
            retry_in_seconds: a
                .next_try
                .saturating_duration_since(Instant::now())
                .as_secs_f64(),
            waiting_jobs: self.jobs.len(),
            waiting_files: self.jobs.iter().map(Job::files).sum(),
        });
        *shared.catalog.lock().unwrap_or_else(|e| e.into_inner()) = st;
    }
}

/// Keeps the catalog's search lists (`catalog::lists`) up to date: when idle, and every
/// few seconds under steady load, rebuilds some of those that changes removed, a bounded
/// time at once so that jobs wait little.
struct SearchLists {
    /// Some list may be missing (true at start: the catalog may come from an older
    /// phototag, or from a run that was stopped).
    stale: bool,
    last: std::time::Instant,
}

impl Default for SearchLists {
    fn default() -> Self {
        SearchLists {
            stale: true,
            last: std::time::Instant::now(),
        }
    }
}

impl SearchLists {
    /// Work per turn, and the longest a busy worker goes without a turn.
    const BUDGET: Duration = Duration::from_millis(200);
    const BUSY_EVERY: Duration = Duration::from_secs(5);

    fn tick(&mut self, catalog: &mut Catalog, idle: bool) {
        if !self.stale || (!idle && self.last.elapsed() < Self::BUSY_EVERY) {
            return;
        }
        self.last = std::time::Instant::now();
        match catalog.refresh_class_lists(Some(Self::BUDGET)) {
            Ok(r) => {
                self.stale = r.missing > 0;
                if r.rebuilt > 0 {
                    tracing::debug!(rebuilt = r.rebuilt, missing = r.missing, "search lists");
                }
            }
            Err(e) => {
                tracing::warn!("search lists not rebuilt: {e}");
                self.stale = false;
            }
        }
    }
}

fn handle(
    catalog: &mut Catalog,
    w: &mut Work,
    root_ids: &mut HashMap<PathBuf, i64>,
    job: Job,
    excluder: &Excluder,
    follow_symlinks: bool,
) -> Result<Handled, Box<dyn std::error::Error>> {
    let (stop, shared) = (Arc::clone(&w.stop), Arc::clone(&w.shared));
    match job {
        Job::Reconcile { roots, reply } => {
            let plan = plan::plan(catalog, &roots, excluder, follow_symlinks, &stop);
            match &plan {
                Ok(p) => root_ids.extend(p.root_ids.iter().map(|(k, v)| (k.clone(), *v))),
                Err(e) if is_unavailable(e) => {
                    let error = e.to_string();
                    return Ok(Handled::Away(Job::Reconcile { roots, reply }, error));
                }
                Err(_) => {}
            }
            let _ = reply.send(plan.map_err(|e| e.to_string()));
        }
        Job::Process(mut entries) => {
            let n = entries.len();
            // Settled before an album folder was known: never catalogue phototag's links.
            entries.retain(|e| !excluder.is_pruned(&e.path));
            shared.queue.fetch_sub(n - entries.len(), Ordering::Relaxed);
            let n = entries.len();
            shared.rate().start(Instant::now());
            let mut progress = |p: Progress| {
                if let Progress::Done = p {
                    shared.queue.fetch_sub(1, Ordering::Relaxed);
                    shared.done.fetch_add(1, Ordering::Relaxed);
                    shared.rate().add(Instant::now(), 1);
                }
            };
            let before = shared.done.load(Ordering::Relaxed);
            // Outside the windows or while busy: recorded now, classified from the queue.
            let verdict = w.verdict();
            let gate = &w.gate;
            let mut first = Some(verdict);
            let mut turn = || {
                let v = first.take().unwrap_or_else(|| gate.check());
                if v.is_go() {
                    Turn::Classify
                } else {
                    Turn::Record
                }
            };
            let result = execute(
                catalog,
                &mut w.model,
                entries,
                root_ids,
                &w.settings,
                &stop,
                &mut turn,
                &mut progress,
            );
            shared.rate().stop(Instant::now());
            w.note_model();
            // Whatever was not reported done (an interrupted batch) leaves the queue too.
            let reported = (shared.done.load(Ordering::Relaxed) - before) as usize;
            shared
                .queue
                .fetch_sub(n.saturating_sub(reported), Ordering::Relaxed);
            let done = result?;
            shared
                .failed
                .fetch_add(done.failed as u64, Ordering::Relaxed);
            shared
                .waiting
                .fetch_add(done.queued as u64, Ordering::Relaxed);
            if done.new + done.duplicates + done.failed + done.queued > 0 {
                tracing::info!(
                    new = done.new,
                    duplicates = done.duplicates,
                    failed = done.failed,
                    queued = done.queued,
                    "catalog updated"
                );
            }
            return Ok(Handled::Elsewhere(done.elsewhere));
        }
        Job::RemoveMissing(paths) => {
            // File rows and failure rows alike: a failure of a deleted file is no failure.
            let mut gone: Vec<PathBuf> = Vec::new();
            for p in paths {
                if p.exists() {
                    continue;
                }
                gone.push(p.clone());
                gone.extend(catalog.files_under(&p)?.into_keys().filter(|f| !f.exists()));
                gone.extend(
                    catalog
                        .failures_under(&p)?
                        .into_keys()
                        .filter(|f| !f.exists()),
                );
            }
            if !gone.is_empty() {
                let mut w = catalog.begin()?;
                let refs: Vec<&Path> = gone.iter().map(PathBuf::as_path).collect();
                let n = w.remove_files(&refs)?;
                w.commit()?;
                tracing::info!(
                    files = n,
                    paths = gone.len(),
                    "removed rows of deleted files"
                );
            }
        }
        Job::RootState { root, state } => {
            let now = phototag_light::catalog::unix_now();
            let mut w = catalog.begin()?;
            let id = w.root_id(&root)?;
            w.set_root_state(id, state, now)?;
            w.commit()?;
        }
        Job::Outputs(_) | Job::Policy(_) => {}
    }
    Ok(Handled::Done)
}

/// How a job ended, when it did not fail.
enum Handled {
    Done,
    /// Files whose content another worker is classifying: to look at again shortly.
    Elsewhere(Vec<Entry>),
    /// The catalog's server is away: the job, to do once it is back.
    Away(Job, String),
}
