//! Format sniffing: names what a file is from its first bytes, so that an unsupported image
//! (HEIC, AVIF, RAW, ...) or a non-image (archive, text, video) gets a clear error.
//!
//! May not: decode pixels, or look past the first 64 bytes.

use image::ImageFormat;

use super::error::DecodeError;
use super::format::Format;

/// The ISO base media (HEIF) brand of a file: `Some(Format::Avif)` or `Some(Format::Heif)`
/// for the image brands libheif reads; `None` for anything else (CR3, MP4, ...).
pub(super) fn heif_brand(head: &[u8]) -> Option<Format> {
    if head.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let major = head.get(8..12)?;
    // The compatible brands, up to the end of the ftyp box (within the head we have).
    let size = head
        .get(0..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let end = (size as usize)
        .clamp(16, head.len().max(16))
        .min(head.len());
    let compatible = head.get(16..end).unwrap_or_default();
    let lists = |brand: &[u8; 4]| compatible.chunks_exact(4).any(|b| b == brand);
    match major {
        b"avif" | b"avis" => Some(Format::Avif),
        b"mif1" | b"msf1" | b"mif2" if lists(b"avif") || lists(b"avis") => Some(Format::Avif),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" | b"mif2" => {
            Some(Format::Heif)
        }
        _ => None,
    }
}

pub(super) fn format_name(format: ImageFormat) -> String {
    match format {
        ImageFormat::WebP => "WebP".into(),
        ImageFormat::OpenExr => "OpenEXR".into(),
        ImageFormat::Hdr => "Radiance HDR".into(),
        ImageFormat::Pnm => "PNM (PBM/PGM/PPM)".into(),
        other => format!("{other:?}").to_uppercase(), // JPEG, PNG, GIF, BMP, TIFF, AVIF, ICO…
    }
}

/// `(offset, magic bytes, name)` of image formats that `image` does not recognise.
const UNSUPPORTED_MAGIC: &[(usize, &[u8], &str)] = &[
    (0, b"\xff\x0a", "JPEG XL"),
    (4, b"JXL ", "JPEG XL"),
    (4, b"jP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"8BPS", "Photoshop PSD"),
    (6, b"HEAPCCDR", "Canon CRW raw"),
    (0, b"FUJIFILMCCD-RAW", "Fujifilm RAF raw"),
    (0, b"IIRO", "Olympus ORF raw"),
    (0, b"IIRS", "Olympus ORF raw"),
    (0, b"MMOR", "Olympus ORF raw"),
    (0, b"IIU\0", "Panasonic RW2 raw"),
    (0, b"\0MRM", "Minolta MRW raw"),
    (0, b"FOVb", "Sigma X3F raw"),
    (0, b"<svg", "SVG"),
];

/// `(offset, magic bytes, description)` of common content that is not an image.
const NOT_IMAGE_MAGIC: &[(usize, &[u8], &str)] = &[
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"PK\x05\x06", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"BZh", "a bzip2 archive"),
    (0, b"\xfd7zXZ\0", "an xz archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"%PDF", "a PDF document"),
    (4, b"ftyp", "an MP4/QuickTime video"), // after the image brands in `sniff_unsupported`
    (4, b"moov", "an MP4/QuickTime video"),
    (8, b"AVI ", "an AVI video"),
    (36, b"acsp", "an ICC colour profile"),
];

pub(super) fn find_magic(
    head: &[u8],
    table: &[(usize, &[u8], &'static str)],
) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    table
        .iter()
        .find(|(o, m, _)| at(*o, m))
        .map(|(_, _, name)| *name)
}

/// An image format we do not decode, named from its magic bytes (or from `image`'s guess).
pub(super) fn sniff_unsupported(head: &[u8], guessed: Option<ImageFormat>) -> Option<DecodeError> {
    // ISO base media files (HEIF, AVIF, CR3, MP4…): the major brand says which.
    let brand = (head.get(4..8) == Some(b"ftyp"))
        .then(|| head.get(8..12))
        .flatten();
    let format = match brand.unwrap_or_default() {
        b"avif" | b"avis" => Some("AVIF".to_string()),
        // Generic HEIF brands: AVIF files list "avif" among the compatible brands.
        b"mif1" | b"msf1" if head[12..].windows(4).any(|b| b == b"avif") => Some("AVIF".into()),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
            Some("HEIF/HEIC".to_string())
        }
        b"crx " => Some("Canon CR3 raw".to_string()),
        b"jxl " => Some("JPEG XL".to_string()),
        _ => find_magic(head, UNSUPPORTED_MAGIC)
            .map(str::to_string)
            .or_else(|| {
                (is_text(head) && head.windows(4).any(|w| w == b"<svg")).then(|| "SVG".into())
            })
            .or_else(|| guessed.map(format_name))
            .or_else(|| looks_like_tga(head).then(|| "TGA".into())),
    };
    format.map(|format| DecodeError::Unsupported {
        format,
        detail: None,
    })
}

/// TGA has no signature: a plausible 18-byte header (colour-map type 0 or 1, a known image
/// type, a usual pixel depth, a non-zero size, reserved descriptor bits clear).
fn looks_like_tga(head: &[u8]) -> bool {
    let Some(h) = head.get(..18) else {
        return false;
    };
    let (width, height) = (
        u16::from_le_bytes([h[12], h[13]]),
        u16::from_le_bytes([h[14], h[15]]),
    );
    h[1] <= 1
        && matches!(h[2], 1 | 2 | 3 | 9 | 10 | 11)
        && matches!(h[16], 8 | 15 | 16 | 24 | 32)
        && width > 0
        && height > 0
        && h[17] & 0xC0 == 0
}

/// Names common non-image content, for a clearer "not an image" message.
pub(super) fn sniff_not_image(head: &[u8]) -> DecodeError {
    let detected = if head.is_empty() {
        Some("an empty file")
    } else if is_text(head) {
        Some("text")
    } else {
        find_magic(head, NOT_IMAGE_MAGIC)
    };
    DecodeError::NotAnImage { detected }
}

/// UTF-8 without control characters other than whitespace. The head may end in the middle of
/// a multi-byte character, which is allowed.
pub(super) fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => head.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    let text = String::from_utf8_lossy(&head[..valid]);
    !text.is_empty() && (text.chars()).all(|c| !c.is_control() || c.is_ascii_whitespace())
}
