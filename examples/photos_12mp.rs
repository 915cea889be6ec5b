//! Makes a folder of 12-megapixel JPEGs (4000x3000) from real photos, for benchmarks:
//! `phototag bench --dir OUT` and whole-process `phototag index OUT` runs. The photos are
//! never committed; this makes them again, the same bytes each time.
//!
//! Run: `cargo run --release --example photos_12mp -- [--count 100] [--from DIR] OUT`
//! (`--from` defaults to `../shared/corpus/pkg`; every JPEG and PNG under it at least 300
//! pixels on each side is a source).
//!
//! Photo `i` is a mosaic: one source photo scaled to cover the whole frame, with a second
//! one inset over a quarter of it (so no two outputs are alike), plus a little seeded
//! grain, as a camera sensor has, so the files have the size and entropy-decoding cost of
//! real 12 MP photos (~3-5 MB at quality 92), not of smooth upscaled ones (~0.7 MB).

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{GenericImage, RgbImage};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        {
            out.push(p);
        }
    }
}

/// Scales `img` to cover `w`x`h` and crops the middle.
fn cover(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let s = (w as f64 / img.width() as f64).max(h as f64 / img.height() as f64);
    let (sw, sh) = (
        ((img.width() as f64 * s).ceil() as u32).max(w),
        ((img.height() as f64 * s).ceil() as u32).max(h),
    );
    let scaled = image::imageops::resize(img, sw, sh, FilterType::Triangle);
    image::imageops::crop_imm(&scaled, (sw - w) / 2, (sh - h) / 2, w, h).to_image()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut count = 100usize;
    let mut from = PathBuf::from("../shared/corpus/pkg");
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => count = args.next().ok_or("--count N")?.parse()?,
            "--from" => from = args.next().ok_or("--from DIR")?.into(),
            _ if a.starts_with('-') => return Err(format!("unknown flag {a}").into()),
            _ => out = Some(PathBuf::from(a)),
        }
    }
    let out = out.ok_or("usage: photos_12mp [--count N] [--from DIR] OUT")?;
    let mut paths = Vec::new();
    sources(&from, &mut paths);
    let photos: Vec<RgbImage> = paths
        .iter()
        .filter_map(|p| image::open(p).ok())
        .map(|i| i.to_rgb8())
        .filter(|i| i.width() >= 300 && i.height() >= 300)
        .collect();
    if photos.len() < 2 {
        return Err(format!("fewer than two usable photos under {}", from.display()).into());
    }
    std::fs::create_dir_all(&out)?;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut total = 0u64;
    for i in 0..count {
        let base = &photos[i % photos.len()];
        let inset = &photos[(i * 7 + 3) % photos.len()];
        let mut img = cover(base, WIDTH, HEIGHT);
        let small = cover(inset, WIDTH / 2, HEIGHT / 2);
        let (x, y) = [
            (0, 0),
            (WIDTH / 2, 0),
            (0, HEIGHT / 2),
            (WIDTH / 2, HEIGHT / 2),
        ][i % 4];
        img.copy_from(&small, x, y)?;
        for p in img.pixels_mut() {
            for c in p.0.iter_mut() {
                // xorshift64: grain of +-6 levels.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let grain = (seed % 13) as i16 - 6;
                *c = (*c as i16 + grain).clamp(0, 255) as u8;
            }
        }
        let path = out.join(format!("photo-{i:04}.jpg"));
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 92).encode_image(&img)?;
        std::fs::write(&path, &bytes)?;
        total += bytes.len() as u64;
        eprintln!("{} ({:.1} MB)", path.display(), bytes.len() as f64 / 1e6);
    }
    eprintln!(
        "{count} photos of {WIDTH}x{HEIGHT}, {:.1} MB on average, from {} sources",
        total as f64 / count.max(1) as f64 / 1e6,
        photos.len()
    );
    Ok(())
}
