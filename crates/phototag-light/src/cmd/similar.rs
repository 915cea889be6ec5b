//! `phototag similar PHOTO|HASH` and `phototag dupes --near`: the commands over stored
//! embeddings. Both run here, without libtorch. `similar` hands itself to the engine only
//! when PHOTO's content is not in the catalog (or has no embedding) and must be classified:
//! [`resolve`] says so, [`similar`] answers [`Outcome::NeedsEngine`], `phototag` execs
//! `phototag-engine`, and the engine classifies the photo and calls [`answer`].
//!
//! May not: build SQL (see `catalog`), compare embeddings itself (see `similar`), or load
//! a model.

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Context, Outcome};
use crate::catalog::{hex, parse_hash, Catalog, Hash};
use crate::cli::{DupesArgs, SimilarArgs};
use crate::output::tags_json;
use crate::similar::dupes::{near_duplicates, round4};
use crate::similar::{most_similar, Options, Query};

/// What a `similar` argument turned out to be.
#[derive(Debug)]
pub enum Resolved {
    /// A stored embedding to compare with.
    Query(Query),
    /// A file whose content the catalog does not know (or holds without an embedding):
    /// the model must see it. Its bytes, read once, and their hash.
    NeedsModel {
        path: PathBuf,
        bytes: Vec<u8>,
        hash: Hash,
    },
    /// Nothing to compare with: the reason was printed; end with this.
    Done(Outcome),
}

