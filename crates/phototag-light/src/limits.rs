//! Resource limits for decoding one image: the `[limits]` config section.
//!
//! May not: decode anything (see the main crate's `imaging::decode`, which enforces them).

/// Resource limits for one decode. Usable as a config section (`[decode]` or similar): every
/// field is optional there and defaults to [`Limits::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Widest image accepted, in pixels (as stored, before orientation).
    pub max_width: u32,
    /// Tallest image accepted, in pixels (as stored, before orientation).
    pub max_height: u32,
    /// Most pixels (width × height) accepted.
    pub max_pixels: u64,
    /// Largest file accepted, in bytes; checked before the file is opened.
    pub max_file_bytes: u64,
    /// Most bytes one decode may hold at once: the decoder's image and working buffers, and
    /// the 8-bit RGB copy or turned copy made from it (checked from the header, before any
    /// pixel is decoded).
    pub max_alloc_bytes: u64,
}

impl Default for Limits {
    /// * `max_pixels` = 89,478,485: Pillow's `MAX_IMAGE_PIXELS` (1 GiB / 4 bytes / 3), the point
    ///   at which PIL starts treating an image as a possible decompression bomb. Every phone and
    ///   almost every camera is below it (a 61-MP full-frame sensor is 9504×6336). 100-MP
    ///   medium-format photos (Fujifilm GFX100: 11648×8736 = 101.8 MP; Phase One IQ4: 151 MP)
    ///   are over it: raise it in the config to read those.
    /// * `max_width` = `max_height` = 30,000: 2.5× the longest side of a 150-MP camera sensor
    ///   (14204 px), room for stitched panoramas (30000×2900 is still under `max_pixels`). A side
    ///   past this is almost always a forged header; bounding it also bounds per-row buffers in
    ///   the decoders and the aspect ratio the preprocessing has to cope with.
    /// * `max_file_bytes` = 256 MiB: several times the largest JPEG/PNG a camera writes.
    /// * `max_alloc_bytes` = 512 MiB: what one decode may hold at once. An 8-bit photo at
    ///   `max_pixels` (268 MB as RGB) fits, turned a quarter too (two buffers: exactly 512 MiB);
    ///   a 16-bit or RGBA image is counted with its conversion to 8-bit RGB, so a 16-bit PNG
    ///   at the pixel limit (537 MB decoded + 268 MB converted) is refused unless this is
    ///   raised. One decode stays under ~512 MB: the web server decodes uploads one at a time.
    fn default() -> Self {
        Limits {
            max_width: 30_000,
            max_height: 30_000,
            max_pixels: 89_478_485,
            max_file_bytes: 256 * 1024 * 1024,
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}
