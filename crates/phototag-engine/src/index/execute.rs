//! Reads, hashes and classifies the files a plan says need it: each file is read once
//! (hashed and decoded on worker threads while the model runs on batches), content already
//! in the catalog or claimed by another file of the run only gets a file row, and
//! everything is written in short transactions so an interrupted run loses nothing.
//! The model is loaded when the first photo needs it, while the decoders go on decoding.
//! Before each batch the caller's [`Turn`] says whether to classify, wait, or only record
//! the rest: new content is then hashed and written as queued (`Writer::put_queued`, no
//! decoding), for `queue::classify_queued` to classify later.
//!
//! On a shared (PostgreSQL) catalog, a content new to the catalog is claimed before it is
//! decoded (`catalog::Claimer`): content another worker classified meanwhile only gets a
//! file row, and content another worker is classifying now comes back in
//! [`Executed::elsewhere`], for the caller to try again once that worker wrote it (or died
//! and its claim expired). The claims of this run are renewed while it works and released
//! when it ends.
//!
//! May not: walk, compare with the catalog, delete, or print (it reports through
//! `Progress`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::walk::Entry;
use super::{IndexError, Progress, Summary, Turn};
use crate::classify::{
    prepare_bytes, read_and_hash, Batch, Classified, FileError, LazyClassifier, Prepared, Scale,
    Settings,
};
use phototag_light::catalog::{
    unix_now, Catalog, CatalogError, Claim, Claimer, Hash, NewFile, NewImage, NewTag, Writer,
};
use phototag_light::paths::root_holding;
use phototag_light::vectors::Embedding;

enum Item {
    /// Content nobody has: decoded, or `None` when only recording (classification waits).
    New {
        entry: Entry,
        hash: Hash,
        ready: Option<Prepared>,
    },
    Duplicate {
        entry: Entry,
        hash: Hash,
    },
    /// Content that another file of this run claimed first (it is decoded once, there):
    /// written once that file is classified, or failed with it.
    Copy {
        entry: Entry,
        hash: Hash,
    },
    Failed {
        entry: Entry,
        error: String,
        /// The content's hash when it was read, so copies of it fail with it.
        hash: Option<Hash>,
    },
    /// Content another worker sharing the catalog is classifying now: for later.
    Elsewhere {
        entry: Entry,
        hash: Hash,
    },
    /// The catalog could not be asked (its server is away): the run stops.
    Unavailable(CatalogError),
    /// Gone before it could be read: nothing is written.
    Vanished,
    /// Not done: the run was stopped.
    Stopped,
}

/// The catalog rows for an image once the model has spoken: its tags, and its embedding
/// in the stored form when the model gives one.
pub fn image_row(hash: Hash, model_id: i64, now: i64, c: &Classified) -> NewImage {
    NewImage {
        hash,
        width: c.width,
        height: c.height,
        format: c.format.id().to_string(),
        model_id,
        classified_at: now,
        tags: c
            .predictions
            .iter()
            .map(|p| NewTag {
                rank: p.rank as u32,
                class_index: p.index,
                label: p.class.to_string(),
                probability: p.probability,
            })
            .collect(),
        embedding: c.embedding.as_deref().and_then(Embedding::quantize),
    }
}

