//! `phototag-engine`: runs every phototag command, including those that need libtorch
//! (`classify`, `model`, `index`, `retag`, `watch`, `bench`). People run `phototag`, which
//! hands these commands over by `exec`; the engine parses the same flags again.

use std::process::ExitCode;

use clap::Parser;

use phototag::cli::{Cli, Command};
use phototag::cmd;
use phototag::exit;
use phototag_core::app;

fn main() -> ExitCode {
    app::default_sigpipe();
    let cli = Cli::parse();
    let ctx = match app::load_context(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tracing::debug!(origin = ?ctx.origin, model_dir = %ctx.model_dir.display(), "configuration");
    if let Some(run) = cmd::read_only(&cli.command) {
        return app::finish(run(&ctx), exit::code_for);
    }
    let result = match &cli.command {
        Command::Classify(a) => cmd::classify::run(&ctx, a),
        Command::Model(m) => cmd::model::run(&ctx, m),
        Command::Index(a) => cmd::index::run(&ctx, a),
        Command::Watch(a) => cmd::watch::run(&ctx, &cli, a),
        Command::Retag(a) => cmd::index::retag(&ctx, a),
        Command::Bench(b) => cmd::bench::run(&ctx, b),
        Command::Album(a) => cmd::album::run(&ctx, a),
        Command::Export(a) => cmd::export::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
        Command::Search(_)
        | Command::Labels(_)
        | Command::Dupes(_)
        | Command::Show(_)
        | Command::Stats(_)
        | Command::Status(_) => unreachable!("cmd::read_only() ran it"),
    };
    app::finish(result, exit::code_for)
}
