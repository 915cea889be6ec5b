//! The watcher daemon: `phototag watch` keeps the catalog true while files come and go.

pub mod albums;
pub mod daemon;
pub mod mounts;
pub mod sdnotify;
pub mod settle;
pub mod worker;