/// Reads, hashes and (for content neither in the catalog nor claimed by another file of
/// this run, nor by another worker, while `decode` is set) decodes one file.
fn produce_one(
    entry: Entry,
    known: &HashSet<Hash>,
    claimed: &Mutex<HashSet<Hash>>,
    claimer: Option<&Claimer>,
    s: &Settings,
    decode: &AtomicBool,
    stop: &AtomicBool,
) -> Item {
    if stop.load(Ordering::Relaxed) {
        return Item::Stopped;
    }
    match read_and_hash(&entry.path, s.limits.max_file_bytes) {
        // Deleted since the walk (or while it waited in the daemon's queue): nothing to
        // tag, and no failure to remember; its rows go when the deletion is noticed.
        Err(FileError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(file = %entry.path.display(), "gone before it was read");
            Item::Vanished
        }
        Err(error) => Item::Failed {
            entry,
            error: error.to_string(),
            hash: None,
        },
        Ok((_, hash)) if known.contains(&hash) => Item::Duplicate { entry, hash },
        Ok((bytes, hash)) => {
            let first = claimed.lock().map(|mut c| c.insert(hash)).unwrap_or(true);
            if !first {
                return Item::Copy { entry, hash };
            }
            if !decode.load(Ordering::Relaxed) {
                return Item::New {
                    entry,
                    hash,
                    ready: None,
                };
            }
            if let Some(c) = claimer {
                match c.claim(&hash) {
                    Ok(Claim::Mine) => {}
                    Ok(Claim::Known) => return Item::Duplicate { entry, hash },
                    Ok(Claim::Elsewhere) => return Item::Elsewhere { entry, hash },
                    Err(e) => return Item::Unavailable(e),
                }
            }
            match prepare_bytes(&bytes, s, Scale::Reduced) {
                Ok(ready) => Item::New {
                    entry,
                    hash,
                    ready: Some(ready),
                },
                Err(error) => {
                    if let Some(c) = claimer {
                        c.release(&hash);
                    }
                    Item::Failed {
                        entry,
                        error: error.to_string(),
                        hash: Some(hash),
                    }
                }
            }
        }
    }
}

/// The writer side: batches new images for the model and writes everything in short
/// transactions.
struct Sink<'a, 'm> {
    model: &'a mut LazyClassifier<'m>,
    /// False once the caller said to only record: decoders stop decoding.
    decode: &'a AtomicBool,
    model_id: i64,
    top_k: usize,
    /// Roots and their catalog ids.
    roots: Vec<(&'a Path, i64)>,
    batch: Batch<(Entry, Hash)>,
    /// Duplicates of content still waiting in `batch`.
    deferred: Vec<(Entry, Hash)>,
    /// Copies whose content another file claimed, that file not having arrived yet.
    awaiting: HashMap<Hash, Vec<Entry>>,
    /// Content classified (or failed) in this run: its outcome, `None` when written.
    settled: HashMap<Hash, Option<String>>,
    /// Claims on contents (a shared catalog).
    claimer: Option<&'a Claimer>,
    /// Images written in the open transaction, to mark done once it commits.
    uncommitted: Vec<Hash>,
    /// Content another worker is classifying, and the files of this run that have it.
    foreign: HashSet<Hash>,
    elsewhere: Vec<Entry>,
    summary: Summary,
}

impl Sink<'_, '_> {
    fn root_id(&self, path: &Path) -> i64 {
        root_holding(self.roots.iter().map(|(r, _)| *r), path).map_or(0, |i| self.roots[i].1)
    }

    fn file(&self, e: &Entry, hash: Hash, now: i64) -> NewFile {
        NewFile {
            path: e.path.clone(),
            root_id: self.root_id(&e.path),
            hash,
            size: e.size,
            mtime_ns: e.mtime_ns,
            seen: now,
        }
    }

    /// Whether this content waits in the batch.
    fn waiting(&self, hash: &Hash) -> bool {
        self.batch.items().any(|(_, h)| h == hash)
    }

