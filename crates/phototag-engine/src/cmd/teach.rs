//! `phototag teach` in the engine: what the light run does (`phototag_light::cmd::teach`),
//! plus classifying the example files the catalog does not know. They go through the one
//! classification flow (`classify::prepare_bytes`, one `Batch`); their embeddings are kept
//! with the tag's examples, not added to the catalog (the photos are not under a root).
//!
//! May not: fit or write the catalog itself.

use super::ModelContext;
use crate::classify::{prepare_bytes, Batch, Scale};
use phototag_light::cli::TeachArgs;
use phototag_light::cmd::teach::{files_to_classify, teach, Classified};
use phototag_light::cmd::{Context, Outcome};
use phototag_light::vectors::Embedding;

pub fn run(ctx: &Context, args: &TeachArgs) -> anyhow::Result<Outcome> {
    let mut catalog = ctx.open_catalog()?;
    let files = files_to_classify(ctx, &catalog, args)?;
    if files.is_empty() {
        drop(catalog);
        return teach(ctx, args, &[Classified::default()]);
    }
    let choice = ctx.model(&args.run)?;
    let manifest = &choice.stored.manifest;
    manifest.embeddings()?;
    let model_id = catalog.register_model(
        &choice.stored.name,
        &manifest.sha256,
        &manifest.architecture,
    )?;
    drop(catalog);
    let settings = choice.settings(&ctx.config);
    let classifier = choice.load()?;
    let mut batch = Batch::new(files.len());
    for (path, bytes, hash) in &files {
        batch.push(
            (path, *hash),
            prepare_bytes(bytes, &settings, Scale::Reduced),
        );
    }
    let mut given = Classified::default();
    for ((path, hash), r) in batch.run(&classifier, settings.top_k) {
        let embedding = r.map_err(|e| e.to_string()).and_then(|c| {
            c.embedding
                .as_deref()
                .and_then(Embedding::quantize)
                .ok_or_else(|| "the model's features are all zero".to_string())
        });
        match embedding {
            Ok(e) => given.embeddings.push((hash, model_id, e)),
            Err(e) => {
                eprintln!("phototag: {}: {e}", path.display());
                given.failed += 1;
            }
        }
    }
    teach(ctx, args, &[given])
}
