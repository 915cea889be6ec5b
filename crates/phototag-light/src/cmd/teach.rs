//! `phototag teach NAME --yes PHOTO|HASH|QUERY... [--no ...]`, `--list`, `--show NAME`,
//! `--remove NAME`: tags taught by example. Examples resolve to stored embeddings here,
//! without libtorch; a file whose content the catalog does not know must be classified:
//! [`teach`] answers [`Outcome::NeedsEngine`], `phototag` execs `phototag-engine`, which
//! classifies those files ([`files_to_classify`]) and calls [`teach`] with their embeddings.
//!
//! May not: fit or score (see `taught`), build SQL, or load a model.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::similar::read_limited;
use super::{Context, Outcome};
use crate::album::UsageError;
use crate::catalog::{hex, parse_hash, Catalog, Hash, TaughtRow};
use crate::cli::TeachArgs;
use crate::output::{applied_json, taught_json};
use crate::search::{edit_distance, Query, Request};
use crate::taught::apply::{Applied, ApplyError};
use crate::taught::refine::{matches, refine, Match, NewExample};
use crate::taught::Figures;
use crate::vectors::Embedding;

/// Photos a query gives as examples, at most (its best).
pub const QUERY_EXAMPLES: usize = 500;

/// What the engine classified for [`teach`]: the embedding of each file's content by the
/// model (and that model's id in the catalog), and how many files failed (already reported).
#[derive(Debug, Default)]
pub struct Classified {
    pub embeddings: Vec<(Hash, i64, Embedding)>,
    pub failed: usize,
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// An argument of --yes or --no that names an existing file.
fn as_file(arg: &str) -> Option<&Path> {
    let p = Path::new(arg);
    std::fs::metadata(p).is_ok_and(|m| m.is_file()).then_some(p)
}

/// The example files whose content has no stored embedding: what the engine must
/// classify (path, bytes, hash). Unreadable files are left for [`teach`] to report.
pub fn files_to_classify(
    ctx: &Context,
    catalog: &Catalog,
    args: &TeachArgs,
) -> anyhow::Result<Vec<(PathBuf, Vec<u8>, Hash)>> {
    let mut out = Vec::new();
    for arg in args.yes.iter().chain(&args.no) {
        let Some(path) = as_file(arg) else { continue };
        let Ok(bytes) = read_limited(path, ctx.config.limits.max_file_bytes) else {
            continue;
        };
        let hash = crate::catalog::hash_bytes(&bytes);
        if catalog.embedding(&hash)?.is_none() {
            out.push((path.to_path_buf(), bytes, hash));
        }
    }
    Ok(out)
}

/// `phototag teach`. `given` holds what the engine classified (empty in the light run: a
/// file the catalog does not know then answers [`Outcome::NeedsEngine`]).
pub fn teach(ctx: &Context, args: &TeachArgs, given: &[Classified]) -> anyhow::Result<Outcome> {
    if args.list {
        return list(ctx, args.json);
    }
    if let Some(name) = &args.show {
        return show(ctx, name, args.limit, args.json);
    }
    if let Some(name) = &args.remove {
        return remove(ctx, name);
    }
    let name = args.name.as_deref().unwrap_or_default();
    crate::taught::check_name(name).map_err(usage)?;
    let mut catalog = ctx.open_catalog()?;
    let existing = catalog.taught_tag(name)?;
    if args.yes.is_empty() && (existing.is_none() || args.replace || args.no.is_empty()) {
        return Err(usage(format!(
            "no --yes example: give photos, content hashes or queries of `{name}` with --yes (a tag that exists can be corrected with --no alone)"
        )));
    }
    let name = existing
        .as_ref()
        .map_or(name, |t| t.name.as_str())
        .to_string();
    let classified: HashMap<Hash, (i64, &Embedding)> = given
        .iter()
        .flat_map(|c| &c.embeddings)
        .map(|(h, m, e)| (*h, (*m, e)))
        .collect();
    let mut problems = given.iter().map(|c| c.failed).sum::<usize>();
    let mut needs_model = false;
    // hash → (positive, explicit, model, embedding); explicit examples (files, hashes)
    // override what a query gave.
    let mut new: HashMap<Hash, (bool, bool, i64, Embedding)> = HashMap::new();
    let taught = catalog.taught_names()?;
    for (positive, list) in [(true, &args.yes), (false, &args.no)] {
        for arg in list {
            let found = resolve(ctx, &catalog, &taught, &classified, arg)?;
            let (explicit, items) = match found {
                Found::Examples { explicit, items } => (explicit, items),
                Found::NeedsModel => {
                    needs_model = true;
                    continue;
                }
                Found::Problem(msg) => {
                    eprintln!("phototag: {arg}: {msg}");
                    problems += 1;
                    continue;
                }
            };
            for (hash, model, emb) in items {
                match new.get(&hash) {
                    Some(&(p, e, _, _)) if p != positive && e == explicit => {
                        return Err(usage(format!(
                            "{} is given both as --yes and as --no ({arg})",
                            hex(&hash)
                        )));
                    }
                    Some(&(_, true, _, _)) if !explicit => continue,
                    _ => {
                        new.insert(hash, (positive, explicit, model, emb));
                    }
                }
            }
        }
    }
    if needs_model && given.is_empty() {
        return Ok(Outcome::NeedsEngine);
    }
    let new = new
        .into_iter()
        .map(|(hash, (positive, _, model_id, embedding))| {
            let e = NewExample {
                positive,
                model_id,
                embedding,
            };
            (hash, e)
        })
        .collect();
    let refined = match refine(&mut catalog, &name, existing.as_ref(), new, args.replace) {
        Ok(r) => r,
        Err(ApplyError::Teach(e)) => return Err(e.into()),
        Err(ApplyError::Catalog(e)) => return Err(e.into()),
    };
    if refined.lost > 0 {
        eprintln!(
            "phototag: warning: {} example(s) have no embedding by the tag's model and are left out",
            refined.lost
        );
    }
    let (applied, corrected) = (refined.applied, refined.corrected);
    report(&applied, corrected, args.json)?;
    Ok(if problems > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// What one --yes or --no argument gave.
enum Found {
    /// (hash, model, embedding) each; `explicit` for a file or hash (not a query).
    Examples {
        explicit: bool,
        items: Vec<(Hash, i64, Embedding)>,
    },
    /// A file whose content must be classified first.
    NeedsModel,
    /// Nothing usable, and why.
    Problem(String),
}

fn resolve(
    ctx: &Context,
    catalog: &Catalog,
    taught: &[(String, usize)],
    classified: &HashMap<Hash, (i64, &Embedding)>,
    arg: &str,
) -> anyhow::Result<Found> {
    let one = |hash: Hash, model: i64, e: Embedding| Found::Examples {
        explicit: true,
        items: vec![(hash, model, e)],
    };
    if let Some(path) = as_file(arg) {
        let bytes = match read_limited(path, ctx.config.limits.max_file_bytes) {
            Ok(b) => b,
            Err(e) => return Ok(Found::Problem(format!("cannot read: {e}"))),
        };
        let hash = crate::catalog::hash_bytes(&bytes);
        if let Some(s) = catalog.embedding(&hash)? {
            return Ok(one(hash, s.model_id, s.embedding));
        }
        return Ok(match classified.get(&hash) {
            Some((m, e)) => one(hash, *m, (*e).clone()),
            None => Found::NeedsModel,
        });
    }
    if let Some(hash) = parse_hash(arg) {
        return Ok(match catalog.embedding(&hash)? {
            Some(s) => one(hash, s.model_id, s.embedding),
            None if catalog.image(&hash)?.is_none() => {
                Found::Problem("no image with this content hash in the catalog".into())
            }
            None => Found::Problem(
                "this image has no embedding: run `phototag retag --embeddings`".into(),
            ),
        });
    }
    let query = match Query::compile_with(arg, 0.0, taught) {
        Ok(q) => q,
        Err(e) => return Ok(Found::Problem(format!("not a file, hash or query: {e}"))),
    };
    if let Some(t) = query.unknown().next() {
        return Ok(Found::Problem(format!(
            "not a file, and no ImageNet class, label or taught tag matches `{}`",
            t.text
        )));
    }
    let mut r = Request::new(query.compiled);
    r.limit = Some(QUERY_EXAMPLES);
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for h in catalog.find(&r)? {
        if seen.insert(h.hash) {
            if let Some(s) = catalog.embedding(&h.hash)? {
                items.push((h.hash, s.model_id, s.embedding));
            }
        }
    }
    if items.is_empty() {
        return Ok(Found::Problem(
            "the query matches no photo with an embedding".into(),
        ));
    }
    Ok(Found::Examples {
        explicit: false,
        items,
    })
}

fn percent(x: f32) -> String {
    format!("{:.0}%", x * 100.0)
}

fn figures_line(f: &Figures, threshold: f32) -> String {
    match f.validation {
        Some(v) => format!(
            "cross-validated ({} folds): precision {}, recall {}, at threshold {:.2}",
            v.folds,
            percent(v.precision),
            percent(v.recall),
            threshold
        ),
        None => format!("not cross-validated (too few examples); threshold {threshold:.2}"),
    }
}

/// The figures on stdout, the warnings on stderr.
fn report(a: &Applied, corrected: usize, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = applied_json(a, corrected);
        v["warnings"] = json!(a.warnings);
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: taught from {} yes and {} no examples ({}){}",
            a.name,
            a.figures.yes,
            a.figures.no,
            a.figures.model,
            if corrected > 0 {
                format!(", {corrected} corrected")
            } else {
                String::new()
            }
        )?;
        writeln!(out, "  {}", figures_line(&a.figures, a.threshold))?;
        writeln!(
            out,
            "  matches {} of {} photos in the catalog (search: phototag search '{}')",
            a.matches, a.scored, a.name
        )?;
    }
    for w in &a.warnings {
        eprintln!("phototag: warning: {w}");
    }
    Ok(())
}

/// The tag of this name, or exit 1 with the close names.
fn find_tag(catalog: &Catalog, name: &str) -> anyhow::Result<Option<TaughtRow>> {
    if let Some(t) = catalog.taught_tag(name)? {
        return Ok(Some(t));
    }
    let lower = name.to_lowercase();
    let close: Vec<String> = catalog
        .taught_names()?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| {
            let l = n.to_lowercase();
            edit_distance(&l, &lower) <= 2 || l.contains(&lower) || lower.contains(&l)
        })
        .collect();
    let mut m = format!("phototag: no taught tag `{name}`");
    if close.is_empty() {
        m.push_str(" (`phototag teach --list` lists them)");
    } else {
        m.push_str(&format!("; close: {}", close.join(", ")));
    }
    eprintln!("{m}");
    Ok(None)
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    let mut out = std::io::stdout().lock();
    for t in catalog.taught_tags()? {
        let f: Option<Figures> = serde_json::from_str(&t.figures).ok();
        let matches = catalog.taught_match_count(t.id)?;
        if json {
            writeln!(out, "{}", taught_json(&t, f.as_ref(), matches))?;
        } else {
            let (yes, no) = f.as_ref().map_or((0, 0), |f| (f.yes, f.no));
            writeln!(
                out,
                "{}\t{} matches\t{} yes / {} no\t{}",
                t.name,
                matches,
                yes,
                no,
                f.as_ref()
                    .map_or(String::new(), |f| figures_line(f, t.threshold))
            )?;
        }
    }
    Ok(Outcome::Success)
}