    /// Takes one item; true when a batch is full (time to ask for a [`Turn`]).
    fn accept(
        &mut self,
        w: &mut Writer<'_>,
        item: Item,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<bool, IndexError> {
        let now = unix_now();
        match item {
            Item::Stopped => {}
            Item::Vanished => progress(Progress::Done),
            Item::Unavailable(e) => return Err(e.into()),
            Item::Elsewhere { entry, hash } => {
                self.foreign.insert(hash);
                self.elsewhere.push(entry);
                self.elsewhere
                    .extend(self.awaiting.remove(&hash).unwrap_or_default());
            }
            Item::Copy { entry, hash } if self.foreign.contains(&hash) => {
                self.elsewhere.push(entry);
            }
            Item::New {
                entry,
                hash,
                ready: Some(ready),
            } if self.decode.load(Ordering::Relaxed) => {
                if let Some(copies) = self.awaiting.remove(&hash) {
                    self.deferred.extend(copies.into_iter().map(|e| (e, hash)));
                }
                // The first photo to classify loads the model; the decoders go on meanwhile.
                self.model
                    .get()
                    .map_err(|e| IndexError::Model(format!("{e:#}")))?;
                return Ok(self.batch.push((entry, hash), Ok(ready)));
            }
            Item::New { entry, hash, .. } => {
                self.queue(w, &entry, hash, now)?;
                progress(Progress::Done);
                for copy in self.awaiting.remove(&hash).unwrap_or_default() {
                    w.put_file(&self.file(&copy, hash, now))?;
                    self.summary.duplicates += 1;
                    progress(Progress::Done);
                }
            }
            Item::Copy { entry, hash } => match self.settled.get(&hash) {
                Some(None) => {
                    w.put_file(&self.file(&entry, hash, now))?;
                    self.summary.duplicates += 1;
                    progress(Progress::Done);
                }
                Some(Some(error)) => {
                    let error = error.clone();
                    self.fail(w, &entry, &error, now)?;
                    progress(Progress::Done);
                }
                None if self.waiting(&hash) => {
                    self.deferred.push((entry, hash));
                }
                None => self.awaiting.entry(hash).or_default().push(entry),
            },
            Item::Duplicate { entry, hash } => {
                if self.waiting(&hash) {
                    self.deferred.push((entry, hash));
                } else {
                    w.put_file(&self.file(&entry, hash, now))?;
                    self.summary.duplicates += 1;
                    progress(Progress::Done);
                }
            }
            Item::Failed { entry, error, hash } => {
                self.fail(w, &entry, &error, now)?;
                progress(Progress::Done);
                if let Some(hash) = hash {
                    let error = format!("identical content failed: {error}");
                    for copy in self.awaiting.remove(&hash).unwrap_or_default() {
                        self.fail(w, &copy, &error, now)?;
                        progress(Progress::Done);
                    }
                    self.settled.insert(hash, Some(error));
                }
            }
        }
        Ok(false)
    }

    /// Records new content as waiting for classification, with its file row.
    fn queue(
        &mut self,
        w: &mut Writer<'_>,
        entry: &Entry,
        hash: Hash,
        now: i64,
    ) -> Result<(), CatalogError> {
        w.put_queued(&hash, self.model_id)?;
        w.put_file(&self.file(entry, hash, now))?;
        // Recorded: a claim on it (when decoding had begun) ends with the commit.
        self.uncommitted.push(hash);
        self.settled.insert(hash, None);
        self.summary.queued += 1;
        Ok(())
    }

    /// Classification waits from now on: the decoders stop decoding, and the batch and
    /// what waited for it are recorded as queued.
    fn record_rest(
        &mut self,
        w: &mut Writer<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), CatalogError> {
        self.decode.store(false, Ordering::Relaxed);
        let now = unix_now();
        for ((entry, hash), _) in self.batch.take() {
            self.queue(w, &entry, hash, now)?;
            progress(Progress::Done);
        }
        for (entry, hash) in std::mem::take(&mut self.deferred) {
            w.put_file(&self.file(&entry, hash, now))?;
            self.summary.duplicates += 1;
            progress(Progress::Done);
        }
        Ok(())
    }

    fn fail(
        &mut self,
        w: &mut Writer<'_>,
        entry: &Entry,
        error: &str,
        now: i64,
    ) -> Result<(), CatalogError> {
        tracing::warn!(file = %entry.path.display(), "{error}");
        let root = self.root_id(&entry.path);
        w.put_failure(&entry.path, root, entry.size, entry.mtime_ns, error, now)?;
        self.summary.failed += 1;
        Ok(())
    }

    /// Classifies the pending batch and writes images, tags and file rows.
    fn flush(
        &mut self,
        w: &mut Writer<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), IndexError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let classifier = self
            .model
            .get()
            .map_err(|e| IndexError::Model(format!("{e:#}")))?;
        let now = unix_now();
        let mut written = HashSet::new();
        for ((entry, hash), result) in self.batch.run(classifier, self.top_k) {
            match result {
                Ok(c) => {
                    w.put_image(&image_row(hash, self.model_id, now, &c))?;
                    w.put_file(&self.file(&entry, hash, now))?;
                    written.insert(hash);
                    self.uncommitted.push(hash);
                    self.settled.insert(hash, None);
                    self.summary.new += 1;
                }
                Err(e) => {
                    if let Some(c) = self.claimer {
                        c.release(&hash);
                    }
                    let error = format!("classification failed: {e}");
                    self.settled.insert(
                        hash,
                        Some("classification failed for identical content".into()),
                    );
                    tracing::warn!(file = %entry.path.display(), "{error}");
                    let root = self.root_id(&entry.path);
                    w.put_failure(&entry.path, root, entry.size, entry.mtime_ns, &error, now)?;
                    self.summary.failed += 1;
                }
            }
            progress(Progress::Done);
        }
        for (entry, hash) in std::mem::take(&mut self.deferred) {
            if written.contains(&hash) {
                w.put_file(&self.file(&entry, hash, now))?;
                self.summary.duplicates += 1;
            } else {
                let root = self.root_id(&entry.path);
                w.put_failure(
                    &entry.path,
                    root,
                    entry.size,
                    entry.mtime_ns,
                    "classification failed for identical content",
                    now,
                )?;
                self.summary.failed += 1;
            }
            progress(Progress::Done);
        }
        Ok(())
    }
}

impl Sink<'_, '_> {
    /// Commits the open transaction; the images in it are done (their claims end).
    fn commit(&mut self, w: Writer<'_>) -> Result<(), CatalogError> {
        w.commit()?;
        if let Some(c) = self.claimer {
            c.finish(&std::mem::take(&mut self.uncommitted));
            c.renew_held()?;
        }
        Ok(())
    }
}

/// How often the writer commits while indexing.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Counts of one `execute`.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    pub new: usize,
    pub duplicates: usize,
    pub failed: usize,
    /// Files whose content another worker sharing the catalog was classifying: to try
    /// again in a moment (they then get a file row, or are classified here if that
    /// worker died).
    pub elsewhere: Vec<Entry>,
    /// New content recorded for later classification.
    pub queued: usize,
}

