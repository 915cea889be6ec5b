//! JPEG through libjpeg-turbo 3 (its TurboJPEG API, built from the `turbojpeg-sys` crate's
//! bundled source): 8- and 12-bit precision, Huffman and arithmetic coding, baseline and
//! progressive, grey, YCbCr, RGB, CMYK and YCCK, and lossless JPEG; the first image of an MPO.
//!
//! Its one speed trick is DCT-domain downscaling: asked for an image that will be resized to a
//! shorter side of `min_side` pixels, it decodes at the smallest of 1/8, 1/4 and 1/2 that keeps
//! the shorter side at least [`HEADROOM`] × `min_side`, so a 12-megapixel photo (4000×3000)
//! wanted at 256 pixels is decoded at 1/4 (1000×750: a 4×4 IDCT per 8×8 block), at a fraction
//! of the time and memory of the full decode.
//!
//! It may not: allocate the output before [`Limits`] are checked against the header, panic, or
//! do colour management (ICC profiles are ignored, as PIL's `convert("RGB")` ignores them).
//! A file whose data ends before the image does (truncated) is refused, as PIL refuses it
//! (without `LOAD_TRUNCATED_IMAGES`); one missing only its end marker is read. Other libjpeg
//! warnings (extraneous bytes between markers) keep the image, as PIL keeps it; errors refuse it.

use std::ffi::CStr;

use image::metadata::Orientation;
use image::RgbImage;
use turbojpeg_sys as tj;

use super::error::{over_limits, DecodeError, LimitKind};
use super::format::Format;
use phototag_light::limits::Limits;

/// A scaled decode keeps the shorter side at least `HEADROOM` times the side asked for, so that
/// the antialiased resize that follows still averages several decoded pixels per output pixel.
/// Measured with EfficientNet-Lite0 on the 66 corpus JPEGs of 512+ pixels: with no headroom
/// (decoding straight to ~256) 8 top-1 classes changed and a probability moved by 13 points;
/// with 2x, one changed (a photo whose top two classes were tied to 0.04 points) and no
/// probability moved by more than 3.9 points.
pub(super) const HEADROOM: u32 = 2;

/// What the header says, before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub width: u32,
    pub height: u32,
    /// Bits per sample: 8 or 12 (lossy), 2..=16 (lossless).
    pub precision: i32,
    pub lossless: bool,
}

/// A decoded JPEG: RGB pixels (possibly DCT-downscaled), as stored (orientation not applied).
pub(super) struct Pixels {
    pub image: RgbImage,
    pub header: Header,
}

/// One TurboJPEG decompressor handle.
struct Handle(tj::tjhandle);

