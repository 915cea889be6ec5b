//! Every JSON object phototag prints about tags, built in one place: a probability as a
//! percent with two decimals, stored tags, search hits, a classified file (`classify
//! --json`, the web page's `POST /api/classify`), and a taught tag's figures. The commands
//! and the web server print these; export writes them.
//!
//! Writing to a closed pipe needs no handling anywhere: both binaries restore the default
//! SIGPIPE action (`app::default_sigpipe`), so `phototag search dog | head` ends quietly.
//!
//! May not: read the catalog or write anything.

use std::path::Path;

use serde_json::{json, Value};

use crate::catalog::{hex, Hit, TagRow, TaughtRow};
use crate::labels::Prediction;
use crate::taught::apply::Applied;
use crate::taught::Figures;

/// A probability in [0, 1] as the percent with two decimals that all JSON output uses.
pub fn percent(p: f32) -> f64 {
    ((p as f64) * 10_000.0).round() / 100.0
}

/// Stored tags: `rank`, `class`, `index`, `probability` (percent).
pub fn tags_json(tags: &[TagRow]) -> Value {
    tags.iter()
        .map(|t| {
            json!({
                "rank": t.rank,
                "class": t.label,
                "index": t.class_index,
                "probability": percent(t.probability),
            })
        })
        .collect()
}

/// The tags of a hit that its query matched, best first.
pub fn matched_tags(h: &Hit) -> Vec<&TagRow> {
    h.matched
        .iter()
        .filter_map(|r| h.tags.iter().find(|t| t.rank == *r))
        .collect()
}

/// A search hit: `path`, `hash`, `score` (percent), `matched` and `tags`.
pub fn hit_json(h: &Hit) -> Value {
    let matched: Vec<TagRow> = matched_tags(h).into_iter().cloned().collect();
    json!({
        "path": h.path.to_string_lossy(),
        "hash": hex(&h.hash),
        "score": percent(h.score),
        "matched": tags_json(&matched),
        "tags": tags_json(&h.tags),
    })
}

/// A classified file: `file`, `model`, `results` (`rank`, `class`, `index`, `probability`
/// in percent) and `warnings` when there are any.
pub fn classified_json(
    file: &Path,
    model: &str,
    predictions: &[Prediction],
    warnings: &[String],
) -> Value {
    let results: Vec<Value> = predictions
        .iter()
        .map(|p| {
            json!({
                "rank": p.rank,
                "class": p.class,
                "index": p.index,
                "probability": percent(p.probability),
            })
        })
        .collect();
    let mut v = json!({ "file": file.to_string_lossy(), "model": model, "results": results });
    if !warnings.is_empty() {
        v["warnings"] = json!(warnings);
    }
    v
}

/// A file that could not be classified: `file`, `error`.
pub fn file_error_json(file: &Path, error: &dyn std::fmt::Display) -> Value {
    json!({ "file": file.to_string_lossy(), "error": error.to_string() })
}

/// A taught tag's figures, name, matches and fit time: the head of `teach --list` and
/// `--show`, and of the web page's taught tags.
pub fn taught_json(t: &TaughtRow, f: Option<&Figures>, matches: u64) -> Value {
    let mut v = f.map_or(json!({}), |f| figures_json(f, t.threshold));
    v["name"] = json!(t.name);
    v["matches"] = json!(matches);
    v["fitted_at"] = json!(t.fitted_at);
    v
}

/// What teaching did (`teach --json`, and the web page's teach and corrections, which add
/// to it): the fit's figures, the tag's name, its matches, the photos scored, and the
/// examples the new ones turned around.
pub fn applied_json(a: &Applied, corrected: usize) -> Value {
    let mut v = figures_json(&a.figures, a.threshold);
    v["name"] = json!(a.name);
    v["matches"] = json!(a.matches);
    v["scored"] = json!(a.scored);
    v["corrected"] = json!(corrected);
    v
}

/// A taught tag's fit: examples, model, threshold, cross-validated precision and recall.
pub fn figures_json(f: &Figures, threshold: f32) -> Value {
    json!({
        "yes": f.yes,
        "no": f.no,
        "model": f.model,
        "threshold": (threshold * 1e4).round() / 1e4,
        "folds": f.validation.map(|v| v.folds),
        "precision": f.validation.map(|v| (v.precision * 1e4).round() / 1e4),
        "recall": f.validation.map(|v| (v.recall * 1e4).round() / 1e4),
        "yes_alike": (f.yes_alike * 1e4).round() / 1e4,
    })
}
