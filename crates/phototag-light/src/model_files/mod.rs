//! The folder of prepared models, read without libtorch: what a model name may be
//! (`names`), the manifest beside each model (`manifest`), and the folder itself: list,
//! get, resolve `auto` (`store`). Preparing and running models is the engine's `model`.

pub mod manifest;
pub mod names;
pub mod store;

pub use manifest::Manifest;
pub use store::{ModelStore, StoredModel};
