//! A taught tag against the catalog: its examples fitted and stored with it, the result
//! scored on every stored embedding of its model (several readers, each a row-id range,
//! as `similar` reads them), the images that reach the threshold given the tag in one
//! transaction; and every tag refitted from its examples when the catalog's model changes.
//!
//! May not: print, or decide which photos are examples (`cmd::teach` resolves them).

use std::collections::{HashMap, HashSet};

use super::{teach, warnings, Figures, Fitted, TeachError};
use crate::catalog::readers::{in_parts, parts};
use crate::catalog::{
    unix_now, Catalog, CatalogError, EmbeddingScan, ExampleRow, Hash, Location, NewTaught,
    TaughtRow,
};

/// Why a tag could not be fitted or applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Teach(#[from] TeachError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What fitting and applying a tag did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub id: i64,
    pub name: String,
    pub threshold: f32,
    pub figures: Figures,
    /// Images that have the tag now.
    pub matches: usize,
    /// Images of its model it was scored on.
    pub scored: usize,
    /// What examples to add, in words.
    pub warnings: Vec<String>,
}

/// The probability of every image with an embedding by `model_id`, by `weights` and
/// `bias`, keeping those at `min` or more. Reads in parallel row-id ranges (the first on
/// `catalog`, the others on their own read-only connections to `db`).
pub fn score_catalog(
    catalog: &Catalog,
    db: &Location,
    model_id: i64,
    weights: &[f32],
    bias: f32,
    min: f32,
) -> Result<(Vec<(Hash, f32)>, usize), CatalogError> {
    let Some((start, end)) = catalog.embedding_ids()? else {
        return Ok((Vec::new(), 0));
    };
    let part = |c: &Catalog, ids: (i64, i64)| -> Result<(Vec<(Hash, f32)>, usize), CatalogError> {
        let scan = EmbeddingScan {
            model_id: Some(model_id),
            under: Vec::new(),
            ids: Some(ids),
        };
        let mut out = Vec::new();
        let mut scored = 0;
        c.scan_embeddings(&scan, |hash, _, e| {
            scored += 1;
            let p = e.logistic(weights, bias);
            if p >= min {
                if let Ok(h) = Hash::try_from(hash) {
                    out.push((h, p));
                }
            }
        })?;
        Ok((out, scored))
    };
    let (mut all, mut scored) = (Vec::new(), 0);
    for (more, n) in in_parts(catalog, db, &parts(start, end, 0), part)? {
        all.extend(more);
        scored += n;
    }
    Ok((all, scored))
}

/// Fits tag `name` on `examples` (all of `model_id`'s embeddings), stores it with them, and
/// gives it to every image of the model that reaches its threshold, and to the yes
/// examples but never the no examples (replacing its earlier scores).
pub fn fit_and_apply(
    catalog: &mut Catalog,
    name: &str,
    model_id: i64,
    examples: &[ExampleRow],
) -> Result<Applied, ApplyError> {
    let model = catalog
        .model_names()?
        .into_iter()
        .find(|(id, _)| *id == model_id)
        .map_or_else(|| format!("model {model_id}"), |(_, n)| n);
    let of = |positive: bool| -> Vec<Vec<f32>> {
        examples
            .iter()
            .filter(|e| e.positive == positive && e.model_id == model_id)
            .map(|e| e.embedding.to_f32())
            .collect()
    };
    let fitted = teach(name, &model, &of(true), &of(false))?;
    let figures = serde_json::to_string(&fitted.figures).expect("figures serialise");
    let mut w = catalog.begin()?;
    let id = w.put_taught(&NewTaught {
        name,
        model_id,
        weights: &fitted.linear.weights,
        bias: fitted.linear.bias,
        threshold: fitted.threshold,
        figures: &figures,
        examples,
        now: unix_now(),
    })?;
    w.commit()?;
    let matches = apply(catalog, id, name, &fitted, model_id, examples)?;
    Ok(Applied {
        id,
        name: name.to_string(),
        threshold: fitted.threshold,
        warnings: warnings(name, &fitted.figures),
        figures: fitted.figures,
        matches: matches.0,
        scored: matches.1,
    })
}