fn remove(ctx: &Context, name: &str) -> anyhow::Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let Some(t) = find_tag(&catalog, name)? else {
        return Ok(Outcome::NoMatch);
    };
    let mut w = catalog.begin()?;
    w.remove_taught(&t.name)?;
    w.commit()?;
    eprintln!("taught tag `{}` removed", t.name);
    Ok(Outcome::Success)
}

/// A photo of the catalog: its first path, or its hash when no file holds it.
fn shown(catalog: &Catalog, hash: &Hash) -> anyhow::Result<String> {
    Ok(catalog
        .files_with(hash)?
        .into_iter()
        .next()
        .map_or_else(|| hex(hash), |f| f.path.to_string_lossy().into_owned()))
}

fn show(ctx: &Context, name: &str, limit: usize, json: bool) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    let Some(t) = find_tag(&catalog, name)? else {
        return Ok(Outcome::NoMatch);
    };
    let f: Option<Figures> = serde_json::from_str(&t.figures).ok();
    let examples = catalog.taught_examples(t.id)?;
    let m = matches(&catalog, &ctx.db, &t, &examples, limit)?;
    let (best, border, matches, scored) = (m.best, m.borderline, m.matches, m.scored);
    let mut out = std::io::stdout().lock();
    let row = |m: &Match| -> anyhow::Result<serde_json::Value> {
        Ok(
            json!({"hash": hex(&m.hash), "path": shown(&catalog, &m.hash)?, "probability": (m.probability * 1e4).round() / 1e4}),
        )
    };
    if json {
        let mut v = taught_json(&t, f.as_ref(), matches as u64);
        v["scored"] = json!(scored);
        v["examples"] = examples
            .iter()
            .map(|e| Ok(json!({"hash": hex(&e.hash), "yes": e.positive, "path": shown(&catalog, &e.hash)?})))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into();
        v["best"] = best
            .iter()
            .map(row)
            .collect::<anyhow::Result<Vec<_>>>()?
            .into();
        v["borderline"] = border
            .iter()
            .map(row)
            .collect::<anyhow::Result<Vec<_>>>()?
            .into();
        writeln!(out, "{v}")?;
        return Ok(Outcome::Success);
    }
    writeln!(out, "{}", t.name)?;
    if let Some(f) = &f {
        writeln!(
            out,
            "  model {}; {} yes, {} no examples",
            f.model, f.yes, f.no
        )?;
        writeln!(out, "  {}", figures_line(f, t.threshold))?;
    }
    writeln!(out, "  matches {matches} of {scored} photos")?;
    for (title, yes) in [("yes examples", true), ("no examples", false)] {
        writeln!(out, "{title}:")?;
        for e in examples.iter().filter(|e| e.positive == yes) {
            writeln!(out, "  {}", shown(&catalog, &e.hash)?)?;
        }
    }
    writeln!(out, "best matches:")?;
    for m in &best {
        writeln!(
            out,
            "  {:5.1}%  {}",
            m.probability * 100.0,
            shown(&catalog, &m.hash)?
        )?;
    }
    writeln!(out, "borderline (correct with --yes or --no):")?;
    for m in &border {
        let (h, p) = (&m.hash, m.probability);
        let side = if m.tagged { "tagged" } else { "not tagged" };
        writeln!(
            out,
            "  {:5.1}%  {side:10}  {}",
            p * 100.0,
            shown(&catalog, h)?
        )?;
    }
    Ok(Outcome::Success)
}
