//! `phototag status`: the daemon's status record and the catalog's counts.
//!
//! May not: write anything.

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::catalog::Catalog;
use crate::cli::StatusArgs;
use crate::schedule::human_duration;
use crate::status::{self, Status};

/// The windows, and when the next opens while they are closed.
fn schedule_line(r: &Status) -> String {
    let windows = if r.schedule.is_empty() {
        "always"
    } else {
        &r.schedule
    };
    match (&r.next_window, r.next_window_in_seconds) {
        (Some(at), Some(secs)) => format!(
            "{windows}: closed, next window {at} (in {})",
            human_duration(secs as f64)
        ),
        _ if windows == "always" => "always (no windows)".into(),
        _ => format!("{windows}: open"),
    }
}

/// The measured rate and the time left.
fn rate_line(r: &Status) -> String {
    let left = r.queue as u64 + r.waiting;
    match (r.rate, r.eta_seconds) {
        (Some(rate), Some(eta)) if left > 0 => format!(
            "{rate:.1} images/s over the last minutes; {left} to go, done in about {}",
            human_duration(eta)
        ),
        (Some(rate), _) => format!("{rate:.1} images/s over the last minutes; nothing to do"),
        (None, _) if left > 0 => {
            format!("not measured yet ({left} to go; an estimate follows the first photos)")
        }
        (None, _) => "not measured yet (nothing classified since start)".into(),
    }
}

pub fn status(ctx: &Context, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let path = status::path_for(&ctx.db);
    let record = Status::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let running = record.as_ref().is_some_and(Status::is_alive);
    let stats = Catalog::open_readonly(&ctx.db).and_then(|c| c.stats());
    let (stats, unreachable) = match stats {
        Ok(s) => (Some(s), None),
        Err(e) if e.is_unavailable() => (None, Some(e.to_string())),
        Err(_) => (None, None),
    };
    if args.json {
        let v = serde_json::json!({
            "running": running,
            "daemon": record,
            "catalog": stats.as_ref().map(|s| serde_json::json!({
                "files": s.files, "images": s.images, "failures": s.failures,
            })),
            "catalog_error": unreachable,
        });
        println!("{v}");
    } else {
        match &record {
            Some(r) if running => {
                println!("daemon    running (pid {}, phototag {})", r.pid, r.version);
                match (&r.model, r.model_loaded) {
                    (Some(m), true) => println!("model     {m} (loaded)"),
                    (Some(m), false) => {
                        println!("model     {m} (not loaded: loaded when a photo needs it)")
                    }
                    (None, _) => println!("model     not loaded yet"),
                }
                for root in &r.roots {
                    let why = root
                        .reason
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default();
                    println!("root      {:<9} {}{why}", root.state, root.path.display());
                }
                println!(
                    "queue     {} settling, {} queued, {} waiting to be classified",
                    r.settling, r.queue, r.waiting
                );
                println!("schedule  {}", schedule_line(r));
                if let Some(why) = &r.paused {
                    println!("paused    {why}");
                }
                println!("rate      {}", rate_line(r));
                if let Some(c) = &r.catalog {
                    let away = crate::catalog::unix_now() - c.since_unix;
                    println!(
                        "catalog   {} for {away} s ({}); {} file(s) in {} job(s) waiting, next try in {:.0} s",
                        c.state, c.error, c.waiting_files, c.waiting_jobs, c.retry_in_seconds
                    );
                }
                println!("since     {} done, {} failed", r.done, r.failed);
                for a in &r.albums {
                    let why = a
                        .problem
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default();
                    println!(
                        "album     {:<11} {} → {}: {} links{why}",
                        a.state,
                        a.name,
                        a.folder.display(),
                        a.links
                    );
                }
            }
            Some(r) => println!(
                "daemon    not running (last record: {} at unix time {})",
                r.state, r.updated_unix
            ),
            None => println!(
                "daemon    not running (no status record at {})",
                path.display()
            ),
        }
        if let Some(s) = &stats {
            println!(
                "catalog   {} files, {} images, {} failures",
                s.files, s.images, s.failures
            );
        }
        if let Some(e) = &unreachable {
            println!("catalog   {e}");
        }
    }
    Ok(if running {
        Outcome::Success
    } else {
        Outcome::NoMatch
    })
}