/// How long a [`Turn::Wait`] sleeps before asking again.
const WAIT_STEP: Duration = Duration::from_secs(1);

/// Reads, hashes and classifies `todo` (content already in the catalog only gets a file
/// row), committing about every second. `root_ids` maps each root to its catalog id.
/// `turn` is asked before each batch (and once before anything is decoded): classify,
/// wait (what is done is committed meanwhile), or record the rest as queued.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    catalog: &mut Catalog,
    model: &mut LazyClassifier<'_>,
    todo: Vec<Entry>,
    root_ids: &HashMap<PathBuf, i64>,
    settings: &Settings,
    stop: &AtomicBool,
    turn: &mut dyn FnMut() -> Turn,
    progress: &mut dyn FnMut(Progress),
) -> Result<Executed, IndexError> {
    if todo.is_empty() {
        return Ok(Executed::default());
    }
    let (name, manifest) = model
        .identity()
        .map_err(|e| IndexError::Model(format!("{e:#}")))?;
    let model_id = catalog.register_model(&name, &manifest.sha256, &manifest.architecture)?;
    let known = catalog.image_hashes()?;
    let claimer = catalog.claimer()?;
    // Asked once before anything is decoded: outside a window, nothing is.
    let decode = AtomicBool::new(ask(turn, stop));
    let mut sink = Sink {
        model,
        decode: &decode,
        model_id,
        top_k: settings.top_k,
        roots: root_ids.iter().map(|(r, id)| (r.as_path(), *id)).collect(),
        batch: Batch::new(settings.batch_size),
        deferred: Vec::new(),
        awaiting: HashMap::new(),
        settled: HashMap::new(),
        claimer: claimer.as_ref(),
        uncommitted: Vec::new(),
        foreign: HashSet::new(),
        elsewhere: Vec::new(),
        summary: Summary::default(),
    };
    let claimed = Mutex::new(HashSet::new());
    let (workers, depth) = settings.decoders();
    let result: Result<(), IndexError> = renewing(claimer.as_ref(), || {
        crate::ordered::map(
            todo,
            workers,
            depth,
            |entry| {
                produce_one(
                    entry,
                    &known,
                    &claimed,
                    claimer.as_ref(),
                    settings,
                    &decode,
                    stop,
                )
            },
            |items| {
                let mut w = catalog.begin()?;
                let mut last_commit = Instant::now();
                // `None` ends the items: the last batch is settled like a full one.
                for item in items.map(Some).chain(std::iter::once(None)) {
                    let (full, end) = match item {
                        None | Some(Item::Stopped) => (true, true),
                        Some(item) => (sink.accept(&mut w, item, progress)?, false),
                    };
                    // A full batch, or the last: classify it, wait, or record it.
                    while full && !sink.batch.is_empty() {
                        let t = if decode.load(Ordering::Relaxed) {
                            turn()
                        } else {
                            Turn::Record
                        };
                        match t {
                            Turn::Wait if !stop.load(Ordering::Relaxed) => {
                                // What is done is visible while waiting; the lock is let go.
                                sink.commit(w)?;
                                std::thread::sleep(WAIT_STEP);
                                w = catalog.begin()?;
                                last_commit = Instant::now();
                            }
                            Turn::Classify => sink.flush(&mut w, progress)?,
                            Turn::Wait | Turn::Record => sink.record_rest(&mut w, progress)?,
                        }
                    }
                    if end {
                        break;
                    }
                    if last_commit.elapsed() >= COMMIT_EVERY && sink.batch.is_empty() {
                        sink.commit(w)?;
                        w = catalog.begin()?;
                        last_commit = Instant::now();
                    }
                }
                Ok(sink.commit(w)?)
            },
        )
    });
    if let Some(c) = &claimer {
        // Claims of contents never written (a stop, an error): free for others at once.
        c.release_held();
    }
    result?;
    Ok(Executed {
        new: sink.summary.new,
        duplicates: sink.summary.duplicates,
        failed: sink.summary.failed,
        elsewhere: sink.elsewhere,
        queued: sink.summary.queued,
    })
}

