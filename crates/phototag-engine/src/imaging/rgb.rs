//! Flattening a decoded image to 8-bit RGB, alpha composited over white.
//!
//! May not: decode, resize or read files.

use image::{DynamicImage, ImageBuffer, Pixel, Primitive, Rgb, RgbImage};

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
