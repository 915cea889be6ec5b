//! phototag's integration tests, one crate (one binary to link against libtorch), one
//! module per theme. `common` holds the helpers every theme shares (the binaries, a
//! `phototag` command, waiting, test photos, random models, the daemon, catalog records);
//! `web` the web server's (a small indexed library, the server, a raw HTTP client).
//!
//! Run one theme with `cargo test --test it watch::`.

mod common;
mod web;

mod album_watch;
mod albums;
mod bad_corpus;
mod bench_cli;
mod catalog;
mod catalog_cli;
mod cli;
mod e2e_web;
mod efficientnet_reference;
mod formats;
mod imaging;
mod index;
mod optimize;
mod real_model;
mod resnet_reference;
mod scaled_decode;
mod search_cli;
mod search_query;
mod serve;
mod shared_catalog;
mod similar;
mod teach;
mod walk;
mod watch;
