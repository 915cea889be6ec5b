//! `phototag search` (paths, `-0`, JSON lines, a table, a count), `labels` (the classes a
//! word covers) and `dupes` (paths with the same content). Exit codes as grep: 0 found,
//! 1 nothing, 2 a bad query.
//!
//! May not: build SQL (see `catalog::query`) or parse queries itself (see `search`).

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;

use super::{Context, Outcome};
use crate::catalog::Hit;
use crate::cli::{DupesArgs, LabelsArgs, SearchArgs};
use crate::output::{hit_json, matched_tags};
use crate::search::{Hierarchy, Query, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Paths,
    Null,
    Json,
    Table,
    Count,
}

impl Format {
    fn of(args: &SearchArgs) -> Format {
        if args.null {
            Format::Null
        } else if args.json {
            Format::Json
        } else if args.table {
            Format::Table
        } else if args.count {
            Format::Count
        } else if args.paths || !std::io::stdout().is_terminal() {
            Format::Paths
        } else {
            Format::Table
        }
    }
}

pub fn search(ctx: &Context, args: &SearchArgs) -> anyhow::Result<Outcome> {
    // The taught tags are terms too; a catalog that cannot be opened is reported below,
    // after the query's own errors.
    let opened = ctx.open_catalog_readonly();
    let taught = match &opened {
        Ok(c) => c.taught_names()?,
        Err(_) => Vec::new(),
    };
    let query = Query::from_args(&args.terms, args.min_prob / 100.0, &taught)?;
    tracing::debug!(query = %query, "parsed");
    for t in query.unknown() {
        eprintln!("phototag: {}", no_match_message(&t.text, &t.suggestions));
    }
    let compiled = query.compiled;
    if compiled.classes().is_empty() && !compiled.matches_untagged() {
        return Ok(Outcome::NoMatch);
    }
    let format = Format::of(args);
    let catalog = opened?;
    let mtime_ns = match (args.since, args.until) {
        (None, None) => None,
        (since, until) => {
            Some(since.map_or(i64::MIN, |m| m.start_ns)..until.map_or(i64::MAX, |m| m.end_ns))
        }
    };
    let request = Request {
        query: compiled,
        under: args.under.iter().map(|d| super::stored_path(d)).collect(),
        mtime_ns,
        limit: args.limit,
        with_tags: matches!(format, Format::Json | Format::Table),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let found = match format {
        Format::Json | Format::Table => {
            let hits = catalog.find(&request)?;
            if format == Format::Table {
                write_table(&mut out, &hits)?;
            } else {
                let mut line = Vec::with_capacity(256);
                for h in &hits {
                    line.clear();
                    line.extend_from_slice(hit_json(h).to_string().as_bytes());
                    line.push(b'\n');
                    out.write_all(&line)?;
                }
            }
            hits.len()
        }
        Format::Count => {
            let n = catalog.count(&request)?;
            writeln!(out, "{n}")?;
            n
        }
        // Paths only: the compact listing (no allocation per file).
        Format::Paths | Format::Null => {
            let listing = catalog.list(&request)?;
            let end: &[u8] = if format == Format::Null { b"\0" } else { b"\n" };
            for f in listing.iter() {
                out.write_all(f.path)?;
                out.write_all(end)?;
            }
            listing.len()
        }
    };
    out.flush()?;
    Ok(if found == 0 {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}

/// `no ImageNet class or label matches `x`; close: a, b`.
fn no_match_message(term: &str, suggestions: &[&str]) -> String {
    let mut m = format!("no ImageNet class or label matches `{term}`");
    if !suggestions.is_empty() {
        m.push_str(&format!("; close: {}", suggestions.join(", ")));
    }
    m
}

/// Path, the best matching tag (the top stored one for a bare `NOT`), its probability.
fn write_table(out: &mut impl Write, hits: &[Hit]) -> anyhow::Result<()> {
    let rows: Vec<(String, &str, f32)> = hits
        .iter()
        .map(|h| {
            let tag = matched_tags(h).first().copied().or(h.tags.first());
            (
                h.path.to_string_lossy().into_owned(),
                tag.map_or("", |t| t.label.as_str()),
                tag.map_or(0.0, |t| t.probability),
            )
        })
        .collect();
    let width = |f: &dyn Fn(&(String, &str, f32)) -> usize, min: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(min)
    };
    let pw = width(&|r| r.0.chars().count(), 4);
    let tw = width(&|r| r.1.chars().count(), 3);
    let mut text = format!("{:<pw$}  {:<tw$}  {:>6}\n", "PATH", "TAG", "PROB");
    for (path, tag, p) in &rows {
        text.push_str(&format!("{path:<pw$}  {tag:<tw$}  {:>5.1}%\n", p * 100.0));
        if text.len() > 1 << 16 {
            out.write_all(text.as_bytes())?;
            text.clear();
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

pub fn labels(_ctx: &Context, args: &LabelsArgs) -> anyhow::Result<Outcome> {
    let h = Hierarchy::get();
    let term = args.term.join(" ");
    let term = term.trim();
    let classes: Vec<usize> = if term.is_empty() {
        (0..crate::labels::IMAGENET_CLASSES).collect()
    } else {
        let r = h.resolve(term);
        if r.classes.is_empty() {
            eprintln!("phototag: {}", no_match_message(term, &h.suggest(term, 5)));
            return Ok(Outcome::NoMatch);
        }
        if !args.json {
            for &s in &r.synsets {
                let s = &h.synsets()[s];
                eprintln!("{term}: {} {}", s.wnid, s.words.join(", "));
            }
            eprintln!("{term}: {} classes", r.classes.len());
        }
        r.classes
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for &i in &classes {
        let Some(c) = crate::labels::class(i) else {
            continue;
        };
        let line = if args.json {
            let hypernyms: Vec<&str> = h
                .ancestors(i)
                .iter()
                .skip(1)
                .filter_map(|s| s.words.first().copied())
                .collect();
            serde_json::json!({
                "index": c.index,
                "wnid": c.wnid,
                "name": c.name,
                "synonyms": c.synonyms,
                "hypernyms": hypernyms,
            })
            .to_string()
        } else {
            format!("{}\t{}\t{}", c.index, c.wnid, c.synonyms.join(", "))
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(Outcome::Success)
}

pub fn dupes(ctx: &Context, args: &DupesArgs) -> anyhow::Result<Outcome> {
    if args.near {
        return super::similar::near(ctx, args);
    }
    let catalog = ctx.open_catalog_readonly()?;
    let under = args.under.as_deref().map(super::stored_path);
    let groups = catalog.duplicates(under.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut copies, mut bytes) = (0u64, 0u64);
    for (i, g) in groups.iter().enumerate() {
        let extra = g.paths.len() as u64 - 1;
        copies += extra;
        bytes += extra * g.size;
        let mut text = Vec::new();
        if args.json {
            text.extend_from_slice(serde_json::to_string(g)?.as_bytes());
            text.push(b'\n');
        } else {
            if i > 0 {
                text.push(b'\n');
            }
            for p in &g.paths {
                text.extend_from_slice(p.as_os_str().as_bytes());
                text.push(b'\n');
            }
        }
        out.write_all(&text)?;
    }
    out.flush()?;
    if !groups.is_empty() {
        eprintln!(
            "{} groups; {copies} extra copies, {:.1} MiB",
            groups.len(),
            bytes as f64 / 1_048_576.0
        );
    }
    Ok(if groups.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}
