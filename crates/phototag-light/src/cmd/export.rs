//! `phototag export --format json|csv|xmp [QUERY]`: the tags of the whole catalog, or of
//! a query's matches.
//!
//! May not: format records itself (see `export`) or write sidecars itself (see `sidecar`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::catalog::{Catalog, Hash};
use crate::cli::{ExportArgs, ExportFormat};
use crate::export::{self, Record};
use crate::search::{Query, Request};
use crate::sidecar::{self, Written};

/// Every file, or the files a query matches, with model and tags, by path.
fn records(catalog: &Catalog, terms: &[String]) -> anyhow::Result<Vec<Record>> {
    if terms.is_empty() {
        return Ok(catalog
            .all_files_with_tags()?
            .into_iter()
            .map(Record::from)
            .collect());
    }
    let q = Query::from_args(terms, 0.0, &catalog.taught_names()?)?;
    for t in q.unknown() {
        eprintln!("phototag: no ImageNet class or label matches `{}`", t.text);
    }
    let mut hits = catalog.find(&Request::new(q.compiled))?;
    hits.sort_by(|a, b| a.path.cmp(&b.path));
    let mut cache: HashMap<Hash, (String, Vec<crate::catalog::TagRow>)> = HashMap::new();
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        if let std::collections::hash_map::Entry::Vacant(v) = cache.entry(h.hash) {
            match catalog.model_and_tags(&h.hash)? {
                Some(mt) => {
                    v.insert(mt);
                }
                None => continue,
            }
        }
        let (model, tags) = &cache[&h.hash];
        out.push(Record {
            path: h.path,
            hash: crate::catalog::hex(&h.hash),
            model: model.clone(),
            tags: tags.clone(),
        });
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: &ExportArgs) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    let records = records(&catalog, &args.terms)?;
    match args.format {
        ExportFormat::Json | ExportFormat::Csv => {
            let sink: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut w = std::io::BufWriter::new(sink);
            if args.format == ExportFormat::Json {
                for r in &records {
                    writeln!(w, "{}", export::json_line(r))?;
                }
            } else {
                let mut c = export::csv_writer(&mut w)?;
                for r in &records {
                    export::write_csv(&mut c, r)?;
                }
                c.flush()?;
            }
            w.flush()?;
            eprintln!("{} files exported", records.len());
            Ok(Outcome::Success)
        }
        ExportFormat::Xmp => xmp(&records, args.output.as_deref()),
    }
}

fn xmp(records: &[Record], out_dir: Option<&std::path::Path>) -> anyhow::Result<Outcome> {
    let (mut created, mut merged, mut unchanged, mut missing, mut failed) = (0, 0, 0, 0, 0);
    for r in records {
        let target: PathBuf = match out_dir {
            Some(dir) => {
                let rel = r.path.strip_prefix("/").unwrap_or(&r.path);
                let t = sidecar::path_for(&dir.join(rel));
                if let Some(parent) = t.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                t
            }
            None => {
                if !r.path.is_absolute() || !r.path.exists() {
                    // Offline, gone, or on another host (`host:/path`): never create
                    // folders where the photo should be.
                    missing += 1;
                    continue;
                }
                sidecar::path_for(&r.path)
            }
        };
        match sidecar::write_to(&target, &r.model, &r.tags) {
            Ok(Written::Created) => created += 1,
            Ok(Written::Merged) => merged += 1,
            Ok(Written::Unchanged) => unchanged += 1,
            Err(e) => {
                eprintln!("phototag: {e}");
                failed += 1;
            }
        }
    }
    eprintln!(
        "sidecars: {created} created, {merged} merged, {unchanged} unchanged, {missing} photos missing, {failed} failed"
    );
    Ok(if failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}
