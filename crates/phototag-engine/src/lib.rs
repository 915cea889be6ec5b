//! phototag-engine: everything phototag does that links libtorch — decoding photos for the
//! model, preparing and running models, indexing, the daemon and the web server — and the
//! commands built on them. Everything else (flags, configuration, the catalog, search,
//! albums, sidecars, export, the models folder) is in `phototag-light`, which the light
//! `phototag` binary links alone. See ARCHITECTURE.md.

pub mod classify;
pub mod cmd;
pub mod exit;
pub mod gate;
pub mod imaging;
pub mod index;
pub mod memory;
pub mod model;
pub mod ordered;
pub mod serve;
pub mod watch;
