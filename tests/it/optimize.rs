//! The model optimised at load time (frozen, optimize_for_inference, through the C++ shim)
//! must give what the module as saved gives, at every batch size, not only the traced one.

use crate::common;

use phototag_engine::model::{optimized, Classifier, ClassifierOptions};

fn load(store: &phototag_light::model_files::ModelStore, optimize: bool) -> Classifier {
    let m = store.get("resnet18-random").unwrap();
    Classifier::load(
        &m,
        &ClassifierOptions {
            threads: 1,
            optimize,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Deterministic pseudo-random CHW inputs in about [-2, 2], like normalised photos.
fn inputs(n: usize, size: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            (0..3 * size * size)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect()
        })
        .collect()
}

#[test]
fn optimised_model_matches_the_saved_one_at_batch_1_3_and_8() {
    if !optimized::AVAILABLE {
        common::skip(
            "optimised_model_matches_the_saved_one_at_batch_1_3_and_8",
            "this build has no libtorch shim",
        );
        return;
    }
    let store = common::random_model_store(11);
    let plain = load(&store, false);
    let fast = load(&store, true);
    assert!(!plain.is_optimized());
    assert!(
        fast.is_optimized(),
        "the shim is built, so optimising must work"
    );
    let size = plain.manifest().input_size as usize;
    let all = inputs(8, size, 3);
    // Warm the optimised module at batch 8 first, so a module specialised to its first
    // shape would show at the other sizes.
    fast.warm_up(&[8]).unwrap();
    for n in [8usize, 1, 3] {
        let refs: Vec<&[f32]> = all[..n].iter().map(Vec::as_slice).collect();
        let a = plain.raw_logits(&refs).unwrap();
        let b = fast.raw_logits(&refs).unwrap();
        assert_eq!(a.size(), vec![n as i64, 1000]);
        assert_eq!(b.size(), a.size());
        let scale = a.abs().max().double_value(&[]);
        let diff = common::max_abs_diff(&a, &b);
        assert!(scale > 0.0);
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "batch {n}: logits differ by {diff} (scale {scale})"
        );
        let top_a = a.argmax(-1, false);
        let top_b = b.argmax(-1, false);
        assert_eq!(
            Vec::<i64>::try_from(&top_a).unwrap(),
            Vec::<i64>::try_from(&top_b).unwrap(),
            "batch {n}: top-1 differs"
        );
    }
    // The same image gives the same answer alone and inside a batch.
    let one = fast.raw_logits(&[all[2].as_slice()]).unwrap();
    let eight: Vec<&[f32]> = all.iter().map(Vec::as_slice).collect();
    let in_batch = fast.raw_logits(&eight).unwrap().narrow(0, 2, 1);
    assert!(
        common::max_abs_diff(&one, &in_batch) <= 1e-4 * one.abs().max().double_value(&[]).max(1.0)
    );
}

#[test]
fn optimisation_can_be_turned_off() {
    let store = common::random_model_store(12);
    let plain = load(&store, false);
    assert!(!plain.is_optimized());
    let r = plain
        .classify(&[inputs(1, 224, 1)[0].as_slice()], 3)
        .unwrap();
    assert_eq!(r[0].predictions.len(), 3);
}
