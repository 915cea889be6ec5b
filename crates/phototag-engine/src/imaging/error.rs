//! Why an image could not be decoded, and which limit it broke: every message is meant to
//! be shown to a person as is (sizes in MiB and megapixels, the config key to raise).
//!
//! May not: decode anything.

use std::io;
use std::path::PathBuf;

use super::format::Format;

/// What phototag reads, for messages about what it does not.
pub const SUPPORTED_LIST: &str =
    "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIF/HEIC, AVIF and camera raws with a JPEG preview";

/// The message of a file whose data ends before its image does.
pub const TRUNCATED: &str = "the file ends before the image data does (truncated)";

/// Which limit an image broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    FileBytes,
    Width,
    Height,
    Pixels,
    AllocBytes,
}

impl LimitKind {
    /// The name of the [`Limits`] field (and config key) for this limit.
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::FileBytes => "max_file_bytes",
            LimitKind::Width => "max_width",
            LimitKind::Height => "max_height",
            LimitKind::Pixels => "max_pixels",
            LimitKind::AllocBytes => "max_alloc_bytes",
        }
    }
}

/// Why a file could not be decoded. Every message is meant to be shown to a person as is.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read (missing, no permission, a directory, an I/O error).
    #[error("cannot read {}: {source}", path.as_deref().map_or("<bytes>".into(), |p| p.display().to_string()))]
    Io {
        path: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    /// The file or image is over one of the [`Limits`]; nothing large was allocated.
    #[error("{}", too_large_message(*limit, *actual, *max, *dimensions))]
    TooLarge {
        limit: LimitKind,
        /// The offending amount (bytes or pixels, per `limit`); `None` when a decoder ran out of
        /// its allocation budget mid-way and did not say how much it wanted.
        actual: Option<u64>,
        max: u64,
        /// The image's width and height as stored, when known.
        dimensions: Option<(u32, u32)>,
    },
    /// The content is not an image at all (or an empty file). `detected` names what it looks
    /// like when that is recognisable ("ZIP archive", "text").
    #[error("not a supported image: {}", match detected { Some(kind) => format!("this is {kind}, not an image"), None => "the content is not a recognised image format".into() })]
    NotAnImage { detected: Option<&'static str> },
    /// An image format (or a feature of one) that phototag does not decode.
    #[error("not a supported image: {format}{} (phototag reads {SUPPORTED_LIST})", detail.as_deref().map(|d| format!(" with {d}")).unwrap_or_default())]
    Unsupported {
        format: String,
        detail: Option<String>,
    },
    /// A supported format, but the data is damaged or truncated.
    #[error("corrupt or truncated {format} file: {message}")]
    Corrupt { format: Format, message: String },
}

/// Refuses the first of `checks` (limit, actual, max) that is over its limit.
pub fn over_limits(
    checks: &[(LimitKind, u64, u64)],
    dims: Option<(u32, u32)>,
) -> Result<(), DecodeError> {
    match checks.iter().find(|(_, actual, max)| actual > max) {
        Some(&(limit, actual, max)) => Err(DecodeError::TooLarge {
            limit,
            actual: Some(actual),
            max,
            dimensions: dims,
        }),
        None => Ok(()),
    }
}

fn bytes(n: u64) -> String {
    match n as f64 {
        b if b >= (1u64 << 30) as f64 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1} MiB", b / (1u64 << 20) as f64),
        _ => format!("{n} bytes"),
    }
}

fn megapixels(n: u64) -> String {
    match n.is_multiple_of(1_000_000) {
        true => format!("{} MP", n / 1_000_000),
        false => format!("{:.1} MP", n as f64 / 1e6),
    }
}

fn too_large_message(
    limit: LimitKind,
    actual: Option<u64>,
    max: u64,
    dimensions: Option<(u32, u32)>,
) -> String {
    let field = limit.field();
    let dims = dimensions.map_or_else(String::new, |(w, h)| format!("{w}x{h}"));
    match (limit, actual) {
        (LimitKind::FileBytes, Some(n)) => format!(
            "file is {}, over the limit of {} (limits.{field})",
            bytes(n),
            bytes(max)
        ),
        (LimitKind::Width | LimitKind::Height, Some(n)) => {
            let side = if limit == LimitKind::Width {
                "wide"
            } else {
                "tall"
            };
            format!("image is {dims}: {n} pixels {side}, over the limit of {max} (limits.{field})")
        }
        (LimitKind::Pixels, Some(n)) => format!(
            "image is {dims} ({}), over the limit of {} (limits.{field})",
            megapixels(n),
            megapixels(max)
        ),
        (LimitKind::AllocBytes, Some(n)) => format!(
            "decoding this {dims} image needs {} of memory, over the limit of {} (limits.{field})",
            bytes(n),
            bytes(max)
        ),
        (_, _) => format!(
            "the decoder needed more memory than the limit of {} allows (limits.{field})",
            bytes(max)
        ),
    }
}
