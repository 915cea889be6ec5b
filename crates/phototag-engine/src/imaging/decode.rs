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
use std::io::{self, BufRead, Cursor, Read, Seek};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use image::error::{LimitErrorKind, UnsupportedErrorKind};

use super::error::{over_limits, DecodeError, LimitKind};
use super::format::Format;
use super::rgb::to_rgb8_over_white;
use super::sniff::{heif_brand, sniff_not_image, sniff_unsupported};
use super::{heif, jpeg, raw};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};

/// The formats phototag decodes. Checked explicitly so that enabling another `image` feature
/// elsewhere in the crate does not silently widen what this module accepts.
const SUPPORTED: [ImageFormat; 6] = {
    use ImageFormat::*;
    [Jpeg, Png, WebP, Gif, Bmp, Tiff]
};
use phototag_light::fsutil::open_regular;
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

/// Decode the image in `path` at full size. The format is taken from the content; the
/// extension is ignored.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Decoded, DecodeError> {
    let bytes = read_file(path, limits)?;
    decode_slice(&bytes, limits, Some(path), None)
}

/// Like [`decode_file`], for an image whose shorter side will be resized to `min_side`: a JPEG
/// (or a raw file's JPEG preview) may be decoded at a reduced scale (DCT scaling: 1/2, 1/4 or
/// 1/8) whose shorter side is still at least twice `min_side` (see `jpeg::HEADROOM`), at a
/// fraction of the cost and with the same classification (`tests/it/scaled_decode.rs`).
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
    // Opened without blocking and checked on the handle: a FIFO is refused, never waited on.
    let (file, meta) = open_regular(path).map_err(io_err)?;
    over_limits(
        &[(LimitKind::FileBytes, meta.len(), limits.max_file_bytes)],
        None,
    )?;
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
        // from Pillow's test suite.
        (f, catching(f, || decode_known(reader, f, limits, path)))
    };
    result.map(|mut d| {
        d.format = format;
        d
    })
}

thread_local! {
    /// Set while this thread runs a decoder under [`catching`].
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that reports a decoder's panic, which [`catching`] turns
/// into that file's error, as one log line instead of the default message and backtrace
/// (`RUST_BACKTRACE` set); every other panic goes to the hook that was there before.
fn quiet_decoder_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !DECODING.with(|d| d.get()) {
                return previous(info);
            }
            let what = (info.payload().downcast_ref::<&str>().copied())
                .or(info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("unknown panic");
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::warn!("a decoder crashed{at}: {what} (caught: the file gets an error)");
        }));
    });
}

/// Runs `decode`, turning a panic into a `Corrupt` error for `format` (reported as one line).
fn catching(
    format: Format,
    decode: impl FnOnce() -> Result<Decoded, DecodeError>,
) -> Result<Decoded, DecodeError> {
    quiet_decoder_panics();
    let was = DECODING.with(|d| d.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(was));
    result.unwrap_or_else(|payload| {
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
    let orientation = orientation.unwrap_or_else(|| jpeg::orientation(bytes));
    let pixels = jpeg::decode(bytes, limits, min_side, turns(orientation)).map_err(relabel)?;
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

/// Whether applying `o` makes a new buffer (a quarter turn) rather than flipping in place.
fn turns(o: Orientation) -> bool {
    use Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// The most memory a decode holds at once, for [`Limits::max_alloc_bytes`]: the decoder's
/// buffer (`buffer` bytes), plus the 8-bit RGB copy made from it when it is another colour
/// type (`converts`), or two 8-bit RGB buffers while a quarter turn copies one (`turns`).
/// (A 16-bit RGB image at the pixel limit holds 537 MB decoded and 268 MB converted.)
pub(super) fn peak_bytes(buffer: u64, pixels: u64, converts: bool, turns: bool) -> u64 {
    let rgb8 = pixels.saturating_mul(3);
    let converted = buffer.saturating_add(if converts { rgb8 } else { 0 });
    let turned = if turns { rgb8.saturating_mul(2) } else { 0 };
    converted.max(turned)
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
    // A broken EXIF block must not cost the photo: decode it unrotated instead.
    let orientation = decoder.orientation().unwrap_or_else(|e| {
        tracing::debug!("ignoring unreadable EXIF orientation: {e}");
        Orientation::NoTransforms
    });
    // The size check, before any pixel buffer exists: the decoder's buffer, and the most
    // this decode holds at once after it (see `peak_bytes`).
    let buffer_bytes = decoder.total_bytes();
    let pixels = u64::from(width) * u64::from(height);
    let converts = decoder.color_type() != image::ColorType::Rgb8;
    let peak = peak_bytes(buffer_bytes, pixels, converts, turns(orientation));
    let checks = [
        (LimitKind::Pixels, pixels, limits.max_pixels),
        (LimitKind::Width, width.into(), limits.max_width.into()),
        (LimitKind::Height, height.into(), limits.max_height.into()),
        (LimitKind::AllocBytes, peak, limits.max_alloc_bytes),
    ];
    over_limits(&checks, Some((width, height)))?;
    // Stage 2: the strict width/height limits, and what is left of the memory budget once the
    // output buffer is paid for (as `ImageReader::decode` does), for the decoder's own buffers.
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.reserve(buffer_bytes).map_err(map)?;
    decoder.set_limits(image_limits).map_err(map)?;

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
            corrupt(super::error::TRUNCATED.into())
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
