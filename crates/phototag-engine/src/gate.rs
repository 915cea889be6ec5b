//! Whether classification may run now, for a NAS that has other work to do: inside the
//! `[schedule] windows` (local time), while the 1-minute load average per core, phototag's
//! own threads not counted, is at most `max_load_per_core`, or when forced (`index --now`,
//! SIGUSR1 to the daemon). Asked before every batch; what a "no" means is the caller's
//! choice (the daemon records the rest for later, `index` waits for the load to fall).
//!
//! The load is read from `/proc/loadavg`, or from the file `$PHOTOTAG_LOADAVG` names (same
//! format: containers whose `/proc/loadavg` is the host's, and tests). phototag's own share
//! is measured by a sampler thread the way the kernel measures the load: every second it
//! counts this process's runnable and uninterruptible threads, averaged over a minute.
//!
//! May not: classify, sleep, or touch the catalog.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phototag_light::config::ScheduleConfig;
use phototag_light::schedule::{local_now, Schedule};

/// The answer before a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Classify.
    Go,
    /// Outside the schedule windows: the reason, for the status and the log.
    Closed(String),
    /// The machine is busy: the reason.
    Busy(String),
}

impl Verdict {
    pub fn is_go(&self) -> bool {
        matches!(self, Verdict::Go)
    }

    /// Why classification waits, when it does.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Go => None,
            Verdict::Closed(r) | Verdict::Busy(r) => Some(r),
        }
    }
}

/// Where the 1-minute load average comes from.
fn loadavg_path() -> PathBuf {
    std::env::var_os("PHOTOTAG_LOADAVG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/loadavg"))
}

/// The first figure of a `/proc/loadavg`-style file.
pub fn read_load(path: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    v.is_finite().then_some(v.max(0.0))
}

/// This process's threads that are running or waiting to run (`R`) or in uninterruptible
/// sleep (`D`), what the kernel's load average counts; the calling thread left out.
fn own_active_threads() -> usize {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() }.to_string();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_str() != Some(me.as_str()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // "tid (name) S ...": the state follows the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|c| c == 'R' || c == 'D')
        })
        .count()
}

