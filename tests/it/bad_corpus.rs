//! Every file under ../shared/corpus/bad (bombs, crashers, fuzz inputs, truncated files)
//! through the real binary: one clean JSON line per file, a result or an error, and the
//! process ends normally (no crash, no hang: each run of 600 files is killed after 10 minutes)
//! with a bounded peak RSS (measured by `wait4`). Skips, saying why, without the corpus.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peak RSS allowed for one `classify` run over 600 bad files, with a random ResNet-18 loaded
/// (~250 MB of it is libtorch and the model). Measured 340 MiB on 2026-11-28.
const MAX_RSS_MIB: i64 = 768;
const HANG: Duration = Duration::from_secs(600);

/// What one child run gave: exit status, stdout, stderr, and its peak RSS in MiB.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss_mib: i64,
    killed_for_hanging: bool,
}

/// Runs `cmd` to the end, killing it after `HANG`; reaps it with `wait4` for its rusage.
#[allow(clippy::zombie_processes)] // reaped by wait4, which Child::wait cannot replace
fn run_measured(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > HANG {
                    killed.store(true, Ordering::SeqCst);
                    // SAFETY: pid is our unreaped child, so it cannot have been reused.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    let exited = libc::WIFEXITED(status);
    Run {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        peak_rss_mib: usage.ru_maxrss / 1024, // KiB on Linux
        killed_for_hanging: killed.load(Ordering::SeqCst),
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_bad_file_gives_a_clean_result_or_error() {
    let Some(bad) = common::shared("corpus/bad", "bad_corpus") else {
        return;
    };
    let mut files = Vec::new();
    files_under(&bad, &mut files);
    files.sort();
    assert!(files.len() > 2000, "{} files", files.len());

    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let st = Command::new(common::bin())
        .args(["-q", "model", "prepare", "resnet18-random"])
        .env("PHOTOTAG_MODEL_DIR", &models)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .status()
        .unwrap();
    assert!(st.success());

    let (mut ok, mut errors, mut peak) = (0, 0, 0);
    for chunk in files.chunks(600) {
        let mut cmd = Command::new(common::bin());
        cmd.args(["-q", "classify", "--json", "--model", "resnet18-random"])
            .args(chunk)
            .env("PHOTOTAG_MODEL_DIR", &models)
            .env("PHOTOTAG_CONFIG", "/dev/null");
        let run = run_measured(cmd);
        assert!(
            !run.killed_for_hanging,
            "hung: killed after {HANG:?} on files {:?}..",
            chunk.first()
        );
        assert!(
            matches!(run.code, Some(0) | Some(1)),
            "crashed or failed: exit {:?}, signal {:?}\n{}",
            run.code,
            run.signal,
            run.stderr
        );
        peak = peak.max(run.peak_rss_mib);
        assert!(
            run.peak_rss_mib <= MAX_RSS_MIB,
            "peak RSS {} MiB over {MAX_RSS_MIB} MiB on files from {:?}",
            run.peak_rss_mib,
            chunk.first()
        );
        let text = run.stdout;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), chunk.len(), "one line per file");
        for (v, f) in lines.iter().zip(chunk) {
            assert_eq!(v["file"].as_str().unwrap(), f.to_string_lossy());
            if v["results"].is_array() {
                ok += 1;
            } else {
                let e = v["error"].as_str().unwrap();
                assert!(!e.is_empty());
                errors += 1;
            }
        }
    }
    eprintln!(
        "bad corpus: {} files, {ok} classified, {errors} refused with an error; \
         peak RSS of a run {peak} MiB (limit {MAX_RSS_MIB} MiB)",
        files.len()
    );
}
