//! Preprocessing: an upright RGB image → the normalised CHW `f32` input of a classifier.
//!
//! It reproduces, for a PIL RGB image, torchvision's
//! `Compose([Resize(resize), CenterCrop(crop), ToTensor(), Normalize(mean, std)])`:
//!
//! * `Resize(n)`: the shorter side becomes `n`, the longer `int(n * long / short)` (truncated,
//!   as `torchvision.transforms.functional._compute_resized_output_size` does), resampled with
//!   PIL's antialiased bilinear filter. `fast_image_resize`'s `Convolution(Bilinear)` on `U8x3` is
//!   a port of Pillow's convolution resampler; run as two single-direction passes it also keeps
//!   Pillow's order (horizontal, round to 8 bits, vertical). What remains is its fixed-point
//!   coefficients (at most 15 bits, Pillow's have 22): measured against torchvision on PNG
//!   photos, 0.1-0.4% of the values differ, by one level (1/255).
//! * `CenterCrop(c)`: `top = int(round((h - c) / 2.0))` with Python's round-half-to-even.
//! * `ToTensor` + `Normalize`: `(x / 255 - mean) / std` in `f32`, channel-major (CHW).
//!
//! It may not: decode, rotate or colour-convert (that is [`crate::imaging::decode`]'s job),
//! touch tensors or models, or panic on any image size (zero-sized input is an error).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Preprocessing parameters of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Length of the shorter side after resizing.
    pub resize: u32,
    /// Side of the square centre crop taken from the resized image (the model's input size).
    pub crop: u32,
    /// Per-channel mean, subtracted after scaling pixels to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation, divided by after subtracting the mean.
    pub std: [f32; 3],
}

impl Preprocess {
    /// The transform a prepared model's manifest describes.
    pub fn for_model(m: &phototag_light::model_files::Manifest) -> Self {
        Preprocess {
            resize: m.resize,
            crop: m.crop,
            mean: m.mean,
            std: m.std,
        }
    }

    /// torchvision's ImageNet evaluation transform (ResNet and most classifiers):
    /// resize 256, crop 224, ImageNet mean and std.
    pub fn imagenet() -> Self {
        Preprocess {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// Checks that the parameters describe a possible transform.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.resize == 0 || self.crop == 0 {
            return Err(PreprocessError::ZeroSize {
                resize: self.resize,
                crop: self.crop,
            });
        }
        if self.crop > self.resize {
            return Err(PreprocessError::CropLargerThanResize {
                resize: self.resize,
                crop: self.crop,
            });
        }
        for c in 0..3 {
            let (mean, std) = (self.mean[c], self.std[c]);
            if !mean.is_finite() || !std.is_finite() || std == 0.0 {
                return Err(PreprocessError::BadNormalisation {
                    channel: c,
                    mean,
                    std,
                });
            }
        }
        Ok(())
    }

    /// The `(width, height)` a `width`×`height` image has after `Resize(self.resize)`.
    /// The longer side is `int(resize * long / short)`: truncated, never rounded.
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (short, long) = (width.min(height), width.max(height));
        if short == 0 {
            return (0, 0);
        }
        // Exact integer floor of resize * long / short. Python computes it in f64, which gives the
        // same integer: a non-integral quotient is at least 1/short away from the next integer,
        // far more than f64's rounding error at these magnitudes.
        let new_long = u64::from(self.resize) * u64::from(long) / u64::from(short);
        let new_long = u32::try_from(new_long).unwrap_or(u32::MAX);
        if width <= height {
            (self.resize, new_long)
        } else {
            (new_long, self.resize)
        }
    }

    /// `(left, top)` of `CenterCrop(self.crop)` in an image of `width`×`height`:
    /// `int(round((side - crop) / 2.0))`, where Python's `round` sends halves to even.
    pub fn crop_offsets(&self, width: u32, height: u32) -> (u32, u32) {
        let offset =
            |side: u32| (f64::from(side.saturating_sub(self.crop)) / 2.0).round_ties_even();
        (offset(width) as u32, offset(height) as u32)
    }
}

/// The model input for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessed {
    /// `3 * crop * crop` values, channel-major (all R, then all G, then all B), row-major within
    /// a channel.
    pub data: Vec<f32>,
    /// Things a person may want to know about this image's input, e.g. that it was upscaled.
    pub warnings: Vec<String>,
}

