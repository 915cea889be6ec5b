//! JPEG thumbnails, made on demand from the catalog's content and cached by content hash
//! and size (`<thumb_dir>/<size>/<first 2 hex>/<hash>.jpg`): a content never changes, so a
//! cached thumbnail never goes stale. Written to a temporary name, then renamed.
//!
//! May not: take a path or a size from a request (the caller passes a known hash and one
//! of the configured sizes), or fail a request because the cache cannot be written.

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;

use crate::imaging::{self, DecodeError};
use phototag_light::catalog::{hex, Hash};
use phototag_light::fsutil::{open_regular, write_atomic_with, Atomic};
use phototag_light::limits::Limits;

/// JPEG quality of thumbnails.
const QUALITY: u8 = 82;

/// Where the thumbnail of `hash` at `size` is cached.
pub fn cache_path(dir: &Path, hash: &Hash, size: u32) -> PathBuf {
    let h = hex(hash);
    dir.join(size.to_string())
        .join(&h[..2])
        .join(format!("{h}.jpg"))
}

/// The cached thumbnail, if there is one.
pub fn cached(dir: &Path, hash: &Hash, size: u32) -> Option<Vec<u8>> {
    let (mut f, meta) = open_regular(&cache_path(dir, hash, size)).ok()?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut f, &mut bytes).ok()?;
    Some(bytes)
}

/// Makes the thumbnail of an image's bytes (upright, longest side at most `size`; never
/// enlarged), and stores it in the cache (a failure to store is logged).
pub fn make(
    dir: &Path,
    hash: &Hash,
    size: u32,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<u8>, DecodeError> {
    // A JPEG is decoded at a reduced scale (still at least twice the thumbnail's side):
    // a fraction of the time and memory of every pixel.
    let decoded = imaging::decode_bytes_scaled(bytes, limits, size)?;
    let (w, h) = decoded.image.dimensions();
    let (tw, th) = fit(w, h, size);
    let small = if (tw, th) == (w, h) {
        decoded.image
    } else {
        image::imageops::thumbnail(&decoded.image, tw, th)
    };
    let mut jpeg = Vec::with_capacity(32 * 1024);
    JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&small)
        .map_err(|e| DecodeError::Io {
            path: None,
            source: std::io::Error::other(e),
        })?;
    if let Err(e) = store(&cache_path(dir, hash, size), &jpeg) {
        tracing::warn!(dir = %dir.display(), "cannot cache a thumbnail: {e}");
    }
    Ok(jpeg)
}

/// The size of a `w`×`h` image scaled to fit in `size`×`size` (never enlarged; at least 1).
pub fn fit(w: u32, h: u32, size: u32) -> (u32, u32) {
    let longest = w.max(h);
    if longest <= size {
        return (w, h);
    }
    let scale = |v: u32| ((v as u64 * size as u64 + longest as u64 / 2) / longest as u64).max(1);
    (scale(w) as u32, scale(h) as u32)
}

/// Into the cache (no fsync: a thumbnail lost to a crash is made again).
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let how = Atomic {
        mode: None,
        sync: false,
    };
    write_atomic_with(path, bytes, how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit(4000, 3000, 320), (320, 240));
        assert_eq!(fit(3000, 4000, 320), (240, 320));
        assert_eq!(fit(100, 50, 320), (100, 50));
        assert_eq!(fit(30000, 10, 320), (320, 1));
    }

    #[test]
    fn made_once_then_cached() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let hash = phototag_light::catalog::hash_bytes(&png);
        assert!(cached(dir.path(), &hash, 320).is_none());
        let jpeg = make(dir.path(), &hash, 320, &png, &Limits::default()).unwrap();
        let t = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((t.width(), t.height()), (320, 240));
        assert_eq!(cached(dir.path(), &hash, 320).unwrap(), jpeg);
        assert!(cache_path(dir.path(), &hash, 320).starts_with(dir.path().join("320")));
        assert!(make(dir.path(), &hash, 320, b"not an image", &Limits::default()).is_err());
    }
}
