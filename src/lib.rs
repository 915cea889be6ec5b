//! phototag: tags photos with an ImageNet classifier and searches the tags.
//!
//! This crate is the model side (decoding, classification, indexing, the daemon); everything
//! that does not need libtorch is in `phototag-core` and re-exported here under the same
//! names. Binaries: `phototag` (src/main.rs, links only the core) and `phototag-engine`
//! (src/bin/phototag-engine.rs, runs the model-side commands). See ARCHITECTURE.md.

pub use phototag_core::{catalog, cli, config, labels, paths, search};

pub mod album;
pub mod cmd;
pub mod exit;
pub mod export;
pub mod imaging;
pub mod index;
pub mod model;
pub mod ordered;
pub mod pipeline;
pub mod serve;
pub mod sidecar;
pub mod watch;