impl Handle {
    fn new() -> Result<Handle, DecodeError> {
        // SAFETY: tj3Init has no preconditions; a null return is handled.
        let ptr = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as libc::c_int) };
        if ptr.is_null() {
            return Err(corrupt(
                "libjpeg-turbo could not start a decompressor".into(),
            ));
        }
        Ok(Handle(ptr))
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: the handle is valid for self's lifetime.
        unsafe { tj::tj3Get(self.0, param as libc::c_int) }
    }

    fn set(&self, param: tj::TJPARAM, value: i32) -> Result<(), DecodeError> {
        // SAFETY: as above.
        match unsafe { tj::tj3Set(self.0, param as libc::c_int, value) } {
            0 => Ok(()),
            _ => Err(corrupt(self.message())),
        }
    }

    fn message(&self) -> String {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the handle.
        let s = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) };
        s.to_string_lossy().trim().to_string()
    }

    /// After a call returned -1: the (first) warning's message when it was only a warning,
    /// the error otherwise.
    fn warning_or_error(&self) -> Result<String, DecodeError> {
        // SAFETY: as above.
        let code = unsafe { tj::tj3GetErrorCode(self.0) };
        let message = self.message();
        if code == tj::TJERR_TJERR_WARNING as libc::c_int {
            Ok(message)
        } else {
            Err(corrupt(message))
        }
    }

    fn read_header(&self, jpeg: &[u8]) -> Result<Header, DecodeError> {
        // SAFETY: jpeg is a valid slice for the duration of the call.
        let res = unsafe { tj::tj3DecompressHeader(self.0, jpeg.as_ptr(), jpeg.len() as _) };
        if res != 0 {
            return Err(corrupt(self.message()));
        }
        let (width, height) = (
            self.get(tj::TJPARAM_TJPARAM_JPEGWIDTH),
            self.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT),
        );
        if width <= 0 || height <= 0 {
            return Err(corrupt(format!(
                "the header says the image is {width}x{height}"
            )));
        }
        Ok(Header {
            width: width as u32,
            height: height as u32,
            precision: self.get(tj::TJPARAM_TJPARAM_PRECISION),
            lossless: self.get(tj::TJPARAM_TJPARAM_LOSSLESS) != 0,
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

fn corrupt(message: String) -> DecodeError {
    DecodeError::Corrupt {
        format: Format::Jpeg,
        message,
    }
}

/// Reads only the header (no pixels): size, precision, lossless or not.
pub(super) fn header(jpeg: &[u8]) -> Result<Header, DecodeError> {
    Handle::new()?.read_header(jpeg)
}

/// `ceil(side * n / 8)`: libjpeg's size of a side decoded at scale n/8.
fn scaled(side: u32, eighths: u32) -> u32 {
    (u64::from(side) * u64::from(eighths)).div_ceil(8) as u32
}

/// The smallest scale n/8 at which the shorter side is still at least `min_side`, among 1/8,
/// 1/4 and 1/2: the scales libjpeg-turbo's SIMD code accelerates (3/8, 5/8, 3/4 and 7/8 use
/// plain C IDCTs).
pub(super) fn scale_for(width: u32, height: u32, min_side: u32) -> u32 {
    let short = width.min(height);
    [1, 2, 4]
        .into_iter()
        .find(|&n| scaled(short, n) >= min_side)
        .unwrap_or(8)
}

/// libjpeg's warning when the data ran out before the decoder was done (JWRN_JPEG_EOF).
const RAN_OUT: &str = "Premature end of JPEG file";

/// Decodes `jpeg` to RGB. With `min_side`, lossy images are decoded at the smallest DCT scale
/// whose shorter side is still at least `min_side` pixels. A file whose data ends before
/// the image does is refused as truncated. `turns`: the caller will turn the image a
/// quarter (a second buffer, counted against the memory limit).
pub(super) fn decode(
    jpeg: &[u8],
    limits: &Limits,
    min_side: Option<u32>,
    turns: bool,
) -> Result<Pixels, DecodeError> {
    match decode_once(jpeg, limits, min_side, turns)? {
        (pixels, None) => Ok(pixels),
        (pixels, Some(warning)) if !warning.contains(RAN_OUT) => {
            tracing::debug!("libjpeg-turbo warning, image kept: {warning}");
            Ok(pixels)
        }
        (pixels, Some(_)) => {
            // The data ran out: was only the end marker missing (the image is whole), or the
            // image itself cut short? With the marker added, a whole image decodes cleanly and
            // a cut one meets the marker inside its data.
            drop(pixels);
            let mut ended = Vec::with_capacity(jpeg.len() + 2);
            ended.extend_from_slice(jpeg);
            ended.extend_from_slice(&[0xFF, 0xD9]);
            match decode_once(&ended, limits, min_side, turns)? {
                (pixels, None) => Ok(pixels),
                (_, Some(_)) => Err(corrupt(super::error::TRUNCATED.into())),
            }
        }
    }
}

/// One decode, with libjpeg's (first) warning if it gave one.
fn decode_once(
    jpeg: &[u8],
    limits: &Limits,
    min_side: Option<u32>,
    turns: bool,
) -> Result<(Pixels, Option<String>), DecodeError> {
    let h = Handle::new()?;
    let header = h.read_header(jpeg)?;
    let (width, height) = (header.width, header.height);
    let pixels = u64::from(width) * u64::from(height);
    let dims = Some((width, height));
    over_limits(
        &[
            (LimitKind::Pixels, pixels, limits.max_pixels),
            (LimitKind::Width, width.into(), limits.max_width.into()),
            (LimitKind::Height, height.into(), limits.max_height.into()),
        ],
        dims,
    )?;
    // Lossless JPEG cannot be scaled.
    let eighths = match min_side {
        Some(m) if !header.lossless => scale_for(width, height, m.saturating_mul(HEADROOM)),
        _ => 8,
    };
    let (w, h_out) = (scaled(width, eighths), scaled(height, eighths));
    let colorspace = h.get(tj::TJPARAM_TJPARAM_COLORSPACE) as tj::TJCS;
    let cmyk = colorspace == tj::TJCS_TJCS_CMYK || colorspace == tj::TJCS_TJCS_YCCK;
    let channels: u64 = if cmyk { 4 } else { 3 };
    let sample_bytes: u64 = if header.precision > 8 { 2 } else { 1 };
    let out_bytes = u64::from(w) * u64::from(h_out) * channels * sample_bytes;
    // 12/16-bit samples and CMYK are converted to 8-bit RGB: one more buffer.
    let converts = cmyk || sample_bytes > 1;
    let out_pixels = u64::from(w) * u64::from(h_out);
    let peak = super::decode::peak_bytes(out_bytes, out_pixels, converts, turns);
    over_limits(
        &[(LimitKind::AllocBytes, peak, limits.max_alloc_bytes)],
        dims,
    )?;
    // libjpeg's own working memory (progressive coefficient buffers, ...), in MiB: what is
    // left of the budget once the output is paid for.
    let left_mib = (limits.max_alloc_bytes - out_bytes) / (1024 * 1024);
    h.set(
        tj::TJPARAM_TJPARAM_MAXMEMORY,
        left_mib.clamp(1, i32::MAX as u64) as i32,
    )?;
    // A progressive JPEG of thousands of tiny scans is a known CPU bomb; real ones have < 20.
    h.set(tj::TJPARAM_TJPARAM_SCANLIMIT, 500)?;
    if eighths != 8 {
        // In lowest terms, as libjpeg-turbo lists its factors (1/8, 1/4, 1/2).
        let factor = tj::tjscalingfactor {
            num: 1,
            denom: (8 / eighths) as libc::c_int,
        };
        // SAFETY: valid handle.
        if unsafe { tj::tj3SetScalingFactor(h.0, factor) } != 0 {
            return Err(corrupt(h.message()));
        }
    }
    let format = if cmyk {
        tj::TJPF_TJPF_CMYK
    } else {
        tj::TJPF_TJPF_RGB
    } as libc::c_int;
    let pitch = (w as usize * channels as usize) as libc::c_int;
    let len = w as usize * h_out as usize * channels as usize;
    let mut warning = None;
    let samples: Vec<u8> = match header.precision {
        ..=8 => {
            let mut buf = vec![0u8; len];
            // SAFETY: buf holds pitch * height bytes, the size of the (scaled) output.
            let res = unsafe {
                tj::tj3Decompress8(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as _,
                    buf.as_mut_ptr(),
                    pitch,
                    format,
                )
            };
            if res != 0 {
                warning = Some(h.warning_or_error()?);
            }
            buf
        }
        9..=12 => {
            let mut buf = vec![0i16; len];
            // SAFETY: buf holds pitch * height samples.
            let res = unsafe {
                tj::tj3Decompress12(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as _,
                    buf.as_mut_ptr(),
                    pitch,
                    format,
                )
            };
            if res != 0 {
                warning = Some(h.warning_or_error()?);
            }
            let max = (1u32 << header.precision) - 1;
            let to8 = |v: i16| ((v.max(0) as u32).min(max) * 255 + max / 2) / max;
            buf.into_iter().map(|v| to8(v) as u8).collect()
        }
        _ => {
            let mut buf = vec![0u16; len];
            // SAFETY: buf holds pitch * height samples.
            let res = unsafe {
                tj::tj3Decompress16(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as _,
                    buf.as_mut_ptr(),
                    pitch,
                    format,
                )
            };
            if res != 0 {
                warning = Some(h.warning_or_error()?);
            }
            let max = (1u64 << header.precision.min(16)) - 1;
            let to8 = |v: u16| ((u64::from(v).min(max) * 255 + max / 2) / max) as u8;
            buf.into_iter().map(to8).collect()
        }
    };
    let rgb = if cmyk {
        cmyk_to_rgb(&samples, adobe_inverted(jpeg))
    } else {
        samples
    };
    let image = RgbImage::from_raw(w, h_out, rgb)
        .ok_or_else(|| corrupt("the decoded image has the wrong size".into()))?;
    Ok((Pixels { image, header }, warning))
}

/// CMYK → RGB as Pillow converts: `R = (255 - C)(255 - K) / 255`. Photoshop (which writes an
/// Adobe APP14 segment) stores CMYK inverted, so there the stored values are `255 - C`.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let ink = |v: u8| {
            if inverted {
                u32::from(v)
            } else {
                255 - u32::from(v)
            }
        };
        let k = ink(px[3]);
        for &c in &px[..3] {
            out.push(((ink(c) * k + 127) / 255) as u8);
        }
    }
    out
}

