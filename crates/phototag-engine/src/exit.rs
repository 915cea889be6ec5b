//! Exit codes, and which errors map to which: the codes and the configuration/query errors
//! come from `phototag_light::exit`; this adds the model side's errors.
//!
//! May not: print anything.

use phototag_light::exit::{MODEL, USAGE};

use crate::classify::FileError;
use crate::model::checkpoint::CheckpointError;
use crate::model::prepare::PrepareError;
use crate::model::ClassifyError;

/// The exit code for an error that stopped a command.
pub fn code_for(e: &anyhow::Error) -> u8 {
    phototag_light::exit::code_for_with(e, model_code)
}

fn model_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if cause.is::<crate::serve::ServeError>() || cause.is::<crate::watch::WatchError>() {
        return Some(USAGE);
    }
    if cause.is::<CheckpointError>() {
        return Some(MODEL);
    }
    let classify_error = match cause.downcast_ref::<FileError>() {
        Some(FileError::Classify(e)) => Some(e.as_ref()),
        _ => cause.downcast_ref::<ClassifyError>(),
    };
    if let Some(
        ClassifyError::Load { .. } | ClassifyError::Manifest(_) | ClassifyError::BadOutput { .. },
    ) = classify_error
    {
        return Some(MODEL);
    }
    if let Some(PrepareError::NotOfficial { .. }) = cause.downcast_ref::<PrepareError>() {
        return Some(USAGE);
    }
    None
}
