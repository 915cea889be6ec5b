//! Classifies content that was recorded while classification waited (`Writer::put_queued`:
//! outside the schedule windows, or while the machine was busy), oldest first: each is read
//! again from the first of its paths that still holds it (the bytes decoded are the bytes
//! hashed), decoded on worker threads while the model runs on batches, and its tags replace
//! the queued row. The caller's [`Turn`] is asked before each batch, as in `execute`.
//!
//! May not: walk, or remove anything but queued rows no file holds any more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::execute::image_row;
use super::{IndexError, Progress, Turn};
use crate::classify::{reread, Batch, LazyClassifier, Missed, Prepared, Reread, Settings};
use phototag_light::catalog::{unix_now, Catalog, FileRow, Hash, Writer};

/// Counts of one [`classify_queued`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Drained {
    pub classified: usize,
    pub failed: usize,
    /// Content still queued afterwards.
    pub left: u64,
}

/// One queued content, read and decoded (or why not).
struct Read {
    hash: Hash,
    files: Vec<FileRow>,
    input: Option<Result<Prepared, String>>,
}

/// Reads the first path that still holds `hash` and decodes it. `None` when not decoding
/// (classification stopped, or the run was).
fn read_one(
    hash: Hash,
    files: Vec<FileRow>,
    s: &Settings,
    decode: &AtomicBool,
    stop: &AtomicBool,
) -> Read {
    if stop.load(Ordering::Relaxed) || !decode.load(Ordering::Relaxed) {
        return Read {
            hash,
            files,
            input: None,
        };
    }
    let input = match reread(&hash, files.iter().map(|f| &f.path), s) {
        Reread::Found(_, prepared) => prepared.map_err(|e| e.to_string()),
        Reread::Gone(None) => Err("no file holds this content any more".into()),
        Reread::Gone(Some(Missed::Changed)) => {
            Err("the file changed while it waited to be classified".into())
        }
        Reread::Gone(Some(Missed::Unreadable(e))) => Err(e.to_string()),
    };
    Read {
        hash,
        files,
        input: Some(input),
    }
}

/// Records that queued content could not be classified, on each of its files that still
/// exists (a deleted one's rows go with the deletion).
fn fail(w: &mut Writer<'_>, files: &[FileRow], error: &str, now: i64) -> Result<(), IndexError> {
    for f in files.iter().filter(|f| f.path.exists()) {
        tracing::warn!(file = %f.path.display(), "{error}");
        w.put_failure(&f.path, f.root_id, f.size, f.mtime_ns, error, now)?;
    }
    Ok(())
}

/// Classifies up to `limit` queued contents, oldest first, asking `turn` before each batch
/// (`Record` stops: the rest stays queued). Also forgets queued content no file holds.
#[allow(clippy::too_many_arguments)]
pub fn classify_queued(
    catalog: &mut Catalog,
    model: &mut LazyClassifier<'_>,
    settings: &Settings,
    limit: usize,
    stop: &AtomicBool,
    turn: &mut dyn FnMut() -> Turn,
    progress: &mut dyn FnMut(Progress),
) -> Result<Drained, IndexError> {
    {
        let mut w = catalog.begin()?;
        let n = w.remove_unheld_queued()?;
        w.commit()?;
        if n > 0 {
            tracing::info!(
                forgotten = n,
                "queued photos whose files are gone were dropped from the queue"
            );
        }
    }
    let todo = catalog.queued_images(limit)?;
    let mut done = Drained::default();
    if todo.is_empty() || stop.load(Ordering::Relaxed) {
        return Ok(done);
    }
    let decode = AtomicBool::new(super::execute::ask(turn, stop));
    if !decode.load(Ordering::Relaxed) {
        done.left = catalog.queued_count()?;
        return Ok(done);
    }
    let (name, manifest) = model
        .identity()
        .map_err(|e| IndexError::Model(format!("{e:#}")))?;
    let model_id = catalog.register_model(&name, &manifest.sha256, &manifest.architecture)?;
    let (workers, depth) = settings.decoders();
    let result: Result<(), IndexError> = crate::ordered::map(
        todo,
        workers,
        depth,
        |(hash, files)| read_one(hash, files, settings, &decode, stop),
        |reads| {
            let mut w = catalog.begin()?;
            let mut last_commit = Instant::now();
            let mut batch: Batch<(Hash, Vec<FileRow>)> = Batch::new(settings.batch_size);
            for r in reads.map(Some).chain(std::iter::once(None)) {
                let now = unix_now();
                let (full, end) = match r {
                    None => (true, true),
                    Some(Read { input: None, .. }) => (true, true),
                    Some(Read {
                        files,
                        input: Some(Err(e)),
                        ..
                    }) => {
                        fail(&mut w, &files, &e, now)?;
                        done.failed += 1;
                        progress(Progress::Done);
                        (false, false)
                    }
                    Some(Read {
                        hash,
                        files,
                        input: Some(Ok(p)),
                    }) => {
                        model
                            .get()
                            .map_err(|e| IndexError::Model(format!("{e:#}")))?;
                        (batch.push((hash, files), Ok(p)), false)
                    }
                };
                while full && !batch.is_empty() {
                    match turn() {
                        Turn::Wait if !stop.load(Ordering::Relaxed) => {
                            w.commit()?;
                            std::thread::sleep(Duration::from_secs(1));
                            w = catalog.begin()?;
                            last_commit = Instant::now();
                        }
                        Turn::Classify => {
                            let c = model
                                .get()
                                .map_err(|e| IndexError::Model(format!("{e:#}")))?;
                            for ((hash, files), result) in batch.run(c, settings.top_k) {
                                match result {
                                    Ok(c) => {
                                        w.put_image(&image_row(hash, model_id, now, &c))?;
                                        done.classified += 1;
                                    }
                                    Err(e) => {
                                        fail(&mut w, &files, &e.to_string(), now)?;
                                        done.failed += 1;
                                    }
                                }
                                progress(Progress::Done);
                            }
                        }
                        Turn::Wait | Turn::Record => {
                            // Not now: what waits in the batch stays queued.
                            decode.store(false, Ordering::Relaxed);
                            batch.take();
                            return Ok(w.commit()?);
                        }
                    }
                }
                if end {
                    break;
                }
                if last_commit.elapsed() >= Duration::from_secs(1) && batch.is_empty() {
                    w.commit()?;
                    w = catalog.begin()?;
                    last_commit = Instant::now();
                }
            }
            Ok(w.commit()?)
        },
    );
    result?;
    let mut w = catalog.begin()?;
    w.remove_unheld_queued()?;
    w.commit()?;
    done.left = catalog.queued_count()?;
    Ok(done)
}
