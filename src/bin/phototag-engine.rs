//! `phototag-engine`: runs every phototag command, including those that need libtorch
//! (`classify`, `model`, `index`, `retag`, `watch`, `bench`). People run `phototag`, which
//! hands these commands over by `exec`; the engine parses the same flags again.

use std::process::ExitCode;

use clap::Parser;

use phototag::cli::{Cli, Command};
use phototag::cmd::{self, Context};
use phototag::exit;
use phototag_core::app;

fn main() -> ExitCode {
    app::default_sigpipe();
    let cli = Cli::parse();
    let ctx = match Context::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            app::init_logging(&cli, "info");
            eprintln!("phototag: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    app::init_logging(&cli, &ctx.config.log_level);
    tracing::debug!(origin = ?ctx.origin, model_dir = %ctx.model_dir.display(), "configuration");
    let result = match &cli.command {
        Command::Classify(a) => cmd::classify::run(&ctx, a),
        Command::Model(m) => cmd::model::run(&ctx, m),
        Command::Index(a) => cmd::index::run(&ctx, a),
        Command::Search(a) => cmd::search::search(&ctx, a),
        Command::Labels(a) => cmd::search::labels(&ctx, a),
        Command::Dupes(a) => cmd::search::dupes(&ctx, a),
        Command::Watch(a) => cmd::watch::run(&ctx, &cli, a),
        Command::Status(a) => cmd::status::status(&ctx, a),
        Command::Show(a) => cmd::catalog::show(&ctx, a),
        Command::Stats(a) => cmd::catalog::stats(&ctx, a),
        Command::Retag(a) => cmd::index::retag(&ctx, a),
        Command::Bench(b) => cmd::bench::run(&ctx, b),
        Command::Album(a) => cmd::album::run(&ctx, a),
        Command::Export(a) => cmd::export::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
    };
    app::finish(result, exit::code_for)
}
