//! One file per subcommand that needs the model, plus what they share: model resolution and
//! loading ([`ModelContext`]). The configuration, `Outcome` and the catalog-only commands
//! come from `phototag_core::cmd` and are re-exported here.
//!
//! May not: define flags (see `cli`) or hold logic a library module should own.

pub mod album;
pub mod bench;
pub mod classify;
pub mod export;
pub mod index;
pub mod model;
pub mod serve;
pub mod watch;

pub use phototag_core::cmd::{
    catalog, percent, read_only, search, status, stored_path, Context, Outcome,
};

use anyhow::Context as _;

use crate::cli::RunArgs;
use crate::model::{Classifier, ClassifierOptions, ModelStore};

/// What the model-side commands add to [`Context`].
pub trait ModelContext {
    /// The models folder.
    fn store(&self) -> ModelStore;
    /// Batch size after flags.
    fn batch_size(&self, run: &RunArgs) -> usize;
    /// Resolves the model (flag, else config; `auto` logs its pick) and loads it.
    fn classifier(&self, run: &RunArgs) -> anyhow::Result<Classifier>;
}

impl ModelContext for Context {
    fn store(&self) -> ModelStore {
        ModelStore::new(&self.model_dir)
    }

    fn batch_size(&self, run: &RunArgs) -> usize {
        run.batch_size
            .map(usize::from)
            .unwrap_or(self.config.classify.batch_size)
    }

    fn classifier(&self, run: &RunArgs) -> anyhow::Result<Classifier> {
        let requested = run.model.as_deref().unwrap_or(&self.config.model);
        let stored = self.store().resolve(requested)?;
        if requested == crate::model::AUTO {
            tracing::info!(model = %stored.name, dir = %stored.dir.display(), "model = auto: using {}", stored.name);
        } else {
            tracing::info!(model = %stored.name, "using model {}", stored.name);
        }
        if !stored.manifest.pretrained {
            tracing::warn!(model = %stored.name, "this model has random weights: its tags mean nothing");
        }
        let opts = ClassifierOptions {
            threads: run.threads.unwrap_or(self.config.classify.threads),
            optimize: self.config.classify.optimize,
            ..Default::default()
        };
        let c = Classifier::load(&stored, &opts).with_context(|| {
            format!(
                "loading model `{}` from {}",
                stored.name,
                stored.dir.display()
            )
        })?;
        Ok(c)
    }
}
