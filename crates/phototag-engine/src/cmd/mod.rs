//! One file per subcommand that needs the model ([`run`] is the engine's side of
//! `phototag_light::cmd::dispatch`), plus what they share: model resolution and loading
//! ([`ModelContext`]). The configuration and `Outcome` are `phototag_light::cmd`'s.
//!
//! May not: define flags (see `phototag_light::cli`) or hold logic a library module should own.

pub mod bench;
pub mod classify;
pub mod index;
pub mod prepare;
pub mod serve;
pub mod similar;
pub mod teach;
pub mod watch;

use phototag_light::cli::Cli;
use phototag_light::cmd::{Context, EngineCommand, Outcome};

use crate::classify::ModelChoice;
use crate::model::ClassifierOptions;
use phototag_light::cli::RunArgs;
use phototag_light::model_files::names::AUTO;

/// Runs a command that needs the model.
pub fn run(ctx: &Context, cli: &Cli, command: EngineCommand<'_>) -> anyhow::Result<Outcome> {
    match command {
        EngineCommand::Classify(a) => classify::run(ctx, a),
        EngineCommand::ModelPrepare(a) => prepare::run(ctx, a),
        EngineCommand::Index(a) => index::run(ctx, a),
        EngineCommand::Retag(a) => index::retag(ctx, a),
        EngineCommand::Watch(a) => watch::run(ctx, cli, a),
        EngineCommand::Bench(a) => bench::run(ctx, a),
        EngineCommand::Serve(a) => serve::run(ctx, a),
        EngineCommand::Similar(a) => similar::run(ctx, a),
        EngineCommand::Teach(a) => teach::run(ctx, a),
    }
}

/// What the model-side commands add to [`Context`]: the one way from flags and
/// configuration to a model.
pub trait ModelContext {
    /// Batch size: the flag's, else the configuration's (1 with `memory = "low"`).
    fn batch_size(&self, run: &RunArgs) -> usize;
    /// Resolves the model (flag, else config; `auto` logs its pick), its threads and batch
    /// size; [`ModelChoice::load`] loads it.
    fn model(&self, run: &RunArgs) -> anyhow::Result<ModelChoice>;
}

impl ModelContext for Context {
    fn batch_size(&self, run: &RunArgs) -> usize {
        let classify = &self.config.classify;
        run.batch_size
            .map(usize::from)
            .unwrap_or_else(|| classify.memory.batch_size(classify.batch_size))
    }

    fn model(&self, run: &RunArgs) -> anyhow::Result<ModelChoice> {
        let requested = run.model.as_deref().unwrap_or(&self.config.model);
        let stored = self.models().resolve(requested)?;
        if requested == AUTO {
            tracing::info!(model = %stored.name, dir = %stored.dir.display(), "model = auto: using {}", stored.name);
        } else {
            tracing::info!(model = %stored.name, "using model {}", stored.name);
        }
        Ok(ModelChoice {
            stored,
            options: ClassifierOptions {
                threads: run.threads.unwrap_or(self.config.classify.threads),
                optimize: self
                    .config
                    .classify
                    .memory
                    .optimize(self.config.classify.optimize),
                ..Default::default()
            },
            batch_size: self.batch_size(run),
        })
    }
}
