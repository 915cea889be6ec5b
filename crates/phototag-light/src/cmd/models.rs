//! `phototag model list`: the prepared models, `(auto)` marking the one `auto` picks.
//! (`model prepare` needs libtorch: it is the engine's `cmd::prepare`.)

use super::{Context, Outcome};
use crate::model_files::names::AUTO;

pub fn list(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let store = ctx.models();
    let models = store.list()?;
    let auto = store.resolve(AUTO).ok().map(|m| m.name);
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
                        // null for a model prepared before embeddings (prepare it again).
                        "embedding_size": m.manifest.embedding_size,
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
