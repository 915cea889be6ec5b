//! DCT-scaled JPEG decoding (`decode_file_scaled`) is faithful to full decoding followed by the
//! same preprocessing: close in pixels (model-free, on generated photos-like images and on
//! every large JPEG of the shared corpus) and, with the real EfficientNet-Lite0, the same top-1
//! class with probabilities within a few points. Skips, saying why, without the corpus or the
//! model.

use crate::common;

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use phototag_engine::imaging::{
    decode_bytes, decode_bytes_scaled, decode_file, decode_file_scaled, preprocess, Preprocess,
};
use phototag_light::limits::Limits;

const TEST: &str = "scaled_decode";

/// Mean and max absolute difference, in 8-bit levels, between the preprocessed (resized and
/// cropped, before normalisation: mean 0, std 1/255) inputs of two decodes.
fn input_diff(full: &RgbImage, scaled: &RgbImage) -> (f64, f64) {
    let p = Preprocess {
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
        ..Preprocess::imagenet()
    };
    let a = preprocess(full, &p).unwrap().data;
    let b = preprocess(scaled, &p).unwrap().data;
    let diffs: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    (mean, diffs.iter().copied().fold(0.0, f64::max))
}

/// A smooth, photo-like test image with some texture.
fn synthetic(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let ripple = ((fx * 40.0).sin() * (fy * 30.0).cos() * 40.0) as i32;
        Rgb([
            (fx * 200.0) as i32 + ripple,
            (fy * 200.0) as i32 - ripple,
            ((fx + fy) * 100.0) as i32 + ripple / 2,
        ]
        .map(|v| v.clamp(0, 255) as u8))
    })
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    img.write_with_encoder(enc).unwrap();
    out
}

#[test]
fn scaled_decode_is_smaller_and_close_in_pixels() {
    let limits = Limits::default();
    // 4000x3000 (12 MP): decoded at 1/4, 1000x750 (the shorter side at least 2 x 256).
    let bytes = jpeg_bytes(&synthetic(4000, 3000));
    let full = decode_bytes(&bytes, &limits).unwrap();
    let scaled = decode_bytes_scaled(&bytes, &limits, 256).unwrap();
    assert_eq!(full.image.dimensions(), (4000, 3000));
    assert_eq!(scaled.image.dimensions(), (1000, 750));
    assert_eq!(scaled.upright_size(), (4000, 3000));
    let (mean, max) = input_diff(&full.image, &scaled.image);
    println!("synthetic 12 MP: model input differs by mean {mean:.3}, max {max:.1} levels");
    assert!(mean < 1.0 && max < 16.0, "mean {mean}, max {max}");
    // Under 2 x 256 on the shorter side: not scaled at all.
    let small = jpeg_bytes(&synthetic(1000, 1000));
    let d = decode_bytes_scaled(&small, &limits, 256).unwrap();
    assert_eq!(d.image.dimensions(), (1000, 1000));
}

/// Every JPEG in the corpus's photo folders whose shorter side is at least `min_short`.
fn corpus_jpegs(corpus: &Path, min_short: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["pkg", "exif"] {
        let mut stack = vec![corpus.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let name = p.to_string_lossy().to_lowercase();
                if p.is_dir() {
                    stack.push(p);
                } else if name.ends_with(".jpg") || name.ends_with(".jpeg") {
                    let big = image::image_dimensions(&p)
                        .map(|(w, h)| w.min(h) >= min_short)
                        .unwrap_or(false);
                    if big {
                        out.push(p);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The corpus JPEGs that a scaled decode (for a 256-pixel resize) really scales.
const MIN_SHORT: u32 = 1024;

#[test]
fn corpus_photos_decode_close_in_pixels() {
    let Some(corpus) = common::shared("corpus", TEST) else {
        return;
    };
    let limits = Limits::default();
    let files = corpus_jpegs(&corpus, MIN_SHORT);
    assert!(files.len() >= 15, "{} photos", files.len());
    let (mut worst, mut worst_file, mut sum) = (0.0, String::new(), 0.0);
    for f in &files {
        let full = decode_file(f, &limits).unwrap();
        let scaled = decode_file_scaled(f, &limits, 256).unwrap();
        assert!(scaled.image.width() < full.image.width(), "{}", f.display());
        assert_eq!(scaled.upright_size(), full.image.dimensions());
        assert_eq!(scaled.orientation, full.orientation);
        let (mean, max) = input_diff(&full.image, &scaled.image);
        sum += mean;
        if mean > worst {
            (worst, worst_file) = (mean, f.display().to_string());
        }
        // Measured: at most 1.1 levels on average (a noisy HDR phone photo).
        assert!(mean < 2.0, "{}: mean {mean:.2}, max {max:.0}", f.display());
    }
    println!(
        "{} corpus JPEGs: model inputs differ by {:.2} levels on average; worst {worst:.2} ({worst_file})",
        files.len(),
        sum / files.len() as f64,
    );
}

#[test]
fn scaled_decode_keeps_the_real_models_answer() {
    use phototag_engine::model::{Classifier, ClassifierOptions};
    use phototag_light::model_files::ModelStore;
    let Some(corpus) = common::shared("corpus", TEST) else {
        return;
    };
    let dir = std::env::var_os("PHOTOTAG_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(phototag_light::paths::default_model_dir);
    let model = match ModelStore::new(&dir).get("efficientnet-lite0") {
        Ok(m) => m,
        Err(e) => {
            let why = format!("efficientnet-lite0 is not prepared ({e}); `make test` prepares it");
            return common::skip(TEST, &why);
        }
    };
    let classifier = Classifier::load(&model, &ClassifierOptions::default()).unwrap();
    let p = phototag_engine::imaging::Preprocess::for_model(classifier.manifest());
    let limits = Limits::default();
    let files = corpus_jpegs(&corpus, MIN_SHORT);
    let (mut worst, mut worst_file, mut ties) = (0.0f32, String::new(), 0);
    for f in &files {
        let full = decode_file(f, &limits).unwrap();
        let scaled = decode_file_scaled(f, &limits, p.resize).unwrap();
        let a = preprocess(&full.image, &p).unwrap().data;
        let b = preprocess(&scaled.image, &p).unwrap().data;
        let top = classifier.classify(&[&a, &b], 2).unwrap();
        let (tf, ts) = (&top[0].predictions[0], &top[1].predictions[0]);
        // Where the full decode's top two classes are within one point, any change of decoder
        // (or of libjpeg version) may swap them; everywhere else the class must be the same.
        let margin = (tf.probability - top[0].predictions[1].probability) * 100.0;
        let diff = (tf.probability - ts.probability).abs() * 100.0;
        println!(
            "{} {:>5.1}% vs {:>5.1}% (lead {margin:.1}) {}",
            if tf.index == ts.index { "same" } else { "SWAP" },
            tf.probability * 100.0,
            ts.probability * 100.0,
            f.display()
        );
        if margin >= 1.0 {
            assert_eq!(
                tf.index,
                ts.index,
                "{}: full {} {:.1}%, scaled {} {:.1}%",
                f.display(),
                tf.class,
                tf.probability * 100.0,
                ts.class,
                ts.probability * 100.0
            );
        } else if tf.index != ts.index {
            ties += 1;
        }
        if diff > worst {
            (worst, worst_file) = (diff, f.display().to_string());
        }
    }
    println!(
        "{} corpus JPEGs: top-1 the same (but {ties} tied within a point); its probability moves by at most {worst:.2} points ({worst_file})",
        files.len()
    );
    assert!(worst <= 5.0, "{worst_file}: {worst:.2} points");
}
