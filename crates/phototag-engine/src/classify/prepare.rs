//! From a file or bytes to the model's input: decode by content (limits, EXIF orientation),
//! then preprocess with the model's transform. [`Scale::Reduced`] lets JPEGs decode at 1/2,
//! 1/4 or 1/8 while the shorter side stays at least twice the model's resize (what
//! classification uses); [`Scale::Full`] always decodes every pixel (the reference path).
//! Also the one read-and-hash of indexing: the bytes hashed are the bytes decoded.
//!
//! May not: run the model.

use std::io::Read;
use std::path::{Path, PathBuf};

use phototag_light::catalog::Hash;
use phototag_light::fsutil::open_regular;

use super::{FileError, Prepared, Settings};
use crate::imaging::{self, DecodeError, Decoded, LimitKind};

/// How much of a photo to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// DCT-scaled JPEG decoding where it keeps the answer (`imaging::decode_*_scaled`).
    Reduced,
    /// Every pixel.
    Full,
}

/// Decodes and preprocesses the image in `path`.
pub fn prepare_path(path: &Path, s: &Settings, scale: Scale) -> Result<Prepared, FileError> {
    let decoded = match scale {
        Scale::Reduced => imaging::decode_file_scaled(path, &s.limits, s.preprocess.resize)?,
        Scale::Full => imaging::decode_file(path, &s.limits)?,
    };
    preprocess(&decoded, s)
}

/// Decodes and preprocesses an image held in memory.
pub fn prepare_bytes(bytes: &[u8], s: &Settings, scale: Scale) -> Result<Prepared, FileError> {
    let decoded = match scale {
        Scale::Reduced => imaging::decode_bytes_scaled(bytes, &s.limits, s.preprocess.resize)?,
        Scale::Full => imaging::decode_bytes(bytes, &s.limits)?,
    };
    preprocess(&decoded, s)
}

fn preprocess(d: &Decoded, s: &Settings) -> Result<Prepared, FileError> {
    let p = imaging::preprocess(&d.image, &s.preprocess)?;
    let (width, height) = d.upright_size();
    Ok(Prepared {
        data: p.data,
        warnings: p.warnings,
        width,
        height,
        format: d.format,
    })
}

/// Reads a file (refusing it over `max` bytes) and hashes it (BLAKE3).
pub fn read_and_hash(path: &Path, max: u64) -> Result<(Vec<u8>, Hash), FileError> {
    let (f, meta) = open_regular(path).map_err(FileError::Read)?;
    let len = meta.len();
    if len > max {
        return Err(DecodeError::TooLarge {
            limit: LimitKind::FileBytes,
            actual: Some(len),
            max,
            dimensions: None,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Read)?;
    let hash = *blake3::hash(&bytes).as_bytes();
    Ok((bytes, hash))
}

/// Content known by its hash, read again from the first of its paths that still holds it
/// (the bytes decoded are the bytes hashed): `retag` and the queue both work this way.
pub enum Reread {
    /// This path still holds the content: its decode, sized for classification.
    Found(PathBuf, Result<Prepared, FileError>),
    /// No path holds it. The last path that was there but did not do: its bytes changed, or
    /// it could not be read; `None` when every path is simply gone.
    Gone(Option<Missed>),
}

/// Why a path that still exists did not give the content back.
pub enum Missed {
    Changed,
    Unreadable(FileError),
}

/// Reads `paths` in order until one still holds `hash`, and decodes that one.
pub fn reread<P: AsRef<Path>>(
    hash: &Hash,
    paths: impl IntoIterator<Item = P>,
    s: &Settings,
) -> Reread {
    let mut missed = None;
    for p in paths {
        let p = p.as_ref();
        match read_and_hash(p, s.limits.max_file_bytes) {
            Ok((bytes, h)) if h == *hash => {
                let prepared = prepare_bytes(&bytes, s, Scale::Reduced);
                return Reread::Found(p.to_path_buf(), prepared);
            }
            Ok(_) => missed = Some(Missed::Changed),
            Err(FileError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => missed = Some(Missed::Unreadable(e)),
        }
    }
    Reread::Gone(missed)
}
