//! phototag-core: everything phototag does without libtorch — flags, configuration, the
//! catalog, the search language, and the commands that only read the catalog.
//!
//! The main crate (`phototag`) adds the model side (decoding, classification, indexing, the
//! daemon). The `phototag` binary links only this crate, so that `phototag search` starts in
//! milliseconds instead of paying libtorch's start-up; it hands the model-side commands to
//! `phototag-engine`. See ARCHITECTURE.md.

pub mod app;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod exclude;
pub mod exit;
pub mod fsutil;
pub mod labels;
pub mod limits;
pub mod model_names;
pub mod paths;
pub mod search;
pub mod status;
