//! The daemon's event loop (`phototag watch`): sets up watches (inotify on local disks,
//! polling on network mounts or when inotify runs out), settles changed files, hands them
//! to the worker, delays deletions by a grace period, guards against unmounted roots,
//! reloads on SIGHUP, classifies the queue at once on SIGUSR1 (whatever the schedule and
//! load), stops cleanly on SIGTERM, and talks to systemd. The status record it writes
//! says what the worker does: the model loaded or not, the queue, why classification
//! waits, the next window, the measured rate and the time left.
//!
//! May not: touch the catalog or the model (the worker does), or spin: with nothing
//! changing it wakes about once a second for a few stats.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::EventKind;
use tokio::signal::unix::{signal, SignalKind};

use super::roots::{secs, watch_tree, Events, Mode, Root};
use super::sdnotify;
use super::settle::Settler;
use super::{Job, Outputs, Policy, Shared};
use crate::index::plan::Plan;
use crate::index::walk::Entry;
use phototag_light::config::WatchConfig;
use phototag_light::exclude::Excluder;
use phototag_light::paths::root_holding;
use phototag_light::status::Status;

/// What the daemon reads from the configuration (again on SIGHUP).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Canonical roots to watch.
    pub roots: Vec<PathBuf>,
    pub watch: WatchConfig,
    /// Albums and sidecars, for the worker.
    pub outputs: Outputs,
    /// Schedule, load limit and idle unload, for the worker.
    pub policy: Policy,
}

/// Everything the loop needs.
pub struct Params {
    pub settings: Settings,
    /// Re-reads the settings (SIGHUP).
    pub reload: Box<dyn Fn() -> Result<Settings, String>>,
    pub excluder: Excluder,
    pub jobs: mpsc::Sender<Job>,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub status_path: PathBuf,
}

struct Loop {
    p: Params,
    roots: Vec<Root>,
    events: Events,
    settler: Settler,
    ready: Vec<Entry>,
    deletes: HashMap<PathBuf, Instant>,
    plans: Vec<tokio::sync::oneshot::Receiver<Result<Plan, String>>>,
    started: i64,
    last_status: Instant,
    last_line: String,
}

impl Loop {
    fn root_of(&self, path: &Path) -> Option<usize> {
        root_holding(self.roots.iter().map(|r| r.path.as_path()), path)
    }

    fn reconcile(&mut self, roots: Vec<PathBuf>) {
        if roots.is_empty() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .p
            .jobs
            .send(Job::Reconcile { roots, reply: tx })
            .is_ok()
        {
            self.plans.push(rx);
        }
    }

    fn take_plans(&mut self, now: Instant) {
        let mut still = Vec::new();
        for mut rx in std::mem::take(&mut self.plans) {
            match rx.try_recv() {
                Ok(Ok(plan)) => self.apply_plan(plan, now),
                Ok(Err(e)) => tracing::error!("reconcile failed: {e}"),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => still.push(rx),
                Err(_) => {}
            }
        }
        self.plans = still;
    }

    fn apply_plan(&mut self, plan: Plan, now: Instant) {
        let settle = secs(self.p.settings.watch.settle_seconds);
        let wall = std::time::SystemTime::now();
        let (todo, gone) = (plan.todo.len(), plan.gone.len());
        for e in plan.todo {
            // Not modified for longer than the settle time: still already.
            let age = std::time::UNIX_EPOCH + Duration::from_nanos(e.mtime_ns.max(0) as u64);
            if wall
                .duration_since(age)
                .map(|a| a >= settle)
                .unwrap_or(false)
            {
                self.ready.push(e);
            } else {
                self.settler.observe(&e.path, now);
            }
        }
        for g in plan.gone {
            self.deletes.entry(g).or_insert(now);
        }
        for r in &mut self.roots {
            if plan.summary.offline_roots.contains(&r.path) {
                r.offline = true;
            }
        }
        if todo + gone > 0 {
            tracing::info!(
                new_or_changed = todo,
                unchanged = plan.summary.unchanged,
                gone,
                "reconciled"
            );
        }
    }

