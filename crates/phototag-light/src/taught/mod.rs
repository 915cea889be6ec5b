//! Tags taught by example (`phototag teach NAME --yes ... --no ...`): a logistic regression
//! over a model's stored embeddings (`fit`), its threshold chosen by cross-validation, the
//! figures a person judges it by, the warnings that say what examples to add, and the
//! rules for a tag's name.
//!
//! Layout: here the fit's entry, figures, warnings and names; `fit` the regression and the
//! cross-validation; `apply` the catalog side (store, score every image, refit); `refine`
//! what `teach` and the web page share (new examples merged with a tag's own and fitted, a
//! tag's best and borderline matches).
//!
//! May not: print (`cmd::teach` does), or read photos.

pub mod apply;
pub mod fit;
pub mod refine;

use serde::{Deserialize, Serialize};

use crate::search::Hierarchy;
use crate::vectors::EmbeddingRef;
pub use fit::{Linear, Validation};

/// Fewer yes (or no) examples than this get a warning.
pub const FEW_EXAMPLES: usize = 5;

/// Yes examples more alike than this on average (cosine) get a warning: they show one
/// scene, and the tag will learn that scene rather than the subject.
pub const TOO_ALIKE: f32 = 0.95;

/// Cross-validated precision or recall under this gets a warning.
pub const WEAK: f32 = 0.8;

/// The probability a taught tag gives a stored embedding (see [`EmbeddingRef::logistic`]).
pub fn score(weights: &[f32], bias: f32, e: EmbeddingRef<'_>) -> f32 {
    e.logistic(weights, bias)
}

/// What a fit found, stored with the tag (JSON) and printed by `teach` and `teach --show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub yes: usize,
    pub no: usize,
    /// The cross-validation, when each side had at least 2 examples.
    pub validation: Option<Validation>,
    /// Mean cosine similarity between the yes examples (1 for a single one).
    pub yes_alike: f32,
    /// The name of the model whose embeddings it was fitted on.
    pub model: String,
}

/// A fitted tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub linear: Linear,
    pub threshold: f32,
    pub figures: Figures,
}

/// Why a tag cannot be fitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeachError {
    #[error(
        "no yes example of `{0}` could be used: give photos, hashes or queries of it with --yes"
    )]
    NoYes(String),
    #[error("no no example for `{0}`: a tag learns what sets its photos apart, so it also needs photos that are not `{0}`: add --no PHOTO|HASH|QUERY (best what it could be taken for, e.g. --no 'cat OR dog')")]
    NoNo(String),
    #[error("the examples of `{0}` are all of one kind: every yes is also a no (or the embeddings are of different models)")]
    OneClass(String),
}

/// Fits a tag on `yes` and `no` embeddings (normalised features, one model's).
pub fn teach(
    name: &str,
    model: &str,
    yes: &[Vec<f32>],
    no: &[Vec<f32>],
) -> Result<Fitted, TeachError> {
    if yes.is_empty() {
        return Err(TeachError::NoYes(name.to_string()));
    }
    if no.is_empty() {
        return Err(TeachError::NoNo(name.to_string()));
    }
    let d = yes[0].len();
    if yes.iter().chain(no).any(|x| x.len() != d) {
        return Err(TeachError::OneClass(name.to_string()));
    }
    let xs: Vec<&[f32]> = yes.iter().chain(no).map(|v| v.as_slice()).collect();
    let ys: Vec<bool> = (0..xs.len()).map(|i| i < yes.len()).collect();
    let validation = fit::cross_validate(&xs, &ys);
    let linear = fit::fit(&xs, &ys);
    let threshold = validation.map_or(0.5, |v| v.threshold);
    Ok(Fitted {
        linear,
        threshold,
        figures: Figures {
            yes: yes.len(),
            no: no.len(),
            validation,
            yes_alike: mean_cosine(yes),
            model: model.to_string(),
        },
    })
}

/// Mean pairwise cosine similarity of unit vectors (1 for fewer than two).
fn mean_cosine(xs: &[Vec<f32>]) -> f32 {
    if xs.len() < 2 {
        return 1.0;
    }
    let mut sum = 0.0f64;
    let mut n = 0u64;
    for i in 0..xs.len() {
        for j in i + 1..xs.len() {
            sum += f64::from(xs[i].iter().zip(&xs[j]).map(|(a, b)| a * b).sum::<f32>());
            n += 1;
        }
    }
    (sum / n as f64) as f32
}

