//! `phototag search`, `phototag show` and `phototag stats`: read-only views of the catalog.

use std::io::Write;

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::catalog::{hex, Catalog, TagRow};
use crate::cli::{ShowArgs, StatsArgs};

/// Opens the catalog read-only, naming it in the error.
pub fn open(ctx: &Context) -> anyhow::Result<Catalog> {
    Catalog::open_readonly(&ctx.db)
        .with_context(|| format!("opening the catalog {}", ctx.db.display()))
}

/// Tags as the JSON outputs write them (probability in percent).
pub fn tags_json(tags: &[TagRow]) -> serde_json::Value {
    tags.iter()
        .map(|t| {
            serde_json::json!({
                "rank": t.rank,
                "class": t.label,
                "index": t.class_index,
                "probability": super::percent(t.probability),
            })
        })
        .collect()
}

/// Writes, ignoring a closed pipe (`phototag search dog | head`).
pub fn emit(out: &mut impl Write, bytes: &[u8]) -> anyhow::Result<bool> {
    match out.write_all(bytes) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn show(ctx: &Context, args: &ShowArgs) -> anyhow::Result<Outcome> {
    let catalog = open(ctx)?;
    let mut outcome = Outcome::Success;
    for f in &args.files {
        let path = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let Some(row) = catalog.file(&path)? else {
            eprintln!("phototag: {}: not in the catalog", f.display());
            outcome = Outcome::Partial;
            continue;
        };
        let image = catalog.image(&row.hash)?;
        let tags = catalog.tags(&row.hash)?;
        if args.json {
            let v = serde_json::json!({
                "path": path.to_string_lossy(),
                "hash": hex(&row.hash),
                "size": row.size,
                "width": image.as_ref().map(|i| i.width),
                "height": image.as_ref().map(|i| i.height),
                "format": image.as_ref().map(|i| i.format.clone()),
                "model": image.as_ref().map(|i| i.model_name.clone()),
                "tags": tags_json(&tags),
            });
            println!("{v}");
        } else {
            println!("{}", path.display());
            if let Some(i) = &image {
                println!(
                    "  {}x{} {}, {} bytes, tagged by {}",
                    i.width, i.height, i.format, row.size, i.model_name
                );
            }
            println!("  hash {}", hex(&row.hash));
            for t in &tags {
                println!(
                    "  {}. {:<28} {:>6.2}%",
                    t.rank,
                    t.label,
                    t.probability * 100.0
                );
            }
        }
    }
    Ok(outcome)
}

pub fn stats(ctx: &Context, args: &StatsArgs) -> anyhow::Result<Outcome> {
    let catalog = open(ctx)?;
    let s = catalog.stats()?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("{s}");
    }
    Ok(Outcome::Success)
}
