//! Exit codes, and which errors map to which.
//!
//! May not: print anything.

use crate::config::ConfigError;
use crate::model::checkpoint::CheckpointError;
use crate::model::manifest::ManifestError;
use crate::model::prepare::PrepareError;
use crate::model::store::StoreError;
use crate::model::ClassifyError;

/// Everything asked for was done.
pub const SUCCESS: u8 = 0;
/// Some inputs failed; the others were done.
pub const PARTIAL: u8 = 1;
/// Bad usage or configuration (clap also exits 2 on bad flags).
pub const USAGE: u8 = 2;
/// The model is missing, unusable, or does not match its manifest.
pub const MODEL: u8 = 3;
/// Anything else: I/O, network, libtorch, the catalog.
pub const OTHER: u8 = 4;
/// Stopped by SIGINT or SIGTERM; what was done is saved (128 + SIGINT, as shells report).
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error that stopped a command.
pub fn code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<ConfigError>()
            || cause.is::<crate::search::QueryError>()
            || cause.is::<crate::serve::ServeError>()
        {
            return USAGE;
        }
        if cause.is::<StoreError>() || cause.is::<ManifestError>() || cause.is::<CheckpointError>()
        {
            return MODEL;
        }
        if let Some(
            ClassifyError::Load { .. }
            | ClassifyError::Manifest(_)
            | ClassifyError::BadOutput { .. },
        ) = cause.downcast_ref::<ClassifyError>()
        {
            return MODEL;
        }
        if let Some(PrepareError::NotOfficial { .. }) = cause.downcast_ref::<PrepareError>() {
            return USAGE;
        }
    }
    OTHER
}
