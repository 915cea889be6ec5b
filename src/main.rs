//! The `phototag` binary: parses flags, sets up logging, runs one command, and maps the
//! result to an exit code (documented in README.md and `phototag --help`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use phototag::cli::{Cli, Command};
use phototag::cmd::{self, Context, Outcome};
use phototag::exit;

fn init_logging(cli: &Cli, default_level: &str) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => default_level,
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() && cli.verbose == 0 && !cli.quiet => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(level),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`phototag search dog | head`), instead of failing on every write.
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let ctx = match Context::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            init_logging(&cli, "info");
            eprintln!("phototag: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    init_logging(&cli, &ctx.config.log_level);
    tracing::debug!(origin = ?ctx.origin, model_dir = %ctx.model_dir.display(), "configuration");
    let result = match &cli.command {
        Command::Classify(a) => cmd::classify::run(&ctx, a),
        Command::Model(m) => cmd::model::run(&ctx, m),
        Command::Index(a) => cmd::index::run(&ctx, a),
        Command::Search(a) => cmd::search::search(&ctx, a),
        Command::Labels(a) => cmd::search::labels(&ctx, a),
        Command::Dupes(a) => cmd::search::dupes(&ctx, a),
        Command::Watch(a) => cmd::watch::run(&ctx, &cli, a),
        Command::Status(a) => cmd::watch::status(&ctx, a),
        Command::Show(a) => cmd::catalog::show(&ctx, a),
        Command::Stats(a) => cmd::catalog::stats(&ctx, a),
        Command::Retag(a) => cmd::index::retag(&ctx, a),
        Command::Bench(b) => cmd::bench::run(&ctx, b),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial | Outcome::NoMatch) => ExitCode::from(exit::PARTIAL),
        Ok(Outcome::Interrupted) => ExitCode::from(exit::INTERRUPTED),
        Err(e) => {
            eprintln!("phototag: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}
