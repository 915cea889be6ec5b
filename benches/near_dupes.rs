//! How `dupes --near` was tuned, reproducibly: near-copy sets generated from the photos of
//! `../shared/corpus` (pkg/ and exif/, plus the four Kodak PNGs), classified with the real
//! EfficientNet-Lite0, and the recall and precision of near-copy pairs at each threshold.
//!
//! Each base photo gets six variants: resized to 50%, re-encoded at JPEG quality 60,
//! centre-cropped to 90%, brightened by 15%, and two burst-like frames (a 92% window moved
//! 4% one way or the other, a little darker or brighter). The variants of one photo (and
//! the photo) are near copies of each other; anything else is not, except corpus files that
//! are themselves one scene (a stereo pair, a flow sequence, a chessboard in grey and
//! colour, an HDR shot with and without HDR, a photo and its Photoshop import), which count
//! as one photo. The EXIF orientation sets (recurser's and ianare's: one photo with a large
//! digit drawn on each file) are left out: neither copies nor different photos. Every pair is scored exactly (all pairs), and the real pipeline (hashing,
//! checks, grouping) is run at each threshold too: recall is the share of true pairs it
//! puts in one group, precision the share of the pairs within its groups that are true.
//!
//! It also measures what storing 8-bit embeddings costs: the ten nearest neighbours of
//! every image by the stored bytes against those by the 32-bit features.
//!
//! Needs `../shared/corpus` and a prepared `efficientnet-lite0` (`PHOTOTAG_MODEL_DIR`, else
//! `~/.local/share/phototag/models`); prints why it skips otherwise.
//! Run: `cargo bench --bench near_dupes`.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::RgbImage;

use phototag_engine::classify::{prepare_bytes, Batch, Scale, Settings};
use phototag_engine::imaging::decode_bytes;
use phototag_engine::model::{Classifier, ClassifierOptions};
use phototag_light::config::Config;
use phototag_light::model_files::ModelStore;
use phototag_light::vectors::near::{all_similar_pairs, group, similar_pairs, Vectors};
use phototag_light::vectors::Embedding;

const KINDS: [&str; 7] = [
    "original", "resize50", "jpeg60", "crop90", "bright15", "burst-a", "burst-b",
];

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("encode");
    out.into_inner()
}

/// Multiplies every channel by `f`.
fn brightness(img: &RgbImage, f: f32) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) * f).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// A `frac` window of the image whose top-left corner is at (`x`, `y`) of the free margin
/// (0 = left/top, 0.5 = centred, 1 = right/bottom).
fn window(img: &RgbImage, frac: f32, x: f32, y: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cw, ch) = (
        ((w as f32 * frac) as u32).max(1),
        ((h as f32 * frac) as u32).max(1),
    );
    let (mx, my) = ((w - cw) as f32, (h - ch) as f32);
    imageops::crop_imm(img, (mx * x) as u32, (my * y) as u32, cw, ch).to_image()
}

/// The six variants of a photo, as files would hold them.
fn variants(img: &RgbImage) -> Vec<Vec<u8>> {
    let (w, h) = img.dimensions();
    vec![
        jpeg(
            &imageops::resize(img, (w / 2).max(1), (h / 2).max(1), FilterType::Triangle),
            90,
        ),
        jpeg(img, 60),
        jpeg(&window(img, 0.9, 0.5, 0.5), 90),
        jpeg(&brightness(img, 1.15), 90),
        // Burst frames: the camera moved 4% of the frame, the exposure changed a little.
        jpeg(&brightness(&window(img, 0.92, 0.0, 0.25), 0.96), 90),
        jpeg(&brightness(&window(img, 0.92, 1.0, 0.75), 1.04), 90),
    ]
}

/// Corpus files that show one scene, which count as one photo.
fn scene(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
    let s = path.to_string_lossy();
    // An HDR shot with and without HDR; a photo and its Photoshop import.
    for (prefix, scene) in [
        ("canon_hdr_", "canon hdr"),
        ("iphone_hdr_", "iphone hdr"),
        ("canon_40d", "canon 40d"),
    ] {
        if name.starts_with(prefix) {
            return scene.into();
        }
    }
    for (prefix, scene) in [
        ("motorcycle_", "motorcycle"),
        ("aero", "aero"),
        ("chessboard_", "chessboard"),
    ] {
        if name.starts_with(prefix) {
            return scene.into();
        }
    }
    s.into_owned()
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
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                // The EXIF orientation sets (recurser's, and ianare's copy) are one photo
                // with a large digit drawn on each file: neither copies nor different
                // photos, so they are left out of the measure.
                let name = p.file_name().unwrap().to_string_lossy().to_lowercase();
                if !(name.starts_with("landscape_") || name.starts_with("portrait_")) {
                    out.push(p);
                }
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
    scene: usize,
    kind: usize,
    name: String,
    features: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b))
}

