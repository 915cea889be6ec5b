//! Exit codes, and which errors map to which: the codes and the configuration/query errors
//! come from `phototag_core::exit`; this adds the model side's errors.
//!
//! May not: print anything.

pub use phototag_core::exit::{INTERRUPTED, MODEL, OTHER, PARTIAL, SUCCESS, USAGE};

use crate::model::checkpoint::CheckpointError;
use crate::model::manifest::ManifestError;
use crate::model::prepare::PrepareError;
use crate::model::store::StoreError;
use crate::model::ClassifyError;

/// The exit code for an error that stopped a command.
pub fn code_for(e: &anyhow::Error) -> u8 {
    phototag_core::exit::code_for_with(e, model_code)
}

fn model_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if cause.is::<crate::album::UsageError>() || cause.is::<crate::serve::ServeError>() {
        return Some(USAGE);
    }
    if cause.is::<StoreError>() || cause.is::<ManifestError>() || cause.is::<CheckpointError>() {
        return Some(MODEL);
    }
    if let Some(
        ClassifyError::Load { .. } | ClassifyError::Manifest(_) | ClassifyError::BadOutput { .. },
    ) = cause.downcast_ref::<ClassifyError>()
    {
        return Some(MODEL);
    }
    if let Some(PrepareError::NotOfficial { .. }) = cause.downcast_ref::<PrepareError>() {
        return Some(USAGE);
    }
    None
}
