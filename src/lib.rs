//! phototag: tags photos with an ImageNet classifier and searches the tags.
//!
//! The binary (`src/main.rs`) is a thin shell over these modules; see ARCHITECTURE.md.

pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod exit;
pub mod imaging;
pub mod index;
pub mod labels;
pub mod model;
pub mod ordered;
pub mod paths;
pub mod pipeline;
pub mod search;
pub mod watch;