    fn on_event(&mut self, ev: notify::Event, now: Instant) {
        let created = |p: &Path| p.exists();
        let paths = ev.paths.clone();
        match ev.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if paths.len() == 2 => {
                self.gone_path(&paths[0], now);
                self.changed_path(&paths[1], now);
            }
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                for p in &paths {
                    self.gone_path(p, now);
                }
            }
            EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for p in &paths {
                    if created(p) {
                        self.changed_path(p, now);
                    } else {
                        self.gone_path(p, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// An excluded name, or inside an album folder (never followed: no feedback loop).
    fn excluded(&self, path: &Path) -> bool {
        path.file_name()
            .map(|n| self.p.excluder.excludes_name(n))
            .unwrap_or(false)
            || self.p.excluder.is_pruned(path)
    }

    fn changed_path(&mut self, path: &Path, now: Instant) {
        let Some(i) = self.root_of(path) else { return };
        if self.excluded(path) {
            return;
        }
        self.deletes.remove(path);
        if path.is_dir() {
            // A folder created or moved in: watch it and everything in it.
            if let Some(w) = self.roots[i].watcher.as_mut() {
                if let Err(e) = watch_tree(w, path, &self.p.excluder) {
                    self.roots[i].fall_back_to_polling(&e);
                }
            }
            let stop = AtomicBool::new(false);
            if let Ok(walked) = crate::index::walk::walk(path, &self.p.excluder, false, &stop) {
                for e in walked.files {
                    self.deletes.remove(&e.path);
                    self.settler.observe(&e.path, now);
                }
            }
        } else {
            self.settler.observe(path, now);
        }
    }

    fn gone_path(&mut self, path: &Path, now: Instant) {
        if self.root_of(path).is_none() || self.p.excluder.is_pruned(path) {
            return;
        }
        self.settler.forget_under(path);
        self.deletes.insert(path.to_path_buf(), now);
    }

    /// Deletions past their grace period, unless their root looks unmounted.
    fn due_deletes(&mut self, now: Instant) {
        let grace = secs(self.p.settings.watch.delete_grace_seconds);
        let due: Vec<PathBuf> = self
            .deletes
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= grace)
            .map(|(p, _)| p.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let mut remove = Vec::new();
        for p in due {
            self.deletes.remove(&p);
            let Some(i) = self.root_of(&p) else { continue };
            if !self.roots[i].looks_mounted() {
                self.mark_offline(i);
                continue;
            }
            remove.push(p);
        }
        if !remove.is_empty() {
            let _ = self.p.jobs.send(Job::RemoveMissing(remove));
        }
    }

    fn mark_offline(&mut self, i: usize) {
        let root = &mut self.roots[i];
        if root.offline {
            return;
        }
        root.offline = true;
        root.watcher = None;
        let path = root.path.clone();
        tracing::warn!(root = %path.display(), "root is gone or empty (unmounted?): offline; nothing under it is removed");
        self.deletes.retain(|p, _| !p.starts_with(&path));
        self.settler.forget_under(&path);
        let _ = self.p.jobs.send(Job::RootState {
            root: path,
            state: "offline",
        });
    }

    /// Once a second: settle, hand on, delete, poll, check roots, report.
    fn tick(&mut self, now: Instant) {
        self.take_plans(now);
        let due = self.settler.due(now);
        self.ready.extend(due);
        if !self.ready.is_empty() {
            let batch = std::mem::take(&mut self.ready);
            self.p
                .shared
                .queue
                .fetch_add(batch.len(), Ordering::Relaxed);
            let _ = self.p.jobs.send(Job::Process(batch));
        }
        self.due_deletes(now);
        let mut rescan = Vec::new();
        for i in 0..self.roots.len() {
            let r = &mut self.roots[i];
            if r.offline {
                if r.looks_mounted() {
                    tracing::info!(root = %r.path.display(), "root is back: reconciling");
                    r.offline = false;
                    r.start_watching(&self.p.excluder, &self.events);
                    rescan.push(r.path.clone());
                }
            } else if !r.path.is_dir() {
                self.mark_offline(i);
            } else if r.mode == Mode::Poll && now >= r.next_poll {
                r.next_poll = now + secs(self.p.settings.watch.poll_interval_seconds);
                rescan.push(r.path.clone());
            }
        }
        self.reconcile(rescan);
        self.report(now, false);
    }

    fn status(&self, state: &str) -> Status {
        let s = &self.p.shared;
        let schedule = self.p.settings.policy.schedule.schedule();
        let now = phototag_light::schedule::local_now();
        let opens_in = schedule.opens_in(now);
        let forced = s.force.load(Ordering::Relaxed);
        let (queue, waiting) = (
            s.queue.load(Ordering::Relaxed),
            s.waiting.load(Ordering::Relaxed),
        );
        let rate = s
            .rate
            .lock()
            .ok()
            .and_then(|mut r| r.per_second(Instant::now()));
        let eta = rate.filter(|r| *r > 0.0).map(|r| {
            let work = (queue as u64 + waiting) as f64 / r;
            if forced {
                work
            } else {
                schedule.finish_in(now, work)
            }
        });
        let next = (opens_in > 0 && !forced).then(|| {
            let at = (now + opens_in) % phototag_light::schedule::DAY;
            let hm = format!("{:02}:{:02}", at / 3600, (at / 60) % 60);
            match at % 60 {
                0 => hm,
                s => format!("{hm}:{s:02}"),
            }
        });
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            state: state.into(),
            started_unix: self.started,
            updated_unix: phototag_light::catalog::unix_now(),
            model: s.model.lock().map(|m| m.clone()).unwrap_or(None),
            model_loaded: s.model_loaded.load(Ordering::Relaxed),
            roots: self.roots.iter().map(Root::status).collect(),
            settling: self.settler.len(),
            queue,
            done: s.done.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            waiting,
            paused: if forced {
                None
            } else {
                s.paused.lock().map(|p| p.clone()).unwrap_or(None)
            },
            schedule: schedule.to_string(),
            next_window_in_seconds: next.as_ref().map(|_| opens_in as u64),
            next_window: next,
            rate,
            eta_seconds: eta,
            albums: s.albums.lock().map(|a| a.clone()).unwrap_or_default(),
            catalog: s.catalog.lock().map(|c| c.clone()).unwrap_or_default(),
        }
    }

    /// Writes the status record and STATUS= when something changed (counts, roots going
    /// offline or back), or every 10 s.
    fn report(&mut self, now: Instant, force: bool) {
        let st = self.status("running");
        // A root going offline or coming back changes the line, so the record follows it
        // at once (not at the next 10-second refresh).
        let offline = st.roots.iter().filter(|r| r.state == "offline").count();
        let away = match &st.catalog {
            Some(c) => format!(
                "; catalog server unreachable, {} file(s) waiting",
                c.waiting_files
            ),
            None => String::new(),
        };
        let line = format!(
            "{} root(s) ({offline} offline), {} settling, {} queued, {} waiting, {} done, {} failed, model {}{}{away}",
            st.roots.len(),
            st.settling,
            st.queue,
            st.waiting,
            st.done,
            st.failed,
            if st.model_loaded { "loaded" } else { "not loaded" },
            st.paused.as_deref().map(|p| format!("; paused: {p}")).unwrap_or_default()
        );
        if force
            || line != self.last_line
            || now.duration_since(self.last_status) >= Duration::from_secs(10)
        {
            if let Err(e) = st.write(&self.p.status_path) {
                tracing::warn!(path = %self.p.status_path.display(), "cannot write the status record: {e}");
            }
            sdnotify::status(&line);
            self.last_line = line;
            self.last_status = now;
        }
    }

    fn apply_settings(&mut self, s: Settings) {
        let changed = changes(&self.p.settings, &s);
        if changed.is_empty() {
            tracing::info!("configuration reloaded: nothing changed");
        } else {
            tracing::info!("configuration reloaded: {}", changed.join("; "));
        }
        let old: Vec<PathBuf> = self.roots.iter().map(|r| r.path.clone()).collect();
        self.roots.retain(|r| s.roots.contains(&r.path));
        for r in &old {
            if !s.roots.contains(r) {
                tracing::info!(root = %r.display(), "no longer watched");
                self.settler.forget_under(r);
                self.deletes.retain(|p, _| !p.starts_with(r));
            }
        }
        let mut added = Vec::new();
        for r in &s.roots {
            if !old.contains(r) {
                self.roots.push(Root::new(
                    r.clone(),
                    &s.watch,
                    &self.p.excluder,
                    &self.events,
                ));
                added.push(r.clone());
            }
        }
        self.settler.set_settle(secs(s.watch.settle_seconds));
        let _ = self.p.jobs.send(Job::Outputs(s.outputs.clone()));
        let _ = self.p.jobs.send(Job::Policy(s.policy.clone()));
        self.p.settings = s;
        self.reconcile(added);
    }
}

/// What a reload changes, one phrase each: roots added and removed, `[watch]` keys, albums.
fn changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let list = |paths: Vec<&PathBuf>| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added: Vec<&PathBuf> = new
        .roots
        .iter()
        .filter(|r| !old.roots.contains(r))
        .collect();
    let removed: Vec<&PathBuf> = old
        .roots
        .iter()
        .filter(|r| !new.roots.contains(r))
        .collect();
    if !added.is_empty() {
        out.push(format!("roots added: {}", list(added)));
    }
    if !removed.is_empty() {
        out.push(format!("roots no longer watched: {}", list(removed)));
    }
    let (o, n) = (&old.watch, &new.watch);
    for (key, a, b) in [
        ("settle_seconds", o.settle_seconds, n.settle_seconds),
        (
            "poll_interval_seconds",
            o.poll_interval_seconds,
            n.poll_interval_seconds,
        ),
        (
            "delete_grace_seconds",
            o.delete_grace_seconds,
            n.delete_grace_seconds,
        ),
        (
            "album_delay_seconds",
            o.album_delay_seconds,
            n.album_delay_seconds,
        ),
    ] {
        if a != b {
            out.push(format!("watch.{key} {a} → {b}"));
        }
    }
    if o.modes != n.modes {
        out.push(format!("watch.modes {:?} → {:?}", o.modes, n.modes));
    }
    if o.sidecars != n.sidecars {
        out.push(format!(
            "watch.sidecars {:?} → {:?}",
            o.sidecars, n.sidecars
        ));
    }
    let names =
        |s: &Settings| -> Vec<String> { s.outputs.albums.iter().map(|a| a.name.clone()).collect() };
    if old.outputs.albums != new.outputs.albums {
        out.push(format!(
            "albums [{}] → [{}]",
            names(old).join(", "),
            names(new).join(", ")
        ));
    }
    out
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(p: Params) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let settle = secs(p.settings.watch.settle_seconds);
    let mut l = Loop {
        roots: Vec::new(),
        events,
        settler: Settler::new(settle),
        ready: Vec::new(),
        deletes: HashMap::new(),
        plans: Vec::new(),
        started: phototag_light::catalog::unix_now(),
        last_status: Instant::now(),
        last_line: String::new(),
        p,
    };
    let roots = l.p.settings.roots.clone();
    for r in &roots {
        let root = Root::new(r.clone(), &l.p.settings.watch, &l.p.excluder, &l.events);
        l.roots.push(root);
    }
    l.reconcile(roots);
    l.report(Instant::now(), true);
    sdnotify::ready();
    tracing::info!(roots = l.roots.len(), "ready");
    let watchdog = sdnotify::watchdog_interval();
    let tick_every = Duration::from_millis(1000)
        .min(settle / 2)
        .max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                sdnotify::reloading();
                match (l.p.reload)() {
                    Ok(s) => l.apply_settings(s),
                    Err(e) => tracing::error!("configuration not reloaded: {e}"),
                }
                sdnotify::ready();
                l.report(Instant::now(), true);
            }
            _ = usr1.recv() => {
                let waiting = l.p.shared.waiting.load(Ordering::Relaxed);
                tracing::info!(waiting, "SIGUSR1: classifying the queue now, whatever the schedule and load");
                l.p.shared.force.store(true, Ordering::Relaxed);
                l.report(Instant::now(), true);
            }
            Some(ev) = rx.recv() => match ev {
                Ok(ev) => l.on_event(ev, Instant::now()),
                Err(e) => {
                    tracing::warn!("watch error: {e}");
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        for r in &mut l.roots {
                            if e.paths.iter().any(|p| p.starts_with(&r.path)) {
                                r.fall_back_to_polling(&e);
                            }
                        }
                    }
                }
            },
            _ = tick.tick() => {
                l.tick(Instant::now());
                if watchdog.is_some() {
                    sdnotify::watchdog();
                }
            }
        }
    }
    sdnotify::stopping();
    l.p.stop.store(true, Ordering::Relaxed);
    let mut st = l.status("stopped");
    st.queue = 0;
    if let Err(e) = st.write(&l.p.status_path) {
        tracing::warn!("cannot write the status record: {e}");
    }
    Ok(())
}
