//! Classifies content that was recorded while classification waited (`Writer::put_queued`:
//! outside the schedule windows, or while the machine was busy), oldest first: each is read
//! again from the first of its paths that still holds it (the bytes decoded are the bytes
//! hashed), decoded on worker threads while the model runs on batches, and its tags replace
//! the queued row. The caller's [`Turn`] is asked before each batch, as in `execute`.
//! On a shared catalog each queued content is claimed before it is read (as `execute`
//! claims new content), so that two hosts holding the same content classify it once; what
//! another worker holds is left for it ([`Drained::elsewhere`]).
//!
//! May not: walk, or remove anything but queued rows no file holds any more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::execute::{image_row, renewing};
use super::{IndexError, Progress, Turn};
use crate::classify::{reread, Batch, LazyClassifier, Missed, Prepared, Reread, Settings};
use phototag_light::catalog::{unix_now, Catalog, Claim, Claimer, FileRow, Hash, Writer};

/// Counts of one [`classify_queued`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Drained {
    pub classified: usize,
    pub failed: usize,
    /// Content still queued afterwards.
    pub left: u64,
    /// Queued content left alone because another worker sharing the catalog holds it (or
    /// has just classified it).
    pub elsewhere: usize,
}

/// What became of one queued content's bytes.
enum Input {
    /// Not read: classification stopped, or the run did.
    Stopped,
    /// Another worker holds it: not read.
    Elsewhere,
    Failed(String),
    Ready(Prepared),
}

/// One queued content, read and decoded (or why not).
struct Read {
    hash: Hash,
    files: Vec<FileRow>,
    input: Input,
}

/// Claims `hash` (on a shared catalog), reads the first path that still holds it and
/// decodes it.
fn read_one(
    hash: Hash,
    files: Vec<FileRow>,
    s: &Settings,
    claimer: Option<&Claimer>,
    decode: &AtomicBool,
    stop: &AtomicBool,
) -> Read {
    if stop.load(Ordering::Relaxed) || !decode.load(Ordering::Relaxed) {
        return Read {
            hash,
            files,
            input: Input::Stopped,
        };
    }
    if let Some(c) = claimer {
        match c.claim_queued(&hash) {
            Ok(Claim::Mine) => {}
            Ok(Claim::Known | Claim::Elsewhere) => {
                return Read {
                    hash,
                    files,
                    input: Input::Elsewhere,
                }
            }
            Err(e) => {
                // The writer meets the same server next and says so; this content stays
                // queued for the next turn.
                tracing::debug!("queued content not claimed: {e}");
                return Read {
                    hash,
                    files,
                    input: Input::Elsewhere,
                };
            }
        }
    }
    let input = match reread(&hash, files.iter().map(|f| &f.path), s) {
        Reread::Found(_, Ok(prepared)) => Input::Ready(prepared),
        Reread::Found(_, Err(e)) => Input::Failed(e.to_string()),
        Reread::Gone(None) => Input::Failed("no file holds this content any more".into()),
        Reread::Gone(Some(Missed::Changed)) => {
            Input::Failed("the file changed while it waited to be classified".into())
        }
        Reread::Gone(Some(Missed::Unreadable(e))) => Input::Failed(e.to_string()),
    };
    if let (Input::Failed(_), Some(c)) = (&input, claimer) {
        c.release(&hash);
    }
    Read { hash, files, input }
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
    let claimer = catalog.claimer()?;
    let (workers, depth) = settings.decoders();
    let result: Result<(), IndexError> = renewing(claimer.as_ref(), || {
        crate::ordered::map(
            todo,
            workers,
            depth,
            |(hash, files)| read_one(hash, files, settings, claimer.as_ref(), &decode, stop),
            |reads| {
                let mut w = catalog.begin()?;
                let mut last_commit = Instant::now();
                let mut batch: Batch<(Hash, Vec<FileRow>)> = Batch::new(settings.batch_size);
                for r in reads.map(Some).chain(std::iter::once(None)) {
                    let now = unix_now();
                    let (full, end) = match r {
                        None => (true, true),
                        Some(Read {
                            input: Input::Stopped,
                            ..
                        }) => (true, true),
                        Some(Read {
                            input: Input::Elsewhere,
                            ..
                        }) => {
                            done.elsewhere += 1;
                            (false, false)
                        }
                        Some(Read {
                            files,
                            input: Input::Failed(e),
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
                            input: Input::Ready(p),
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
        )
    });
    if let Some(c) = &claimer {
        // After the last commit: what was written is found as classified; what was not
        // (a stop, an error) is free for others at once.
        c.release_held();
    }
    result?;
    let mut w = catalog.begin()?;
    w.remove_unheld_queued()?;
    w.commit()?;
    done.left = catalog.queued_count()?;
    Ok(done)
}
