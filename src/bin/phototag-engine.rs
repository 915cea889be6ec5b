//! `phototag-engine`: runs every phototag command, including those that need libtorch
//! (`classify`, `model prepare`, `index`, `retag`, `watch`, `bench`, `serve`, and `similar`
//! of a photo the catalog does not know). People run
//! `phototag`, which hands these commands over by `exec`; the engine parses the same flags
//! again.

use std::process::ExitCode;

use clap::Parser;

use phototag_engine::{cmd, exit};
use phototag_light::app;
use phototag_light::cli::Cli;
use phototag_light::cmd::{dispatch, Dispatch};

fn main() -> ExitCode {
    app::default_sigpipe();
    let cli = Cli::parse();
    let ctx = match app::load_context(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tracing::debug!(origin = ?ctx.origin, model_dir = %ctx.model_dir.display(), "configuration");
    let result = match dispatch(&cli.command) {
        Dispatch::Light(run) => run(&ctx),
        Dispatch::Engine(command) | Dispatch::Either(_, command) => cmd::run(&ctx, &cli, command),
    };
    app::finish(result, exit::code_for)
}
