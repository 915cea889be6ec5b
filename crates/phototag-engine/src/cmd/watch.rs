//! `phototag watch` (the daemon). (`phototag status` is in `phototag_light::cmd::status`.)

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::ModelContext;
use crate::watch::daemon::{self, Params};
use crate::watch::worker::{self, WorkerParams};
use crate::watch::{check_roots, Outputs, Policy, Shared, WatchError};
use phototag_light::cli::{Cli, WatchArgs};
use phototag_light::cmd::{Context, Outcome};
use phototag_light::exclude::Excluder;
use phototag_light::status;

/// Albums and sidecar roots of a configuration, for the worker.
fn outputs_of(config: &phototag_light::config::Config) -> Outputs {
    Outputs {
        albums: config.album.clone(),
        sidecar_roots: config
            .watch
            .sidecars
            .iter()
            .filter(|(_, on)| **on)
            .map(|(r, _)| phototag_light::cmd::stored_path(r))
            .collect(),
        album_delay: std::time::Duration::from_secs_f64(config.watch.album_delay_seconds),
    }
}

/// The roots to watch: the config's plus `--root`s, canonical, without repeats; at least
/// one, each an existing folder.
fn roots_of(
    config: &phototag_light::config::Config,
    extra: &[PathBuf],
) -> Result<Vec<PathBuf>, WatchError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for r in config.watch.roots.iter().chain(extra) {
        // An empty path stays empty (to be refused), not the current folder.
        let r = if r.as_os_str().is_empty() {
            r.clone()
        } else {
            phototag_light::cmd::stored_path(r)
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    check_roots(&out)?;
    Ok(out)
}

pub fn run(ctx: &Context, cli: &Cli, args: &WatchArgs) -> anyhow::Result<Outcome> {
    let roots = roots_of(&ctx.config, &args.roots)?;
    let choice = ctx.model(&args.run)?;
    tracing::info!(model = %choice.stored.name, "model {} (loaded when the first photo needs it)", choice.stored.name);
    super::index::warn_without_embeddings(&choice.stored.manifest);
    // A catalog server that is away is waited for: the daemon starts, watches and queues.
    let catalog = ctx.open_catalog_waiting()?;
    // The catalog and its journals are never walked or watched, even inside a root.
    let mut exclude = ctx.config.index.exclude_config();
    exclude.own_files = ctx.own_files();
    let excluder = Excluder::new(&exclude).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Album folders are never walked or watched, from the start (no feedback loop). With
    // the server away, the stored albums are excluded once it is back (their folders are
    // also skipped by the walks' album check meanwhile).
    let albums = match phototag_light::album::load(&ctx.config, Some(&catalog)) {
        Err(e) if e.is_unavailable() => {
            tracing::warn!("{e}: starting without the albums stored in the catalog");
            phototag_light::album::load(&ctx.config, None)?
        }
        other => other?,
    };
    excluder.set_pruned_dirs(phototag_light::album::folders(&albums));
    let settings = choice.settings(&ctx.config);
    let stored = choice.stored.clone();
    let loader = Box::new(move || {
        let t = std::time::Instant::now();
        let c = choice.load()?;
        c.warm_up(&[1, choice.batch_size])?;
        let rss = crate::memory::resident_summary()
            .map(|m| format!(", resident memory {m}"))
            .unwrap_or_default();
        tracing::info!(model = %choice.stored.name, "model loaded in {:.1} s{rss}", t.elapsed().as_secs_f64());
        Ok(c)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared::default());
    let (jobs, handle) = worker::spawn(WorkerParams {
        catalog,
        model: stored,
        loader,
        settings,
        excluder: excluder.clone(),
        follow_symlinks: ctx.config.index.follow_symlinks,
        outputs: outputs_of(&ctx.config),
        policy: Policy::of(&ctx.config),
        stop: Arc::clone(&stop),
        shared: Arc::clone(&shared),
    });
    let config_path = cli.config.clone();
    let extra = args.roots.clone();
    let reload = Box::new(move || -> Result<daemon::Settings, String> {
        let (config, _) =
            phototag_light::config::load(config_path.as_deref()).map_err(|e| e.to_string())?;
        Ok(daemon::Settings {
            // Refused when it would leave nothing to watch, or names a root that is not a folder.
            roots: roots_of(&config, &extra).map_err(|e| e.to_string())?,
            outputs: outputs_of(&config),
            policy: Policy::of(&config),
            watch: config.watch,
        })
    });
    let params = Params {
        settings: daemon::Settings {
            roots,
            watch: ctx.config.watch.clone(),
            outputs: outputs_of(&ctx.config),
            policy: Policy::of(&ctx.config),
        },
        reload,
        excluder,
        jobs,
        shared,
        stop,
        status_path: status::path_for(&ctx.db),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(daemon::run(params))?;
    drop(rt);
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the worker thread panicked"))?;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}
