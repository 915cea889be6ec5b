//! Tags taught by example, accuracy on real photos: the photos of `../shared/corpus` (pkg/,
//! exif/ without the orientation sets, four Kodak PNGs) and four variants of each (the
//! photo, resized to 50%, centre-cropped to 90%, brightened 15%), classified with the real
//! EfficientNet-Lite0. The kind: the 13 desktop backgrounds of debian-mate-backgrounds
//! (landscapes, flowers, textures) against everything else. A tag is taught from n yes and
//! n no examples drawn at random (n = 5, 10, 20; 10 draws each) with `taught::teach` (what
//! `phototag teach` fits) and its matches on the other images are counted: precision and
//! recall on all of them, and on the images of photos none of whose variants was an
//! example (no near copy of an example). Skips (printing why) without the corpus or the
//! model. The speed (fit from 50, apply to 1,000,000) is
//! `crates/phototag-light/benches/taught_speed.rs`.
//!
//! Run: `cargo bench --bench taught`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::imageops::{self, FilterType};
use image::RgbImage;

use phototag_engine::classify::{prepare_bytes, Batch, Scale, Settings};
use phototag_engine::imaging::decode_bytes;
use phototag_engine::model::{Classifier, ClassifierOptions};
use phototag_light::config::Config;
use phototag_light::model_files::ModelStore;
use phototag_light::taught::teach;
use phototag_light::vectors::Embedding;

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn variants(img: &RgbImage) -> Vec<RgbImage> {
    let (w, h) = (img.width(), img.height());
    let half = imageops::resize(img, w / 2, h / 2, FilterType::Triangle);
    let (cw, ch) = (w * 9 / 10, h * 9 / 10);
    let crop = imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
    let mut bright = img.clone();
    for p in bright.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) * 1.15).round().min(255.0) as u8;
        }
    }
    vec![img.clone(), half, crop, bright]
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(img)
        .unwrap();
    out.into_inner()
}

fn photos(corpus: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![corpus.join("pkg"), corpus.join("exif")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_lowercase();
            if p.is_dir() {
                stack.push(p);
            } else if (name.ends_with(".jpg") || name.ends_with(".jpeg") || name.ends_with(".png"))
                && !(name.starts_with("landscape_") || name.starts_with("portrait_"))
            {
                out.push(p);
            }
        }
    }
    for k in ["02", "07", "17", "23"] {
        out.push(corpus.join(format!("formats/image-rs-png/tests/benches/kodim{k}.png")));
    }
    out.sort();
    out
}

struct Item {
    photo: usize,
    kind: bool,
    features: Vec<f32>,
}

/// Precision and recall of a tag taught from 5, 10 and 20 examples on corpus photos.
fn accuracy() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("SKIPPED taught accuracy: {} is absent", corpus.display());
        return;
    }
    let models = std::env::var_os("PHOTOTAG_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(phototag_light::paths::default_model_dir);
    let stored = match ModelStore::new(&models).get("efficientnet-lite0") {
        Ok(m) if m.manifest.embedding_size.is_some() => m,
        Ok(_) => {
            eprintln!("SKIPPED taught accuracy: efficientnet-lite0 gives no embeddings (prepare it again)");
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED taught accuracy: {e}");
            return;
        }
    };
    let classifier = Classifier::load(&stored, &ClassifierOptions::default()).unwrap();
    let settings = Settings::new(&Config::default(), &stored.manifest, 8);
    let limits = Config::default().limits;
    let t = Instant::now();
    let mut items: Vec<Item> = Vec::new();
    let mut photo = 0;
    for path in photos(&corpus) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(decoded) = decode_bytes(&bytes, &limits) else {
            continue;
        };
        if decoded.image.width() < 64 || decoded.image.height() < 64 {
            continue;
        }
        let kind = path.to_string_lossy().contains("debian-mate-backgrounds");
        let files: Vec<Vec<u8>> = variants(&decoded.image).iter().map(jpeg).collect();
        let mut batch = Batch::new(files.len());
        for f in &files {
            batch.push((), prepare_bytes(f, &settings, Scale::Reduced));
        }
        for (_, r) in batch.run(&classifier, 1) {
            if let Ok(c) = r {
                let e = Embedding::quantize(&c.embedding.unwrap()).unwrap();
                items.push(Item {
                    photo,
                    kind,
                    features: e.to_f32(),
                });
            }
        }
        photo += 1;
    }
    let kinds = items.iter().filter(|i| i.kind).count();
    eprintln!(
        "classified {} images ({photo} photos x 4) in {:.0} s",
        items.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "taught tag on corpus photos (EfficientNet-Lite0): `background` = the {} images of debian-mate-backgrounds' photos, against {} others; 10 draws each",
        kinds,
        items.len() - kinds
    );
    println!("  examples (yes+no) | precision | recall | held-out photos: precision | recall | CV precision | CV recall");
    let pos: Vec<usize> = (0..items.len()).filter(|&i| items[i].kind).collect();
    let neg: Vec<usize> = (0..items.len()).filter(|&i| !items[i].kind).collect();
    let mut rng = Rng(7);
    for n in [5usize, 10, 20] {
        let mut sums = [0.0f64; 6];
        let draws = 10;
        for _ in 0..draws {
            let pick = |from: &[usize], rng: &mut Rng| -> Vec<usize> {
                let mut v = from.to_vec();
                for i in 0..n {
                    let j = i + rng.below(v.len() - i);
                    v.swap(i, j);
                }
                v.truncate(n);
                v
            };
            let yes = pick(&pos, &mut rng);
            let no = pick(&neg, &mut rng);
            let f = |ix: &[usize]| {
                ix.iter()
                    .map(|&i| items[i].features.clone())
                    .collect::<Vec<_>>()
            };
            let fitted = teach("background", "efficientnet-lite0", &f(&yes), &f(&no)).unwrap();
            let used: std::collections::HashSet<usize> = yes.iter().chain(&no).copied().collect();
            let used_photos: std::collections::HashSet<usize> =
                used.iter().map(|&i| items[i].photo).collect();
            let mut all = [0usize; 3];
            let mut held = [0usize; 3];
            for (i, it) in items.iter().enumerate() {
                if used.contains(&i) {
                    continue;
                }
                let hit = fitted.linear.probability(&it.features) >= fitted.threshold;
                let slot = |c: &mut [usize; 3]| {
                    if hit && it.kind {
                        c[0] += 1
                    } else if hit {
                        c[1] += 1
                    } else if it.kind {
                        c[2] += 1
                    }
                };
                slot(&mut all);
                if !used_photos.contains(&it.photo) {
                    slot(&mut held);
                }
            }
            let pr = |c: [usize; 3]| {
                (
                    c[0] as f64 / (c[0] + c[1]).max(1) as f64,
                    c[0] as f64 / (c[0] + c[2]).max(1) as f64,
                )
            };
            let (p, r) = pr(all);
            let (hp, hr) = pr(held);
            let v = fitted.figures.validation.unwrap();
            for (s, x) in
                sums.iter_mut()
                    .zip([p, r, hp, hr, f64::from(v.precision), f64::from(v.recall)])
            {
                *s += x / draws as f64;
            }
        }
        println!(
            "  {n:>2}+{n:<2}             | {:>8.1}% | {:>5.1}% | {:>26.1}% | {:>5.1}% | {:>11.1}% | {:>8.1}%",
            sums[0] * 100.0,
            sums[1] * 100.0,
            sums[2] * 100.0,
            sums[3] * 100.0,
            sums[4] * 100.0,
            sums[5] * 100.0
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED taught benchmark: run it with `cargo bench --bench taught`");
        return;
    }
    accuracy();
}