/// Reads a file whole, refusing one over `max` bytes.
fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(std::io::Error::other(format!(
            "{len} bytes, over the limit of {max} (config key limits.max_file_bytes)"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// PHOTO (a file, read and hashed: content, not names) or HASH, to a stored embedding or
/// to what the model must classify.
pub fn resolve(ctx: &Context, catalog: &Catalog, args: &SimilarArgs) -> anyhow::Result<Resolved> {
    let target = &args.target;
    let is_file = std::fs::metadata(target).is_ok();
    if !is_file {
        if let Some(hash) = target.to_str().and_then(parse_hash) {
            return stored(catalog, &hash, &hex(&hash));
        }
    }
    let bytes = match read_limited(target, ctx.config.limits.max_file_bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("phototag: {}: cannot read: {e}", target.display());
            return Ok(Resolved::Done(Outcome::Partial));
        }
    };
    let hash = crate::catalog::hash_bytes(&bytes);
    match catalog.embedding(&hash)? {
        Some(s) => Ok(Resolved::Query(Query {
            model_id: s.model_id,
            embedding: s.embedding,
            exclude: Some(hash),
        })),
        None => Ok(Resolved::NeedsModel {
            path: target.clone(),
            bytes,
            hash,
        }),
    }
}

/// The stored embedding of a catalogued image named by its hash.
fn stored(catalog: &Catalog, hash: &Hash, shown: &str) -> anyhow::Result<Resolved> {
    if catalog.image(hash)?.is_none() {
        eprintln!("phototag: no image with content hash {shown} in the catalog");
        return Ok(Resolved::Done(Outcome::NoMatch));
    }
    match catalog.embedding(hash)? {
        Some(s) => Ok(Resolved::Query(Query {
            model_id: s.model_id,
            embedding: s.embedding,
            exclude: Some(*hash),
        })),
        None => {
            eprintln!(
                "phototag: image {shown} has no embedding (it was catalogued before phototag kept them, or by a model that gives none): run `phototag retag --embeddings`"
            );
            Ok(Resolved::Done(Outcome::NoMatch))
        }
    }
}

/// `phototag similar` without the model: answers from the catalog, or asks for the engine.
pub fn similar(ctx: &Context, args: &SimilarArgs) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    match resolve(ctx, &catalog, args)? {
        Resolved::Query(q) => answer(ctx, &catalog, args, &q),
        Resolved::NeedsModel { .. } => Ok(Outcome::NeedsEngine),
        Resolved::Done(outcome) => Ok(outcome),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Paths,
    Null,
    Json,
    Table,
}

impl Format {
    fn of(args: &SimilarArgs) -> Format {
        if args.null {
            Format::Null
        } else if args.json {
            Format::Json
        } else if args.table {
            Format::Table
        } else if args.paths || !std::io::stdout().is_terminal() {
            Format::Paths
        } else {
            Format::Table
        }
    }
}

/// Lists the files most similar to `q`, as `search` lists hits, and says on stderr what
/// could not be compared.
pub fn answer(
    ctx: &Context,
    catalog: &Catalog,
    args: &SimilarArgs,
    q: &Query,
) -> anyhow::Result<Outcome> {
    let under: Vec<PathBuf> = args.under.iter().map(|d| super::stored_path(d)).collect();
    let options = Options {
        limit: args.limit,
        min_score: args.min_score,
        under: under.clone(),
        threads: 0,
        exact: args.exact,
    };
    // Counting the images (for what lacks an embedding) reads a table as long as the
    // catalog: on its own connection, while the comparison runs.
    let (found, images) = std::thread::scope(|s| -> anyhow::Result<_> {
        let counting = under
            .is_empty()
            .then(|| s.spawn(|| Catalog::open_readonly(&ctx.db).and_then(|c| c.image_count())));
        let found = most_similar(catalog, &ctx.db, q, &options)?;
        let images = match counting {
            Some(h) => Some(h.join().expect("the counting thread panicked")?),
            None => None,
        };
        Ok((found, images))
    })?;
    report_unseen(catalog, q.model_id, &found.read, images)?;
    let format = Format::of(args);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut rows: Vec<(f32, PathBuf, Hash)> = Vec::new();
    'images: for (score, hash) in &found.best {
        for f in catalog.files_with(hash)? {
            if !under.is_empty() && !under.iter().any(|u| f.path.starts_with(u) && &f.path != u) {
                continue;
            }
            if rows.len() == args.limit {
                break 'images;
            }
            rows.push((*score, f.path, *hash));
        }
    }
    match format {
        Format::Paths | Format::Null => {
            let end = if format == Format::Null { 0 } else { b'\n' };
            for (_, path, _) in &rows {
                out.write_all(path.as_os_str().as_bytes())?;
                out.write_all(&[end])?;
            }
        }
        Format::Json => {
            for (score, path, hash) in &rows {
                let tags = catalog.tags(hash)?;
                let v = serde_json::json!({
                    "path": path.to_string_lossy(),
                    "hash": hex(hash),
                    "score": round4(*score),
                    "tags": tags_json(&tags),
                });
                writeln!(out, "{v}")?;
            }
        }
        Format::Table => {
            let mut lines = Vec::with_capacity(rows.len());
            for (score, path, hash) in &rows {
                let tag = catalog.tags(hash)?.into_iter().next();
                lines.push((
                    *score,
                    path.to_string_lossy().into_owned(),
                    tag.map_or(String::new(), |t| t.label),
                ));
            }
            let pw = lines
                .iter()
                .map(|l| l.1.chars().count())
                .max()
                .unwrap_or(0)
                .max(4);
            writeln!(out, "{:>6}  {:<pw$}  TAG", "SCORE", "PATH")?;
            for (score, path, tag) in lines {
                writeln!(out, "{score:>6.3}  {path:<pw$}  {tag}")?;
            }
        }
    }
    out.flush()?;
    Ok(if rows.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}

/// Says on stderr how many images could not be compared: without an embedding, or with
/// another model's. `images`: how many the catalog holds (None under folders: the images
/// there without one are not counted).
fn report_unseen(
    catalog: &Catalog,
    model_id: i64,
    read: &[(i64, u64)],
    images: Option<u64>,
) -> anyhow::Result<()> {
    let names = catalog.model_names()?;
    let name = |id: i64| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("?".to_string(), |(_, n)| n.clone())
    };
    let others: Vec<String> = read
        .iter()
        .filter(|(m, n)| *m != model_id && *n > 0)
        .map(|(m, n)| format!("{n} by `{}`", name(*m)))
        .collect();
    if !others.is_empty() {
        eprintln!(
            "phototag: not compared: images with embeddings of another model ({}); `phototag retag --model {}` classifies them with this one",
            others.join(", "),
            name(model_id)
        );
    }
    if let Some(images) = images {
        let total: u64 = read.iter().map(|(_, n)| n).sum();
        let without = images.saturating_sub(total);
        if without > 0 {
            eprintln!(
                "phototag: not compared: {without} image(s) without an embedding (catalogued before phototag kept them); `phototag retag --embeddings` adds theirs"
            );
        }
    }
    Ok(())
}

/// `phototag dupes --near`: groups of exact and near copies, the best-quality photo first.
pub fn near(ctx: &Context, args: &DupesArgs) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    let threshold = args.threshold.unwrap_or(ctx.config.similar.near_threshold);
    let under = args.under.as_deref().map(super::stored_path);
    let report = near_duplicates(&catalog, threshold, under.as_deref())?;
    for (model, plan) in &report.plans {
        tracing::debug!(model, ?plan, "near copies: hashing and exact checks");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, g) in report.groups.iter().enumerate() {
        if args.json {
            writeln!(out, "{}", g.to_json())?;
            continue;
        }
        if i > 0 {
            writeln!(out)?;
        }
        for m in &g.members {
            for p in &m.paths {
                write!(out, "{:.4}\t", m.similarity)?;
                out.write_all(p.as_os_str().as_bytes())?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    let counts = &report.counts;
    if counts.without() > 0 {
        eprintln!(
            "phototag: {} of {} image(s) have no embedding and were not compared: `phototag retag --embeddings` adds theirs",
            counts.without(),
            counts.images
        );
    }
    if counts.by_model.len() > 1 {
        eprintln!(
            "phototag: the catalog holds embeddings of {} models; only photos of the same model were compared",
            counts.by_model.len()
        );
    }
    if !report.groups.is_empty() {
        let extra: usize = report.groups.iter().map(|g| g.extra_files()).sum();
        eprintln!(
            "{} groups; {extra} files beyond the best of each (similarity at least {threshold})",
            report.groups.len()
        );
    }
    Ok(if report.groups.is_empty() {
        Outcome::NoMatch
    } else {
        Outcome::Success
    })
}
