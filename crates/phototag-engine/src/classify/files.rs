//! Classifies a stream of files: decoder threads (`decode_threads`, one per core by default)
//! read, orient and preprocess images into bounded queues while the caller's thread runs the
//! model on batches, so decoding and inference overlap. Results come back in input order,
//! one per file, failures included.
//!
//! May not: print anything, or stop at a bad file (it becomes that file's error result).

use std::path::PathBuf;

use super::{prepare_path, Batch, Classified, FileError, Scale, Settings};
use crate::model::Classifier;

/// Classifies `files` in order (JPEGs decoded reduced where that keeps the answer), calling
/// `on_result` once per file, in input order.
pub fn classify_files<F>(
    classifier: &Classifier,
    files: Vec<PathBuf>,
    settings: &Settings,
    mut on_result: F,
) where
    F: FnMut(&PathBuf, Result<Classified, FileError>),
{
    let (workers, depth) = settings.decoders();
    // Results are emitted in order: a failed file waits behind the batch before it.
    let mut batch = Batch::new(settings.batch_size);
    let mut flush = |batch: &mut Batch<PathBuf>| {
        for (path, result) in batch.run(classifier, settings.top_k) {
            on_result(&path, result);
        }
    };
    crate::ordered::map(
        files,
        workers,
        depth,
        |path| {
            let r = prepare_path(&path, settings, Scale::Reduced);
            (path, r)
        },
        |results| {
            for (path, r) in results {
                if batch.push(path, r) {
                    flush(&mut batch);
                }
            }
        },
    );
    flush(&mut batch);
}