/// What a person should add, in words: one line each.
pub fn warnings(name: &str, f: &Figures) -> Vec<String> {
    let mut w = Vec::new();
    if f.yes < FEW_EXAMPLES {
        w.push(format!(
            "only {} yes example(s): add at least {} more photos of `{name}` (--yes) for a tag to trust",
            f.yes,
            FEW_EXAMPLES - f.yes
        ));
    }
    if f.no < FEW_EXAMPLES {
        w.push(format!(
            "only {} no example(s): add at least {} photos that are not `{name}` (--no), best those it could be confused with",
            f.no,
            FEW_EXAMPLES - f.no
        ));
    }
    if f.yes >= 2 && f.yes_alike > TOO_ALIKE {
        w.push(format!(
            "the yes examples are nearly the same picture (mean similarity {:.2}): add photos of `{name}` in other places, light and poses",
            f.yes_alike
        ));
    }
    match f.validation {
        None => w.push(
            "too few examples to cross-validate (at least 2 yes and 2 no): the threshold is 0.5 and untested"
                .to_string(),
        ),
        Some(v) => {
            if v.precision < WEAK {
                w.push(format!(
                    "cross-validated precision is {:.0}%: it takes other photos for `{name}`; add those as --no (see its borderline matches with `phototag teach --show {name}`)",
                    v.precision * 100.0
                ));
            }
            if v.recall < WEAK {
                w.push(format!(
                    "cross-validated recall is {:.0}%: it misses photos of `{name}`; add more, varied --yes examples",
                    v.recall * 100.0
                ));
            }
        }
    }
    w
}

/// Why a name cannot be a taught tag's, if it cannot: album-name rules, not a word of the
/// query language, and not an ImageNet or WordNet word (a query would not know which is
/// meant; phototag refuses rather than shadowing the classes).
pub fn check_name(name: &str) -> Result<(), String> {
    crate::config::check_album_name(name)
        .map_err(|_| format!("`{name}` is not a tag name (1-64 letters, digits, spaces, '-', '_', '.'; not starting with '.' or a space)"))?;
    if name.starts_with('-') {
        return Err(format!(
            "`{name}` is not a tag name: a leading '-' means NOT in a query"
        ));
    }
    if ["and", "or", "not"].contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "`{name}` is a word of the query language: choose another name"
        ));
    }
    let resolved = Hierarchy::get().resolve(name);
    if !resolved.classes.is_empty() {
        let other = [
            format!("my-{name}"),
            format!("{name}-mine"),
            format!("{name}-2"),
        ]
        .into_iter()
        .find(|n| Hierarchy::get().resolve(n).classes.is_empty())
        .unwrap_or_else(|| "another name".to_string());
        return Err(format!(
            "`{name}` is an ImageNet/WordNet word (it covers {} class(es)), and a query must mean one thing: choose another name, e.g. `{other}`",
            resolved.classes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::Embedding;

    #[test]
    fn names_follow_album_rules_and_avoid_imagenet_words() {
        assert!(check_name("rex").is_ok());
        assert!(check_name("Receipts 2024").is_ok());
        let e = check_name("cat").unwrap_err();
        assert!(
            e.contains("ImageNet/WordNet") && e.contains("my-cat"),
            "{e}"
        );
        assert!(check_name("dogs").is_err(), "plurals resolve too");
        assert!(check_name("NOT").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn stored_score_equals_the_float_one() {
        let x = [
            0.3f32, -0.2, 0.9, 0.1, 0.05, -0.4, 0.0, 0.2, 0.3, 0.1, -0.1, 0.2, 0.5, 0.1, 0.0, 0.3,
            0.2, -0.3,
        ];
        let e = Embedding::quantize(&x).unwrap();
        let w: Vec<f32> = (0..x.len()).map(|i| (i as f32 - 8.0) / 3.0).collect();
        let l = Linear {
            weights: w.clone(),
            bias: 0.25,
        };
        let want = l.probability(&e.to_f32());
        assert!((score(&w, 0.25, e.as_ref()) - want).abs() < 1e-5);
        assert_eq!(score(&w[..4], 0.25, e.as_ref()), 0.0, "another width");
    }

    #[test]
    fn one_sided_examples_are_refused() {
        let v = vec![vec![1.0f32, 0.0]];
        assert_eq!(
            teach("rex", "m", &[], &v),
            Err(TeachError::NoYes("rex".into()))
        );
        assert_eq!(
            teach("rex", "m", &v, &[]),
            Err(TeachError::NoNo("rex".into()))
        );
        let f = teach("rex", "m", &v, &[vec![0.0, 1.0]]).unwrap();
        assert!(f.figures.validation.is_none());
        let w = warnings("rex", &f.figures);
        assert!(w.iter().any(|l| l.contains("only 1 yes")), "{w:?}");
        assert!(w.iter().any(|l| l.contains("cross-validate")), "{w:?}");
    }
}