/// Scores the catalog and replaces the tag's rows: (matches, scored). The examples are the
/// person's word: a yes example has the tag whatever its score, a no example never.
fn apply(
    catalog: &mut Catalog,
    id: i64,
    name: &str,
    fitted: &Fitted,
    model_id: i64,
    examples: &[ExampleRow],
) -> Result<(usize, usize), CatalogError> {
    let db = catalog.location();
    let (w, b) = (&fitted.linear.weights, fitted.linear.bias);
    let (mut scores, scored) = score_catalog(catalog, &db, model_id, w, b, fitted.threshold)?;
    let said: HashMap<Hash, &ExampleRow> = examples.iter().map(|e| (e.hash, e)).collect();
    scores.retain(|(h, _)| said.get(h).is_none_or(|e| e.positive));
    let scored_yes: HashSet<Hash> = scores.iter().map(|s| s.0).collect();
    for e in examples {
        if e.positive && !scored_yes.contains(&e.hash) {
            scores.push((e.hash, e.embedding.as_ref().logistic(w, b)));
        }
    }
    let mut w = catalog.begin()?;
    w.set_taught_scores(id, name, &scores)?;
    w.commit()?;
    let matches = catalog.taught_match_count(id)? as usize;
    Ok((matches, scored))
}

/// The examples as embeddings of `model_id`: their own when of that model, else the
/// catalog's embedding of the same content by it; those with neither are left out (the
/// second value counts them).
pub fn examples_for_model(
    catalog: &Catalog,
    examples: Vec<ExampleRow>,
    model_id: i64,
) -> Result<(Vec<ExampleRow>, usize), CatalogError> {
    let mut out = Vec::with_capacity(examples.len());
    let mut lost = 0;
    for mut e in examples {
        if e.model_id != model_id {
            match catalog.embedding(&e.hash)? {
                Some(s) if s.model_id == model_id => {
                    e.model_id = model_id;
                    e.embedding = s.embedding;
                }
                _ => {
                    lost += 1;
                    continue;
                }
            }
        }
        out.push(e);
    }
    Ok((out, lost))
}

/// One tag's refit after a model change.
#[derive(Debug)]
pub struct Refit {
    pub name: String,
    /// Examples without an embedding by the new model (their content is not in the catalog).
    pub lost: usize,
    pub result: Result<Applied, ApplyError>,
}

