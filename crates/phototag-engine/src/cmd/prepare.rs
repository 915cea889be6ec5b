//! `phototag model prepare`. (`model list` needs no libtorch: `phototag_light::cmd::models`.)

use anyhow::Context as _;

use crate::model::prepare::{self, Recipe};
use phototag_light::cli::{Architecture, PrepareArgs};
use phototag_light::cmd::{Context, Outcome};

pub fn run(ctx: &Context, args: &PrepareArgs) -> anyhow::Result<Outcome> {
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
    let cache = phototag_light::paths::cache_dir();
    let m = prepare::prepare(&ctx.models(), &cache, &recipe).context("preparing the model")?;
    tracing::info!(
        model = %m.name,
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        "prepared {}",
        m.model_file().display()
    );
    println!("{}\t{}", m.name, m.dir.display());
    Ok(Outcome::Success)
}
