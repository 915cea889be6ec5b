//! `phototag search`, `labels` and `dupes`.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use super::catalog::{emit, open, tags_json, tags_text};
use super::{Context, Outcome};
use crate::catalog::{hex, SearchQuery};
use crate::cli::{DupesArgs, LabelsArgs, SearchArgs};
use crate::search::Query;

pub fn search(ctx: &Context, args: &SearchArgs) -> anyhow::Result<Outcome> {
    if !(0.0..=100.0).contains(&args.min_prob) {
        anyhow::bail!("--min-prob is a percentage between 0 and 100");
    }
    let resolved = Query::parse(&args.terms).resolve();
    for t in &resolved.unknown {
        tracing::warn!("no ImageNet class is called `{t}`");
    }
    if resolved.classes.is_empty() {
        return Ok(Outcome::NoMatch);
    }
    let catalog = open(ctx)?;
    let hits = catalog.search(&SearchQuery {
        classes: resolved.classes,
        min_probability: args.min_prob / 100.0,
        limit: args.limit,
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for h in &hits {
        let mut line = Vec::new();
        if args.null {
            line.extend_from_slice(h.path.as_os_str().as_bytes());
            line.push(0);
        } else if args.json {
            let v = serde_json::json!({
                "path": h.path.to_string_lossy(),
                "hash": hex(&h.hash),
                "score": ((h.score as f64) * 10_000.0).round() / 100.0,
                "tags": tags_json(&h.tags),
            });
            line.extend_from_slice(v.to_string().as_bytes());
            line.push(b'\n');
        } else {
            line.extend_from_slice(h.path.as_os_str().as_bytes());
            line.extend_from_slice(format!("\t{}\n", tags_text(&h.tags)).as_bytes());
        }
        if !emit(&mut out, &line)? {
            return Ok(Outcome::Success);
        }
    }
    let _ = out.flush();
    Ok(if hits.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}

pub fn labels(_ctx: &Context, args: &LabelsArgs) -> anyhow::Result<Outcome> {
    let classes: Vec<usize> = match &args.term {
        Some(t) => crate::search::classes_named(t),
        None => (0..crate::labels::IMAGENET_CLASSES).collect(),
    };
    for i in &classes {
        if let Some(c) = crate::labels::class(*i) {
            println!("{}\t{}\t{}", c.index, c.wnid, c.synonyms.join(", "));
        }
    }
    Ok(if classes.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}

pub fn dupes(_ctx: &Context, _args: &DupesArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("phototag dupes is not available yet")
}