/// Refits every taught tag of another model than `model_id` from its stored examples, as
/// embeddings of `model_id` (after `retag`: the catalog's images have that model's now).
pub fn refit_all(catalog: &mut Catalog, model_id: i64) -> Result<Vec<Refit>, CatalogError> {
    let tags: Vec<TaughtRow> = catalog
        .taught_tags()?
        .into_iter()
        .filter(|t| t.model_id != model_id)
        .collect();
    let mut out = Vec::new();
    for t in tags {
        let examples = catalog.taught_examples(t.id)?;
        let (examples, lost) = examples_for_model(catalog, examples, model_id)?;
        let result = fit_and_apply(catalog, &t.name, model_id, &examples);
        out.push(Refit {
            name: t.name,
            lost,
            result,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::catalog::fixtures::{file, image};
    use crate::catalog::{taught_class, Writer};
    use crate::search::Query;
    use crate::vectors::Embedding;

    /// A unit vector near axis `axis` of 8, nudged by `i`.
    fn near(axis: usize, i: usize) -> Embedding {
        let mut v = vec![0.05f32; 8];
        v[axis] = 1.0;
        v[(axis + 1 + i % 6) % 8] += 0.1 + 0.02 * i as f32;
        Embedding::quantize(&v).unwrap()
    }

    fn put(w: &mut Writer<'_>, root: i64, model: i64, n: u8, e: Embedding, class: usize) {
        let mut img = image([n; 32], model, &[(class, 0.9)]);
        img.embedding = Some(e);
        w.put_image(&img).unwrap();
        w.put_file(&file(&format!("/p/{n}.jpg"), root, [n; 32], 1, 1))
            .unwrap();
    }

    fn example(n: u8, positive: bool, model: i64, e: Embedding) -> ExampleRow {
        ExampleRow {
            hash: [n; 32],
            positive,
            model_id: model,
            embedding: e,
        }
    }

    fn found(cat: &Catalog, q: &str) -> Vec<u8> {
        let q = Query::compile_with(q, 0.0, &cat.taught_names().unwrap()).unwrap();
        assert_eq!(q.unknown().count(), 0, "{q}");
        let mut hits: Vec<u8> = cat
            .find(&crate::search::Request::new(q.compiled))
            .unwrap()
            .iter()
            .map(|h| h.hash[0])
            .collect();
        hits.sort();
        hits
    }

    /// Photos 0-9 lie near axis 0 ("rex"), 10-19 near axis 1 (class 5, electric ray, for
    /// the even ones);
    /// a tag taught from 4 of each is on every photo near axis 0 and no other, is
    /// searchable with the others, given to a new photo when it is stored, refitted for
    /// another model's embeddings, corrected, and removed with its scores.
    /// On each backend, from the same data: the same matches, figures, searches and
    /// probabilities.
    #[test]
    fn taught_applied_searched_refitted_removed() {
        let test = "taught_applied_searched_refitted_removed";
        let mut seen = Vec::new();
        for place in crate::catalog::fixtures::places(test) {
            eprintln!("{test}: {}", place.name());
            seen.push(taught_on(&place.location));
        }
        for other in &seen[1..] {
            assert_eq!(other, &seen[0], "PostgreSQL and SQLite differ");
        }
    }

    /// What [`taught_on`] saw: matches, figures (JSON), searches, probabilities.
    type Seen = (Vec<usize>, Vec<String>, Vec<Vec<u8>>, Vec<f32>);

    fn taught_on(at: &Location) -> Seen {
        let mut seen: Seen = Default::default();
        let mut cat = Catalog::open(at).unwrap();
        let m1 = cat
            .register_model("m1", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        for i in 0..20u8 {
            let axis = usize::from(i >= 10);
            put(
                &mut w,
                root,
                m1,
                i,
                near(axis, i as usize),
                if i % 2 == 0 { 5 } else { 6 },
            );
        }
        w.commit().unwrap();
        let ex: Vec<ExampleRow> = [0u8, 1, 2, 3]
            .iter()
            .map(|&n| example(n, true, m1, near(0, n as usize)))
            .chain(
                [10u8, 11, 12, 13]
                    .iter()
                    .map(|&n| example(n, false, m1, near(1, n as usize))),
            )
            .collect();
        let a = fit_and_apply(&mut cat, "rex", m1, &ex).unwrap();
        assert_eq!((a.matches, a.scored), (10, 20));
        seen.0.push(a.matches);
        seen.1.push(serde_json::to_string(&a.figures).unwrap());
        seen.2.push(found(&cat, "rex AND NOT \"electric ray\""));
        seen.2.push(found(&cat, "rex>0.8"));
        assert_eq!(a.figures.validation.unwrap().folds, 4);
        assert!(
            a.warnings.iter().any(|w| w.contains("only 4 yes")),
            "{:?}",
            a.warnings
        );
        assert_eq!(found(&cat, "rex"), (0..10).collect::<Vec<_>>());
        assert_eq!(
            found(&cat, "Rex AND NOT \"electric ray\""),
            vec![1, 3, 5, 7, 9]
        );
        assert_eq!(found(&cat, "rex>0.0001 OR \"electric ray\"").len(), 15);
        let tags = cat.tags(&[0; 32]).unwrap();
        assert_eq!(tags.last().unwrap().class_index, taught_class(a.id));
        assert_eq!(tags.last().unwrap().label, "rex");

        // A new photo near axis 0 gets the tag when stored; one near axis 1 does not.
        let mut w = cat.begin().unwrap();
        put(&mut w, root, m1, 30, near(0, 7), 6);
        put(&mut w, root, m1, 31, near(1, 7), 6);
        w.commit().unwrap();
        assert!(found(&cat, "rex").contains(&30));
        assert!(!found(&cat, "rex").contains(&31));
        seen.3
            .extend(cat.tags(&[30; 32]).unwrap().iter().map(|t| t.probability));

        // Another model (its axes swapped): a refit from the stored examples follows it.
        let m2 = cat
            .register_model("m2", &"2".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        for i in 0..20u8 {
            let axis = usize::from(i < 10) + 2;
            put(&mut w, root, m2, i, near(axis, i as usize), 6);
        }
        w.commit().unwrap();
        assert!(
            found(&cat, "rex").iter().all(|&n| n >= 30),
            "old model's rows are gone"
        );
        let refits = refit_all(&mut cat, m2).unwrap();
        assert_eq!(refits.len(), 1);
        assert_eq!(refits[0].lost, 0);
        assert_eq!(refits[0].result.as_ref().unwrap().matches, 10);
        assert_eq!(cat.taught_tag("REX").unwrap().unwrap().model_id, m2);
        assert_eq!(found(&cat, "rex"), (0..10).collect::<Vec<_>>());

        // A correction: photo 4 is not rex after all (and is fitted as a no).
        let mut ex = cat.taught_examples(a.id).unwrap();
        ex.push(example(
            4,
            false,
            m2,
            cat.embedding(&[4; 32]).unwrap().unwrap().embedding,
        ));
        ex.push(example(
            5,
            false,
            m2,
            cat.embedding(&[5; 32]).unwrap().unwrap().embedding,
        ));
        ex.push(example(
            6,
            false,
            m2,
            cat.embedding(&[6; 32]).unwrap().unwrap().embedding,
        ));
        let b = fit_and_apply(&mut cat, "rex", m2, &ex).unwrap();
        assert_eq!(b.id, a.id);
        seen.0.push(b.matches);
        seen.1.push(serde_json::to_string(&b.figures).unwrap());
        assert_eq!(cat.taught_examples(a.id).unwrap().len(), 11);
        let t = cat.taught_tag("rex").unwrap().unwrap();
        let probs: Vec<f32> = (0..20u8)
            .map(|n| t.score(cat.embedding(&[n; 32]).unwrap().unwrap().embedding.as_ref()))
            .collect();
        assert!(
            b.matches < 10,
            "{} {:?} {probs:?} {}",
            b.matches,
            b.figures,
            t.threshold
        );
        assert!(!found(&cat, "rex").contains(&4));
        seen.2.push(found(&cat, "rex"));

        let mut w = cat.begin().unwrap();
        assert!(w.remove_taught("rex").unwrap());
        assert!(!w.remove_taught("rex").unwrap());
        w.commit().unwrap();
        assert!(cat.taught_names().unwrap().is_empty());
        assert_eq!(cat.taught_match_count(a.id).unwrap(), 0);
        assert!(cat
            .tags(&[0; 32])
            .unwrap()
            .iter()
            .all(|t| t.class_index < 1000));
        seen
    }

    #[test]
    fn class_lists_stay_true_with_taught_tags() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let mut cat = Catalog::open(&db).unwrap();
        let m = cat
            .register_model("m", &"1".repeat(64), "resnet18")
            .unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        for i in 0..20u8 {
            put(
                &mut w,
                root,
                m,
                i,
                near(usize::from(i >= 10), i as usize),
                5,
            );
        }
        w.commit().unwrap();
        cat.refresh_class_lists(None).unwrap();
        let before = found(&cat, "\"electric ray\"");
        let ex: Vec<ExampleRow> = [0u8, 1, 2]
            .iter()
            .map(|&n| example(n, true, m, near(0, n as usize)))
            .chain(
                [10u8, 11, 12]
                    .iter()
                    .map(|&n| example(n, false, m, near(1, n as usize))),
            )
            .collect();
        fit_and_apply(&mut cat, "rex", m, &ex).unwrap();
        assert_eq!(
            cat.missing_class_lists().unwrap(),
            0,
            "ImageNet lists untouched"
        );
        assert_eq!(found(&cat, "\"electric ray\""), before);
        assert_eq!(
            found(&cat, "\"electric ray\" AND NOT rex"),
            (10..20).collect::<Vec<_>>()
        );
    }
}
