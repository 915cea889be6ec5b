//! With the real pretrained EfficientNet-Lite0 (prepared by `make setup`/`make test`), real
//! photos get sensible tags: chelsea is a cat, and at least 12 of the 15 labelled photos
//! in ../shared/corpus/expected.csv have an acceptable class in their top 3.
//! Skips, saying why, when the model is not prepared or the corpus is absent.

use crate::common;

use std::path::PathBuf;

use phototag_engine::classify::{self, Settings};
use phototag_engine::model::{Classifier, ClassifierOptions};
use phototag_light::model_files::ModelStore;

const TEST: &str = "real_model";

fn lite0() -> Option<Classifier> {
    let dir = std::env::var_os("PHOTOTAG_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(phototag_light::paths::default_model_dir);
    match ModelStore::new(&dir).get("efficientnet-lite0") {
        Ok(m) => Some(Classifier::load(&m, &ClassifierOptions::default()).unwrap()),
        Err(e) => {
            common::skip(
                TEST,
                &format!("efficientnet-lite0 is not prepared ({e}); `make test` prepares it"),
            );
            None
        }
    }
}

fn settings(c: &Classifier) -> Settings {
    Settings::new(&Default::default(), c.manifest(), 8)
}

#[test]
fn expected_classes_are_in_the_top_3() {
    let Some(corpus) = common::shared("corpus", TEST) else {
        return;
    };
    let Some(classifier) = lite0() else { return };
    let csv = std::fs::read_to_string(corpus.join("expected.csv")).unwrap();
    let rows: Vec<(PathBuf, Vec<usize>, String)> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, ',');
            let file = corpus.join(f.next().unwrap());
            let ok = f
                .next()
                .unwrap()
                .split('|')
                .map(|s| s.parse().unwrap())
                .collect();
            (file, ok, f.next().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(rows.len(), 15);
    let files: Vec<PathBuf> = rows.iter().map(|r| r.0.clone()).collect();
    let mut hits = 0;
    let mut i = 0;
    classify::classify_files(&classifier, files, &settings(&classifier), |path, r| {
        let (_, ok, name) = &rows[i];
        i += 1;
        let preds = r
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .predictions;
        let hit = preds.iter().any(|p| ok.contains(&p.index));
        hits += hit as usize;
        let top: Vec<String> = preds
            .iter()
            .map(|p| format!("{} {:.1}%", p.class, p.probability * 100.0))
            .collect();
        eprintln!(
            "{} {:<60} want {name}: {}",
            if hit { "ok  " } else { "MISS" },
            path.display(),
            top.join(", ")
        );
    });
    eprintln!("efficientnet-lite0: {hits}/15 photos have an acceptable class in the top 3");
    assert!(hits >= 12, "only {hits}/15");
}

#[test]
fn chelsea_is_a_cat_at_rank_1() {
    let Some(corpus) = common::shared("corpus", TEST) else {
        return;
    };
    let Some(classifier) = lite0() else { return };
    let file = corpus.join("pkg/scikit-image-0.26.0/chelsea.png");
    let mut top = None;
    classify::classify_files(&classifier, vec![file], &settings(&classifier), |_, r| {
        top = Some(r.unwrap().predictions[0].clone());
    });
    let top = top.unwrap();
    assert!(
        [281, 282, 283, 284, 285].contains(&top.index),
        "rank 1 is {} ({})",
        top.class,
        top.index
    );
}
