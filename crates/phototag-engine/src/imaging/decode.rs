//! Decoding: a file or a byte slice → an upright 8-bit RGB image.
//!
//! Its job, in order: refuse files over [`Limits::max_file_bytes`]; recognise the format from the
//! content (never the extension); read only the header and refuse images over the width, height,
//! pixel or memory limits *before* any pixel buffer is allocated; decode the first frame; flatten
//! the colour type to 8-bit RGB (alpha composited over white); apply the EXIF orientation.
//!
//! It may not: trust file extensions, allocate pixel memory for an image it has not size-checked,
//! panic on malformed input, or do anything beyond decoding (no resizing, no colour management:
//! ICC profiles are ignored, as PIL's `convert("RGB")` ignores them).
//!
//! Formats read: JPEG (libjpeg-turbo, [`super::jpeg`]: CMYK, 12-bit, arithmetic, MPO), HEIF/HEIC
//! and AVIF (libheif, [`super::heif`]), camera raws through their embedded JPEG preview
//! ([`super::raw`]), and PNG, WebP, GIF (first frame), BMP and TIFF (the `image` crate).
//! Everything else (JPEG XL, JPEG 2000, PSD, archives, text…) is refused with an error that
//! names what it looks like.
//!
//! The `_scaled` entry points may decode a JPEG (or a raw's JPEG preview) at a reduced size in
//! the DCT domain, never below the shorter side asked for; the plain ones always decode the
//! full image (the torchvision-reference path).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Cursor, Read, Seek};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use image::error::{LimitErrorKind, UnsupportedErrorKind};

use super::sniff::{heif_brand, sniff_not_image, sniff_unsupported, Format};
use super::{heif, jpeg, raw};
use image::metadata::Orientation;
use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Pixel,
    Primitive, Rgb, RgbImage,
};

/// The formats phototag decodes. Checked explicitly so that enabling another `image` feature
/// elsewhere in the crate does not silently widen what this module accepts.
const SUPPORTED: [ImageFormat; 6] = {
    use ImageFormat::*;
    [Jpeg, Png, WebP, Gif, Bmp, Tiff]
};
const SUPPORTED_LIST: &str =
    "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIF/HEIC, AVIF and camera raws with a JPEG preview";

use phototag_light::limits::Limits;

/// A decoded image, upright and in 8-bit RGB. (`Debug` shows the size, not the pixels.)
#[derive(Clone)]
pub struct Decoded {
    /// The pixels, with the EXIF orientation already applied.
    pub image: RgbImage,
    /// The format recognised from the content.
    pub format: Format,
    /// The orientation that was read from the file and applied.
    pub orientation: Orientation,
    /// Width as stored in the file, before the orientation was applied.
    pub source_width: u32,
    /// Height as stored in the file, before the orientation was applied.
    pub source_height: u32,
}

impl Decoded {
    /// The full image's upright `(width, height)`: the stored size, turned by the orientation.
    /// Equal to `image.dimensions()` unless the image was decoded at a reduced scale.
    pub fn upright_size(&self) -> (u32, u32) {
        use Orientation::*;
        match self.orientation {
            Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => {
                (self.source_height, self.source_width)
            }
            _ => (self.source_width, self.source_height),
        }
    }
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.image.dimensions();
        let (format, orientation) = (self.format, self.orientation);
        let (sw, sh) = (self.source_width, self.source_height);
        write!(
            f,
            "Decoded {{ {w}x{h} RGB, {format:?}, {orientation:?}, stored {sw}x{sh} }}"
        )
    }
}

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

/// Decode the image in `path` at full size. The format is taken from the content; the
/// extension is ignored.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Decoded, DecodeError> {
    let bytes = read_file(path, limits)?;
    decode_slice(&bytes, limits, Some(path), None)
}