/// Recall and precision of the pairs within `groups` (indexes into items).
fn pair_figures(items: &[Item], groups: &[Vec<usize>], true_pairs: usize) -> (f64, f64, usize) {
    let (mut right, mut all) = (0usize, 0usize);
    for g in groups {
        for (x, &a) in g.iter().enumerate() {
            for &b in &g[x + 1..] {
                all += 1;
                right += usize::from(items[a].scene == items[b].scene);
            }
        }
    }
    let recall = right as f64 / true_pairs.max(1) as f64;
    let precision = if all == 0 {
        1.0
    } else {
        right as f64 / all as f64
    };
    (recall, precision, all)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("SKIPPED near_dupes benchmark: run it with `cargo bench --bench near_dupes`");
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!(
            "SKIPPED near_dupes benchmark: {} is absent",
            corpus.display()
        );
        return;
    }
    let models = std::env::var_os("PHOTOTAG_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(phototag_light::paths::default_model_dir);
    let stored = match ModelStore::new(&models).get("efficientnet-lite0") {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIPPED near_dupes benchmark: {e}");
            return;
        }
    };
    if stored.manifest.embedding_size.is_none() {
        eprintln!(
            "SKIPPED near_dupes benchmark: {}",
            stored.manifest.embeddings().unwrap_err()
        );
        return;
    }
    let classifier = Classifier::load(&stored, &ClassifierOptions::default()).unwrap();
    let settings = Settings::new(&Config::default(), &stored.manifest, 8);
    let limits = Config::default().limits;

    // Bases, their variants, their embeddings.
    let t = Instant::now();
    let mut scenes: HashMap<String, usize> = HashMap::new();
    let mut items: Vec<Item> = Vec::new();
    let mut skipped = 0;
    for path in photos(&corpus) {
        let Ok(bytes) = std::fs::read(&path) else {
            skipped += 1;
            continue;
        };
        let Ok(decoded) = decode_bytes(&bytes, &limits) else {
            skipped += 1;
            continue;
        };
        if decoded.image.width() < 64 || decoded.image.height() < 64 {
            skipped += 1;
            continue;
        }
        let next = scenes.len();
        let scene = *scenes.entry(scene(&path)).or_insert(next);
        let mut files = vec![bytes];
        files.extend(variants(&decoded.image));
        let mut batch = Batch::new(files.len());
        for (kind, f) in files.iter().enumerate() {
            batch.push(kind, prepare_bytes(f, &settings, Scale::Reduced));
        }
        let name = path
            .strip_prefix(&corpus)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (kind, r) in batch.run(&classifier, 1) {
            match r {
                Ok(c) => items.push(Item {
                    scene,
                    kind,
                    name: name.clone(),
                    features: c.embedding.expect("the model gives embeddings"),
                }),
                Err(e) => eprintln!("{name} ({}): {e}", KINDS[kind]),
            }
        }
    }
    let bases = items.iter().filter(|i| i.kind == 0).count();
    println!(
        "{bases} photos ({} scenes; {skipped} corpus files skipped: unreadable or under 64 px), {} images with their variants, classified in {:.0} s",
        scenes.len(),
        items.len(),
        t.elapsed().as_secs_f64()
    );

    // What storing 8 bits costs.
    let stored: Vec<Embedding> = items
        .iter()
        .map(|i| Embedding::quantize(&i.features).unwrap())
        .collect();
    let n = items.len();
    let (mut overlap, mut max_diff, mut same_order) = (0usize, 0f32, 0usize);
    for a in 0..n {
        let mut exact: Vec<(f32, usize)> = (0..n)
            .filter(|&b| b != a)
            .map(|b| (cosine(&items[a].features, &items[b].features), b))
            .collect();
        let mut bytes: Vec<(f32, usize)> = (0..n)
            .filter(|&b| b != a)
            .map(|b| (stored[a].as_ref().cosine(&stored[b].as_ref()), b))
            .collect();
        for ((e, _), (q, _)) in exact.iter().zip(&bytes) {
            max_diff = max_diff.max((e - q).abs());
        }
        exact.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        bytes.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        let top_e: Vec<usize> = exact[..10].iter().map(|x| x.1).collect();
        let top_q: Vec<usize> = bytes[..10].iter().map(|x| x.1).collect();
        overlap += top_e.iter().filter(|b| top_q.contains(b)).count();
        same_order += usize::from(top_e == top_q);
    }
    println!(
        "8-bit storage: ten nearest neighbours by the stored bytes vs 32-bit features: {:.2}% shared, same order for {same_order} of {n} images; largest score difference {max_diff:.4}",
        100.0 * overlap as f64 / (10 * n) as f64,
    );

    // Every pair, exactly.
    let mut v = Vectors::new(stored[0].values.len());
    for e in &stored {
        v.push(e.as_ref());
    }
    let all = all_similar_pairs(&v, -1.0);
    let true_pairs = all
        .iter()
        .filter(|p| items[p.0 as usize].scene == items[p.1 as usize].scene)
        .count();
    println!("{true_pairs} true pairs among {} pairs", all.len());

    println!("\nthreshold  pairs>=T: recall precision | dupes --near groups: recall precision pairs  candidates checked  time");
    let mut table = Vec::new();
    for t100 in (70..=98).map(|t| t as f32 / 100.0) {
        let above: Vec<_> = all.iter().filter(|p| p.2 >= t100).collect();
        let right = above
            .iter()
            .filter(|p| items[p.0 as usize].scene == items[p.1 as usize].scene)
            .count();
        let recall = right as f64 / true_pairs as f64;
        let precision = if above.is_empty() {
            1.0
        } else {
            right as f64 / above.len() as f64
        };
        let started = Instant::now();
        let (pairs, plan) = similar_pairs(&v, t100);
        let groups: Vec<Vec<usize>> = group(n, &pairs, |i| (1000 - items[i].kind) as u64)
            .into_iter()
            .map(|g| g.members.into_iter().map(|m| m.0).collect())
            .collect();
        let took = started.elapsed();
        let (g_recall, g_precision, g_pairs) = pair_figures(&items, &groups, true_pairs);
        println!(
            "  {t100:.2}      {:>6.2}%  {:>6.2}%     |  {:>6.2}%  {:>6.2}%  {g_pairs:>6}  {:>8}  {:>6.1} ms",
            100.0 * recall,
            100.0 * precision,
            100.0 * g_recall,
            100.0 * g_precision,
            plan.candidates,
            took.as_secs_f64() * 1e3
        );
        table.push((t100, recall, precision, g_recall, g_precision));
    }

    // The threshold: the lowest (most found) whose groups keep 99% of their pairs true.
    let chosen = table
        .iter()
        .filter(|r| r.4 >= 0.99)
        .map(|r| r.0)
        .fold(f32::INFINITY, f32::min);
    println!("\nlowest threshold whose groups are at least 99% right: {chosen:.2}");
    // The default: the lowest at which no pair of different photos scores (a margin for
    // libraries with more look-alikes than this set), if it still finds 95% of the pairs.
    let clean = table
        .iter()
        .filter(|r| r.2 >= 1.0 && r.4 >= 1.0)
        .map(|r| r.0)
        .fold(f32::INFINITY, f32::min);
    if let Some(r) = table.iter().find(|r| r.0 == clean) {
        println!(
            "lowest threshold with no pair of different photos: {clean:.2} (pairs: recall {:.2}%; groups: recall {:.2}%)",
            100.0 * r.1,
            100.0 * r.3
        );
    }
    let mut originals: Vec<_> = all
        .iter()
        .filter(|p| {
            let (a, b) = (&items[p.0 as usize], &items[p.1 as usize]);
            a.kind == 0 && b.kind == 0 && a.scene != b.scene && p.2 >= 0.8
        })
        .collect();
    originals.sort_by(|a, b| b.2.total_cmp(&a.2));
    println!(
        "{} pairs of different photos (originals) at 0.80 or more; the most similar:",
        originals.len()
    );
    for p in originals.iter().take(25) {
        println!(
            "  {:.3}  {}  ~  {}",
            p.2, items[p.0 as usize].name, items[p.1 as usize].name
        );
    }
    if chosen.is_finite() {
        println!("recall of each variant against its photo at {chosen:.2} (pairs >= T):");
        for (k, kind) in KINDS.iter().enumerate().skip(1) {
            let (mut found, mut total) = (0, 0);
            for p in &all {
                let (a, b) = (&items[p.0 as usize], &items[p.1 as usize]);
                let pair = (a.kind == 0 && b.kind == k) || (b.kind == 0 && a.kind == k);
                if pair && a.name == b.name {
                    total += 1;
                    found += usize::from(p.2 >= chosen);
                }
            }
            println!(
                "  {kind:<9} {found}/{total} ({:.1}%)",
                100.0 * found as f64 / total.max(1) as f64
            );
        }
        let mut false_pairs: Vec<_> = all
            .iter()
            .filter(|p| {
                p.2 >= chosen - 0.1 && items[p.0 as usize].scene != items[p.1 as usize].scene
            })
            .collect();
        false_pairs.sort_by(|a, b| b.2.total_cmp(&a.2));
        println!(
            "the most similar pairs of different photos (above {:.2}):",
            chosen - 0.1
        );
        for p in false_pairs.iter().take(15) {
            let (a, b) = (&items[p.0 as usize], &items[p.1 as usize]);
            println!(
                "  {:.3}  {} ({})  ~  {} ({})",
                p.2, a.name, KINDS[a.kind], b.name, KINDS[b.kind]
            );
        }
    }
}
