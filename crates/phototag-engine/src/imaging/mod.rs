//! Imaging: turning photo files into the float tensors a classifier eats.
//!
//! Two stages, each in its own module:
//!
//! * [`decode`]: bytes or a file → an upright 8-bit RGB image. It sniffs the format from the
//!   content (never the extension, `sniff`), enforces the limits *before* allocating pixel
//!   memory, dispatches to `jpeg`, `heif`, `raw` or the `image` crate, applies the EXIF
//!   orientation and flattens every colour type to RGB (`rgb`). Its errors are `error`'s.
//! * [`preprocess`]: an RGB image → a normalised CHW `f32` vector, computed the way torchvision's
//!   `Resize` / `CenterCrop` / `ToTensor` / `Normalize` compute it for a PIL image.
//!
//! This module does no I/O other than reading the one file it is asked to decode, knows nothing
//! about models, tensors (`tch`) or the catalogue, and never panics on bad input.

pub mod decode;
pub mod error;
mod format;
mod heif;
mod jpeg;
pub mod preprocess;
mod raw;
mod rgb;
mod sniff;

pub use decode::{decode_bytes, decode_bytes_scaled, decode_file, decode_file_scaled, Decoded};
pub use error::{DecodeError, LimitKind};
pub use format::{Format, RawKind};
pub use preprocess::{preprocess, Preprocess, PreprocessError, Preprocessed};