/// Like [`decode_file`], for an image whose shorter side will be resized to `min_side`: a JPEG
/// (or a raw file's JPEG preview) may be decoded at a reduced scale (DCT scaling: 1/2, 1/4 or
/// 1/8) whose shorter side is still at least twice `min_side` (see `jpeg::HEADROOM`), at a
/// fraction of the cost and with the same classification (`tests/scaled_decode.rs`).
pub fn decode_file_scaled(
    path: &Path,
    limits: &Limits,
    min_side: u32,
) -> Result<Decoded, DecodeError> {
    let bytes = read_file(path, limits)?;
    decode_slice(&bytes, limits, Some(path), Some(min_side))
}

/// Decode an image held in memory. [`Limits::max_file_bytes`] applies to `bytes.len()`.
pub fn decode_bytes(bytes: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let len = bytes.len() as u64;
    over_limits(&[(LimitKind::FileBytes, len, limits.max_file_bytes)], None)?;
    decode_slice(bytes, limits, None, None)
}

/// [`decode_bytes`] with the reduced-scale decoding of [`decode_file_scaled`].
pub fn decode_bytes_scaled(
    bytes: &[u8],
    limits: &Limits,
    min_side: u32,
) -> Result<Decoded, DecodeError> {
    let len = bytes.len() as u64;
    over_limits(&[(LimitKind::FileBytes, len, limits.max_file_bytes)], None)?;
    decode_slice(bytes, limits, None, Some(min_side))
}

/// Reads a whole regular file, refusing it over [`Limits::max_file_bytes`] before reading.
fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, DecodeError> {
    let io_err = |source| DecodeError::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        let not_file = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(io_err(not_file));
    }
    over_limits(
        &[(LimitKind::FileBytes, meta.len(), limits.max_file_bytes)],
        None,
    )?;
    let file = File::open(path).map_err(io_err)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grew since the stat is still cut at the limit.
    file.take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    over_limits(
        &[(
            LimitKind::FileBytes,
            bytes.len() as u64,
            limits.max_file_bytes,
        )],
        None,
    )?;
    Ok(bytes)
}

/// Refuses the first of `checks` (limit, actual, max) that is over its limit.
pub(super) fn over_limits(
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

/// Recognises the format from the content and decodes. A decoder panic (a bug, in a Rust
/// decoder) costs only this file: it becomes a `Corrupt` error.
fn decode_slice(
    bytes: &[u8],
    limits: &Limits,
    path: Option<&Path>,
    min_side: Option<u32>,
) -> Result<Decoded, DecodeError> {
    let head = &bytes[..bytes.len().min(64)];
    let (format, result) = if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let f = Format::Jpeg;
        (
            f,
            catching(f, || decode_jpeg(bytes, None, limits, min_side, f)),
        )
    } else if let Some(f) = heif_brand(head) {
        (f, catching(f, || decode_heif(bytes, f, limits)))
    } else if let Some(kind) = raw::detect(bytes) {
        let f = Format::Raw(kind);
        let decode = || {
            let preview = raw::preview(bytes, kind)?;
            decode_jpeg(preview.jpeg, preview.orientation, limits, min_side, f)
        };
        (f, catching(f, decode))
    } else {
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|source| DecodeError::Io {
                path: path.map(Path::to_path_buf),
                source,
            })?;
        let format = match reader.format() {
            Some(f) if SUPPORTED.contains(&f) => f,
            guessed => {
                return Err(
                    sniff_unsupported(head, guessed).unwrap_or_else(|| sniff_not_image(head))
                )
            }
        };
        let f = Format::from_image(format).expect("SUPPORTED formats all have a Format");
        // The tiff crate (0.11.3) fails an assertion on a valid tiled, planar, 16-bit TIFF
        // from Pillow's test suite. (The panic hook still prints the panic to stderr.)
        (f, catching(f, || decode_known(reader, f, limits, path)))
    };
    result.map(|mut d| {
        d.format = format;
        d
    })
}

