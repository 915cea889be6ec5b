//! `phototag status`: the daemon's status record and the catalog's counts.
//!
//! May not: write anything.

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::catalog::Catalog;
use crate::cli::StatusArgs;
use crate::status::{self, Status};

pub fn status(ctx: &Context, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let path = status::path_for(&ctx.db);
    let record = Status::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let running = record.as_ref().is_some_and(Status::is_alive);
    let stats = Catalog::open_readonly(&ctx.db).and_then(|c| c.stats()).ok();
    if args.json {
        let v = serde_json::json!({
            "running": running,
            "daemon": record,
            "catalog": stats.as_ref().map(|s| serde_json::json!({
                "files": s.files, "images": s.images, "failures": s.failures,
            })),
        });
        println!("{v}");
    } else {
        match &record {
            Some(r) if running => {
                println!(
                    "daemon    running (pid {}, phototag {}, model {})",
                    r.pid,
                    r.version,
                    r.model.as_deref().unwrap_or("not loaded yet")
                );
                for root in &r.roots {
                    let why = root
                        .reason
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default();
                    println!("root      {:<9} {}{why}", root.state, root.path.display());
                }
                println!("queue     {} settling, {} queued", r.settling, r.queue);
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
    }
    Ok(if running {
        Outcome::Success
    } else {
        Outcome::NoMatch
    })
}
