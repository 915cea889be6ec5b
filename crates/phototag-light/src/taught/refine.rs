//! What `phototag teach` and the web page share: new examples merged with a tag's own and
//! the tag fitted on them ([`refine`]), and a tag's best and borderline matches
//! ([`matches`]). The CLI resolves files, hashes and queries into examples first; the web
//! page gives content hashes.
//!
//! May not: print, or resolve files and queries into examples (`cmd::teach` does).

use std::collections::HashMap;

use super::apply::{examples_for_model, fit_and_apply, score_catalog, Applied, ApplyError};
use super::TeachError;
use crate::catalog::{Catalog, CatalogError, ExampleRow, Hash, Location, TaughtRow};
use crate::vectors::Embedding;

/// One new example: yes or no, and the embedding of its content (by model `model_id`).
#[derive(Debug, Clone)]
pub struct NewExample {
    pub positive: bool,
    pub model_id: i64,
    pub embedding: Embedding,
}

/// What [`refine`] did.
#[derive(Debug, Clone)]
pub struct Refined {
    pub applied: Applied,
    /// Stored examples the new ones turned around (a yes now a no, or the other way).
    pub corrected: usize,
    /// Examples left out: no embedding by the tag's model.
    pub lost: usize,
}

/// Fits tag `name` on `new` examples, with its stored ones (`existing`) unless `replace`:
/// a new example of a content overrides the stored one. The tag's model is the one most
/// new yes examples have (else the stored tag's); examples of another model are taken as
/// that model's embedding of the same content, or left out (`lost`).
pub fn refine(
    catalog: &mut Catalog,
    name: &str,
    existing: Option<&TaughtRow>,
    new: HashMap<Hash, NewExample>,
    replace: bool,
) -> Result<Refined, ApplyError> {
    let mut votes: HashMap<i64, usize> = HashMap::new();
    for e in new.values() {
        *votes.entry(e.model_id).or_default() += if e.positive { 1000 } else { 1 };
    }
    let model_id = votes
        .into_iter()
        .max_by_key(|&(m, n)| (n, -m))
        .map(|(m, _)| m)
        .or(existing.map(|t| t.model_id));
    let Some(model_id) = model_id else {
        return Err(TeachError::NoYes(name.to_string()).into());
    };
    let mut examples: Vec<ExampleRow> = Vec::new();
    let mut corrected = 0;
    if let Some(t) = existing {
        for e in catalog.taught_examples(t.id)? {
            match new.get(&e.hash) {
                Some(n) => corrected += usize::from(n.positive != e.positive),
                None if !replace => examples.push(e),
                None => {}
            }
        }
    }
    examples.extend(new.into_iter().map(|(hash, e)| ExampleRow {
        hash,
        positive: e.positive,
        model_id: e.model_id,
        embedding: e.embedding,
    }));
    examples.sort_by_key(|e| e.hash);
    let (examples, lost) = examples_for_model(catalog, examples, model_id)?;
    let applied = fit_and_apply(catalog, name, model_id, &examples)?;
    Ok(Refined {
        applied,
        corrected,
        lost,
    })
}

/// A photo a tag scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub hash: Hash,
    pub probability: f32,
    /// Whether it has the tag (at the threshold or more and not a no example; or a yes one).
    pub tagged: bool,
    /// `Some(yes)` when it is one of the tag's examples.
    pub example: Option<bool>,
}

/// A tag's matches, for `teach --show` and the tag's web page.
#[derive(Debug, Clone, PartialEq)]
pub struct Matches {
    /// The photos that have the tag, most probable first (at most `limit`).
    pub best: Vec<Match>,
    /// Photos that are not examples, those nearest the threshold on either side, most
    /// probable first (at most `limit`): what a person should judge.
    pub borderline: Vec<Match>,
    /// How many photos have the tag.
    pub matches: usize,
    /// Photos scored (those with an embedding by the tag's model).
    pub scored: usize,
}

/// Scores every photo of the tag's model (see [`score_catalog`]) and picks its best and
/// borderline matches.
pub fn matches(
    catalog: &Catalog,
    db: &Location,
    t: &TaughtRow,
    examples: &[ExampleRow],
    limit: usize,
) -> Result<Matches, CatalogError> {
    let (scores, scored) = score_catalog(catalog, db, t.model_id, &t.weights, t.bias, 0.0)?;
    let said: HashMap<Hash, bool> = examples.iter().map(|e| (e.hash, e.positive)).collect();
    let all: Vec<Match> = scores
        .iter()
        .map(|&(hash, probability)| {
            let example = said.get(&hash).copied();
            Match {
                hash,
                probability,
                tagged: example.unwrap_or(probability >= t.threshold),
                example,
            }
        })
        .collect();
    let most_first = |a: &Match, b: &Match| {
        b.probability
            .total_cmp(&a.probability)
            .then(a.hash.cmp(&b.hash))
    };
    let mut best: Vec<Match> = all.iter().filter(|m| m.tagged).copied().collect();
    best.sort_by(most_first);
    let matches = best.len();
    best.truncate(limit);
    let mut border: Vec<Match> = all
        .iter()
        .filter(|m| m.example.is_none())
        .copied()
        .collect();
    border.sort_by(|a, b| {
        (a.probability - t.threshold)
            .abs()
            .total_cmp(&(b.probability - t.threshold).abs())
            .then(a.hash.cmp(&b.hash))
    });
    border.truncate(limit);
    border.sort_by(most_first);
    Ok(Matches {
        best,
        borderline: border,
        matches,
        scored,
    })
}
