//! HEIF/HEIC and AVIF through the system libheif (Debian's `libheif-dev`; 1.15 on Debian 12),
//! by way of `libheif-rs`: the primary image, with its `irot`/`imir` transformations applied by
//! libheif (that is how HEIF stores orientation; the EXIF orientation a phone also writes
//! describes the same turn and must not be applied twice), converted to 8-bit RGB (HDR
//! 10/12-bit images are reduced by libheif; alpha is composited over white as elsewhere).
//!
//! It may not: decode an image whose size (read from the container, no pixels) is over the
//! [`Limits`], or panic. libheif is C++; its errors come back as values, never unwinding.

use std::sync::Once;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{ColorSpace, HeifContext, RgbChroma};

use super::error::{over_limits, DecodeError, LimitKind};
use super::format::Format;
use super::rgb::to_rgb8_over_white;
use phototag_light::limits::Limits;

/// Decodes the primary image of a HEIF or AVIF file. `format` is what the brand said.
pub(super) fn decode(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<(RgbImage, u32, u32), DecodeError> {
    static INIT: Once = Once::new();
    // SAFETY: heif_init with a null parameter is the documented default initialisation.
    INIT.call_once(|| unsafe {
        libheif_sys::heif_init(std::ptr::null_mut());
    });
    let corrupt = |e: libheif_rs::HeifError| classify_error(format, e);
    let ctx = HeifContext::read_from_bytes(bytes).map_err(corrupt)?;
    let handle = ctx.primary_image_handle().map_err(corrupt)?;
    let (width, height) = (handle.width(), handle.height());
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt {
            format,
            message: format!("the header says the image is {width}x{height}"),
        });
    }
    let alpha = handle.has_alpha_channel();
    let channels: u64 = if alpha { 4 } else { 3 };
    let pixels = u64::from(width) * u64::from(height);
    // libheif holds the decoded YCbCr planes and the RGB copy at once: count both (~2x).
    let need = pixels * channels * 2;
    over_limits(
        &[
            (LimitKind::Pixels, pixels, limits.max_pixels),
            (LimitKind::Width, width.into(), limits.max_width.into()),
            (LimitKind::Height, height.into(), limits.max_height.into()),
            (LimitKind::AllocBytes, need, limits.max_alloc_bytes),
        ],
        Some((width, height)),
    )?;
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let image = handle
        .decode(ColorSpace::Rgb(chroma), None)
        .map_err(corrupt)?;
    let planes = image.planes();
    let plane = planes.interleaved.ok_or_else(|| DecodeError::Corrupt {
        format,
        message: "libheif returned no interleaved RGB plane".into(),
    })?;
    let (w, h) = (plane.width, plane.height);
    let row = w as usize * channels as usize;
    if plane.bits_per_pixel != 8 * channels as u8
        && plane.storage_bits_per_pixel != 8 * channels as u8
    {
        return Err(DecodeError::Unsupported {
            format: format.name().into(),
            detail: Some(format!("{} bits per pixel", plane.bits_per_pixel)),
        });
    }
    let mut packed = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| DecodeError::Corrupt {
                format,
                message: "libheif returned a plane shorter than its size".into(),
            })?;
        packed.extend_from_slice(line);
    }
    let bad_size = || DecodeError::Corrupt {
        format,
        message: "the decoded image has the wrong size".into(),
    };
    let rgb = if alpha {
        let rgba = RgbaImage::from_raw(w, h, packed).ok_or_else(bad_size)?;
        to_rgb8_over_white(DynamicImage::ImageRgba8(rgba))
    } else {
        RgbImage::from_raw(w, h, packed).ok_or_else(bad_size)?
    };
    Ok((rgb, width, height))
}

/// libheif's error as ours: a missing codec or feature is "unsupported", the rest "corrupt".
fn classify_error(format: Format, e: libheif_rs::HeifError) -> DecodeError {
    use libheif_rs::HeifErrorCode::*;
    let message = format!("{} ({:?})", e.message, e.sub_code);
    match e.code {
        UnsupportedFeature | UnsupportedFileType => DecodeError::Unsupported {
            format: format.name().into(),
            detail: Some(message),
        },
        _ => DecodeError::Corrupt { format, message },
    }
}
