//! `phototag serve`: wires the configuration, the model thread and the HTTP server, and
//! stops on SIGINT/SIGTERM after the requests in flight (a few seconds at most).
//!
//! May not: hold server logic (see `serve`).

use std::io::Write;

use anyhow::Context as _;

use super::ModelContext;
use crate::serve::{self, AppState, Settings, Token, Worker};
use phototag_light::cli::ServeArgs;
use phototag_light::cmd::{Context, Outcome};

/// The environment variable that overrides the config's `serve.token`.
pub const TOKEN_ENV: &str = "PHOTOTAG_SERVE_TOKEN";

pub fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let cfg = &ctx.config.serve;
    let token = match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => Token::new(&t),
        _ => Token::new(&cfg.token),
    };
    let listen = args.listen.as_deref().unwrap_or(&cfg.listen);
    let addr = serve::check_listen(listen, token.as_ref())?;
    let mut settings = Settings {
        db: ctx.db.clone(),
        limits: ctx.config.limits,
        max_upload_bytes: cfg.max_upload_bytes,
        thumb_dir: cfg.thumb_dir(),
        thumb_size: cfg.thumb_size,
        preview_size: cfg.preview_size,
        token,
        near_threshold: ctx.config.similar.near_threshold,
        listen: addr,
        hosts: cfg.hosts.clone(),
        max_connections: cfg.max_connections,
        timeout: std::time::Duration::from_secs_f64(cfg.timeout_seconds),
    };
    let load_ctx = ctx.clone();
    let run_args = args.run.clone();
    let worker = Worker::start(move || {
        let choice = load_ctx.model(&run_args)?;
        Ok((choice.load()?, choice.settings(&load_ctx.config)))
    })
    .context("starting the classifier thread")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(serve::RUNTIME_BLOCKING_THREADS)
        .thread_name("serve")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        settings.listen = bound;
        tracing::info!(
            catalog = %settings.db,
            thumbs = %settings.thumb_dir.display(),
            token = settings.token.is_some(),
            "serving the web page on http://{bound}/"
        );
        // The address on stdout, for scripts (and the tests) that asked for port 0.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "http://{bound}/");
        let _ = out.flush();
        let state = AppState::new(settings, worker);
        serve::serve(listener, state, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // Connections still open after the grace period are dropped with the runtime; a
    // blocking job still running (a slow disk) is not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot catch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: finishing the requests in flight");
}