/// The marker segments before the first scan: `(marker, payload)`.
fn segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = 2; // after SOI
    std::iter::from_fn(move || loop {
        if jpeg.get(pos) != Some(&0xFF) {
            return None;
        }
        let marker = *jpeg.get(pos + 1)?;
        match marker {
            0xFF => pos += 1, // fill byte
            0xD8 | 0x01 | 0xD0..=0xD7 => pos += 2,
            0xD9 | 0xDA => return None, // EOI, start of scan
            _ => {
                let len = usize::from(u16::from_be_bytes([
                    *jpeg.get(pos + 2)?,
                    *jpeg.get(pos + 3)?,
                ]));
                let payload = jpeg.get(pos + 4..pos + 2 + len.max(2))?;
                pos += 2 + len.max(2);
                return Some((marker, payload));
            }
        }
    })
}

/// An Adobe APP14 segment: Photoshop's CMYK/YCCK JPEGs store inverted ink values.
fn adobe_inverted(jpeg: &[u8]) -> bool {
    segments(jpeg).any(|(m, p)| m == 0xEE && p.starts_with(b"Adobe"))
}

/// The EXIF orientation from the APP1 `Exif` segment; `NoTransforms` when absent or broken.
pub(super) fn orientation(jpeg: &[u8]) -> Orientation {
    segments(jpeg)
        .find_map(|(m, p)| (m == 0xE1).then(|| p.strip_prefix(b"Exif\0\0")).flatten())
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_the_smallest_that_covers_the_side() {
        // 4000x3000 wanted at 256: 3000/8 = 375 >= 256.
        assert_eq!(scale_for(4000, 3000, 256), 1);
        // 1800x1200: 1/8 = 150, 1/4 = 300.
        assert_eq!(scale_for(1800, 1200, 256), 2);
        // 2400x1600: 1/8 = 200, 1/4 = 400.
        assert_eq!(scale_for(2400, 1600, 256), 2);
        // 1/2 of 300 is 150: full size.
        assert_eq!(scale_for(300, 400, 256), 8);
        assert_eq!(scale_for(600, 512, 256), 4);
        assert_eq!(scale_for(200, 400, 256), 8);
        assert_eq!(scale_for(256, 256, 256), 8);
        assert_eq!(scaled(3000, 1), 375);
        assert_eq!(scaled(1201, 2), 301);
    }

    #[test]
    fn cmyk_conversion_follows_pillow() {
        // Plain CMYK: no ink is white, full K is black.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 0], false), vec![0, 255, 255]);
        // Inverted (Adobe): stored 255 means no ink.
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        assert_eq!(
            cmyk_to_rgb(&[255, 128, 255, 255], true),
            vec![255, 128, 255]
        );
    }

    #[test]
    fn segments_stop_at_the_scan_and_survive_garbage() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xEE, 0, 7, b'A', b'd', b'o', b'b', b'e', 0xFF, 0xDA, 0, 2,
        ];
        assert!(adobe_inverted(&jpeg));
        assert_eq!(segments(&jpeg).count(), 1);
        // A length running past the end, and a lone 0xFF: no panic, nothing found.
        assert_eq!(segments(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]).count(), 0);
        assert_eq!(segments(&[0xFF, 0xD8, 0xFF]).count(), 0);
        assert_eq!(orientation(&[0xFF, 0xD8]), Orientation::NoTransforms);
    }
}
