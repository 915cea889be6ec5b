//! The `phototag` binary. It links only `phototag-light` (no libtorch), so the commands that
//! need no model (`phototag_light::cmd::dispatch` lists them) start in milliseconds. Every
//! other command is handed, with the same arguments, to `phototag-engine` installed beside
//! it (by `exec`, so the process id stays the same for systemd); so is one that can run
//! light when its light run finds that it needs the model (`similar` of a new photo).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use phototag_light::app;
use phototag_light::cli::Cli;
use phototag_light::cmd::{dispatch, Dispatch, Outcome};
use phototag_light::exit;

/// The engine's file name, looked for beside this binary.
const ENGINE: &str = "phototag-engine";

fn main() -> ExitCode {
    app::default_sigpipe();
    let cli = Cli::parse();
    let run = match dispatch(&cli.command) {
        Dispatch::Light(run) | Dispatch::Either(run, _) => run,
        Dispatch::Engine(_) => return exec_engine(),
    };
    let ctx = match app::load_context(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match run(&ctx) {
        Ok(Outcome::NeedsEngine) => exec_engine(),
        result => app::finish(result, exit::code_for),
    }
}

/// Replaces this process with the engine; returns only if that fails.
fn exec_engine() -> ExitCode {
    let engine = match engine_path() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("phototag: {why}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("phototag"));
    let err = std::process::Command::new(&engine)
        .arg0(arg0)
        .args(args)
        .exec();
    eprintln!(
        "phototag: cannot run {}: {err} (reinstall phototag: `make install`)",
        engine.display()
    );
    ExitCode::from(exit::OTHER)
}

fn engine_path() -> Result<PathBuf, String> {
    let me =
        std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
    let dir = me.parent().unwrap_or(std::path::Path::new("/"));
    let engine = dir.join(ENGINE);
    if engine.is_file() {
        Ok(engine)
    } else {
        Err(format!(
            "{ENGINE} is missing from {}: it runs every command that needs the model (reinstall phototag: `make install`, or build it: `cargo build --bins`)",
            dir.display()
        ))
    }
}
