//! Exit codes, and which errors map to which.
//!
//! May not: print anything.

use crate::config::ConfigError;
use crate::model_files::manifest::ManifestError;
use crate::model_files::store::StoreError;

/// Everything asked for was done.
pub const SUCCESS: u8 = 0;
/// Some inputs failed; the others were done.
pub const PARTIAL: u8 = 1;
/// Bad usage or configuration (clap also exits 2 on bad flags).
pub const USAGE: u8 = 2;
/// The model is missing, unusable, or does not match its manifest.
pub const MODEL: u8 = 3;
/// Anything else: I/O, network, libtorch, the catalog (a catalog server that cannot be
/// reached included).
pub const OTHER: u8 = 4;
/// Stopped by SIGINT or SIGTERM; what was done is saved (128 + SIGINT, as shells report).
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error that stopped a command, for the errors this crate knows
/// (configuration, query and album usage errors are usage errors; the models folder's are
/// model errors); anything else is [`OTHER`].
pub fn code_for(e: &anyhow::Error) -> u8 {
    code_for_with(e, |_| None)
}

/// As [`code_for`], asking `more` first about each cause in the chain: the engine maps its
/// own error types this way.
pub fn code_for_with(
    e: &anyhow::Error,
    more: impl Fn(&(dyn std::error::Error + 'static)) -> Option<u8>,
) -> u8 {
    for cause in e.chain() {
        if let Some(code) = more(cause) {
            return code;
        }
        if cause.is::<ConfigError>()
            || cause.is::<crate::search::QueryError>()
            || cause.is::<crate::album::UsageError>()
            || cause.is::<crate::taught::TeachError>()
        {
            return USAGE;
        }
        if cause
            .downcast_ref::<crate::catalog::CatalogError>()
            .is_some_and(|c| c.is_usage())
        {
            return USAGE;
        }
        if cause.is::<StoreError>()
            || cause.is::<ManifestError>()
            || cause.is::<crate::model_files::manifest::NoEmbeddings>()
        {
            return MODEL;
        }
    }
    OTHER
}
