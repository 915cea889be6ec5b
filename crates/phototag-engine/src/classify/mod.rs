//! The one classification flow every command uses (`classify`, `bench`, `index`, `retag`,
//! `watch`, `serve`): a file or bytes are decoded and preprocessed into a [`Prepared`]
//! input (`prepare`), inputs wait in a [`Batch`] until the model runs them and each result
//! is paired with its input (`batch`), and a stream of files is classified with decoding on
//! worker threads overlapping inference, results in input order (`files`). [`Settings`] are
//! made in one place; the model is resolved and loaded in one place (`model`).
//!
//! May not: print, touch the catalog, or stop at a bad file (it becomes that file's
//! [`FileError`]).

mod batch;
mod files;
mod model;
mod prepare;

use std::sync::Arc;

use phototag_light::config::Config;
use phototag_light::labels::Prediction;
use phototag_light::limits::Limits;
use phototag_light::model_files::Manifest;

use crate::imaging::{DecodeError, Format, Preprocess, PreprocessError};
use crate::model::ClassifyError;

pub use batch::Batch;
pub use files::classify_files;
pub use model::{LazyClassifier, ModelChoice};
pub use prepare::{prepare_bytes, prepare_path, read_and_hash, reread, Missed, Reread, Scale};

/// How to classify: limits, the model's preprocessing, batching, top-k, decoders.
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
    /// The configuration's limits, top-k and decoders, `model`'s preprocessing, and
    /// `batch_size` (the flag's or the configuration's, as the command chose).
    pub fn new(config: &Config, model: &Manifest, batch_size: usize) -> Self {
        Settings {
            limits: config.limits,
            preprocess: Preprocess::for_model(model),
            batch_size,
            top_k: config.classify.top_k,
            decode_threads: config.classify.decode_threads,
        }
    }

    /// Decoder threads to start, and how many finished images each may hold, so that about
    /// two batches wait in all.
    pub fn decoders(&self) -> (usize, usize) {
        let workers = crate::ordered::auto_workers(self.decode_threads);
        let depth = (self.batch_size.max(1) * 2).div_ceil(workers);
        (workers, depth)
    }
}

/// An image decoded and preprocessed for the model, with what is known of it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The model's input, CHW `f32`.
    pub data: Vec<f32>,
    /// Non-fatal notes, e.g. an image smaller than the model's input.
    pub warnings: Vec<String>,
    /// Upright size of the image as stored (before any scaled decoding).
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

/// What was learned about one image.
#[derive(Debug, Clone)]
pub struct Classified {
    pub predictions: Vec<Prediction>,
    /// The model's pooled features (not normalised); None for a model prepared before
    /// phototag kept them.
    pub embedding: Option<Vec<f32>>,
    /// Non-fatal notes, e.g. an image smaller than the model's input.
    pub warnings: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

/// Why one file (or upload) has no result.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read (indexing reads it to hash it).
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The model failed on the batch this image was in.
    #[error(transparent)]
    Classify(Arc<ClassifyError>),
    /// The model gave fewer answers than it was given images.
    #[error("no output for this image")]
    NoOutput,
}
