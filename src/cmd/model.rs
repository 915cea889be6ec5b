//! `phototag model prepare|list`.

use anyhow::Context as _;

use super::{Context, ModelContext, Outcome};
use crate::cli::{Architecture, ModelCommand, PrepareArgs};
use crate::model::prepare::{self, Recipe};

pub fn run(ctx: &Context, cmd: &ModelCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ModelCommand::Prepare(args) => prepare_cmd(ctx, args),
        ModelCommand::List { json } => list(ctx, *json),
    }
}

fn prepare_cmd(ctx: &Context, args: &PrepareArgs) -> anyhow::Result<Outcome> {
    let recipe = match args.architecture {
        Architecture::Resnet18 => Recipe::Resnet18 {
            from: args.from.clone(),
            name: args.name.clone(),
            url: args.url.clone(),
        },
        Architecture::EfficientnetLite0 => Recipe::EfficientNetLite0 {
            from: args.from.clone(),
            name: args.name.clone(),
        },
        Architecture::Resnet18Random => {
            if args.from.is_some() {
                anyhow::bail!("resnet18-random takes --seed, not --from");
            }
            Recipe::Resnet18Random {
                seed: args.seed,
                name: args.name.clone(),
            }
        }
    };
    let start = std::time::Instant::now();
    let cache = crate::paths::cache_dir();
    let m = prepare::prepare(&ctx.store(), &cache, &recipe).context("preparing the model")?;
    tracing::info!(
        model = %m.name,
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        "prepared {}",
        m.model_file().display()
    );
    println!("{}\t{}", m.name, m.dir.display());
    Ok(Outcome::Success)
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    let models = store.list()?;
    let auto = store.resolve(crate::model::AUTO).ok().map(|m| m.name);
    let mut outcome = Outcome::Success;
    if models.is_empty() {
        eprintln!("no models prepared in {}", store.dir().display());
    }
    for m in models {
        match m {
            Ok(m) => {
                let is_auto = auto.as_deref() == Some(m.name.as_str());
                if json {
                    let v = serde_json::json!({
                        "name": m.name,
                        "architecture": m.manifest.architecture,
                        "pretrained": m.manifest.pretrained,
                        "auto": is_auto,
                        "path": m.model_file().display().to_string(),
                        "sha256": m.manifest.sha256,
                        "source": m.manifest.source,
                    });
                    println!("{v}");
                } else {
                    println!(
                        "{}{}\t{}\t{}",
                        m.name,
                        if is_auto { " (auto)" } else { "" },
                        m.manifest.architecture,
                        m.manifest.source
                    );
                }
            }
            Err((name, e)) => {
                eprintln!("{name}: unusable: {e}");
                outcome = Outcome::Partial;
            }
        }
    }
    Ok(outcome)
}