/// Why an image could not be preprocessed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("invalid preprocessing: resize ({resize}) and crop ({crop}) must both be at least 1")]
    ZeroSize { resize: u32, crop: u32 },
    #[error(
        "invalid preprocessing: crop ({crop}) is larger than resize ({resize}); \
         the centre crop must fit inside the resized image"
    )]
    CropLargerThanResize { resize: u32, crop: u32 },
    #[error(
        "invalid preprocessing: channel {channel} has mean {mean} and std {std}; \
         both must be finite and std non-zero"
    )]
    BadNormalisation { channel: usize, mean: f32, std: f32 },
    #[error("cannot preprocess an empty image ({width}x{height})")]
    EmptyImage { width: u32, height: u32 },
    #[error("resizing failed: {0}")]
    Resize(String),
}

/// Above this many bytes the full resized image is not materialised: only the crop is resampled
/// (see [`resize_and_crop`]). 64 MiB is a 256×87000 image, an aspect ratio of 340:1.
const MAX_FULL_RESIZE_BYTES: u64 = 64 * 1024 * 1024;

/// Resize, centre-crop and normalise `img` as torchvision does (see the module docs).
pub fn preprocess(img: &RgbImage, p: &Preprocess) -> Result<Preprocessed, PreprocessError> {
    p.validate()?;
    let (width, height) = img.dimensions();
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage { width, height });
    }
    let mut warnings = Vec::new();
    if width.min(height) < p.crop {
        warnings.push(format!(
            "image is {width}x{height}, smaller than the model's {c}x{c} input; \
             upscaled, expect weaker tags",
            c = p.crop
        ));
    }
    let crop = resize_and_crop(img, p)?;
    let plane = (p.crop as usize) * (p.crop as usize);
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in crop.chunks_exact(3).enumerate() {
        for c in 0..3 {
            // ToTensor: x / 255 in f32; Normalize: (x - mean) / std in f32, as torch does.
            data[c * plane + i] = (f32::from(px[c]) / 255.0 - p.mean[c]) / p.std[c];
        }
    }
    Ok(Preprocessed { data, warnings })
}

/// The `crop`×`crop` centre of the resized image, as packed RGB bytes.
///
/// Normally the whole image is resized and then cropped, exactly as torchvision does. For a
/// very elongated image (a 1×30000 strip would become 256×7,680,000, 5.9 GB) only the source
/// region under the crop is resampled, with the same scale and the same filter centres. That
/// gives the same pixels up to f64 rounding of the crop box, which can move a value by one level
/// (the unit tests compare both paths).
fn resize_and_crop(img: &RgbImage, p: &Preprocess) -> Result<Vec<u8>, PreprocessError> {
    resize_and_crop_with(img, p, MAX_FULL_RESIZE_BYTES)
}

