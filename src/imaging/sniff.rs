//! Format sniffing: names what a file is from its first bytes, so that an unsupported image
//! (HEIC, AVIF, RAW, ...) or a non-image (archive, text, video) gets a clear error.
//!
//! May not: decode pixels, or read more than the first 64 bytes.

use std::io::{self, Read, Seek, SeekFrom};

use image::ImageFormat;

use super::decode::DecodeError;

/// Reads up to 64 bytes for format sniffing and rewinds.
pub(super) fn read_head<R: Read + Seek>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(64);
    reader.by_ref().take(64).read_to_end(&mut head)?;
    reader.seek(SeekFrom::Start(0))?;
    Ok(head)
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
            .or_else(|| guessed.map(format_name)),
    };
    format.map(|format| DecodeError::Unsupported {
        format,
        detail: None,
    })
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