/// phototag's own share of the load average, kept by a sampler thread (only while a load
/// limit is set).
struct OwnLoad {
    avg: Arc<Mutex<f64>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnLoad {
    fn start() -> Self {
        let avg = Arc::new(Mutex::new(0.0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (Arc::clone(&avg), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("phototag-load".into())
            .spawn(move || {
                // The kernel's 1-minute average, sampled every second instead of every 5.
                let decay = (-1.0f64 / 60.0).exp();
                while !s.load(Ordering::Relaxed) {
                    let n = own_active_threads() as f64;
                    if let Ok(mut v) = a.lock() {
                        *v = *v * decay + n * (1.0 - decay);
                    }
                    std::thread::park_timeout(Duration::from_secs(1));
                }
            })
            .ok();
        OwnLoad { avg, stop, thread }
    }

    fn get(&self) -> f64 {
        self.avg.lock().map(|v| *v).unwrap_or(0.0)
    }
}

impl Drop for OwnLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The schedule, the load limit and the force flag.
pub struct Gate {
    schedule: Schedule,
    max_load_per_core: f64,
    loadavg: PathBuf,
    cores: f64,
    own: Option<OwnLoad>,
    force: Arc<AtomicBool>,
    time_of_day: Box<dyn Fn() -> u32 + Send>,
}

impl Gate {
    /// A gate for `[schedule]`; `force` set means go whatever the schedule and load say.
    pub fn new(config: &ScheduleConfig, force: Arc<AtomicBool>) -> Self {
        let mut g = Gate {
            schedule: Schedule::default(),
            max_load_per_core: 0.0,
            loadavg: loadavg_path(),
            cores: crate::model::classifier::all_cores() as f64,
            own: None,
            force,
            time_of_day: Box::new(local_now),
        };
        g.set_config(config);
        g
    }

    /// Always open (no schedule, no load limit).
    pub fn always() -> Self {
        Self::new(&ScheduleConfig::default(), Arc::new(AtomicBool::new(false)))
    }

    /// New settings (the daemon's SIGHUP).
    pub fn set_config(&mut self, config: &ScheduleConfig) {
        self.schedule = config.schedule();
        self.max_load_per_core = config.max_load_per_core;
        if self.max_load_per_core > 0.0 {
            self.own.get_or_insert_with(OwnLoad::start);
        } else {
            self.own = None;
        }
    }

    /// Replaces the clock (seconds since local midnight), for tests.
    pub fn with_time_of_day(mut self, f: impl Fn() -> u32 + Send + 'static) -> Self {
        self.time_of_day = Box::new(f);
        self
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn forced(&self) -> bool {
        self.force.load(Ordering::Relaxed)
    }

    /// The force flag (SIGUSR1 sets it; the daemon's worker clears it once the queue is
    /// empty).
    pub fn force_flag(&self) -> &Arc<AtomicBool> {
        &self.force
    }

    /// Whether the schedule alone allows classifying now.
    pub fn window_open(&self) -> bool {
        self.schedule.is_open((self.time_of_day)())
    }

    /// Seconds until the next window opens (0 when open now).
    pub fn opens_in(&self) -> u32 {
        self.schedule.opens_in((self.time_of_day)())
    }

    /// Seconds of wall time `work` seconds of classification take from now, counting only
    /// time inside the windows.
    pub fn finish_in(&self, work: f64) -> f64 {
        self.schedule.finish_in((self.time_of_day)(), work)
    }

    /// May classification run now?
    pub fn check(&self) -> Verdict {
        if self.forced() {
            return Verdict::Go;
        }
        if !self.window_open() {
            return Verdict::Closed(format!("outside the schedule windows ({})", self.schedule));
        }
        if self.max_load_per_core > 0.0 {
            if let Some(load) = read_load(&self.loadavg) {
                let own = self.own.as_ref().map_or(0.0, OwnLoad::get);
                let per_core = (load - own).max(0.0) / self.cores.max(1.0);
                if per_core > self.max_load_per_core {
                    return Verdict::Busy(format!(
                        "load {per_core:.2} per core ({load:.2} on {} cores, phototag's own {own:.1} not counted) is above max_load_per_core {}",
                        self.cores, self.max_load_per_core
                    ));
                }
            }
        }
        Verdict::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phototag_light::schedule::Window;

    fn config(windows: &[&str], max_load: f64) -> ScheduleConfig {
        ScheduleConfig {
            windows: windows.iter().map(|w| Window::parse(w).unwrap()).collect(),
            max_load_per_core: max_load,
        }
    }

    #[test]
    fn windows_close_and_force_opens() {
        let force = Arc::new(AtomicBool::new(false));
        let g = Gate::new(&config(&["01:00-07:00"], 0.0), Arc::clone(&force))
            .with_time_of_day(|| 12 * 3600);
        let v = g.check();
        assert!(
            matches!(&v, Verdict::Closed(r) if r.contains("01:00-07:00")),
            "{v:?}"
        );
        assert_eq!(g.opens_in(), 13 * 3600);
        force.store(true, Ordering::Relaxed);
        assert_eq!(g.check(), Verdict::Go);
        let g = Gate::new(
            &config(&["22:00-06:00"], 0.0),
            Arc::new(AtomicBool::new(false)),
        )
        .with_time_of_day(|| 3600);
        assert_eq!(g.check(), Verdict::Go);
    }

    #[test]
    fn the_load_is_read_per_core_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("loadavg");
        let mut g = Gate::new(&config(&[], 0.5), Arc::new(AtomicBool::new(false)));
        g.loadavg = file.clone();
        g.cores = 2.0;
        std::fs::write(&file, "0.40 0.30 0.20 1/100 42\n").unwrap();
        assert_eq!(g.check(), Verdict::Go);
        std::fs::write(&file, "9.00 3.00 1.00 5/100 42\n").unwrap();
        let v = g.check();
        assert!(
            matches!(&v, Verdict::Busy(r) if r.contains("above max_load_per_core 0.5")),
            "{v:?}"
        );
        // No reading (no such file): no pause.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(g.check(), Verdict::Go);
    }

    #[test]
    fn own_threads_are_counted_like_the_kernel_does() {
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !s.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        let n = own_active_threads();
        stop.store(true, Ordering::Relaxed);
        for t in spinners {
            t.join().unwrap();
        }
        // Two spinning threads are running or runnable (other tests' threads may add).
        assert!(n >= 2, "{n}");
    }
}