/// Runs `decode`, turning a panic into a `Corrupt` error for `format`.
fn catching(
    format: Format,
    decode: impl FnOnce() -> Result<Decoded, DecodeError>,
) -> Result<Decoded, DecodeError> {
    panic::catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        let what = (payload.downcast_ref::<&str>().copied())
            .or(payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown panic");
        Err(DecodeError::Corrupt {
            format,
            message: format!("the decoder crashed on this file ({what})"),
        })
    })
}

/// A JPEG (or a raw's JPEG preview) through libjpeg-turbo. `orientation`, when given, replaces
/// the JPEG's own EXIF orientation (a raw file's IFD0 describes its preview).
fn decode_jpeg(
    bytes: &[u8],
    orientation: Option<Orientation>,
    limits: &Limits,
    min_side: Option<u32>,
    format: Format,
) -> Result<Decoded, DecodeError> {
    let relabel = |e: DecodeError| match e {
        DecodeError::Corrupt { message, .. } => DecodeError::Corrupt { format, message },
        other => other,
    };
    let pixels = jpeg::decode(bytes, limits, min_side).map_err(relabel)?;
    let orientation = orientation.unwrap_or_else(|| jpeg::orientation(bytes));
    let mut upright = DynamicImage::ImageRgb8(pixels.image);
    upright.apply_orientation(orientation);
    Ok(Decoded {
        image: upright.into_rgb8(),
        format,
        orientation,
        source_width: pixels.header.width,
        source_height: pixels.header.height,
    })
}

/// HEIF/HEIC or AVIF through libheif, which applies the container's rotation and mirroring.
fn decode_heif(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded, DecodeError> {
    let (image, width, height) = heif::decode(bytes, format, limits)?;
    Ok(Decoded {
        image,
        format,
        orientation: Orientation::NoTransforms,
        source_width: width,
        source_height: height,
    })
}

fn decode_known<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    format: Format,
    limits: &Limits,
    path: Option<&Path>,
) -> Result<Decoded, DecodeError> {
    let map = |e| map_image_error(e, format, limits, path);
    // Stage 1: only the memory budget, so that the header can be read and *our* size check (with
    // a message that has the numbers in it) runs first. The PNG decoder also uses this budget
    // for its metadata chunks (zTXt/iCCP bombs).
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits.clone());
    let mut decoder = reader.into_decoder().map_err(map)?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt {
            format,
            message: format!("the header says the image is {width}x{height}"),
        });
    }
    // The size check, before any pixel buffer exists.
    let buffer_bytes = decoder.total_bytes();
    let pixels = u64::from(width) * u64::from(height);
    let checks = [
        (LimitKind::Pixels, pixels, limits.max_pixels),
        (LimitKind::Width, width.into(), limits.max_width.into()),
        (LimitKind::Height, height.into(), limits.max_height.into()),
        (LimitKind::AllocBytes, buffer_bytes, limits.max_alloc_bytes),
    ];
    over_limits(&checks, Some((width, height)))?;
    // Stage 2: the strict width/height limits, and what is left of the memory budget once the
    // output buffer is paid for (as `ImageReader::decode` does), for the decoder's own buffers.
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.reserve(buffer_bytes).map_err(map)?;
    decoder.set_limits(image_limits).map_err(map)?;

    // A broken EXIF block must not cost the photo: decode it unrotated instead.
    let orientation = decoder.orientation().unwrap_or_else(|e| {
        tracing::debug!("ignoring unreadable EXIF orientation: {e}");
        Orientation::NoTransforms
    });
    let image = DynamicImage::from_decoder(decoder).map_err(map)?;
    let mut upright = DynamicImage::ImageRgb8(to_rgb8_over_white(image));
    upright.apply_orientation(orientation);
    Ok(Decoded {
        image: upright.into_rgb8(),
        format,
        orientation,
        source_width: width,
        source_height: height,
    })
}

