//! `phototag similar` in the engine: what the light run does (`phototag_light::cmd::
//! similar`), plus classifying a photo the catalog does not know. The photo goes through
//! the one classification flow (`classify::prepare_bytes`, a `Batch` of one); nothing is
//! written.
//!
//! May not: write to the catalog, or compare embeddings itself.

use super::ModelContext;
use crate::classify::{prepare_bytes, Batch, Scale};
use phototag_light::cli::SimilarArgs;
use phototag_light::cmd::similar::{answer, resolve, Resolved};
use phototag_light::cmd::{Context, Outcome};
use phototag_light::similar::Query;
use phototag_light::vectors::Embedding;

pub fn run(ctx: &Context, args: &SimilarArgs) -> anyhow::Result<Outcome> {
    let catalog = ctx.open_catalog_readonly()?;
    let (path, bytes, hash) = match resolve(ctx, &catalog, args)? {
        Resolved::Query(q) => return answer(ctx, &catalog, args, &q),
        Resolved::Done(outcome) => return Ok(outcome),
        Resolved::NeedsModel { path, bytes, hash } => (path, bytes, hash),
    };
    let choice = ctx.model(&args.run)?;
    let manifest = &choice.stored.manifest;
    manifest.embeddings()?;
    let Some(model_id) = catalog.model_id(&manifest.sha256)? else {
        anyhow::bail!(
            "model `{}` tagged nothing in this catalog, so there is nothing to compare {} with: name the catalog's model with --model (`phototag stats` lists it), or `phototag retag` with this one",
            choice.stored.name,
            path.display()
        );
    };
    let settings = choice.settings(&ctx.config);
    let prepared = match prepare_bytes(&bytes, &settings, Scale::Reduced) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("phototag: {}: {e}", path.display());
            return Ok(Outcome::Partial);
        }
    };
    let classifier = choice.load()?;
    let mut batch = Batch::new(1);
    batch.push((), Ok(prepared));
    let classified = batch
        .run(&classifier, settings.top_k)
        .pop()
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("the model gave no answer"))??;
    let Some(embedding) = classified
        .embedding
        .as_deref()
        .and_then(Embedding::quantize)
    else {
        eprintln!(
            "phototag: {}: the model's features are all zero: nothing to compare",
            path.display()
        );
        return Ok(Outcome::Partial);
    };
    let q = Query {
        model_id,
        embedding,
        exclude: Some(hash),
    };
    answer(ctx, &catalog, args, &q)
}
