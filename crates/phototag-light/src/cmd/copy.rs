//! `phototag catalog copy --from A --to B`: every row of one catalog into another
//! (`catalog::copy`), a line per table with counts and checksums, exit 1 when the target
//! does not hold the source's rows as they are.
//!
//! May not: copy rows itself (see `catalog::copy`).

use std::io::Write;
use std::time::Instant;

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::catalog::copy::{copy, Table};
use crate::catalog::{Catalog, Location};
use crate::cli::CopyArgs;

pub fn run(ctx: &Context, args: &CopyArgs) -> anyhow::Result<Outcome> {
    let options = ctx.config.postgresql.options();
    let from = Location::parse(args.from.as_os_str(), options.clone());
    let to = Location::parse(args.to.as_os_str(), options);
    if from == to {
        return Err(crate::catalog::CatalogError::Config(
            "--from and --to name the same catalog".into(),
        )
        .into());
    }
    let source = Catalog::open_readonly(&from)
        .with_context(|| format!("opening the catalog to copy, {from}"))?;
    let mut target =
        Catalog::open(&to).with_context(|| format!("opening the target catalog, {to}"))?;
    let started = Instant::now();
    let mut last = Instant::now();
    let mut progress = |table: Table, rows: u64| {
        if last.elapsed().as_secs_f64() >= 2.0 {
            last = Instant::now();
            tracing::info!(table = table.name(), rows, "copying");
        }
    };
    let reports = copy(&source, &mut target, &mut progress)
        .with_context(|| format!("copying {from} to {to}"))?;
    let ok = reports.iter().all(|r| r.matches());
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.json {
        let v = serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "tables": reports.iter().map(|r| serde_json::json!({
                "table": r.table.name(),
                "source_rows": r.source_rows,
                "copied": r.copied,
                "already_there": r.present,
                "target_rows": r.target_rows,
                "source_checksum": r.source_checksum,
                "target_checksum": r.target_checksum,
                "matches": r.matches(),
            })).collect::<Vec<_>>(),
            "matches": ok,
            "seconds": started.elapsed().as_secs_f64(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>10} {:>10}  checksum",
            "table", "source", "copied", "already", "target"
        )?;
        for r in &reports {
            writeln!(
                out,
                "{:<12} {:>10} {:>10} {:>10} {:>10}  {} {}",
                r.table.name(),
                r.source_rows,
                r.copied,
                r.present,
                r.target_rows,
                r.source_checksum,
                if r.matches() {
                    "= target"
                } else {
                    "DIFFERS from the target"
                }
            )?;
        }
    }
    let rows: u64 = reports.iter().map(|r| r.source_rows).sum();
    if ok {
        eprintln!(
            "phototag: {rows} rows of {from} are in {to}, with the same checksums ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        Ok(Outcome::Success)
    } else {
        eprintln!(
            "phototag: the target does not hold every row of the source as it is (rows it had before are kept): see the tables marked DIFFERS"
        );
        Ok(Outcome::Partial)
    }
}