/// Flattens any colour type to 8-bit RGB. Grey is replicated; 16-bit and float are scaled by
/// `image`'s own conversions (65535 → 255, 1.0 → 255, float clamped). Alpha is composited over
/// white rather than dropped: fully transparent pixels very often carry black (or garbage) RGB,
/// so dropping alpha, as PIL's `convert("RGB")` does, turns a logo on a transparent background
/// into a logo on black, which the classifier has never seen; white is what a viewer shows.
pub fn to_rgb8_over_white(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgba8(img) => composite_over_white(&img),
        DynamicImage::ImageLumaA8(img) => composite_over_white(&img),
        DynamicImage::ImageRgba16(img) => composite_over_white(&img),
        DynamicImage::ImageLumaA16(img) => composite_over_white(&img),
        DynamicImage::ImageRgba32F(img) => composite_over_white(&img),
        other if other.color().has_alpha() => composite_over_white(&other.to_rgba32f()),
        other => other.into_rgb8(),
    }
}

/// `round(255 * (c * a + 1 - a))` per channel, computed in `f32` from the exact 8-bit, 16-bit or
/// float values (one rounding, so 16-bit alpha is not first truncated to 8 bits).
fn composite_over_white<P>(img: &ImageBuffer<P, Vec<P::Subpixel>>) -> RgbImage
where
    P: Pixel,
    P::Subpixel: Into<f32>,
{
    let max: f32 = <P::Subpixel as Primitive>::DEFAULT_MAX_VALUE.into();
    let unit = |v: P::Subpixel| (v.into() / max).clamp(0.0, 1.0);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).to_rgba().0;
        let a = unit(p[3]);
        Rgb([0, 1, 2].map(|i| ((unit(p[i]) * a + 1.0 - a) * 255.0).round() as u8))
    })
}

fn map_image_error(
    error: ImageError,
    format: Format,
    limits: &Limits,
    path: Option<&Path>,
) -> DecodeError {
    let corrupt = |message: String| DecodeError::Corrupt { format, message };
    match error {
        // `DecodingError`'s own message repeats "Format error decoding <format>": use the cause.
        ImageError::Decoding(e) => {
            let message = std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string());
            // zune-jpeg reports 12-bit and arithmetic-coded JPEGs (valid files) as decoding
            // errors; their messages say so, and "unsupported" is the truthful answer.
            let lower = message.to_lowercase();
            if ["not supported", "unsupported", "can only parse"]
                .iter()
                .any(|w| lower.contains(w))
            {
                return DecodeError::Unsupported {
                    format: format.name().into(),
                    detail: Some(message.trim_matches('"').to_string()),
                };
            }
            corrupt(message)
        }
        ImageError::Unsupported(e) => DecodeError::Unsupported {
            format: format.name().into(),
            detail: Some(match e.kind() {
                UnsupportedErrorKind::Color(c) | UnsupportedErrorKind::ColorLayout(c) => {
                    format!("the colour type {c:?}")
                }
                UnsupportedErrorKind::GenericFeature(feature) => format!("the feature {feature}"),
                _ => e.to_string(),
            }),
        },
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::InsufficientMemory => DecodeError::TooLarge {
                limit: LimitKind::AllocBytes,
                actual: None,
                max: limits.max_alloc_bytes,
                dimensions: None,
            },
            // Our own check runs first, so this is a decoder that re-reads its dimensions.
            _ => corrupt(format!("the decoder refused the image: {e}")),
        },
        ImageError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            corrupt("the file ends before the image data does (truncated?)".into())
        }
        // Reading from memory cannot fail, so any I/O error there is the decoder's way of saying
        // the data is bad; from a file, InvalidData means the same.
        ImageError::IoError(e) if path.is_none() || e.kind() == io::ErrorKind::InvalidData => {
            corrupt(e.to_string())
        }
        ImageError::IoError(source) => DecodeError::Io {
            path: path.map(Path::to_path_buf),
            source,
        },
        other => corrupt(other.to_string()),
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
