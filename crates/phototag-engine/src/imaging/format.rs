//! The formats phototag decodes ([`Format`], camera raws by container [`RawKind`]): their
//! names as the catalog stores them and as people read them.
//!
//! May not: look at file contents (see `sniff`).

use image::ImageFormat;

/// A format phototag decodes, recognised from the content (never the extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    Bmp,
    Tiff,
    /// HEIF with HEVC (or other non-AV1) images: iPhone and Samsung `.heic`/`.heif`.
    Heif,
    Avif,
    /// A camera raw file, read through its embedded JPEG preview.
    Raw(RawKind),
}

/// Which camera raw container a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawKind {
    Dng,
    Cr2,
    Cr3,
    Crw,
    Nef,
    Arw,
    Raf,
    Rw2,
    Orf,
    Pef,
    /// Another TIFF-structured raw (Minolta, Sigma, Kodak, Phase One, ...).
    Other,
}

impl Format {
    /// Short lowercase name, as stored in the catalog: `jpeg`, `png`, `heif`, `avif`, `dng`...
    pub fn id(self) -> &'static str {
        use RawKind::*;
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Heif => "heif",
            Format::Avif => "avif",
            Format::Raw(kind) => match kind {
                Dng => "dng",
                Cr2 => "cr2",
                Cr3 => "cr3",
                Crw => "crw",
                Nef => "nef",
                Arw => "arw",
                Raf => "raf",
                Rw2 => "rw2",
                Orf => "orf",
                Pef => "pef",
                Other => "raw",
            },
        }
    }

    /// The name shown to people: `JPEG`, `HEIF/HEIC`, `Nikon NEF raw`...
    pub fn name(self) -> &'static str {
        use RawKind::*;
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::WebP => "WebP",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::Heif => "HEIF/HEIC",
            Format::Avif => "AVIF",
            Format::Raw(kind) => match kind {
                Dng => "DNG raw",
                Cr2 => "Canon CR2 raw",
                Cr3 => "Canon CR3 raw",
                Crw => "Canon CRW raw",
                Nef => "Nikon NEF raw",
                Arw => "Sony ARW raw",
                Raf => "Fujifilm RAF raw",
                Rw2 => "Panasonic RW2 raw",
                Orf => "Olympus ORF raw",
                Pef => "Pentax PEF raw",
                Other => "camera raw",
            },
        }
    }

    /// The `image` crate's formats that phototag decodes through `image`.
    pub(super) fn from_image(format: ImageFormat) -> Option<Format> {
        Some(match format {
            ImageFormat::Jpeg => Format::Jpeg,
            ImageFormat::Png => Format::Png,
            ImageFormat::WebP => Format::WebP,
            ImageFormat::Gif => Format::Gif,
            ImageFormat::Bmp => Format::Bmp,
            ImageFormat::Tiff => Format::Tiff,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
