//! phototag-light: everything phototag does without libtorch — flags, configuration, the
//! catalog, the search language, albums, sidecars, export, the folder of prepared models,
//! and the commands that need no model (`cmd::dispatch` says which).
//!
//! The light `phototag` binary links only this crate, so those commands start in
//! milliseconds instead of paying libtorch's start-up; it hands the others to
//! `phototag-engine` (the `phototag-engine` crate). See ARCHITECTURE.md.

pub mod album;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod exclude;
pub mod exit;
pub mod export;
pub mod fsutil;
pub mod labels;
pub mod limits;
pub mod model_files;
pub mod output;
pub mod paths;
pub mod rate;
pub mod schedule;
pub mod search;
pub mod sidecar;
pub mod similar;
pub mod status;
pub mod vectors;