/// Runs `f` while a thread of its own renews the leases `claimer` holds (when the catalog
/// is shared), so that a long model load or batch never lets a claim this worker still
/// holds expire.
pub(super) fn renewing<R>(claimer: Option<&Claimer>, f: impl FnOnce() -> R) -> R {
    let running = AtomicBool::new(true);
    std::thread::scope(|scope| {
        if let Some(c) = claimer {
            let running = &running;
            scope.spawn(move || keep_claims(c, running));
        }
        let result = f();
        running.store(false, Ordering::Relaxed);
        result
    })
}

/// Renews this worker's claims (when a third of a lease has passed) until `running` is
/// cleared. A renewal that fails is tried again; the claims expire only if it keeps
/// failing for a whole lease (the server away), as they would for a worker that died.
fn keep_claims(c: &Claimer, running: &AtomicBool) {
    let step = (c.lease() / 20).clamp(Duration::from_millis(20), Duration::from_millis(250));
    while running.load(Ordering::Relaxed) {
        if let Err(e) = c.renew_held() {
            tracing::debug!("claims not renewed yet: {e}");
        }
        std::thread::sleep(step);
    }
}

/// Asks `turn` until it says to classify (true) or to record (false); while it says to
/// wait, sleeps. A stop while waiting means record.
pub(super) fn ask(turn: &mut dyn FnMut() -> Turn, stop: &AtomicBool) -> bool {
    loop {
        match turn() {
            Turn::Classify => return true,
            Turn::Record => return false,
            Turn::Wait if stop.load(Ordering::Relaxed) => return false,
            Turn::Wait => std::thread::sleep(WAIT_STEP),
        }
    }
}
