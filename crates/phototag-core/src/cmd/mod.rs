//! What commands share (the loaded configuration, `Outcome`, output helpers), and the
//! commands that only read the catalog: `search`, `labels`, `dupes`, `show`, `stats`,
//! `status`. They live here, away from libtorch, so that they start in milliseconds.
//!
//! May not: define flags (see `cli`), load a model, or hold logic a library module should own.

pub mod catalog;
pub mod search;
pub mod status;

use std::path::PathBuf;

use crate::cli::Cli;
use crate::config::{self, Config, Origin};

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
#[derive(Debug, Clone)]
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
}