fn resize_and_crop_with(
    img: &RgbImage,
    p: &Preprocess,
    max_full_resize_bytes: u64,
) -> Result<Vec<u8>, PreprocessError> {
    let (width, height) = img.dimensions();
    let (new_w, new_h) = p.resized_size(width, height);
    let (left, top) = p.crop_offsets(new_w, new_h);
    let resize_err = |e: &dyn std::fmt::Display| PreprocessError::Resize(e.to_string());
    let src =
        ImageRef::new(width, height, img.as_raw(), PixelType::U8x3).map_err(|e| resize_err(&e))?;
    let alg = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut resizer = Resizer::new();
    let crop = p.crop as usize;

    if u64::from(new_w) * u64::from(new_h) * 3 <= max_full_resize_bytes {
        // Pillow resamples horizontally first, rounding to 8 bits, then vertically;
        // fast_image_resize does u8 images the other way round when both passes are needed.
        // Two single-direction resizes reproduce Pillow's order and intermediate rounding.
        let mut wide = Image::new(new_w, height, PixelType::U8x3);
        resizer
            .resize(&src, &mut wide, &alg)
            .map_err(|e| resize_err(&e))?;
        let mut resized = Image::new(new_w, new_h, PixelType::U8x3);
        resizer
            .resize(&wide, &mut resized, &alg)
            .map_err(|e| resize_err(&e))?;
        let row = new_w as usize * 3;
        let buf = resized.buffer();
        let mut out = Vec::with_capacity(crop * crop * 3);
        for y in top as usize..top as usize + crop {
            let start = y * row + left as usize * 3;
            out.extend_from_slice(&buf[start..start + crop * 3]);
        }
        return Ok(out);
    }

    // Crop-only path, in the same two passes: the columns under the crop at full height, then
    // the rows under the crop. Each pass sees a box with the same scale as the full resize.
    let side = f64::from(p.crop);
    let sx = f64::from(width) / f64::from(new_w);
    let h_pass = alg.crop(f64::from(left) * sx, 0.0, side * sx, f64::from(height));
    let mut columns = Image::new(p.crop, height, PixelType::U8x3);
    resizer
        .resize(&src, &mut columns, &h_pass)
        .map_err(|e| resize_err(&e))?;
    let sy = f64::from(height) / f64::from(new_h);
    let v_pass = alg.crop(0.0, f64::from(top) * sy, side, side * sy);
    let mut out = Image::new(p.crop, p.crop, PixelType::U8x3);
    resizer
        .resize(&columns, &mut out, &v_pass)
        .map_err(|e| resize_err(&e))?;
    Ok(out.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn small(resize: u32, crop: u32) -> Preprocess {
        Preprocess {
            resize,
            crop,
            ..Preprocess::imagenet()
        }
    }

    #[test]
    fn resized_size_truncates_like_torchvision() {
        let p = Preprocess::imagenet();
        // 640x480: 256 * 640 / 480 = 341.33 -> 341.
        assert_eq!(p.resized_size(640, 480), (341, 256));
        assert_eq!(p.resized_size(480, 640), (256, 341));
        // 1800x1200 (Landscape_1): 384 exactly.
        assert_eq!(p.resized_size(1800, 1200), (384, 256));
        // 451x300: 256 * 451 / 300 = 384.85 -> 384 (rounding would give 385).
        assert_eq!(p.resized_size(451, 300), (384, 256));
        assert_eq!(p.resized_size(300, 300), (256, 256));
        // Upscaling a small image.
        assert_eq!(p.resized_size(100, 80), (320, 256));
        assert_eq!(p.resized_size(1, 3), (256, 768));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        let p = Preprocess::imagenet();
        assert_eq!(p.crop_offsets(256, 256), (16, 16));
        // (341 - 224) / 2 = 58.5 -> 58 (even); (343 - 224) / 2 = 59.5 -> 60 (even).
        assert_eq!(p.crop_offsets(341, 256), (58, 16));
        assert_eq!(p.crop_offsets(343, 256), (60, 16));
        assert_eq!(p.crop_offsets(256, 384), (16, 80));
        assert_eq!(p.crop_offsets(224, 224), (0, 0));
    }

    #[test]
    fn uniform_image_gives_exact_normalised_values() {
        let colour = [200u8, 100, 30];
        let img = RgbImage::from_pixel(450, 300, Rgb(colour));
        let p = Preprocess::imagenet();
        let out = preprocess(&img, &p).unwrap();
        assert_eq!(out.data.len(), 3 * 224 * 224);
        assert!(out.warnings.is_empty());
        for (c, plane) in out.data.chunks(224 * 224).enumerate() {
            let want = (f32::from(colour[c]) / 255.0 - p.mean[c]) / p.std[c];
            assert!(plane.iter().all(|&v| v == want), "channel {c}");
        }
        // Hand-checked: (200/255 - 0.485) / 0.229 = 1.30697...
        assert!((out.data[0] - 1.306_97).abs() < 1e-4);
    }

    #[test]
    fn chw_order_and_identity_resize() {
        // resize == crop == image size: no resampling, pure layout + normalisation.
        let p = Preprocess {
            resize: 2,
            crop: 2,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let img = RgbImage::from_fn(2, 2, |x, y| Rgb([(10 * x + 20 * y) as u8, 100, 200]));
        let d = preprocess(&img, &p).unwrap().data;
        let v = |b: u8| f32::from(b) / 255.0;
        // Channel R: row-major (0,0) (1,0) (0,1) (1,1).
        assert_eq!(&d[0..4], &[v(0), v(10), v(20), v(30)]);
        assert_eq!(&d[4..8], &[v(100); 4]);
        assert_eq!(&d[8..12], &[v(200); 4]);
    }

    #[test]
    fn two_colour_image_is_cropped_at_the_centre() {
        // 12x6: left half black, right half white. Resize(4) -> 8x4, CenterCrop(4) -> left 2.
        // The crop sees resized columns 2..6, the middle of which straddles the edge.
        let img = RgbImage::from_fn(12, 6, |x, _| Rgb([if x < 6 { 0 } else { 255 }; 3]));
        let p = Preprocess {
            resize: 4,
            crop: 4,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        assert_eq!(p.resized_size(12, 6), (8, 4));
        assert_eq!(p.crop_offsets(8, 4), (2, 0));
        let d = preprocess(&img, &p).unwrap().data;
        let row: Vec<u8> = d[0..4].iter().map(|v| (v * 255.0).round() as u8).collect();
        // Resized columns 2 and 5 lie wholly in one half; 3 and 4 mix (1.5x bilinear support).
        assert_eq!(row[0], 0);
        assert_eq!(row[3], 255);
        assert!(
            row[1] > 0 && row[1] < 128 && row[2] > 127 && row[2] < 255,
            "{row:?}"
        );
        // Symmetric about the edge.
        assert_eq!(u16::from(row[1]) + u16::from(row[2]), 255);
        // A crop offset by one pixel would show two black or two white columns.
    }

    #[test]
    fn small_images_are_upscaled_with_a_warning() {
        let img = RgbImage::from_pixel(100, 80, Rgb([1, 2, 3]));
        let out = preprocess(&img, &Preprocess::imagenet()).unwrap();
        assert_eq!(out.data.len(), 3 * 224 * 224);
        assert_eq!(
            out.warnings,
            vec!["image is 100x80, smaller than the model's 224x224 input; \
                  upscaled, expect weaker tags"
                .to_string()]
        );
        // 1x1 works too.
        let one = RgbImage::from_pixel(1, 1, Rgb([9, 9, 9]));
        assert_eq!(
            preprocess(&one, &Preprocess::imagenet())
                .unwrap()
                .data
                .len(),
            3 * 224 * 224
        );
    }

    #[test]
    fn impossible_parameters_are_errors() {
        let img = RgbImage::from_pixel(10, 10, Rgb([0; 3]));
        let err = |p: Preprocess| preprocess(&img, &p).unwrap_err();
        assert!(matches!(
            err(small(224, 256)),
            PreprocessError::CropLargerThanResize { .. }
        ));
        assert!(matches!(err(small(0, 0)), PreprocessError::ZeroSize { .. }));
        assert!(matches!(
            err(small(256, 0)),
            PreprocessError::ZeroSize { .. }
        ));
        let mut p = Preprocess::imagenet();
        p.std[1] = 0.0;
        assert!(matches!(
            err(p),
            PreprocessError::BadNormalisation { channel: 1, .. }
        ));
        let empty = RgbImage::new(0, 5);
        assert!(matches!(
            preprocess(&empty, &Preprocess::imagenet()),
            Err(PreprocessError::EmptyImage { .. })
        ));
        println!("{}", err(small(224, 256)));
    }

    /// A noisy image, so that any difference in filter placement shows.
    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 0x9e37_79b9_u32;
        RgbImage::from_fn(width, height, |_, _| {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            };
            Rgb([next(), next(), next()])
        })
    }

    #[test]
    fn crop_only_path_matches_full_resize() {
        // Threshold 0 forces the crop-only path; threshold MAX the full resize.
        let p = Preprocess::imagenet();
        let sizes = [
            (640, 480),
            (451, 300),
            (100, 80),
            (3, 1_200),
            (1_037, 89),
            (313, 2_999),
        ];
        for (w, h) in sizes {
            let img = noise(w, h);
            let full = resize_and_crop_with(&img, &p, u64::MAX).unwrap();
            let fast = resize_and_crop_with(&img, &p, 0).unwrap();
            assert_eq!(full.len(), 3 * 224 * 224);
            let diffs: Vec<u8> = full
                .iter()
                .zip(&fast)
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let differing = diffs.iter().filter(|&&d| d > 0).count();
            println!("{w}x{h}: {differing} of {} values differ by 1", diffs.len());
            // Measured: identical except 1037x89 (253 values, 0.17%, off by one level, from f64
            // rounding of the crop box). Allow one level and 1% of values.
            assert!(
                diffs.iter().all(|&d| d <= 1),
                "{w}x{h}: crop-only path differs by > 1"
            );
            assert!(
                differing * 100 <= diffs.len(),
                "{w}x{h}: too many differences"
            );
        }
    }

    #[test]
    fn extreme_aspect_ratios_work_without_the_full_resize() {
        // 1x30000 would resize to 256x7,680,000 (5.9 GB); the crop-only path needs 20 MB.
        let strip = RgbImage::from_pixel(1, 30_000, Rgb([10, 20, 30]));
        let p = Preprocess::imagenet();
        let out = preprocess(&strip, &p).unwrap();
        assert_eq!(out.data.len(), 3 * 224 * 224);
        assert_eq!(out.warnings.len(), 1);
        let want = (10.0 / 255.0 - p.mean[0]) / p.std[0];
        assert!(out.data[..224 * 224].iter().all(|&v| v == want));
    }
}
