//! Inputs waiting for the model, and the one place where the model's answers are paired
//! with them: every item pushed comes back once, in push order, with its result (an input
//! that failed before the model keeps its place and its error).
//!
//! May not: decode, or reorder.

use std::sync::Arc;

use super::{Classified, FileError, Prepared};
use crate::model::Classifier;

/// A batch being gathered: items (`T` is what the caller needs back with each result) and
/// their inputs or the errors that stopped them.
pub struct Batch<T> {
    items: Vec<(T, Result<Prepared, FileError>)>,
    ready: usize,
    size: usize,
}

impl<T> Batch<T> {
    /// A batch that is full at `size` inputs (at least 1).
    pub fn new(size: usize) -> Self {
        Batch {
            items: Vec::new(),
            ready: 0,
            size: size.max(1),
        }
    }

    /// Adds an item; true once `size` inputs wait (time to [`Batch::run`]).
    pub fn push(&mut self, item: T, input: Result<Prepared, FileError>) -> bool {
        if input.is_ok() {
            self.ready += 1;
        }
        self.items.push((item, input));
        self.ready >= self.size
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items waiting, in push order.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(t, _)| t)
    }

    /// Empties the batch without running the model: every item with its input, in push
    /// order (classification was put off).
    pub fn take(&mut self) -> Vec<(T, Result<Prepared, FileError>)> {
        self.ready = 0;
        std::mem::take(&mut self.items)
    }

    /// Runs the model once on the waiting inputs (top `top_k` classes each, and the
    /// embedding when the model gives one) and empties the batch: every item, in push order, with its result. When the model fails, each input
    /// of the batch gets that error.
    pub fn run(
        &mut self,
        classifier: &Classifier,
        top_k: usize,
    ) -> Vec<(T, Result<Classified, FileError>)> {
        let items = std::mem::take(&mut self.items);
        self.ready = 0;
        let inputs: Vec<&[f32]> = items
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|p| p.data.as_slice()))
            .collect();
        let mut outputs = match classifier.classify(&inputs, top_k) {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => {
                let e = Arc::new(e);
                inputs.iter().map(|_| Err(Arc::clone(&e))).collect()
            }
        }
        .into_iter();
        items
            .into_iter()
            .map(|(item, input)| {
                let result = input.and_then(|p| match outputs.next() {
                    Some(Ok(answer)) => Ok(Classified {
                        predictions: answer.predictions,
                        embedding: answer.embedding,
                        warnings: p.warnings,
                        width: p.width,
                        height: p.height,
                        format: p.format,
                    }),
                    Some(Err(e)) => Err(FileError::Classify(e)),
                    None => Err(FileError::NoOutput),
                });
                (item, result)
            })
            .collect()
    }
}
