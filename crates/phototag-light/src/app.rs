//! What both binaries do around a command: start logging, report an error, and turn the
//! result into an exit code (documented in README.md and `phototag --help`).
//!
//! May not: run commands.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::cli::Cli;
use crate::cmd::{Context, Outcome};
use crate::exit;

/// Like other Unix tools, end quietly when the reader of our output goes away
/// (`phototag search dog | head`), instead of failing on every write.
pub fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs go to stderr at the level of `-q`/`-v`, else `RUST_LOG`, else `default_level`.
pub fn init_logging(cli: &Cli, default_level: &str) {
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

/// Reads the configuration and starts logging at its level; on a bad configuration, reports
/// it and gives the exit code to end with.
pub fn load_context(cli: &Cli) -> Result<Context, ExitCode> {
    match Context::load(cli) {
        Ok(ctx) => {
            init_logging(cli, &ctx.config.log_level);
            Ok(ctx)
        }
        Err(e) => {
            init_logging(cli, "info");
            eprintln!("phototag: {e}");
            Err(ExitCode::from(exit::USAGE))
        }
    }
}

/// Reports a failed command on stderr and maps the result to its exit code.
pub fn finish(
    result: anyhow::Result<Outcome>,
    code_for: impl Fn(&anyhow::Error) -> u8,
) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial | Outcome::NoMatch) => ExitCode::from(exit::PARTIAL),
        Ok(Outcome::Interrupted) => ExitCode::from(exit::INTERRUPTED),
        Ok(Outcome::NeedsEngine) => {
            // Only `phototag` acts on it (it execs the engine before calling this).
            eprintln!("phototag: this command needs phototag-engine, which did not run it");
            ExitCode::from(exit::OTHER)
        }
        Err(e) => {
            eprintln!("phototag: {e:#}");
            ExitCode::from(code_for(&e))
        }
    }
}
