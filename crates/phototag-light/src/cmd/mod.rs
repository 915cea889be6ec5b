//! What commands share (the loaded configuration, `Outcome`, output helpers), which side
//! runs each command ([`dispatch`]), and the commands that need no model: `search`,
//! `labels`, `dupes`, `show`, `stats`, `status`, `album`, `export`, `catalog copy`,
//! `model list`, and `similar` when the photo is in the catalog. They live here, away
//! from libtorch, so that they start in milliseconds.
//!
//! May not: define flags (see `cli`), load a model, or hold logic a library module should own.

pub mod album;
pub mod catalog;
pub mod copy;
pub mod export;
pub mod models;
pub mod search;
pub mod similar;
pub mod status;
pub mod teach;

use std::path::PathBuf;

use crate::cli::{
    BenchArgs, CatalogCommand, ClassifyArgs, Cli, Command, IndexArgs, ModelCommand, PrepareArgs,
    RetagArgs, ServeArgs, SimilarArgs, TeachArgs, WatchArgs,
};
use anyhow::Context as _;

use crate::catalog::{Catalog, Location};
use crate::config::{self, Config, Origin};
use crate::model_files::ModelStore;

/// A folder as the catalog stores paths: canonical where it exists, else made absolute
/// (a missing root is kept, to be reported offline).
pub fn stored_path(dir: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// A command ready to run on a loaded [`Context`].
pub type Run<'a> = Box<dyn FnOnce(&Context) -> anyhow::Result<Outcome> + 'a>;

/// The commands that need the model, for the engine to run.
#[derive(Debug, Clone, Copy)]
pub enum EngineCommand<'a> {
    Classify(&'a ClassifyArgs),
    Index(&'a IndexArgs),
    Retag(&'a RetagArgs),
    Watch(&'a WatchArgs),
    Bench(&'a BenchArgs),
    Serve(&'a ServeArgs),
    ModelPrepare(&'a PrepareArgs),
    /// `similar` when the light run answered [`Outcome::NeedsEngine`] (a photo to classify).
    Similar(&'a SimilarArgs),
    /// `teach` when the light run answered [`Outcome::NeedsEngine`] (an example to classify).
    Teach(&'a TeachArgs),
}

/// Which side runs a command.
pub enum Dispatch<'a> {
    /// It needs no model: run here (both binaries can).
    Light(Run<'a>),
    /// It needs the model: only `phototag-engine` runs it.
    Engine(EngineCommand<'a>),
    /// Light unless its input needs the model: `phototag` runs the light side, and when
    /// that answers [`Outcome::NeedsEngine`] hands the command to `phototag-engine`, which
    /// runs the engine side (a superset) from the start.
    Either(Run<'a>, EngineCommand<'a>),
}

/// The one list of which commands are light and which need the engine. The match names
/// every command (no wildcard): a new command must be placed on one side or the other.
pub fn dispatch(command: &Command) -> Dispatch<'_> {
    use Dispatch::{Engine, Light};
    match command {
        Command::Search(a) => Light(Box::new(move |c| search::search(c, a))),
        Command::Labels(a) => Light(Box::new(move |c| search::labels(c, a))),
        Command::Dupes(a) => Light(Box::new(move |c| search::dupes(c, a))),
        Command::Similar(a) => Dispatch::Either(
            Box::new(move |c| similar::similar(c, a)),
            EngineCommand::Similar(a),
        ),
        Command::Teach(a) => Dispatch::Either(
            Box::new(move |c| teach::teach(c, a, &[])),
            EngineCommand::Teach(a),
        ),
        Command::Show(a) => Light(Box::new(move |c| catalog::show(c, a))),
        Command::Stats(a) => Light(Box::new(move |c| catalog::stats(c, a))),
        Command::Status(a) => Light(Box::new(move |c| status::status(c, a))),
        Command::Album(a) => Light(Box::new(move |c| album::run(c, a))),
        Command::Export(a) => Light(Box::new(move |c| export::run(c, a))),
        Command::Catalog(CatalogCommand::Copy(a)) => Light(Box::new(move |c| copy::run(c, a))),
        Command::Model(ModelCommand::List { json }) => {
            Light(Box::new(move |c| models::list(c, *json)))
        }
        Command::Model(ModelCommand::Prepare(a)) => Engine(EngineCommand::ModelPrepare(a)),
        Command::Classify(a) => Engine(EngineCommand::Classify(a)),
        Command::Index(a) => Engine(EngineCommand::Index(a)),
        Command::Retag(a) => Engine(EngineCommand::Retag(a)),
        Command::Watch(a) => Engine(EngineCommand::Watch(a)),
        Command::Bench(a) => Engine(EngineCommand::Bench(a)),
        Command::Serve(a) => Engine(EngineCommand::Serve(a)),
    }
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
    /// A light run found that its input needs the model ([`Dispatch::Either`]): `phototag`
    /// hands the command to the engine. Never the engine's answer.
    NeedsEngine,
}

/// What every command starts from.
#[derive(Debug, Clone)]
pub struct Context {
    pub config: Config,
    pub origin: Origin,
    pub model_dir: PathBuf,
    /// The catalog: a SQLite file or a PostgreSQL database.
    pub db: Location,
}

impl Context {
    /// Reads the configuration (flags and environment override it).
    pub fn load(cli: &Cli) -> Result<Self, config::ConfigError> {
        let (config, origin) = config::load(cli.config.as_deref())?;
        let model_dir = cli.model_dir.clone().unwrap_or_else(|| config.model_dir());
        let db = config.catalog(cli.db.as_deref().map(std::path::Path::as_os_str));
        Ok(Self {
            config,
            origin,
            model_dir,
            db,
        })
    }

    /// phototag's own files (the catalog and what lies beside it, the thumbnail cache),
    /// which walks and watches leave out.
    pub fn own_files(&self) -> Vec<PathBuf> {
        crate::paths::own_files(&self.db, &[self.config.serve.thumb_dir()])
    }

    /// The folder of prepared models.
    pub fn models(&self) -> ModelStore {
        ModelStore::new(&self.model_dir)
    }

    /// Opens (or creates) the catalog to write to it, naming it in the error.
    pub fn open_catalog(&self) -> anyhow::Result<Catalog> {
        Catalog::open(&self.db).with_context(|| self.catalog_context())
    }

    /// As [`Context::open_catalog`], but a catalog server that cannot be reached now is
    /// waited for (see [`Catalog::open_waiting`]): the daemon starts this way.
    pub fn open_catalog_waiting(&self) -> anyhow::Result<Catalog> {
        let c = Catalog::open_waiting(&self.db).with_context(|| self.catalog_context())?;
        if let Err(e) = c.ping() {
            tracing::warn!("{e}: waiting for it");
        }
        Ok(c)
    }

    /// Opens the catalog read-only (it must exist), naming it in the error.
    pub fn open_catalog_readonly(&self) -> anyhow::Result<Catalog> {
        Catalog::open_readonly(&self.db).with_context(|| self.catalog_context())
    }

    fn catalog_context(&self) -> String {
        format!("opening the catalog {}", self.db)
    }
}
