//! One file per subcommand, plus what they share: the loaded configuration and the model.
//!
//! May not: define flags (see `cli`) or hold logic a library module should own.

pub mod bench;
pub mod catalog;
pub mod classify;
pub mod index;
pub mod model;
pub mod search;
pub mod watch;

use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::{Cli, RunArgs};
use crate::config::{self, Config, Origin};
use crate::model::{Classifier, ClassifierOptions, ModelStore};

/// A probability in [0, 1] as the percent with two decimals that all JSON output uses.
pub fn percent(p: f32) -> f64 {
    ((p as f64) * 10_000.0).round() / 100.0
}

/// A folder as the catalog stores paths: canonical where it exists, else made absolute
/// (a missing root is kept, to be reported offline).
pub fn stored_path(dir: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some inputs failed; the rest were done (exit code 1).
    Partial,
    /// Nothing matched (search; exit code 1, as grep).
    NoMatch,
    /// Stopped by SIGINT/SIGTERM after saving what was done (exit code 130).
    Interrupted,
}

/// What every command starts from.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub origin: Origin,
    pub model_dir: PathBuf,
    pub db: PathBuf,
}

impl Context {
    /// Reads the configuration (flags and environment override it).
    pub fn load(cli: &Cli) -> Result<Self, config::ConfigError> {
        let (config, origin) = config::load(cli.config.as_deref())?;
        let model_dir = cli.model_dir.clone().unwrap_or_else(|| config.model_dir());
        let db = cli.db.clone().unwrap_or_else(|| config.db_path());
        Ok(Self {
            config,
            origin,
            model_dir,
            db,
        })
    }

    pub fn store(&self) -> ModelStore {
        ModelStore::new(&self.model_dir)
    }

    /// Batch size after flags.
    pub fn batch_size(&self, run: &RunArgs) -> usize {
        run.batch_size
            .map(usize::from)
            .unwrap_or(self.config.classify.batch_size)
    }

    /// Resolves the model (flag, else config; `auto` logs its pick) and loads it.
    pub fn classifier(&self, run: &RunArgs) -> anyhow::Result<Classifier> {
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
