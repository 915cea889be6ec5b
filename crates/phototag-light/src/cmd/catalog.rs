//! `phototag search`, `phototag show` and `phototag stats`: read-only views of the catalog.

use super::{Context, Outcome};
use crate::catalog::hex;
use crate::cli::{ShowArgs, StatsArgs};
use crate::output::tags_json;

pub fn show(ctx: &Context, args: &ShowArgs) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
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
                "queued": image.as_ref().is_some_and(|i| i.classified_at == 0),
                "tags": tags_json(&tags),
            });
            println!("{v}");
        } else {
            println!("{}", path.display());
            if let Some(i) = image.as_ref().filter(|i| i.classified_at == 0) {
                println!(
                    "  {} bytes, waiting to be classified by {} (see `phototag status`)",
                    row.size, i.model_name
                );
            } else if let Some(i) = &image {
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
    let catalog = ctx.open_catalog_readonly()?;
    let s = catalog.stats()?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("{s}");
    }
    Ok(Outcome::Success)
}
