//! Classifies a stream of files: decoder threads (`decode_threads`, one per core by default)
//! read, orient and preprocess images into bounded queues while the caller's thread runs the
//! model on batches, so decoding and inference overlap. Results come back in input order,
//! one per file, failures included.
//!
//! May not: print anything, or stop at a bad file (it becomes that file's error result).

use std::path::PathBuf;

use crate::imaging::{self, DecodeError, Limits, Preprocess, PreprocessError};
use crate::model::{Classifier, ClassifyError, Prediction};

/// What was learned about one file.
#[derive(Debug, Clone)]
pub struct Classified {
    pub predictions: Vec<Prediction>,
    /// Non-fatal notes, e.g. an image smaller than the model's input.
    pub warnings: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub format: imaging::Format,
}

/// Why one file has no result.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("{0}")]
    Classify(String),
}

/// Settings for a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub preprocess: Preprocess,
    pub batch_size: usize,
    pub top_k: usize,
    /// Threads decoding and preprocessing while the model runs; 0 means one per core.
    pub decode_threads: usize,
}

impl Settings {
    /// Decoder threads to start, and how many finished images each may hold, so that about
    /// two batches wait in all.
    pub fn decoders(&self) -> (usize, usize) {
        let workers = crate::ordered::auto_workers(self.decode_threads);
        let depth = (self.batch_size.max(1) * 2).div_ceil(workers);
        (workers, depth)
    }
}

struct Ready {
    data: Vec<f32>,
    warnings: Vec<String>,
    width: u32,
    height: u32,
    format: imaging::Format,
}

/// Decodes and preprocesses one file as the model expects it (what `classify_files` feeds
/// the model; `phototag bench` times inference alone on these).
pub fn preprocess_file(path: &std::path::Path, s: &Settings) -> Result<Vec<f32>, FileError> {
    prepare(path, s).map(|r| r.data)
}

fn prepare(path: &std::path::Path, s: &Settings) -> Result<Ready, FileError> {
    let d = imaging::decode_file_scaled(path, &s.limits, s.preprocess.resize)?;
    let p = imaging::preprocess(&d.image, &s.preprocess)?;
    let (width, height) = d.upright_size();
    Ok(Ready {
        data: p.data,
        warnings: p.warnings,
        width,
        height,
        format: d.format,
    })
}

/// Classifies `files` in order, calling `on_result` once per file, in input order.
pub fn classify_files<F>(
    classifier: &Classifier,
    files: Vec<PathBuf>,
    settings: &Settings,
    mut on_result: F,
) where
    F: FnMut(&PathBuf, Result<Classified, FileError>),
{
    let batch_size = settings.batch_size.max(1);
    let (workers, depth) = settings.decoders();
    // Results are emitted in order: a failed file waits behind the batch before it.
    let mut pending: Vec<(PathBuf, Result<Ready, FileError>)> = Vec::with_capacity(batch_size);
    let mut ready_count = 0;
    let mut flush = |pending: &mut Vec<(PathBuf, Result<Ready, FileError>)>| {
        let inputs: Vec<&[f32]> = pending
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|x| x.data.as_slice()))
            .collect();
        let mut outputs = match classifier.classify(&inputs, settings.top_k) {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => inputs.iter().map(|_| Err(error_text(&e))).collect(),
        }
        .into_iter();
        for (path, r) in pending.drain(..) {
            let result = match r {
                Err(e) => Err(e),
                Ok(ready) => match outputs.next() {
                    Some(Ok(predictions)) => Ok(Classified {
                        predictions,
                        warnings: ready.warnings,
                        width: ready.width,
                        height: ready.height,
                        format: ready.format,
                    }),
                    Some(Err(e)) => Err(FileError::Classify(e)),
                    None => Err(FileError::Classify("no output for this image".into())),
                },
            };
            on_result(&path, result);
        }
    };
    crate::ordered::map(
        files,
        workers,
        depth,
        |path| {
            let r = prepare(&path, settings);
            (path, r)
        },
        |results| {
            for item in results {
                if item.1.is_ok() {
                    ready_count += 1;
                }
                pending.push(item);
                if ready_count == batch_size {
                    flush(&mut pending);
                    ready_count = 0;
                }
            }
        },
    );
    flush(&mut pending);
}

fn error_text(e: &ClassifyError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
