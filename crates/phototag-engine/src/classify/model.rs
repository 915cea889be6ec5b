//! From a resolved model to a loaded [`Classifier`], the same way for every command:
//! `ModelContext::model` (in `cmd`) resolves flags and configuration to a [`ModelChoice`];
//! [`ModelChoice::load`] loads it (saying when its weights are random); [`LazyClassifier`]
//! loads it only when some image needs it.
//!
//! May not: read flags or configuration (the command resolved them).

use anyhow::Context as _;

use phototag_light::config::Config;
use phototag_light::model_files::{Manifest, StoredModel};

use super::Settings;
use crate::model::{Classifier, ClassifierOptions};

/// A prepared model and how to run it.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    pub stored: StoredModel,
    pub options: ClassifierOptions,
    /// Images per forward pass.
    pub batch_size: usize,
}

impl ModelChoice {
    /// Loads the model (its hash checked, optimised when asked); warns when its weights
    /// are random, so its tags mean nothing.
    pub fn load(&self) -> anyhow::Result<Classifier> {
        let stored = &self.stored;
        if !stored.manifest.pretrained {
            tracing::warn!(model = %stored.name, "this model has random weights: its tags mean nothing");
        }
        Classifier::load(stored, &self.options).with_context(|| {
            format!(
                "loading model `{}` from {}",
                stored.name,
                stored.dir.display()
            )
        })
    }

    /// The classification settings for this model under `config`.
    pub fn settings(&self, config: &Config) -> Settings {
        Settings::new(config, &self.stored.manifest, self.batch_size)
    }
}

type Load<'a> = Box<dyn FnMut() -> anyhow::Result<Classifier> + Send + 'a>;

/// The classifier, loaded only when some file needs classifying: a run over an unchanged
/// library never pays for loading the model, and the daemon unloads it when idle.
pub struct LazyClassifier<'a> {
    load: Load<'a>,
    loaded: Option<Classifier>,
    /// The model's name and manifest, known without loading it (for catalog rows of
    /// content recorded while classification waits).
    identity: Option<(String, Manifest)>,
}

impl<'a> LazyClassifier<'a> {
    pub fn new(load: impl FnMut() -> anyhow::Result<Classifier> + Send + 'a) -> Self {
        Self {
            load: Box::new(load),
            loaded: None,
            identity: None,
        }
    }

    /// Loads `stored` with `load` when needed; its name and manifest are known before.
    pub fn for_model(
        stored: &StoredModel,
        load: impl FnMut() -> anyhow::Result<Classifier> + Send + 'a,
    ) -> Self {
        Self {
            identity: Some((stored.name.clone(), stored.manifest.clone())),
            ..Self::new(load)
        }
    }

    /// An already loaded classifier.
    pub fn ready(c: Classifier) -> Self {
        Self {
            load: Box::new(|| Err(anyhow::anyhow!("already loaded"))),
            identity: Some((c.name().to_string(), c.manifest().clone())),
            loaded: Some(c),
        }
    }

    /// The classifier, loading it first if it is not yet.
    pub fn get(&mut self) -> anyhow::Result<&Classifier> {
        if self.loaded.is_none() {
            let c = (self.load)()?;
            self.identity = Some((c.name().to_string(), c.manifest().clone()));
            self.loaded = Some(c);
        }
        Ok(self.loaded.as_ref().expect("loaded above"))
    }

    /// The classifier if it is loaded.
    pub fn loaded(&self) -> Option<&Classifier> {
        self.loaded.as_ref()
    }

    /// The model's name and manifest, loading it only when they were not given.
    pub fn identity(&mut self) -> anyhow::Result<(String, Manifest)> {
        if self.identity.is_none() {
            self.get()?;
        }
        Ok(self.identity.clone().expect("known above"))
    }

    /// Drops the loaded model and hands the freed heap back to the system; the next
    /// [`LazyClassifier::get`] loads it again. Returns whether one was loaded.
    pub fn unload(&mut self) -> bool {
        let was = self.loaded.take().is_some();
        if was {
            crate::model::optimized::release_free_heap();
        }
        was
    }
}
