//! `phototag classify FILE...`: the top-K classes of each file, as text or JSON lines.

use std::io::Write;

use super::ModelContext;
use crate::classify::{self, Classified, FileError};
use phototag_light::cli::ClassifyArgs;
use phototag_light::cmd::{Context, Outcome};
use phototag_light::output::{self, percent};

/// The JSON object printed for one file (and answered for an upload).
pub fn json_entry(
    file: &std::path::Path,
    model: &str,
    result: &Result<Classified, FileError>,
) -> serde_json::Value {
    match result {
        Ok(c) => output::classified_json(file, model, &c.predictions, &c.warnings),
        Err(e) => output::file_error_json(file, e),
    }
}

pub fn run(ctx: &Context, args: &ClassifyArgs) -> anyhow::Result<Outcome> {
    let choice = ctx.model(&args.run)?;
    let classifier = choice.load()?;
    let mut settings = choice.settings(&ctx.config);
    settings.batch_size = settings.batch_size.min(args.files.len().max(1));
    if let Some(k) = args.top {
        settings.top_k = usize::from(k);
    }
    classifier.warm_up(&[settings.batch_size])?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0usize;
    let mut write_error = None;
    let model = classifier.name().to_string();
    classify::classify_files(
        &classifier,
        args.files.clone(),
        &settings,
        |path, result| {
            if result.is_err() {
                failed += 1;
            }
            let written = if args.json {
                writeln!(out, "{}", json_entry(path, &model, &result))
            } else {
                match &result {
                    Ok(c) => {
                        let mut s = format!("{}\n", path.display());
                        for p in &c.predictions {
                            s.push_str(&format!(
                                "  {}. {:<28} {:>6.2}%\n",
                                p.rank,
                                p.class,
                                percent(p.probability)
                            ));
                        }
                        for w in &c.warnings {
                            tracing::warn!(file = %path.display(), "{w}");
                        }
                        out.write_all(s.as_bytes())
                    }
                    Err(e) => {
                        eprintln!("phototag: {}: {e}", path.display());
                        Ok(())
                    }
                }
            };
            if let Err(e) = written {
                write_error.get_or_insert(e);
            }
        },
    );
    out.flush()?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if failed > 0 {
        tracing::warn!(
            "{failed} of {} file(s) could not be classified",
            args.files.len()
        );
        return Ok(Outcome::Partial);
    }
    Ok(Outcome::Success)
}
