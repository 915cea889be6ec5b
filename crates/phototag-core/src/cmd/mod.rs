//! What commands share (the loaded configuration, `Outcome`, output helpers), and the
//! commands that only read the catalog: `search`, `labels`, `dupes`, `show`, `stats`,
//! `status`. They live here, away from libtorch, so that they start in milliseconds.
//!
//! May not: define flags (see `cli`), load a model, or hold logic a library module should own.

pub mod catalog;
pub mod search;
pub mod status;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
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

/// A command ready to run on a loaded [`Context`].
pub type Run<'a> = Box<dyn FnOnce(&Context) -> anyhow::Result<Outcome> + 'a>;

/// The commands that only read the catalog (the ones the `phototag` binary runs itself),
/// ready to run; `None` for the commands that need the model side.
pub fn read_only(command: &Command) -> Option<Run<'_>> {
    Some(match command {
        Command::Search(a) => Box::new(move |c| search::search(c, a)),
        Command::Labels(a) => Box::new(move |c| search::labels(c, a)),
        Command::Dupes(a) => Box::new(move |c| search::dupes(c, a)),
        Command::Show(a) => Box::new(move |c| catalog::show(c, a)),
        Command::Stats(a) => Box::new(move |c| catalog::stats(c, a)),
        Command::Status(a) => Box::new(move |c| status::status(c, a)),
        _ => return None,
    })
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
